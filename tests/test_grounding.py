"""Issue 13, generation fidelity and grounding: every new param and filter — what it keeps, what it
drops, and why. Fakes for the model and the retriever; real seeds, real ROUGE-L and stemming."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfspec.config.gen_instructions import GenInstructionsParams
from selfspec.generation import Completion, Sampling
from selfspec.generation.resume import BatchRunner
from selfspec.grounding.cuts import cut_sentences, sentences, shorten
from selfspec.grounding.support import support_score
from selfspec.grounding.tasks import is_task, label_of, label_space, script_ok
from selfspec.grounding.votes import majority
from selfspec.seeds import load_seeds
from selfspec.stages import gen_instructions
from tests.conftest import REPO

FIXTURES = Path(__file__).parent / "fixtures" / "generation"
SEEDS = load_seeds(FIXTURES / "seeds.jsonl")
SHIPPED = load_seeds(REPO / "seeds" / "biomedical.jsonl")
VERBS = frozenset(GenInstructionsParams().task_verbs)


class Fake:
    """A model whose completion is ``answer(prompt)``; it records every prompt it is given."""

    name = "fake"

    def __init__(self, answer=lambda prompt: ""):
        self.answer, self.prompts = answer, []

    def generate(self, prompts, sampling, seed):
        self.prompts += prompts
        return [Completion(self.answer(p), 10, 5, "stop") for p in prompts]

    def describe(self):
        return {"backend": self.name}


def runner(gen) -> BatchRunner:
    return BatchRunner(gen, Sampling(16), 1, "test")


# --- demos cut at sentence boundaries (gen_inputs.cut / gen_responses.cut) -------------------------

ABSTRACT = (
    "Question: Does drug X lower blood pressure?\nAbstract: We randomized 120 adults with "
    "hypertension to drug X or placebo for twelve weeks in two clinics. Adherence was high in both "
    "groups. Drug X lowered systolic pressure by 9 mmHg compared with placebo."
)


def test_sentence_cut_keeps_the_question_and_the_conclusion_of_an_abstract():
    cut = cut_sentences(ABSTRACT, 24, keep_last=True)  # 7 + 6 + 11 words of 44
    assert cut == (
        "Question: Does drug X lower blood pressure? ... Adherence was high in both groups. "
        "Drug X lowered systolic pressure by 9 mmHg compared with placebo."
    )
    assert cut_sentences(ABSTRACT, 23, keep_last=True) == (
        "Question: Does drug X lower blood pressure? ... "
        "Drug X lowered systolic pressure by 9 mmHg compared with placebo."
    )
    # the old cut stops mid-sentence, before the result
    assert shorten(ABSTRACT, 20, "words").endswith("placebo for ...")


def test_sentence_cut_from_the_start_for_answers_and_untouched_when_short():
    answer = "Metformin lowers hepatic glucose output. It also raises insulin sensitivity in muscle."
    assert cut_sentences(answer, 8) == "Metformin lowers hepatic glucose output. ..."
    assert cut_sentences(answer, 50) == answer
    assert sentences("Give 2.5 mg, e.g. at night. Then stop.") == [
        "Give 2.5 mg, e.g. at night.",
        "Then stop.",
    ]


def test_no_shipped_seed_demo_is_cut_mid_sentence():
    """Every shipped seed output/input, cut to the default 40 words, ends on a whole sentence."""
    for seed in SHIPPED:
        for text in (seed.instances[0].output, seed.instances[0].input):
            cut = shorten(text, 40, "sentences", keep_last=True).removesuffix(" ...")
            if cut != text:
                assert cut.rstrip()[-1] in '.!?)"', (seed.id, cut)


# --- task-verb filter, lead-ins, non-ASCII (gen_instructions) -------------------------------------


@pytest.mark.parametrize(
    "task, kept",
    [
        ("Explain how warfarin works.", True),
        ("In one sentence, explain what sepsis is.", True),  # lead-in clause, then the verb
        ("Based on the abstract below, classify the study design.", True),
        ("Which gene causes cystic fibrosis?", True),  # a question
        ("A 45-year-old man presents with chest pain and fever.", False),  # a statement
        ("A 45-year-old man presents with chest pain, fever and cough.", False),
        ("In the liver, glucose is stored as glycogen.", False),
        ("Given the high rate of sepsis, hospitals screen patients.", False),
        ("Based on current evidence, statins are safe.", False),
        ("A parent asks why antibiotics do not help a cold. Write a kind answer.", True),
        ("A man presents with chest pain. He smokes.", False),
    ],
)
def test_a_task_is_a_question_or_starts_with_a_task_verb(task, kept):
    assert is_task(task, VERBS) is kept


def test_every_shipped_seed_instruction_passes_the_task_check_without_seed_first_words():
    assert [s.instruction for s in SHIPPED if not is_task(s.instruction, VERBS)] == []


def check(task: str, **kw) -> str | None:
    from selfspec.generation.text import RougePool

    p = GenInstructionsParams(**kw)
    starts = gen_instructions.task_starts(SHIPPED, p.task_verbs, p.seed_first_words)
    return gen_instructions.check_instruction(task, p, RougePool([]), starts)


def test_seed_first_words_is_the_old_filter_that_let_statements_through():
    statement = "A 45-year-old man presents with chest pain and fever."
    assert check(statement) == "not_a_task"
    assert check(statement, seed_first_words=True) is None  # "A" starts a shipped seed


def test_non_ascii_clinical_symbols_pass_and_other_scripts_are_dropped():
    assert check("Convert 250 µg of β-carotene to mg.") is None
    assert check("Convert 250 µg of β-carotene to mg.", charset="ascii") == "bad_start"  # the old rule
    assert check("Explain 高血压 in one sentence.") == "foreign_script"
    assert check("Explain гипертония in one sentence.") == "foreign_script"
    assert script_ok("Keep it at 4 °C, ± 0.5, ≥ 2 h.")


# --- instruction pool, task types, labels (gen_instructions.run) ---------------------------------


def test_later_prompts_mix_kept_instructions_into_the_seed_list():
    first = " Explain how insulin lowers blood glucose.\nTask 9: x"
    gen = Fake(lambda prompt: first if "Explain how insulin" not in prompt else "")
    p = GenInstructionsParams(n_instructions=3, max_prompts=2, seeds_per_prompt=2, generated_per_prompt=1)
    kept, _ = gen_instructions.run(SEEDS, p, runner(gen), 1, 42, "biomedical")
    assert [r["instruction"] for r in kept] == ["Explain how insulin lowers blood glucose."]
    assert "Explain how insulin" not in gen.prompts[0]  # batch 0: nothing generated yet
    assert "Task 3: Explain how insulin lowers blood glucose.\nTask 4:" in gen.prompts[1]


def test_generated_per_prompt_zero_shows_seeds_only():
    gen = Fake(lambda prompt: " Explain how insulin lowers blood glucose.")
    p = GenInstructionsParams(n_instructions=3, max_prompts=2, seeds_per_prompt=2, generated_per_prompt=0)
    gen_instructions.run(SEEDS, p, runner(gen), 1, 42, "biomedical")
    assert all("insulin" not in prompt for prompt in gen.prompts)


def test_kept_tasks_carry_the_nearest_seeds_task_type_and_label_space():
    text = (
        " Read the trial report and answer yes or no."
        "\nTask 9: What is the mechanism by which lisinopril lowers blood pressure?"
    )
    p = GenInstructionsParams(n_instructions=2)
    kept, metrics = gen_instructions.run(SEEDS, p, runner(Fake(lambda _: text)), 1, 42, "biomedical")
    assert [(r["task_type"], r["is_classification"], r["labels"]) for r in kept] == [
        ("yes_no_qa", True, ["yes", "no"]),
        ("mechanism_of_action", False, []),
    ]
    assert metrics["task_types"] == {"yes_no_qa": 1, "mechanism_of_action": 1}
    kept, _ = gen_instructions.run(
        SEEDS,
        GenInstructionsParams(n_instructions=2, task_types=False),
        runner(Fake(lambda _: text)),
        1,
        42,
        "x",
    )
    assert [(r["task_type"], r["is_classification"]) for r in kept] == [("", False), ("", False)]


def test_the_label_space_of_every_shipped_classification_seed_holds_its_answer():
    for seed in (s for s in SHIPPED if s.is_classification):
        labels = label_space(seed.instruction)
        assert labels, seed.id
        assert label_of(seed.instances[0].output, labels) is not None, (seed.id, labels)
    assert label_space("Classify the drug as: agonist, antagonist (blocks it), or inverse agonist.") == [
        "agonist",
        "antagonist",
        "inverse agonist",
    ]
    assert label_of("Yes, because the trial met its endpoint.", ["yes", "no"]) == "yes"
    assert label_of("Probably beneficial.", ["yes", "no"]) is None


# --- support score, votes ------------------------------------------------------------------------


def test_support_is_the_share_of_answer_content_words_found_in_input_and_passages():
    passage = "Sickle cell disease affects millions of people worldwide, most of them in Africa."
    instruction = "How many people have sickle cell disease?"
    assert support_score("Millions of people worldwide.", instruction, [passage]) == 1.0
    # "people" is the question's own word (not counted); of "3", "billion", "worldwide" only the
    # last is in the passage
    assert support_score("3 billion people worldwide.", instruction, [passage]) == 0.3333
    assert support_score("yes", instruction, [passage]) is None  # nothing of its own to check
    assert support_score("Sickle cell disease.", instruction, [passage]) is None  # only the question's words
    assert support_score("Fractures heal.", "Q?", ["A fracture healed."]) == 1.0  # stemmed


def test_majority_keeps_the_most_voted_answer_and_its_agreement():
    assert majority(["no", "Yes.", "yes", "yes, clearly"], ["yes", "no"]) == ("Yes.", 0.75)
    assert majority(["no", "yes", "no", "yes"], ["yes", "no"]) == ("no", 0.5)  # a tie: the greedy one
    assert majority(["Uric acid.", "uric acid", "Urate."], []) == ("Uric acid.", 0.6667)


# --- grounded inputs (gen_inputs.source, gen_inputs.classification) ------------------------------

from selfspec.config.filter_records import FilterRecordsParams  # noqa: E402
from selfspec.config.gen_inputs import GenInputsParams  # noqa: E402
from selfspec.config.gen_responses import GenResponsesParams  # noqa: E402
from selfspec.grounding.demos import choose_demos  # noqa: E402
from selfspec.retrieval import Hit  # noqa: E402
from selfspec.stages import filter_records, gen_inputs, gen_responses  # noqa: E402

QUESTION = Hit("pmid:1", 9.0, "Does drug X lower blood pressure?", "Drug X lowered pressure in 120 adults.")
PLAIN = Hit("pmid:2", 8.0, "", "Aspirin and warfarin were given to 40 patients with atrial fibrillation.")
MID = Hit("pmid:3#2", 7.0, "", "and the remaining patients were followed for two years without events.")


class Corpus:
    """A retriever returning the same ranked hits for every query; records the queries."""

    def __init__(self, hits):
        self.hits, self.queries = hits, []

    def search(self, queries, k):
        self.queries += queries
        return [self.hits[:k] for _ in queries]


def instr(rid, text, task_type, needs_input=True, labels=()):
    return {
        "id": rid, "instruction": text, "needs_input": needs_input, "seed_ids": [], "batch": 0,
        "task_type": task_type, "is_classification": bool(labels), "labels": list(labels),
    }  # fmt: skip


def test_corpus_inputs_are_real_passages_with_provenance_each_used_once():
    records = [
        instr("a", "Extract the drugs from the text.", "entity_extraction"),
        instr("b", "Extract the drugs from the text.", "entity_extraction"),
        instr("c", "Extract the drugs from the text.", "entity_extraction"),
        instr("d", "What causes gout?", "factoid_qa", needs_input=False),
    ]
    corpus, gen = Corpus([QUESTION, MID, PLAIN]), Fake(lambda _: " A written note about drugs.")
    kept, metrics = gen_inputs.run(
        records, SEEDS, GenInputsParams(source="corpus", corpus_min_words=3), runner(gen), 8, "x", corpus
    )
    by_id = {r["id"]: r for r in kept}
    assert (by_id["a"]["input"], by_id["a"]["input_passage"]) == (
        QUESTION.text,
        {"id": "pmid:1", "score": 9.0},
    )
    # "b" cannot reuse pmid:1 and skips pmid:3#2 (a chunk that starts mid-sentence)
    assert by_id["b"]["input_passage"]["id"] == "pmid:2" and by_id["b"]["input_source"] == "corpus"
    # "c": no unused passage left, so the model writes its input
    assert (by_id["c"]["input_source"], by_id["c"]["input"]) == ("generated", "A written note about drugs.")
    assert (by_id["d"]["input_source"], by_id["d"]["input"]) == ("none", "")
    assert corpus.queries == ["drugs"] * 3  # the topic words, not "extract ... text"
    assert metrics["input_sources"] == {"corpus": 2, "generated": 1, "none": 1} and len(gen.prompts) == 1


def test_mixed_takes_passages_only_for_the_corpus_task_types_and_yes_no_needs_a_question_title():
    records = [
        instr("yn", "Read the abstract and answer yes or no.", "yes_no_qa", labels=["yes", "no"]),
        instr("lab", "Interpret the lab panel.", "lab_interpretation"),
    ]
    gen = Fake(lambda _: " Sodium 128 mmol/L, potassium 5.9 mmol/L.")
    kept, _ = gen_inputs.run(
        records,
        SEEDS,
        GenInputsParams(source="mixed", corpus_min_words=3),
        runner(gen),
        8,
        "x",
        Corpus([PLAIN, QUESTION]),
    )
    by_id = {r["id"]: r for r in kept}
    assert by_id["yn"]["input"] == f"Question: {QUESTION.title}\nAbstract: {QUESTION.text}"  # skipped PLAIN
    assert by_id["lab"]["input_source"] == "generated"  # not a corpus task type


def test_passages_shorter_than_corpus_min_words_are_not_inputs():
    """The corpus's ontology definitions (~25 words) are not the abstract a task is about."""
    records = [instr("a", "Extract the drugs from the text.", "entity_extraction")]
    gen = Fake(lambda _: " A written note about drugs.")
    kept, _ = gen_inputs.run(
        records, SEEDS, GenInputsParams(source="corpus"), runner(gen), 8, "x", Corpus([PLAIN])
    )
    assert kept[0]["input_source"] == "generated"  # PLAIN has 11 words < 80
    kept, _ = gen_inputs.run(
        records,
        SEEDS,
        GenInputsParams(source="corpus", corpus_min_words=11),
        runner(gen),
        8,
        "x",
        Corpus([PLAIN]),
    )
    assert kept[0]["input_passage"] == {"id": "pmid:2", "score": 8.0}


