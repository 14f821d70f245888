"""Issue 12, less wasted work per kept record: several real inputs per written instruction, answer
budgets by task type, batches of one budget. Fakes for the model and the retriever; real seeds."""

from __future__ import annotations

from selfspec.config.gen_inputs import GenInputsParams
from selfspec.config.gen_responses import GenResponsesParams
from selfspec.generation import Completion, Sampling
from selfspec.generation.batching import length_sorted_batches
from selfspec.generation.resume import BatchRunner, PartialStore
from selfspec.grounding.answers import answer_budgets
from selfspec.retrieval import Hit
from selfspec.stages import gen_inputs, gen_responses
from tests.test_grounding import SEEDS, Corpus, Fake, instr, runner

ABSTRACTS = [Hit(f"pmid:{i}", 10.0 - i, "", f"Patients {i} received drug {i} for gout.") for i in range(5)]


class Budgeted(Fake):
    """Records the max_new_tokens of every batch it is given."""

    def __init__(self, answer=lambda prompt: " yes"):
        super().__init__(answer)
        self.budgets: list[int] = []

    def generate(self, prompts, sampling, seed):
        self.budgets.append(sampling.max_new_tokens)
        return super().generate(prompts, sampling, seed)


def test_an_instruction_takes_several_distinct_passages_one_record_each():
    records = [
        instr("a", "Extract the drugs from the text.", "entity_extraction"),
        instr("b", "List the drugs in the abstract.", "entity_extraction"),
        instr("q", "What causes gout?", "factoid_qa", needs_input=False),
    ]
    p = GenInputsParams(source="corpus", corpus_min_words=3, inputs_per_instruction=2)
    kept, metrics = gen_inputs.run(records, SEEDS, p, runner(Fake()), 8, "x", Corpus(ABSTRACTS))
    # round-robin: a and b each take their best unused passage before either takes a second
    assert [(r["id"], (r["input_passage"] or {}).get("id")) for r in kept] == [
        ("a", "pmid:0"), ("a.2", "pmid:2"), ("b", "pmid:1"), ("b.2", "pmid:3"), ("q", None)
    ]  # fmt: skip
    assert {r["instruction"] for r in kept[:2]} == {"Extract the drugs from the text."}
    assert metrics["with_input"] == 4 and metrics["instructions"] == 3 and metrics["kept"] == 5


def test_one_input_per_instruction_keeps_the_instruction_ids():
    records = [instr("a", "Extract the drugs from the text.", "entity_extraction")]
    p = GenInputsParams(source="corpus", corpus_min_words=3, inputs_per_instruction=1)
    kept, _ = gen_inputs.run(records, SEEDS, p, runner(Fake()), 8, "x", Corpus(ABSTRACTS))
    assert [r["id"] for r in kept] == ["a"]


def test_a_written_input_is_not_multiplied():
    """Only real passages fan out: several written inputs of one instruction are several confabulations."""
    records = [instr("a", "Interpret the lab panel.", "lab_interpretation")]
    p = GenInputsParams(source="generated", inputs_per_instruction=4)
    kept, _ = gen_inputs.run(records, SEEDS, p, runner(Fake(lambda _: " Sodium 128 mmol/L.")), 8, "x")
    assert [(r["id"], r["input_source"]) for r in kept] == [("a", "generated")]


def test_answer_budgets_follow_the_longest_seed_answer_of_each_type():
    budgets = answer_budgets(SEEDS, 128)
    # fixture seeds: yes/no "yes" (1 word), extraction 5 words, patient explanation 14 words
    assert budgets["yes_no_qa"] == 2 * 1 + 8
    assert budgets["entity_extraction"] == 2 * 5 + 8
    assert budgets["patient_explanation"] == 2 * 14 + 8
    assert answer_budgets(SEEDS, 12)["patient_explanation"] == 12  # capped at max_new_tokens
    assert "concept_explanation" not in budgets  # no seed of that type: the default applies


