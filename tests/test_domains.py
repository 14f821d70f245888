"""Domains as data: ``base.domain`` picks seeds, corpus and evaluation suite, and nothing else; the
finance seeds are valid, broad and their arithmetic checked; a user's folder is a corpus source;
``selfspec seeds`` reports every bad line of any domain."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selfspec.cli import main
from selfspec.config import flatten, load_params, to_dict
from selfspec.errors import ConfigError, DataError, SourceUnavailableError
from selfspec.seeds import check_seeds, load_seeds, summarize
from tests.conftest import REPO

PARAMS = REPO / "params.yaml"
FINANCE = REPO / "seeds" / "finance.jsonl"
FOLDER = REPO / "tests" / "fixtures" / "corpus" / "finance"
OWNED = {"prepare_evals.datasets", "evaluate.tasks", "evaluate.primary_task", "evaluate.primary_metric"}

# what params.yaml listed before the suites moved to evals/domains/biomedical.yaml
BIOMEDICAL_TASKS = ["pubmedqa", "medmcqa", "medmcqa_cloze", "medqa_4options", "medqa_4options_cloze",
                    "mmlu_medical", "mmlu_medical_cloze", "biomed_gen"]  # fmt: skip
BIOMEDICAL_DATASETS = ["pubmedqa", "medmcqa", "medqa_4options", "mmlu_anatomy", "mmlu_clinical_knowledge",
                       "mmlu_college_biology", "mmlu_college_medicine", "mmlu_medical_genetics",
                       "mmlu_professional_medicine", "ncbi_disease", "jnlpba", "chemprot"]  # fmt: skip


# --- base.domain selects seeds, corpus and evaluation, nothing else ------------------------------------


def test_the_biomedical_default_resolves_to_the_same_suite_as_before():
    params = load_params(PARAMS)
    assert params.evaluate.tasks == BIOMEDICAL_TASKS
    assert (params.evaluate.primary_task, params.evaluate.primary_metric) == ("biomed_gen", "pooled")
    assert params.prepare_evals.datasets == BIOMEDICAL_DATASETS


def test_switching_the_domain_changes_only_the_domain_owned_params():
    from selfspec.domains import suite_path
    from selfspec.seeds import seeds_path
    from selfspec.stages.build_corpus import corpus_path

    bio, fin = load_params(PARAMS), load_params(PARAMS, ["base.domain=finance"])
    a, b = flatten(to_dict(bio)), flatten(to_dict(fin))
    assert {k for k in a if a[k] != b[k]} == {"base.domain", *OWNED, "evaluate.include_path"}
    assert fin.evaluate.include_path == [*bio.evaluate.include_path, "evals/domains/finance"]
    assert fin.evaluate.tasks == ["mmlu_finance", "mmlu_finance_cloze"]
    assert (fin.evaluate.primary_task, fin.evaluate.primary_metric) == ("mmlu_finance", "acc")
    assert fin.prepare_evals.datasets == ["mmlu_professional_accounting", "mmlu_high_school_macroeconomics",
                                          "mmlu_high_school_microeconomics", "mmlu_econometrics"]  # fmt: skip
    assert (seeds_path(fin), corpus_path(fin)) == (Path("seeds/finance.jsonl"), Path("corpora/finance.yaml"))
    assert suite_path(fin, REPO) == REPO / "evals/domains/finance.yaml"


def test_a_value_set_in_params_wins_over_the_domain_suite():
    params = load_params(PARAMS, ["base.domain=finance", "evaluate.tasks=[pubmedqa]"])
    assert params.evaluate.tasks == ["pubmedqa"]  # set: kept
    assert params.evaluate.primary_task == "mmlu_finance"  # null: the domain's


def test_a_domain_without_a_suite_fails_naming_the_file_when_a_stage_reads_it(tmp_path):
    overrides = ["base.domain=chemistry"]
    with pytest.raises(ConfigError) as e:
        load_params(PARAMS, overrides, sections=["evaluate.tasks"])
    message = str(e.value)
    assert message.startswith(f"{REPO / 'evals/domains/chemistry.yaml'}: evaluation suite not found")
    assert "suites present: biomedical, finance" in message and "evaluate.tasks" in message
    # a stage that reads no evaluation params (build_corpus) does not need one
    assert load_params(PARAMS, overrides, sections=["base", "build_corpus"]).evaluate.tasks is None


def test_every_stage_reading_a_domain_owned_param_reruns_when_the_domain_or_its_suite_changes():
    import yaml

    from selfspec.domains import _covers

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    readers = {n for n, st in stages.items() for e in st.get("params", []) for k in OWNED if _covers(e, k)}
    # train: `train.source: gold` draws from the domain's primary task members, outside the evaluated docs
    assert readers == {"prepare_evals", "train", "evaluate_base", "evaluate"}
    for name in readers:
        params, deps = stages[name]["params"], stages[name]["deps"]
        assert "evals/domains" in deps, name
        assert any(_covers(e, "base.domain") for e in params), name
        assert any(_covers(e, "base.suites_dir") for e in params), name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("taks: [a]\n", "taks: unknown key"),
        ("datasets: [a]\ntasks: []\nprimary_task: a\nprimary_metric: x\n", "tasks: must be a non-empty list"),
        ("datasets: [a, a]\ntasks: [a]\nprimary_task: a\nprimary_metric: acc\n", "datasets: duplicate names"),
        ("datasets: [a]\ntasks: [a]\nprimary_metric: acc\n", "primary_task: must be a non-empty string"),
    ],
)
def test_a_bad_suite_file_names_the_file_and_key(tmp_path, text, message):
    (tmp_path / "toy.yaml").write_text(text)
    overrides = ["base.domain=toy", f"base.suites_dir={tmp_path}"]
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'toy.yaml'}: {message}")):
        load_params(PARAMS, overrides)


def test_every_suite_names_data_sets_and_tasks_the_repo_has():
    from selfspec.domains import load_suite
    from selfspec.evaluation.sources import load_sources
    from selfspec.evaluation.tasks import task_manager

    sources = load_sources(REPO / "evals/sources.yaml")
    for path in sorted((REPO / "evals/domains").glob("*.yaml")):
        suite = load_suite(path)
        index = task_manager([REPO / "evals/tasks", *(REPO / f for f in suite.include_path)]).task_index
        assert set(suite.datasets) <= set(sources), path
        tasks = [t for t in [*suite.tasks, suite.primary_task] if t != "biomed_gen"]  # biomed_gen: gen-tasks
        assert set(tasks) <= set(index), (path, sorted(set(tasks) - set(index)))


# --- the finance seeds -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finance():
    return load_seeds(FINANCE)


def test_finance_seeds_are_ninety_plus_in_ten_plus_task_types_of_five_each(finance):
    counts = summarize(finance)["task_types"]
    assert len(finance) >= 90 and len(counts) >= 10 and min(counts.values()) >= 5, counts
    assert {"sentiment_classification", "numeric_reasoning", "entity_extraction", "document_classification",
            "yes_no_qa", "concept_explanation", "summarization", "relation_extraction",
            "risk_identification", "comparison", "unit_conversion"} <= set(counts)  # fmt: skip


def test_finance_seeds_are_well_formed_short_and_mix_inputs(finance):
    assert all(re.fullmatch(r"fin_\d{3}", s.id) for s in finance)
    assert len({s.name for s in finance}) == len(finance)
    for seed in finance:
        for inst in seed.instances:
            words = len(seed.instruction.split()) + len(inst.input.split()) + len(inst.output.split())
            assert words <= 220, (seed.id, words)
            if seed.is_classification:  # a label, a few words at most
                assert len(inst.output.split()) <= 4, (seed.id, inst.output)
    summary = summarize(finance)
    assert 0 < summary["with_input"] < summary["n_seeds"]


def test_finance_seeds_are_the_checked_source_byte_for_byte(tmp_path):
    """scripts/seeds/finance.py asserts every number an answer states; the shipped file is its output."""
    out = tmp_path / "finance.jsonl"
    subprocess.run([sys.executable, "finance.py", str(out)], cwd=REPO / "scripts/seeds", check=True,
                   capture_output=True)  # fmt: skip
    assert out.read_bytes() == FINANCE.read_bytes()


def test_finance_seeds_share_no_instruction_with_the_biomedical_ones(finance):
    bio = {" ".join(s.instruction.lower().split()) for s in load_seeds(REPO / "seeds/biomedical.jsonl")}
    assert not bio & {" ".join(s.instruction.lower().split()) for s in finance}


# --- selfspec seeds: every bad line, any domain -------------------------------------------------------


def bad_file(tmp_path: Path) -> Path:
    good = FINANCE.read_text().splitlines()[:3]
    bad_type = good[2].replace('"task_type": "sentiment_classification"', '"task_type": "Sentiment"')
    lines = [good[0], '{"id": "x"', good[1], "[1]", good[0], bad_type]
    path = tmp_path / "seeds" / "toy.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_seeds_reports_every_bad_line_and_keeps_the_good_ones(tmp_path):
    seeds, problems = check_seeds(bad_file(tmp_path))
    assert [s.id for s in seeds] == ["fin_001", "fin_002"]
    assert [(p.line, p.field) for p in problems] == [(2, None), (4, None), (5, "id"), (6, "task_type")]
    assert str(problems[2]).endswith("toy.jsonl:5: id: duplicate of line 1")
    with pytest.raises(DataError, match=r"toy.jsonl:2: invalid JSON"):  # the loader stops at the first
        load_seeds(bad_file(tmp_path / "again"))


def test_seeds_validate_prints_file_line_of_each_bad_seed_and_exits_1(tmp_path, capsys):
    path = bad_file(tmp_path)
    assert main(["seeds", "validate", "--params", str(PARAMS), "--file", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[0] for line in err[:4]] == [f"{path}:{n}" for n in (2, 4, 5, 6)]
    assert err[4] == f"{path}: 4 bad line(s), 2 good seed task(s)"


def test_seeds_all_checks_every_domain_in_the_seeds_folder(tmp_path, capsys):
    path = bad_file(tmp_path)
    shutil.copy(FINANCE, path.parent / "finance.jsonl")
    argv = ["seeds", "--all", "--params", str(PARAMS), "-S", f"base.seeds_dir={path.parent}"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert f"{path.parent / 'finance.jsonl'}: OK" in out and f"{path}:2: invalid JSON" in err
    monkey = ["seeds", "--params", str(PARAMS), "-S", "base.domain=finance"]
    assert main(monkey) == 0 and re.search(r"seed tasks\s+9\d\b", capsys.readouterr().out)


# --- a user's own folder as a corpus source ------------------------------------------------------------


def folder_source(path: Path | str, **extra):
    from selfspec.corpus.spec import parse_spec

    raw = {"sources": [{"name": "documents", "kind": "folder", "path": str(path), **extra}]}
    return parse_spec(raw, Path("corpora/x.yaml")).sources[0]


def test_a_folder_gives_a_document_per_text_file_and_per_jsonl_line(tmp_path, caplog):
    from selfspec.corpus.sources import read_folder

    folder = tmp_path / "docs"
    shutil.copytree(FOLDER, folder)
    (folder / ".notes.txt").write_text("hidden: never read")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4")
    with caplog.at_level(logging.WARNING):
        docs = list(read_folder(folder_source(folder), folder))
    assert [d["id"] for d in docs] == ["documents:news/wire.jsonl:w1", "documents:news/wire.jsonl:w2",
                                       "documents:news/wire.jsonl:w3", "documents:outlook.txt",
                                       "documents:q3_results.md"]  # fmt: skip
    assert docs[0]["title"] == "Bank raises dividend" and docs[3]["title"] == ""
    assert docs[4]["title"] == "Kestrel Dynamics third-quarter results"
    assert docs[3]["text"] == (FOLDER / "outlook.txt").read_text()
    assert "1 file(s)" in caplog.text and "scan.pdf" in caplog.text
    only_text = folder_source(folder, suffixes=[".txt"])
    assert [d["id"] for d in read_folder(only_text, folder)] == ["documents:outlook.txt"]


def test_bad_files_in_a_folder_are_errors_naming_file_and_line(tmp_path):
    from selfspec.corpus.sources import read_folder

    cases = {
        "a.jsonl": (b'{"text": "fine"}\n{"title": "no text"}\n', r"a.jsonl:2: text: missing"),
        "b.txt": (b"line one\nline two \xff\n", r"b.txt:2: not UTF-8 text \(byte 18: 0xff\)"),
        "c.md": (b"# x\n\n\x00\x01", r"c.md:3: binary content"),
    }
    for name, (data, message) in cases.items():
        folder = tmp_path / name.split(".")[0]
        folder.mkdir()
        (folder / name).write_bytes(data)
        with pytest.raises(DataError, match=message):
            list(read_folder(folder_source(folder), folder))


def test_a_missing_folder_or_unset_variable_is_a_clear_error(tmp_path, monkeypatch):
    from selfspec.corpus.sources import source_input

    with pytest.raises(SourceUnavailableError, match=r"nowhere: folder not found \(source 'documents'"):
        source_input(folder_source(tmp_path / "nowhere"), tmp_path, None)
    monkeypatch.delenv("SELFSPEC_FINANCE_CORPUS", raising=False)
    from selfspec.corpus.spec import load_spec

    with pytest.raises(ConfigError, match=r"finance.yaml: sources\[0\].path: '\$SELFSPEC_FINANCE_CORPUS': "
                                          r"environment variable not set"):  # fmt: skip
        load_spec(REPO / "corpora/finance.yaml")
    monkeypatch.setenv("SELFSPEC_FINANCE_CORPUS", str(FOLDER))
    src = load_spec(REPO / "corpora/finance.yaml").sources[0]
    assert (src.kind, src.file.path) == ("folder", str(FOLDER))
    with pytest.raises(ConfigError, match=r"suffixes: a non-empty list of \['.txt', '.md', '.jsonl'\]"):
        folder_source(FOLDER, suffixes=[".pdf"])


# --- end to end: the finance domain on the fixture folder, tiny model ----------------------------------

TINY = ["base.dtype=float32", "generation.batch_size=4", "gen_instructions.n_instructions=6",
        "gen_instructions.max_new_tokens=24", "gen_instructions.max_prompts=24",
        "gen_instructions.task_verbs=[]", "gen_instructions.min_words=1", "gen_inputs.max_new_tokens=16",
        "gen_inputs.min_words=1",
        "gen_responses.max_new_tokens=16", "gen_responses.n_demos=2", "gen_responses.passage_max_words=20",
        "gen_responses.demo_max_words=20", "filter_records.truncated=keep",
        "filter_records.max_repeat_ratio=1.0", "filter_records.min_support=0",
        "filter_records.check_labels=false"]  # fmt: skip
CHAIN = ["build_corpus", "index", "gen_instructions", "gen_inputs", "gen_responses", "filter_records"]


@pytest.mark.integration
def test_finance_domain_runs_from_corpus_to_records_on_its_own_seeds_and_folder(
    tmp_path, trained_tiny, monkeypatch
):
    from selfspec.io import read_jsonl

    for rel in ("params.yaml", "dvc.yaml", "seeds", "corpora", "evals"):
        (tmp_path / rel).symlink_to(REPO / rel)
    (tmp_path / "models").mkdir()
    (tmp_path / "models/prepare_model").symlink_to(trained_tiny, target_is_directory=True)
    monkeypatch.setenv("SELFSPEC_FINANCE_CORPUS", str(FOLDER))
    monkeypatch.chdir(tmp_path)
    overrides = [arg for o in ["base.domain=finance", *TINY] for arg in ("-S", o)]
    for stage in CHAIN:
        assert main([stage, *overrides]) == 0, stage

    passages = read_jsonl("data/build_corpus/passages.jsonl")
    assert {p["source"] for p in passages} == {"documents"} and len(passages) == 5
    corpus_metrics = json.loads(Path("metrics/build_corpus.json").read_text())
    assert corpus_metrics["passages"] == 5
    instructions = read_jsonl("data/gen_instructions/instructions.jsonl")
    seeds = {s.id for s in load_seeds(FINANCE)}
    assert instructions and all(set(r["seed_ids"]) <= seeds for r in instructions)  # finance seeds only
    responses = read_jsonl("data/gen_responses/responses.jsonl")
    ids = {p["id"] for p in passages}
    assert responses and all({h["id"] for h in r["passages"]} <= ids for r in responses)  # the folder's only
    # (the tiny model's words may match no passage at all): the index it searched is the folder's
    from selfspec.retrieval import open_retriever

    retriever = open_retriever(load_params("params.yaml", ["base.domain=finance"]))
    hits = retriever.search(["Northmere dividend"], 1)
    assert hits[0][0].id == "documents:news/wire.jsonl:w1"
    assert Path("data/filter_records/records.jsonl").is_file()


@pytest.mark.integration
def test_finance_domain_prepares_and_evaluates_its_own_suite_and_nothing_else(in_tmp_repo, tiny_model_dir):
    from tests.fixtures.evals.builders import _write_parquet, mmlu_rows, sources_for_mirror

    (in_tmp_repo / "evals").symlink_to(REPO / "evals")
    (in_tmp_repo / "models").mkdir()
    (in_tmp_repo / "models/prepare_model").symlink_to(tiny_model_dir)
    mirror = in_tmp_repo / "mirror"
    subjects = ["professional_accounting", "high_school_macroeconomics", "high_school_microeconomics",
                "econometrics"]  # fmt: skip
    for s in subjects:
        _write_parquet(mirror / f"mmlu/{s}/test-00000-of-00001.parquet", mmlu_rows(s, 3))
        _write_parquet(mirror / f"mmlu/{s}/dev-00000-of-00001.parquet", mmlu_rows(s, 2))
    sources = sources_for_mirror(REPO / "evals/sources.yaml", in_tmp_repo / "sources.yaml", mirror)
    argv = ["--params", str(PARAMS)]
    for o in ("base.domain=finance", f"base.data_mirror={mirror}", f"prepare_evals.sources={sources}",
              "evaluate.limit=2", "base.dtype=float32"):  # fmt: skip
        argv += ["-S", o]
    assert main(["prepare_evals", *argv]) == 0
    manifest = json.loads(Path("data/prepare_evals/manifest.json").read_text())
    assert sorted(manifest["datasets"]) == sorted(f"mmlu_{s}" for s in subjects)
    assert main(["evaluate_base", *argv]) == 0
    metrics = json.loads(Path("metrics/evaluate_base.json").read_text())
    assert metrics.pop("skipped") == [] and metrics.pop("timing")
    leaves = {f"mmlu_{s}" for s in subjects} | {f"mmlu_{s}_cloze" for s in subjects}
    assert set(metrics) == leaves | {"mmlu_finance", "mmlu_finance_cloze"}
    assert all(metrics[t]["n"] == 2 for t in leaves) and metrics["mmlu_finance"]["n"] == 8