def test_generated_source_never_retrieves():
    corpus = Corpus([PLAIN])
    records = [instr("a", "Extract the drugs from the text.", "entity_extraction")]
    kept, _ = gen_inputs.run(
        records,
        SEEDS,
        GenInputsParams(source="generated"),
        runner(Fake(lambda _: " x y z w")),
        8,
        "x",
        corpus,
    )
    assert corpus.queries == [] and kept[0]["input_source"] == "generated"


def test_output_first_draws_the_label_then_writes_the_input_and_the_label_is_the_answer():
    records = [
        instr(f"r{i}", "Read the trial report and answer yes or no.", "yes_no_qa", labels=["yes", "no"])
        for i in range(8)
    ]
    gen = Fake(lambda _: " In 60 adults, the drug had no effect on pain.")
    p = GenInputsParams(source="generated", classification="output_first")
    kept, _ = gen_inputs.run(records, SEEDS, p, runner(gen), 8, "x", None, seed=42)
    labels = [r["target_label"] for r in kept]
    assert set(labels) == {"yes", "no"}  # drawn over the label space, not the model's favourite
    shown = [prompt.rsplit("Answer: ", 1)[1] for prompt in gen.prompts]  # each prompt's open slot
    assert sorted(shown) == sorted(f"{label}\nInput:" for label in labels)
    answer_gen = Fake(lambda _: " maybe")
    out, metrics = gen_responses.run(
        kept, SEEDS, GenResponsesParams(retrieval=False), runner(answer_gen), 8, "x"
    )
    assert [r["output"] for r in out] == labels and answer_gen.prompts == []
    assert metrics["answered_by_label"] == 8