def test_grouped_batches_hold_one_budget_and_keep_length_order_within_it():
    items = ["aaaa", "b", "cc", "ddd", "e"]
    group = {"aaaa": 10, "b": 128, "cc": 10, "ddd": 128, "e": 10}
    assert length_sorted_batches(items, len, 2, group.get) == [["ddd", "b"], ["aaaa", "cc"], ["e"]]
    assert length_sorted_batches(items, len, 4, group.get) == [["ddd", "b"], ["aaaa", "cc", "e"]]
    assert length_sorted_batches(items, len, 2) == [["aaaa", "ddd"], ["cc", "b"], ["e"]]  # ungrouped


def test_budget_by_type_gives_short_answers_short_batches():
    records = [
        {**instr("yn", "Read the trial report and answer yes or no.", "yes_no_qa"), "input": "It did."},
        {**instr("ex", "Explain how insulin works to a patient.", "patient_explanation", False), "input": ""},
        {**instr("new", "Explain how insulin works.", "concept_explanation", False), "input": ""},
    ]
    gen = Budgeted()
    r = BatchRunner(gen, Sampling(128), 1, "test")
    gen_responses.run(records, SEEDS, GenResponsesParams(retrieval=False, budget_by_type=True), r, 8, "x")
    assert gen.budgets == [128, 2 * 14 + 8, 2 * 1 + 8]  # the unseeded type keeps max_new_tokens
    gen = Budgeted()
    r = BatchRunner(gen, Sampling(128), 1, "test")
    gen_responses.run(records, SEEDS, GenResponsesParams(retrieval=False, budget_by_type=False), r, 8, "x")
    assert gen.budgets == [128]  # off: one batch, one budget


def test_a_saved_batch_is_replayed_only_for_the_budget_it_was_generated_with(tmp_path):
    store = PartialStore(tmp_path / "part.jsonl")
    gen = Budgeted()
    BatchRunner(gen, Sampling(128), 1, "test", store).run(0, ["p"], max_new_tokens=10)
    replay = BatchRunner(gen, Sampling(128), 1, "test", PartialStore(tmp_path / "part.jsonl"))
    assert replay.run(0, ["p"], max_new_tokens=10) == [Completion(" yes", 10, 5, "stop")]
    assert gen.budgets == [10]  # replayed, not generated again
    replay.run(0, ["p"], max_new_tokens=20)
    assert gen.budgets == [10, 20]  # another budget: generated again


# --- label balance (filter_records.max_label_share) ------------------------------------------------


def yes_no(rid: str, answer: str) -> dict:
    return {
        "id": rid, "instruction": f"Read abstract {rid}: yes or no?", "input": f"Abstract {rid} text.",
        "output": answer, "task_type": "yes_no_qa", "labels": ["yes", "no"], "finish_reason": "stop",
    }  # fmt: skip


def test_a_skewed_label_is_cut_back_to_its_share_and_other_types_are_untouched():
    from selfspec.config.filter_records import FilterRecordsParams
    from selfspec.stages import filter_records

    records = [yes_no(f"n{i}", "No.") for i in range(6)] + [yes_no("y0", "Yes, it did."), yes_no("y1", "yes")]
    records.append({**yes_no("free", "Metformin lowers hepatic glucose output."), "task_type": "factoid_qa",
                    "labels": []})  # fmt: skip
    p = FilterRecordsParams(min_support=0, max_label_share=0.6)
    kept, metrics = filter_records.run(records, p, None)
    # 2 "yes" → at most 0.6 * 2 / 0.4 = 3 "no" (the first three): "no" is 3 of 5 = 0.6
    assert [r["id"] for r in kept] == ["n0", "n1", "n2", "y0", "y1", "free"]
    assert metrics["dropped"] == {"label_skew": 3} and "labels" not in kept[0]
    kept, metrics = filter_records.run(records, FilterRecordsParams(min_support=0), None)
    assert len(kept) == 9 and metrics["dropped"] == {}  # 1.0: off


def test_a_type_with_one_label_only_keeps_none_of_it():
    from selfspec.config.filter_records import FilterRecordsParams
    from selfspec.stages import filter_records

    records = [yes_no(f"n{i}", "no") for i in range(4)]
    kept, metrics = filter_records.run(records, FilterRecordsParams(min_support=0, max_label_share=0.6), None)
    assert kept == [] and metrics["dropped"] == {"label_skew": 4}
