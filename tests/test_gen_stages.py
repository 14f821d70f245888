"""gen_instructions / gen_inputs / gen_responses cores with a scripted fake model and retriever."""

from __future__ import annotations

from pathlib import Path

from selfspec.config.gen_inputs import GenInputsParams
from selfspec.config.gen_instructions import GenInstructionsParams
from selfspec.config.gen_responses import GenResponsesParams
from selfspec.generation import Completion, Sampling
from selfspec.generation.resume import BatchRunner
from selfspec.retrieval import Hit
from selfspec.seeds import load_seeds
from selfspec.stages import gen_inputs, gen_instructions, gen_responses

FIXTURES = Path(__file__).parent / "fixtures" / "generation"
SEEDS = load_seeds(FIXTURES / "seeds.jsonl")


class Scripted:
    """Fake backend; records the prompts. With a dict it answers each prompt by content: the one key
    the prompt contains picks the answer, so a completion attached to the wrong record shows up. With
    a list it answers in call order (only where one prompt at a time makes the order meaningless)."""

    name = "scripted"

    def __init__(self, texts, finish="stop"):
        self.by_content = texts if isinstance(texts, dict) else None
        self.texts, self.finish, self.prompts = list(texts) if self.by_content is None else [], finish, []

    def generate(self, prompts, sampling, seed):
        self.prompts += prompts
        return [Completion(self.answer(prompt), 10, 5, self.finish) for prompt in prompts]

    def answer(self, prompt: str) -> str:
        if self.by_content is None:
            return self.texts.pop(0) if self.texts else ""
        keys = [key for key in self.by_content if key in prompt]
        assert len(keys) == 1, f"the prompt must contain exactly one scripted key, found {keys}"
        return self.by_content[keys[0]]

    def describe(self):
        return {"backend": self.name}


def runner(gen) -> BatchRunner:
    return BatchRunner(gen, Sampling(16), 1, "test")


def test_gen_instructions_filters_every_candidate_by_reason():
    completion = "\n".join(
        [
            " Explain the mechanism of action of aspirin.",  # kept
            "Task 5: Explain the mechanism of action of aspirin in adults.",  # ROUGE-L > 0.7 vs kept
            "Task 6: Describe the plot in the image.",  # blacklisted
            "Task 7: Hi",  # too short
            "Task 8: The liver is an organ that filters blood every day.",  # a statement, not a task
            "Task 9: - List causes of anemia in children.",  # bad start (punctuation)
        ]
    )
    p = GenInstructionsParams(n_instructions=5, max_prompts=2)
    kept, metrics = gen_instructions.run(SEEDS, p, runner(Scripted([completion, ""])), 1, 42, "biomedical")
    assert [r["instruction"] for r in kept] == ["Explain the mechanism of action of aspirin."]
    assert metrics["dropped"] == {
        "bad_start": 1,
        "blacklisted": 1,
        "not_a_task": 1,
        "similar_to_pool": 1,
        "too_short": 1,
        "truncated": 0,
    }
    assert metrics["prompts"] == 2  # the attempt budget ended the run


def test_gen_instructions_records_seed_ids_and_stops_at_n():
    p = GenInstructionsParams(n_instructions=2, seeds_per_prompt=3)
    texts = [
        " What causes gout in adults?\nTask 5: Which vitamin deficiency causes scurvy?"
        "\nTask 6: What is sepsis?"
    ]
    gen = Scripted(texts)
    kept, _ = gen_instructions.run(SEEDS, p, runner(gen), 4, 42, "biomedical")
    assert [r["instruction"] for r in kept] == [
        "What causes gout in adults?",
        "Which vitamin deficiency causes scurvy?",
    ]
    shown = [s for s in SEEDS if s.instruction in gen.prompts[0]]
    assert kept[0]["seed_ids"] == [s.id for s in shown_in_order(shown, gen.prompts[0])]
    assert len(kept[0]["seed_ids"]) == 3 and kept[0]["id"] == "ins-00001"
    assert len(gen.prompts) == 4  # one batch was enough


def shown_in_order(seeds, prompt):
    return sorted(seeds, key=lambda s: prompt.index(s.instruction))


def test_seed_sampling_depends_on_seed_not_call_order():
    p = GenInstructionsParams(n_instructions=1, max_prompts=4)
    a, b, c = Scripted([]), Scripted([]), Scripted([])
    gen_instructions.run(SEEDS, p, runner(a), 4, 42, "biomedical")
    gen_instructions.run(SEEDS, p, runner(b), 4, 42, "biomedical")
    gen_instructions.run(SEEDS, p, runner(c), 4, 43, "biomedical")
    assert a.prompts == b.prompts and a.prompts != c.prompts