# --- demos (gen_responses.demo_candidates, demo_match_type) --------------------------------------


def test_demos_rank_the_records_task_type_first_and_draw_from_the_nearest_candidates():
    from selfspec.generation.text import RougePool

    pool = RougePool(s.instruction for s in SEEDS)
    nearest = choose_demos("Summarize the abstract.", "", SEEDS, pool, 2, 0, False, 1, "r")
    assert [d.id for d in nearest] == [
        d.id for d in choose_demos("Summarize the abstract.", "", SEEDS, pool, 2, 2, False, 9)
    ]
    typed = choose_demos("Summarize the abstract.", "factoid_qa", SEEDS, pool, 1, 0, True, 1)
    assert [d.id for d in typed] == ["g5"]  # the only factoid_qa seed, however far by ROUGE-L
    drawn = {
        tuple(d.id for d in choose_demos("Summarize the abstract.", "", SEEDS, pool, 2, 6, False, i))
        for i in range(20)
    }
    assert len(drawn) > 3  # spread over the candidates instead of the same two every time


# --- answers: votes, support, judge (gen_responses) ----------------------------------------------

RESPONSE_RECORDS = [
    {**instr("yn", "Read the trial report and answer yes or no.", "yes_no_qa", labels=["yes", "no"]),
     "input": "Question: Does drug X work?\nAbstract: It did.", "input_source": "corpus",
     "input_passage": {"id": "p0", "score": 5.0}},
    {**instr("long", "Explain how insulin works.", "concept_explanation", needs_input=False), "input": ""},
]  # fmt: skip


