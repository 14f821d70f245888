"""``train.source`` and ``train.max_records``: what each source trains on, on small fixtures written here.

records: data/filter_records as it is. seeds: every instance of every seed. gold: real labelled
documents of the biomed_gen tasks (the real task YAMLs and utils.py, tiny data files), asked exactly
as the evaluation asks them, answered as their parsers read as correct, never a document evaluate
scores (by position, id or text). max_records: a seeded, nested sample.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from selfspec.config import default_params
from selfspec.errors import ConfigError, StageError
from selfspec.training import gold
from selfspec.training.sources import load_training_data, sample_records
from tests.conftest import REPO

SUITE = REPO / "evals/tasks"
TASKS = ["pubmedqa_gen", "pubmedqa_long", "ncbi_disease_ner", "jnlpba_ner", "chemprot_rel"]
NER = 'List every disease mentioned in the sentence, copied as written and separated by commas. If it mentions none, write "none".'  # noqa: E501


def _utils():
    spec = importlib.util.spec_from_file_location("biomed_gen_utils_t", SUITE / "biomed_gen/utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


U = _utils()


def _pmq(pmid: str, question: str, answer: str = "yes", long_answer: str = "It does.") -> dict:
    return {"id": pmid, "question": question, "context": f"Background of {pmid}.\nResults of {pmid}.",
            "answer": answer, "long_answer": long_answer}  # fmt: skip


def _ner(name: str, i: int, sentence: str, mentions: list[str], kind: str) -> dict:
    return {"id": f"{name}-{i}", "question": sentence, "entities": {kind: mentions}}


PUBMEDQA_TEST = [_pmq("1", "Does A help?"), _pmq("2", "Does B help?", "no"), _pmq("3", "Does C help?")]
PUBMEDQA_FEWSHOT = [
    _pmq("11", "Does K help?", "maybe", "Perhaps, in some."),
    {**PUBMEDQA_TEST[2], "id": "14"},  # a test question again under another id: out by its text
    _pmq("12", "Does L help?", "no", "It does not."),
    _pmq("15", "Does M help?", "yes", ""),  # no conclusion: a pubmedqa_gen example, not a pubmedqa_long one
    _pmq("13", "Does N help?", "yes", "It does, a little."),
]
NCBI = [
    _ner("ncbi_disease", 0, "Breast cancer runs in families.", ["Breast cancer"], "Disease"),
    _ner("ncbi_disease", 1, "The gene is expressed.", [], "Disease"),
    _ner("ncbi_disease", 2, "Patients with ataxia and gout.", ["ataxia", "gout"], "Disease"),
    _ner("ncbi_disease", 3, "No disease here.", [], "Disease"),
    _ner("ncbi_disease", 4, "Breast  cancer runs in FAMILIES.", ["Breast cancer"], "Disease"),  # = doc 0
    _ner("ncbi_disease", 5, "Colon cancer is common.", ["Colon cancer"], "Disease"),
    _ner("ncbi_disease", 6, "Patients with ataxia and gout.", ["ataxia", "gout"], "Disease"),  # = doc 2
]
JNLPBA = [
    _ner("jnlpba", i, s, m, "protein")
    for i, (s, m) in enumerate(
        [
            ("IL-2 binds its receptor.", ["IL-2"]),
            ("Cells grow.", []),
            ("NF-kappa B is active.", ["NF-kappa B"]),
            ("TNF and IL-6 rise.", ["TNF", "IL-6"]),
        ]  # fmt: skip
    )
]
CHEMPROT = [
    {"id": "chemprot-0", "question": "<< Aspirin >> inhibits [[ COX-1 ]] and COX-2.", "answer": "inhibition",
     "label": "INHIBITOR"},
    {"id": "chemprot-1", "question": "<< Dopamine >> activates [[ D1 ]].", "answer": "activation",
     "label": "ACTIVATOR"},
    # the sentence of chemprot-0 with the other pair marked: the same document, so out
    {"id": "chemprot-2", "question": "<< Aspirin >> inhibits COX-1 and [[ COX-2 ]].", "answer": "inhibition",
     "label": "INHIBITOR"},
    {"id": "chemprot-3", "question": "<< Morphine >> binds [[ MOR ]] and KOR.", "answer": "agonist",
     "label": "AGONIST"},
    {"id": "chemprot-4", "question": "<< Caffeine >> blocks [[ A2A ]].", "answer": "antagonist",
     "label": "ANTAGONIST"},
    # unevaluated: another pair of chemprot-3's sentence is another example; a verbatim repeat is not
    {"id": "chemprot-5", "question": "<< Morphine >> binds MOR and [[ KOR ]].", "answer": "agonist",
     "label": "AGONIST"},
    {"id": "chemprot-6", "question": "<< Caffeine >> blocks [[ A2A ]].", "answer": "antagonist",
     "label": "ANTAGONIST"},
]  # fmt: skip


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def evals(in_tmp_repo) -> Path:
    """data/prepare_evals/ of tiny data sets, in a project folder (task data paths are cwd-relative)."""
    data = in_tmp_repo / "data/prepare_evals"
    _write(data / "pubmedqa.jsonl", PUBMEDQA_TEST)
    _write(data / "fewshot/pubmedqa.jsonl", PUBMEDQA_FEWSHOT)
    for name, rows in (("ncbi_disease", NCBI), ("jnlpba", JNLPBA), ("chemprot", CHEMPROT)):
        _write(data / f"{name}.jsonl", rows)
    return in_tmp_repo


def params(*overrides: str):
    base = [f"evaluate.include_path=[{SUITE}]", "evaluate.primary_task=biomed_gen", "evaluate.limit=2"]
    return default_params([*base, "train.source=gold", *overrides])


def by_task(records: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in records:
        out.setdefault(r["task"], []).append(r["doc_id"])
    return out


# --- gold ---------------------------------------------------------------------------------------------


def test_gold_draws_per_task_from_the_documents_evaluate_does_not_score(evals):
    data = load_training_data(params("train.gold_per_task=2"))
    assert data.source == "gold" and len(data.records) == 10 and data.n_available == 10
    got = by_task(data.records)
    assert list(got) == TASKS and all(len(ids) == 2 for ids in got.values())
    # PubMedQA from its fewshot split: 14 repeats test question 3, 15 has no conclusion (not for long)
    assert set(got["pubmedqa_gen"]) <= {"11", "12", "13", "15"}
    assert set(got["pubmedqa_long"]) <= {"11", "12", "13"}
    # NCBI: 0-1 evaluated (limit 2); 4 repeats 0's sentence; 6 repeats 2 (one document): 2, 3, 5
    assert set(got["ncbi_disease_ner"]) <= {"ncbi_disease-2", "ncbi_disease-3", "ncbi_disease-5"}
    assert sorted(got["jnlpba_ner"]) == ["jnlpba-2", "jnlpba-3"]  # the only two after the limit
    # ChemProt: 2 is chemprot-0's sentence with the other pair marked; 6 repeats 4 verbatim
    assert set(got["chemprot_rel"]) <= {"chemprot-3", "chemprot-4", "chemprot-5"}
    assert {tuple(sorted(r)) for r in data.records} == {
        ("doc_id", "input", "instruction", "output", "source", "task")
    }
    assert [p.as_posix() for p in data.paths] == [
        "data/prepare_evals/fewshot/pubmedqa.jsonl", "data/prepare_evals/ncbi_disease.jsonl",
        "data/prepare_evals/jnlpba.jsonl", "data/prepare_evals/chemprot.jsonl",
    ]  # fmt: skip


def test_every_candidate_is_disjoint_from_the_evaluated_documents_by_id_and_text(evals):
    index = gold.index_suite([str(SUITE)])
    for task in TASKS:
        pool, path, n_eval = gold.candidates(index, task, 2)
        test = [json.loads(line) for line in gold.split_file(index.tasks[task][0]).read_text().splitlines()]
        scored = test if path.parent.name == "fewshot" else test[:n_eval]
        assert {d["id"] for d in pool}.isdisjoint(d["id"] for d in scored)
        assert {gold.identity(d) for d in pool}.isdisjoint(gold.identity(d) for d in scored)
    ncbi, _, n_eval = gold.candidates(index, "ncbi_disease_ner", 2)
    assert n_eval == 2 and [d["id"] for d in ncbi] == ["ncbi_disease-2", "ncbi_disease-3", "ncbi_disease-5"]
    chemprot, _, _ = gold.candidates(index, "chemprot_rel", 2)
    assert [d["id"] for d in chemprot] == ["chemprot-3", "chemprot-4", "chemprot-5"]
    pubmedqa, path, n_eval = gold.candidates(index, "pubmedqa_gen", 2)
    assert path.as_posix() == "data/prepare_evals/fewshot/pubmedqa.jsonl" and n_eval == 2
    assert [d["id"] for d in pubmedqa] == ["11", "12", "15", "13"]  # 14: test question 3 (not even scored)


def test_the_evaluated_prefix_follows_the_per_task_limit_and_the_largest_reader_of_a_file(evals):
    index = gold.index_suite([str(SUITE)])
    limit = {"default": 1, "jnlpba_ner": 3, "biomed_gen": 2, "pubmedqa": 3}
    assert gold.task_limit(index, "jnlpba_ner", limit) == 3  # its own key first
    assert gold.task_limit(index, "ncbi_disease_ner", limit) == 2  # then its group's
    assert gold.task_limit(index, "medmcqa", limit) == 1  # then default
    path = Path("data/prepare_evals/pubmedqa.jsonl")  # read by pubmedqa (3), pubmedqa_gen/_long (2)
    assert gold.evaluated_count(index, path, limit, 500) == 3
    assert gold.evaluated_count(index, path, {"default": 2, "pubmedqa_long": None}, 500) == 500
    pool, _, n_eval = gold.candidates(index, "jnlpba_ner", limit)
    assert n_eval == 3 and [d["id"] for d in pool] == ["jnlpba-3"]


def test_gold_examples_are_asked_exactly_as_the_evaluation_asks_them(evals):
    from selfspec.evaluation.instruct import rendering
    from selfspec.training.data import render_prompt

    records = load_training_data(params("train.gold_per_task=1")).records
    ncbi = next(r for r in records if r["task"] == "ncbi_disease_ner")
    doc = next(d for d in NCBI if d["id"] == ncbi["doc_id"])
    assert ncbi["instruction"] == NER and ncbi["input"] == doc["question"]
    assert render_prompt(ncbi, "alpaca") == (
        "Below is an instruction that describes a task, paired with an input that provides further "
        "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
        f"{NER}\n\n### Input:\n{doc['question']}\n\n### Response:\n"
    )
    prompts = {"pubmedqa_gen": U.pubmedqa_gen_prompt, "pubmedqa_long": U.pubmedqa_long_prompt,
               "ncbi_disease_ner": U.ncbi_prompt, "jnlpba_ner": U.jnlpba_prompt,
               "chemprot_rel": U.chemprot_prompt}  # fmt: skip
    docs = {d["id"]: d for d in [*PUBMEDQA_FEWSHOT, *NCBI, *JNLPBA, *CHEMPROT]}
    with rendering("alpaca", None):
        for r in records:
            assert render_prompt(r, "alpaca") == prompts[r["task"]](docs[r["doc_id"]]), r["task"]


def test_gold_answers_are_what_each_task_scores_as_fully_correct(evals):
    records = load_training_data(params("train.gold_per_task=2")).records
    docs = {d["id"]: d for d in [*PUBMEDQA_FEWSHOT, *NCBI, *JNLPBA, *CHEMPROT]}
    pmq = {r["doc_id"]: r["output"] for r in records if r["task"] == "pubmedqa_gen"}
    assert pmq == {i: docs[i]["answer"] for i in pmq}  # yes / no / maybe, as the parser reads them
    for r in records:
        doc, out = docs[r["doc_id"]], [r["output"]]
        if r["task"] in ("pubmedqa_gen", "chemprot_rel"):
            results = U.pubmedqa_gen_results if r["task"] == "pubmedqa_gen" else U.chemprot_results
            assert results(doc, out)["acc"] == 1.0
        elif r["task"] == "pubmedqa_long":
            assert out == [doc["long_answer"]] and U.pubmedqa_long_results(doc, out)["rougeL"] == 1.0
        else:
            results = U.ncbi_results if r["task"] == "ncbi_disease_ner" else U.jnlpba_results
            tp, fp, fn = results(doc, out)["f1"]
            assert fp == fn == 0 and tp == len(next(iter(doc["entities"].values())))
    assert {r["output"] for r in records if r["task"] == "ncbi_disease_ner"} <= {"ataxia, gout", "none",
                                                                                 "Colon cancer"}  # fmt: skip


def test_gold_draw_is_seeded_by_base_seed_and_kept_in_file_order(evals):
    one = by_task(load_training_data(params("train.gold_per_task=2")).records)
    assert one == by_task(load_training_data(params("train.gold_per_task=2")).records)
    draws = {tuple(by_task(load_training_data(params("train.gold_per_task=2", f"base.seed={s}")).records)
                   ["ncbi_disease_ner"]) for s in range(12)}  # fmt: skip
    assert len(draws) > 1 and all(list(d) == sorted(d, key=lambda i: int(i.rsplit("-")[-1])) for d in draws)


def test_gold_says_when_too_few_unevaluated_documents_remain(evals):
    with pytest.raises(StageError, match=r"gold_per_task=3: task jnlpba_ner has 2 documents .* 2 evaluated"):
        load_training_data(params("train.gold_per_task=3"))
    with pytest.raises(StageError, match=r"task ncbi_disease_ner has 0 documents .* 7 evaluated"):
        load_training_data(params("train.gold_per_task=1", "evaluate.limit=null"))  # all scored: none left


def test_gold_refuses_a_task_that_is_not_instruction_style(evals):
    with pytest.raises(StageError, match="task pubmedqa is not an instruction-style generative task"):
        load_training_data(params("evaluate.primary_task=pubmedqa"))
    with pytest.raises(StageError, match="evaluate.primary_task 'nope' is no task or group"):
        load_training_data(params("evaluate.primary_task=nope"))


def test_gold_refuses_a_prompt_not_built_with_render_and_names_a_broken_task_yaml(in_tmp_repo):
    suite = in_tmp_repo / "suite"
    suite.mkdir()
    (suite / "utils.py").write_text("def prompt(doc):\n    return 'Q: ' + doc['question']\n")
    (suite / "plain.yaml").write_text(
        "task: plain\noutput_type: generate_until\ndoc_to_text: !function utils.prompt\n"
        "doc_to_target: answer\ndataset_kwargs:\n  data_files:\n    test: data/plain.jsonl\n"
    )
    _write(in_tmp_repo / "data/plain.jsonl", [{"id": "p0", "question": "a?", "answer": "b"}])
    keys = ["train.source=gold", f"evaluate.include_path=[{suite}]", "evaluate.primary_task=plain"]
    p = default_params([*keys, "evaluate.limit=null", "train.gold_per_task=1"])
    with pytest.raises(StageError, match="task plain has 0 documents"):  # all of it is evaluated
        load_training_data(p)
    _write(
        in_tmp_repo / "data/plain.jsonl",
        [{"id": f"p{i}", "question": f"{i}?", "answer": "b"} for i in range(3)],
    )
    p.evaluate.limit = 1
    with pytest.raises(StageError, match=r"task plain: doc_to_text does not build its prompt with render"):
        load_training_data(p)
    (suite / "broken.yaml").write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match=r"suite/broken.yaml: cannot parse YAML"):
        load_training_data(p)


def test_gold_without_prepared_data_names_the_stage_to_run(in_tmp_repo):
    with pytest.raises(
        StageError, match=r"pubmedqa_gen: test data data/prepare_evals/pubmedqa.jsonl not found"
    ):
        load_training_data(params())


# --- seeds, records, max_records ------------------------------------------------------------------------

SEEDS = [
    {"id": "s1", "name": "yes_no", "instruction": "Is it true?", "is_classification": True,
     "task_type": "yes_no_qa", "instances": [{"input": "Aspirin is an NSAID.", "output": "yes"},
                                             {"input": "Insulin is a lipid.", "output": "no"}]},
    {"id": "s2", "name": "define", "instruction": "Define apoptosis.", "is_classification": False,
     "task_type": "definition", "instances": [{"input": "", "output": "Programmed cell death."}]},
]  # fmt: skip


def test_seeds_are_every_instance_of_every_seed_task(in_tmp_repo):
    _write(in_tmp_repo / "myseeds/x.jsonl", SEEDS)
    data = load_training_data(
        default_params(["train.source=seeds", "base.seeds_dir=myseeds", "base.domain=x"])
    )
    assert data.records == [
        {"instruction": "Is it true?", "input": "Aspirin is an NSAID.", "output": "yes", "source": "seeds",
         "seed_id": "s1", "task_type": "yes_no_qa"},
        {"instruction": "Is it true?", "input": "Insulin is a lipid.", "output": "no", "source": "seeds",
         "seed_id": "s1", "task_type": "yes_no_qa"},
        {"instruction": "Define apoptosis.", "input": "", "output": "Programmed cell death.",
         "source": "seeds", "seed_id": "s2", "task_type": "definition"},
    ]  # fmt: skip
    assert (
        data.paths == [Path("myseeds/x.jsonl")] and data.where == "train.source=seeds (from myseeds/x.jsonl)"
    )


def test_the_shipped_domain_seeds_give_one_record_per_instance():
    from selfspec.seeds import load_seeds

    p = default_params(["train.source=seeds", f"base.seeds_dir={REPO / 'seeds'}"])
    seeds = load_seeds(REPO / "seeds/biomedical.jsonl")
    assert len(load_training_data(p).records) == sum(len(s.instances) for s in seeds)


def test_records_source_is_the_filtered_records_as_read(in_tmp_repo, caplog):
    rows = [
        {"instruction": f"Task {i}", "input": "", "output": f"answer {i}", "task_type": "t"} for i in range(5)
    ]
    _write(in_tmp_repo / "data/filter_records/records.jsonl", rows)
    data = load_training_data(default_params())
    assert data.source == "records" and data.records == rows and data.n_available == 5
    assert data.where == "data/filter_records/records.jsonl"  # errors name the file, as before
    cut = load_training_data(default_params(["train.max_records=2"]))
    assert len(cut.records) == 2 and cut.n_available == 5 and cut.where.startswith("train.source=records")
    more = load_training_data(default_params(["train.max_records=9"]))
    assert more.records == rows and "train.max_records=9: the source has only 5 records" in caplog.text


def test_seeds_plus_records_is_the_seeds_then_the_filtered_records(in_tmp_repo):
    _write(in_tmp_repo / "myseeds/x.jsonl", SEEDS)
    rows = [{"instruction": "Task 0", "input": "", "output": "answer 0", "task_type": "t"}]
    _write(in_tmp_repo / "data/filter_records/records.jsonl", rows)
    data = load_training_data(
        default_params(["train.source=seeds+records", "base.seeds_dir=myseeds", "base.domain=x"])
    )
    assert [r["output"] for r in data.records] == ["yes", "no", "Programmed cell death.", "answer 0"]
    assert data.paths == [Path("myseeds/x.jsonl"), Path("data/filter_records/records.jsonl")]
    assert data.n_available == 4 and data.source == "seeds+records"


def test_records_source_without_filter_records_names_the_stage(in_tmp_repo):
    with pytest.raises(StageError, match=r"records.jsonl: not found; run `dvc repro filter_records`"):
        load_training_data(default_params())


def test_max_records_is_a_seeded_nested_sample_in_file_order():
    records = [{"i": i} for i in range(50)]
    assert sample_records(records, None, 0) is records and sample_records(records, 50, 0) is records
    assert sample_records(records, 80, 0) is records  # more than there are: all of them
    ten, thirty = sample_records(records, 10, 42), sample_records(records, 30, 42)
    assert ten == sample_records(records, 10, 42)  # deterministic
    assert [r["i"] for r in ten] == sorted(r["i"] for r in ten)  # file order kept
    assert all(r in thirty for r in ten)  # the 100-record row lies inside the 300-record row
    assert ten != records[:10] and ten != sample_records(records, 10, 7)  # a sample, not the head


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "train.source=silver",
            r"train\.source: must be one of \['records', 'seeds', 'gold', 'seeds\+records'\], got 'silver'",
        ),
        ("train.max_records=0", r"train\.max_records: must be > 0, got 0"),
        ("train.gold_per_task=-1", r"train\.gold_per_task: must be > 0, got -1"),
        ("train.max_records=many", r"train\.max_records"),
    ],
)
def test_a_bad_source_setting_is_a_config_error_naming_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        default_params([override])


# --- through the stage: what trained is recorded --------------------------------------------------------


@pytest.mark.integration
def test_the_stage_trains_on_the_source_and_records_it_in_provenance_and_mlflow(in_tmp_repo, tiny_model_dir):
    import shutil

    from mlflow import MlflowClient

    from selfspec.config import load_params
    from selfspec.io import md5_file, read_json
    from selfspec.stages import train

    shutil.copytree(tiny_model_dir, in_tmp_repo / "models/prepare_model")
    shutil.copy(REPO / "params.yaml", in_tmp_repo / "params.yaml")
    _write(in_tmp_repo / "myseeds/x.jsonl", SEEDS)
    uri = f"sqlite:///{in_tmp_repo}/store/mlflow.db"
    overrides = ["train.source=seeds", "train.max_records=2", "base.seeds_dir=myseeds", "base.domain=x",
                 "train.max_steps=1", "train.max_length=192", "tracking.log_model=false"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        train.main(load_params("params.yaml", overrides))
    data = read_json(in_tmp_repo / "models/train/provenance.json")["data"]
    assert {k: v for k, v in data.items() if k != "records_md5"} == {
        "source": "seeds", "files": [{"path": "myseeds/x.jsonl", "md5": md5_file("myseeds/x.jsonl")}],
        "n_available": 3, "n_records": 2,
    }  # fmt: skip
    assert read_json(in_tmp_repo / "metrics/train.json")["n_records"] == 2
    run = MlflowClient(uri).get_run(read_json(in_tmp_repo / "registry/train.json")["run_id"])
    assert run.data.tags["selfspec.train.source"] == "seeds"
    assert run.data.params["train.source"] == "seeds" and run.data.params["train.max_records"] == "2"