INSTRUCTIONS = [
    {
        "id": "ins-1",
        "instruction": "Summarize the following abstract.",
        "needs_input": True,
        "seed_ids": ["g1"],
    },
    {"id": "ins-2", "instruction": "What causes gout?", "needs_input": False, "seed_ids": ["g2"]},
    {"id": "ins-3", "instruction": "Extract drugs from the text.", "needs_input": True, "seed_ids": ["g3"]},
]


def test_gen_inputs_writes_contexts_only_where_needed_and_drops_empty_ones():
    context = " In a trial of 120 adults, drug X lowered blood pressure."
    answers = {"Task: Summarize the following abstract.": context, "Task: Extract drugs from the text.": "  "}
    gen = Scripted(answers)
    kept, metrics = gen_inputs.run(INSTRUCTIONS, SEEDS, GenInputsParams(), runner(gen), 8, "biomedical")
    assert [(r["id"], r["input"]) for r in kept] == [
        ("ins-1", "In a trial of 120 adults, drug X lowered blood pressure."),
        ("ins-2", ""),  # no input needed: explicitly empty, no prompt spent
    ]
    assert metrics["dropped"] == {"empty_input": 1} and len(gen.prompts) == 2
    assert kept[0]["seed_ids"] == ["g1"]


def test_gen_inputs_demonstrates_the_closest_seeds():
    prompts = gen_inputs.build_prompts(INSTRUCTIONS[2:], SEEDS, GenInputsParams(n_demos=1), "biomedical")
    assert "Task: Extract all disease mentions from the text." in prompts["ins-3"]
    assert prompts["ins-3"].endswith("Task: Extract drugs from the text.\nInput:")


class FakeRetriever:
    def __init__(self):
        self.queries = []

    def search(self, queries, k):
        self.queries += queries
        return [
            [Hit(f"p{i}", 10.0 - i, f"Title {i}", f"Passage text {i}.") for i in range(k)] for _ in queries
        ]


RECORDS = [
    {**INSTRUCTIONS[0], "input": "In a trial of 120 adults, drug X lowered blood pressure.", "batch": 0},
    {**INSTRUCTIONS[1], "input": "", "batch": 0},
]


def test_gen_responses_grounds_prompts_and_keeps_passage_provenance():
    answers = {"What causes gout?": " Uric acid crystals.", "drug X lowered": " It lowered blood pressure."}
    gen, retriever = Scripted(answers), FakeRetriever()
    p = GenResponsesParams(top_k=2, n_demos=2)
    records = [RECORDS[1], RECORDS[0]]  # shortest prompt first: length sorting generates them reversed
    out, metrics = gen_responses.run(records, SEEDS, p, runner(gen), 8, "biomedical", retriever)
    assert [r["id"] for r in out] == ["ins-2", "ins-1"], "output keeps the input order"
    assert gen.prompts[0].endswith(
        "### Input: In a trial of 120 adults, drug X lowered blood pressure.\n### Answer:"
    )
    by_id = {r["id"]: r for r in out}
    assert by_id["ins-1"]["output"] == "It lowered blood pressure."  # each answer back on its own record
    assert by_id["ins-2"]["output"] == "Uric acid crystals."
    assert by_id["ins-2"]["passages"] == [{"id": "p0", "score": 10.0}, {"id": "p1", "score": 9.0}]
    assert set(by_id) == {"ins-1", "ins-2"} and metrics["retrieval"] is True
    assert all(
        "Passage text 1." in prompt and "### Background knowledge:" in prompt for prompt in gen.prompts
    )
    assert retriever.queries[0] == "What causes gout? "
    assert len(by_id["ins-1"]["demo_ids"]) == 2 and "batch" not in by_id["ins-1"]
    record = by_id["ins-1"]
    assert {"instruction", "input", "output", "seed_ids", "finish_reason", "task_type"} <= set(record)


def test_gen_responses_without_retrieval_has_no_passages():
    gen, retriever = Scripted(["a", "b"]), FakeRetriever()
    p = GenResponsesParams(retrieval=False)
    out, metrics = gen_responses.run(RECORDS, SEEDS, p, runner(gen), 8, "biomedical", retriever)
    assert all(r["passages"] == [] for r in out) and retriever.queries == []
    assert not any("Background" in prompt for prompt in gen.prompts) and metrics["retrieval"] is False