def answers_by_prompt(prompt: str) -> str:
    if "Rating (1-5):" in prompt:
        return " 4" if "does drug x work" in prompt.lower() else " two"
    if prompt.endswith("Does drug X work?\nAbstract: It did.\n### Answer:"):
        return " no"
    return " Insulin moves glucose into muscle and fat cells by the GLUT4 transporter."


class Sampled(Fake):
    """The sampling pass: 'yes' 3 times of 4 for the yes/no prompt."""

    def generate(self, prompts, sampling, seed):
        self.prompts += prompts
        return [Completion(" yes" if i % 4 else " no", 1, 1, "stop") for i, _ in enumerate(prompts)]


def test_short_answers_are_voted_and_the_majority_kept_with_its_agreement():
    greedy, samples = Fake(answers_by_prompt), Sampled()
    p = GenResponsesParams(consistency_samples=4, consistency_max_words=10)
    out, metrics = gen_responses.run(
        RESPONSE_RECORDS, SEEDS, p, runner(greedy), 8, "x", Corpus([Hit("p0", 5, "", "It did."), PLAIN]),
        sample_runner=runner(samples),
    )  # fmt: skip
    by_id = {r["id"]: r for r in out}
    # greedy "no" + samples no, yes, yes, yes: "yes" has 3 of 5 votes
    assert (by_id["yn"]["output"], by_id["yn"]["agreement"]) == ("yes", 0.6)
    assert by_id["long"]["agreement"] is None and metrics["voted"] == 1  # too long to vote on
    assert len(samples.prompts) == 4
    # the record's own input passage is not shown again as background
    assert by_id["yn"]["passages"] == [{"id": "pmid:2", "score": 8.0}]


