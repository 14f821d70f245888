"""filter_records: every filter, counted by reason; the training-set schema; the contamination check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from selfspec.config.filter_records import FilterRecordsParams
from selfspec.stages import filter_records

FIXTURES = Path(__file__).parent / "fixtures" / "generation"
EVAL_Q = (
    "A 45-year-old woman presents with fatigue weight gain cold intolerance and constipation for three "
    "months what is the most likely diagnosis"
)


def rec(rid, instruction, output, input="", finish="stop"):
    return {
        "id": rid,
        "instruction": instruction,
        "input": input,
        "output": output,
        "finish_reason": finish,
        "seed_ids": ["g1"],
        "passages": [{"id": "p1", "score": 3.5}],
        "demo_ids": ["g2"],
        "task_type": "",
    }


RECORDS = [
    rec("ok", "What causes gout?", "Uric acid crystals deposit in joints."),
    rec("empty", "What is sepsis?", "   "),
    rec("cut", "Describe asthma.", "Asthma is a chronic airway", finish="length"),
    rec("long", "Describe diabetes.", "word " * 40),
    rec("loop", "Explain anemia.", "the patient was given iron and " * 4),
    rec("loop_in", "Explain the note.", "A note.", input="C. 10 mg of metformin daily " * 4),
    rec("echo", "Rewrite the text.", "Patients had fever.", input="Patients had fever."),
    rec("leak", "Name a statin.", "Atorvastatin.\n## Question: What is aspirin?"),
    rec("dup", "What causes gout?", "Purine metabolism goes wrong."),
    rec("contam", "Answer the question.", "Hypothyroidism.", input=EVAL_Q.upper()),
]


def params(**kw) -> FilterRecordsParams:
    return FilterRecordsParams(max_output_words=25, **kw)


def test_each_bad_record_is_dropped_under_its_reason():
    kept, metrics = filter_records.run(RECORDS, params(), [EVAL_Q])
    assert [r["id"] for r in kept] == ["ok"]
    assert metrics["dropped"] == {
        "contaminated": 1,
        "degenerate": 2,
        "echo": 1,
        "empty": 1,
        "near_duplicate": 1,
        "template_leak": 1,
        "too_long": 1,
        "truncated": 1,
    }
    assert metrics["contamination_check"] is True and metrics["eval_texts"] == 1


def test_kept_records_have_exactly_the_training_schema():
    kept, _ = filter_records.run(RECORDS[:1], params(), None)
    assert kept == [
        {
            "id": "ok",
            "instruction": "What causes gout?",
            "input": "",
            "output": "Uric acid crystals deposit in joints.",
            "task_type": "",
            "seed_ids": ["g1"],
            "passages": [{"id": "p1", "score": 3.5}],
            # provenance (issue 13): None where the record did not carry it
            "input_source": None,
            "input_passage": None,
            "support": None,
            "agreement": None,
        }
    ]


def test_without_eval_sets_contamination_passes_and_is_reported_off():
    kept, metrics = filter_records.run(RECORDS, params(), None)
    assert "contam" in {r["id"] for r in kept}
    assert metrics["contamination_check"] is False


def test_contamination_needs_a_full_ngram_overlap():
    twelve = " ".join(EVAL_Q.split()[-12:])  # 12 of the question's words: below the 13-gram bar
    kept, metrics = filter_records.run(
        [rec("near", "Answer.", "Hypothyroidism.", input=twelve)], params(), [EVAL_Q]
    )
    assert len(kept) == 1 and metrics["dropped"] == {}
    kept, _ = filter_records.run(
        [rec("near", "Answer.", "Hypothyroidism.", input=twelve)], params(contamination_ngram=8), [EVAL_Q]
    )
    assert kept == []


def test_truncated_records_are_trimmed_dropped_or_kept_as_asked():
    text = "Asthma is a chronic airway disease. It causes wheez"
    cut = rec("cut2", "Describe asthma.", text, finish="length")
    kept, metrics = filter_records.run([cut, RECORDS[2]], params(), None)
    assert [r["output"] for r in kept] == ["Asthma is a chronic airway disease."]
    assert metrics["truncated_trimmed"] == 2 and metrics["dropped"] == {"truncated": 1}
    kept, metrics = filter_records.run([cut, RECORDS[2]], params(truncated="drop"), None)
    assert kept == [] and metrics["dropped"] == {"truncated": 2}
    kept, _ = filter_records.run([RECORDS[2]], params(truncated="keep"), None)
    assert [r["id"] for r in kept] == ["cut"]


def test_main_reads_eval_questions_and_writes_records_and_metrics(in_tmp_repo):
    from selfspec.config import default_params

    Path("data/gen_responses").mkdir(parents=True)
    Path("data/gen_responses/responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    Path("data/prepare_evals").mkdir(parents=True)
    shutil.copy(FIXTURES / "evals.jsonl", "data/prepare_evals/evals.jsonl")
    filter_records.main(default_params(["filter_records.max_output_words=25"]))
    kept = [json.loads(line) for line in Path("data/filter_records/records.jsonl").read_text().splitlines()]
    metrics = json.loads(Path("metrics/filter_records.json").read_text())
    assert [r["id"] for r in kept] == ["ok"] and metrics["dropped"]["contaminated"] == 1


# MedMCQA-like item: a stem shorter than 13 words, and its options.
SHORT_STEM = {"question": "Drug of choice for absence seizures is", "options": [
    "Ethosuximide", "Phenytoin", "Carbamazepine", "Phenobarbital in high doses given at night"]}  # fmt: skip
PUBMEDQA = {
    "question": "Do statins reduce stroke recurrence?",
    "context": "We followed 812 patients with ischaemic stroke for four years and recorded every "
    "recurrent vascular event in both arms of the trial",
    "answer": "yes",
}


def eval_sets() -> dict[str, list[str]]:
    from selfspec.generation.contamination import item_texts

    return {"medmcqa": item_texts(SHORT_STEM), "pubmedqa": item_texts(PUBMEDQA)}


def test_a_question_shorter_than_the_ngram_is_matched_whole():
    copied = rec("copy", "Answer: drug of choice for absence seizures is what?", "Ethosuximide.")
    partial = rec("part", "Which drug of choice for absence is best?", "Ethosuximide.")
    kept, metrics = filter_records.run([copied, partial], params(), eval_sets())
    assert [r["id"] for r in kept] == ["part"]  # 5 of the 7 stem words: not the whole stem
    assert metrics["dropped"] == {"contaminated": 1}


def test_options_are_checked_with_their_stem_but_not_alone():
    # not the whole stem, but 13 words of stem + options
    options = "Ethosuximide, Phenytoin, Carbamazepine, Phenobarbital in high doses given?"
    with_options = rec("mc", "Quiz.", f"choice for absence seizures is: {options}")
    option_named = rec("named", "Which drug treats absence seizures?", "Ethosuximide is the usual choice.")
    long_option = rec("long", "Dosing.", "Give phenobarbital in high doses given at night.")
    kept, metrics = filter_records.run([with_options, option_named, long_option], params(), eval_sets())
    assert [r["id"] for r in kept] == ["named", "long"]  # the 7-word option is inside a 13+-word text
    kept, _ = filter_records.run([long_option], params(contamination_ngram=6), eval_sets())
    assert kept == []  # with 6-grams, the copied option is caught


def test_pubmedqa_contexts_are_checked_and_drops_are_reported_per_eval_set():
    copied = "We saw 812 patients with ischaemic stroke for four years and recorded every recurrent vascular"
    context = rec("ctx", "Summarise.", copied)
    stem = rec("stem", "drug of choice for absence seizures is", "Ethosuximide.", input="A child.")
    clean = rec("clean", "What causes gout?", "Uric acid crystals deposit in joints.")
    kept, metrics = filter_records.run([context, stem, clean], params(), eval_sets())
    assert [r["id"] for r in kept] == ["clean"]
    assert metrics["contamination"] == {
        "ngram_max": 13,
        "min_words": 3,
        "eval_sets": {
            "medmcqa": {"texts": 2, "too_short": 0, "records_dropped": 1},  # stem, stem + options
            "pubmedqa": {"texts": 2, "too_short": 0, "records_dropped": 1},  # question, context
        },
    }
    assert metrics["eval_texts"] == 4


def test_main_checks_every_eval_file_generically(in_tmp_repo):
    from selfspec.config import default_params

    records = [
        rec("ner", "Find diseases.", "Cystic fibrosis.", input="Mutations in CFTR cause cystic fibrosis"),
        rec("mc", "Answer.", "Drug of choice for absence seizures is ethosuximide."),
        rec("ok", "What causes gout?", "Uric acid crystals deposit in joints."),
    ]
    Path("data/gen_responses").mkdir(parents=True)
    Path("data/gen_responses/responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    Path("data/prepare_evals").mkdir(parents=True)
    sets = {
        "ncbi_disease": {"id": "n1", "question": "Mutations in CFTR cause cystic fibrosis", "answer": "x"},
        "medmcqa": {"id": "m1", **SHORT_STEM, "answer": 0},
        "pubmedqa": {"id": "p1", **PUBMEDQA},
    }
    for name, item in sets.items():
        Path(f"data/prepare_evals/{name}.jsonl").write_text(json.dumps(item) + "\n")
    filter_records.main(default_params())
    metrics = json.loads(Path("metrics/filter_records.json").read_text())
    assert metrics["kept"] == 1 and metrics["dropped"] == {"contaminated": 2}
    assert {k: v["records_dropped"] for k, v in metrics["contamination"]["eval_sets"].items()} == {
        "medmcqa": 1, "ncbi_disease": 1, "pubmedqa": 0,
    }  # fmt: skip


def test_eval_texts_under_min_words_are_not_checked_so_a_heading_drops_nothing():
    """NCBI-disease's dev "sentences" include "RESULTS." and "3.": matched whole, each of them would
    drop every record that says "results" (measured: 18 of 57 records in a default run)."""
    sets = {"ncbi_disease": ["RESULTS.", "9 and 8.", "Germline mutations of the APC gene cause polyposis."]}
    said_results = rec("res", "Summarise the results.", "The results show 9 and 8 effects.")
    copied = rec("copy", "Extract diseases.", "Germline mutations of the APC gene cause polyposis.")
    kept, metrics = filter_records.run([said_results, copied], params(), sets)
    assert [r["id"] for r in kept] == ["res"] and metrics["dropped"] == {"contaminated": 1}
    assert metrics["contamination"]["eval_sets"]["ncbi_disease"] == {
        "texts": 1, "too_short": 2, "records_dropped": 1,
    }  # fmt: skip
    kept, _ = filter_records.run([said_results], params(contamination_min_words=1), sets)
    assert kept == []  # checked whole, a one-word heading matches anything