def test_every_answer_gets_a_support_score_against_what_the_prompt_showed():
    out, _ = gen_responses.run(
        RESPONSE_RECORDS[1:], SEEDS, GenResponsesParams(), runner(Fake(answers_by_prompt)), 8, "x",
        Corpus([Hit("p9", 3, "", "Insulin acts through the GLUT4 transporter in muscle.")]),
    )  # fmt: skip
    # content words not in the instruction: moves glucose muscle fat cells glut4 transporter
    assert out[0]["support"] == round(3 / 7, 4)  # muscle, glut4, transporter


def test_the_judge_rates_each_record_only_when_on():
    gen = Fake(answers_by_prompt)
    out, _ = gen_responses.run(
        RESPONSE_RECORDS, SEEDS, GenResponsesParams(retrieval=False, judge=True), runner(gen), 8, "x"
    )
    assert [r["judge_score"] for r in out] == [4, None]  # "two" is no rating
    out, _ = gen_responses.run(
        RESPONSE_RECORDS, SEEDS, GenResponsesParams(retrieval=False), runner(Fake(answers_by_prompt)), 8, "x"
    )
    assert all("judge_score" not in r for r in out)


# --- the grounding filters (filter_records) ------------------------------------------------------


def response(rid, output, **fields):
    base = {
        "id": rid,
        "instruction": f"Question number {rid}?",
        "input": "",
        "output": output,
        "finish_reason": "stop",
        "seed_ids": [],
        "passages": [],
    }
    return {**base, **fields}


GROUNDING = [
    response("ok", "Yes.", labels=["yes", "no"], agreement=1.0, support=None),
    response("off", "Probably effective.", labels=["yes", "no"]),
    response("split", "No.", labels=["yes", "no"], agreement=0.4),
    response("made-up", "Three billion people.", support=0.2),
    response("bad", "Answer text here.", support=0.9, judge_score=1),
    response("free", "Unchecked answer text."),  # no scores at all: nothing to filter on
]


def test_each_grounding_filter_drops_under_its_reason_at_its_threshold():
    p = FilterRecordsParams(min_support=0.5, min_agreement=0.6, min_judge_score=3)
    kept, metrics = filter_records.run(GROUNDING, p, None)
    assert [r["id"] for r in kept] == ["ok", "free"]
    assert metrics["dropped"] == {"judged_low": 1, "low_agreement": 1, "off_label": 1, "unsupported": 1}
    assert kept[0]["agreement"] == 1.0 and metrics["agreement_mean"] == 1.0


def test_grounding_filters_at_their_defaults_drop_off_label_and_split_vote_answers():
    kept, metrics = filter_records.run(GROUNDING, FilterRecordsParams(), None)
    # min_agreement 0.6 (3 of 5 votes) applies only to voted records; min_support 0.05 keeps 0.2; judge off
    assert metrics["dropped"] == {"low_agreement": 1, "off_label": 1}
    kept, _ = filter_records.run(GROUNDING, FilterRecordsParams(check_labels=False, min_agreement=0), None)
    assert len(kept) == 6
    kept, metrics = filter_records.run(
        GROUNDING, FilterRecordsParams(min_support=0.25, min_agreement=0), None
    )
    assert metrics["dropped"] == {"off_label": 1, "unsupported": 1}  # "made-up" (0.2); None passes


def test_vote_samples_are_short_and_sampled_the_greedy_pass_is_not():
    p = GenResponsesParams(consistency_samples=4)
    votes, greedy = gen_responses.consistency_sampling(p), gen_responses.sampling(p)
    assert (votes.max_new_tokens, votes.temperature) == (36, 0.7)  # 3 tokens a word of 12 words
    assert (greedy.max_new_tokens, greedy.temperature) == (128, 0.0)
