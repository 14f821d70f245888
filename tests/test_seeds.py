"""Seed tasks: the shipped biomedical file is valid and broad; every kind of bad line is reported as
FILE:LINE: FIELD: problem; `selfspec seeds` prints the counts or the error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from selfspec.cli import main
from selfspec.errors import DataError
from selfspec.seeds import Instance, SeedTask, load_seeds, seeds_path, summarize
from tests.conftest import REPO

SHIPPED = REPO / "seeds" / "biomedical.jsonl"
FIXTURES = REPO / "tests" / "fixtures" / "seeds"
# A few seeds go into each generation prompt of a small model; each one must stay short.
MAX_WORDS_PER_INSTANCE = 220


# --- the shipped biomedical seeds -------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> list[SeedTask]:
    return load_seeds(SHIPPED)


def test_shipped_seeds_are_many_and_cover_at_least_ten_task_types_with_five_each(shipped):
    counts = summarize(shipped)["task_types"]
    assert len(shipped) >= 80
    assert len(counts) >= 10
    assert min(counts.values()) >= 5, counts


def test_shipped_seeds_cover_the_task_types_a_biomedical_expert_meets(shipped):
    required = {
        "yes_no_qa", "factoid_qa", "list_qa", "entity_extraction", "relation_extraction",
        "document_classification", "summarization", "concept_explanation", "clinical_vignette",
        "evidence_appraisal", "patient_explanation", "abbreviation_expansion",
    }  # fmt: skip
    assert required <= {s.task_type for s in shipped}


def test_shipped_ids_names_and_instructions_are_unique_and_well_formed(shipped):
    ids = [s.id for s in shipped]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"bio_\d{3}", i) for i in ids)
    assert len({s.name for s in shipped}) == len(shipped)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", s.name) for s in shipped)
    assert len({" ".join(s.instruction.lower().split()) for s in shipped}) == len(shipped)


def test_shipped_outputs_are_non_empty_and_every_seed_fits_a_small_prompt(shipped):
    for seed in shipped:
        for inst in seed.instances:
            assert inst.output.strip(), seed.id
            words = len(seed.instruction.split()) + len(inst.input.split()) + len(inst.output.split())
            assert words <= MAX_WORDS_PER_INSTANCE, (seed.id, words)


def test_shipped_classification_seeds_answer_with_a_short_label(shipped):
    # Self-Instruct treats classification tasks differently (output-first); a label is a few words.
    classification = [s for s in shipped if s.is_classification]
    assert len(classification) >= 10
    for seed in classification:
        for inst in seed.instances:
            first_line_words = [len(line.split()) for line in inst.output.splitlines()]
            assert max(first_line_words) <= 4, (seed.id, inst.output)


def test_shipped_seeds_mix_tasks_with_and_without_input(shipped):
    summary = summarize(shipped)
    assert 0 < summary["with_input"] < summary["n_seeds"]
    assert summary["n_instances"] >= summary["n_seeds"]


# --- the loader on a small good file -----------------------------------------------------------


def test_good_fixture_loads_into_typed_records_skipping_blank_lines():
    seeds = load_seeds(FIXTURES / "good.jsonl")
    assert [s.id for s in seeds] == ["toy_001", "toy_002", "toy_003"]
    assert seeds[0].instances == (Instance("France", "Paris"), Instance("Japan", "Tokyo"))
    assert seeds[1].is_classification is True and seeds[2].instances[0].input == ""


def test_summarize_counts_task_types_instances_and_inputs():
    summary = summarize(load_seeds(FIXTURES / "good.jsonl"))
    assert summary == {
        "n_seeds": 3,
        "task_types": {"factoid_qa": 1, "list_qa": 1, "number_classification": 1},
        "n_instances": 4,
        "with_input": 2,
    }


def test_seeds_path_is_seeds_dir_slash_domain_jsonl():
    from selfspec.config import load_params

    params = load_params(REPO / "params.yaml", ["base.seeds_dir=elsewhere", "base.domain=chemistry"])
    assert seeds_path(params) == Path("elsewhere") / "chemistry.jsonl"


# --- each kind of bad line ---------------------------------------------------------------------

GOOD = {
    "id": "x_001",
    "name": "capital-city",
    "instruction": "What is the capital of the country?",
    "instances": [{"input": "France", "output": "Paris"}],
    "is_classification": False,
    "task_type": "factoid_qa",
}
SECOND = {**GOOD, "id": "x_002", "instruction": "Name the largest city of the country."}
DROP = object()  # a field value meaning "leave this field out"


def bad(**changes) -> str:
    """The valid SECOND record with some fields changed or dropped, as one JSON line."""
    record = {k: v for k, v in {**SECOND, **changes}.items() if v is not DROP}
    return json.dumps(record)


BAD_LINES = [
    ("{not json", None, "invalid JSON"),
    ("[1, 2]", None, "expected a JSON object"),
    (bad(instruction=DROP), "instruction", "missing required field"),
    (bad(task_type=DROP), "task_type", "missing required field"),
    (bad(source="web"), "source", "unknown field"),
    (bad(is_classification="yes"), "is_classification", "must be true or false"),
    (bad(id=2), "id", "must be a string, got int"),
    (bad(name="   "), "name", "must not be empty"),
    (bad(instruction=""), "instruction", "must not be empty"),
    (bad(task_type=""), "task_type", "must not be empty"),
    (bad(task_type="Factoid QA"), "task_type", "must be snake_case"),
    (bad(task_type="factoid-qa"), "task_type", "must be snake_case"),
    (bad(instances=[]), "instances", "must be a non-empty list"),
    (bad(instances={"input": "", "output": "x"}), "instances", "must be a non-empty list"),
    (bad(instances=["Paris"]), "instances[0]", "must be an object"),
    (bad(instances=[{"input": "France"}]), "instances[0].output", "missing required field"),
    (bad(instances=[{"output": "Paris"}]), "instances[0].input", "missing required field"),
    (bad(instances=[{"input": None, "output": "Paris"}]), "instances[0].input", "must be a string"),
    (bad(instances=[{"input": "a", "output": 3}]), "instances[0].output", "must be a string"),
    (bad(instances=[{"input": "a", "output": "b"}, {"input": "a", "output": " "}]), "instances[1].output",
     "must not be empty"),
    (bad(instances=[{"input": "a", "output": "b", "label": 1}]), "instances[0].label", "unknown field"),
    (bad(id="x_001"), "id", "duplicate of line 1"),
    (bad(instruction="  what is the CAPITAL of the   country? "), "instruction", "duplicate of line 1"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "field", "message"), BAD_LINES, ids=[f"{f}:{m}" for _, f, m in BAD_LINES])
def test_bad_line_is_reported_as_file_line_field_message(tmp_path, line, field, message):
    path = tmp_path / "toy.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + line + "\n")
    with pytest.raises(DataError) as err:
        load_seeds(path)
    prefix = f"{path}:2: {field}: " if field else f"{path}:2: "
    assert str(err.value).startswith(prefix), str(err.value)
    assert message in str(err.value)
    assert err.value.line == 2 and err.value.field == field


def test_missing_file_names_the_expected_location_and_how_to_add_a_domain(tmp_path):
    (tmp_path / "biomedical.jsonl").write_text(json.dumps(GOOD) + "\n")
    with pytest.raises(DataError) as err:
        load_seeds(tmp_path / "chemistry.jsonl")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'chemistry.jsonl'}: seed file not found")
    assert "<base.seeds_dir>/<base.domain>.jsonl" in msg and "domain='chemistry'" in msg
    assert "domains present: biomedical" in msg and "set base.domain" in msg


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_file_is_an_error(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match="no seed tasks"):
        load_seeds(path)


def test_any_domain_and_any_snake_case_task_type_is_accepted(tmp_path):
    path = tmp_path / "law.jsonl"
    path.write_text(json.dumps({**GOOD, "task_type": "contract_clause_extraction_v2"}) + "\n")
    assert load_seeds(path)[0].task_type == "contract_clause_extraction_v2"


# --- the `selfspec seeds` command --------------------------------------------------------------


def test_cli_validates_the_configured_domain_and_prints_counts(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert main(["seeds"]) == 0
    out = capsys.readouterr().out
    n = len(load_seeds(SHIPPED))
    assert out.startswith("seeds/biomedical.jsonl: OK")
    assert re.search(rf"seed tasks\s+{n}\b", out)
    assert re.search(r"clinical_vignette\s+\d+", out) and re.search(r"task types\s+1\d", out)


def test_cli_picks_up_a_new_domain_from_base_domain(tmp_path, capsys):
    (tmp_path / "toy.jsonl").write_text((FIXTURES / "good.jsonl").read_text())
    argv = ["seeds", "--params", str(REPO / "params.yaml"), "-S", f"base.seeds_dir={tmp_path}"]
    assert main([*argv, "-S", "base.domain=toy"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"seed tasks\s+3\b", out) and re.search(r"number_classification\s+1\b", out)


def test_cli_file_option_reports_the_bad_line_and_exits_non_zero(capsys):
    bad_file = FIXTURES / "bad_line3.jsonl"
    assert main(["seeds", "--params", str(REPO / "params.yaml"), "--file", str(bad_file)]) == 1
    captured = capsys.readouterr()
    assert f"{bad_file}:3: is_classification: must be true or false" in captured.err
    assert "Traceback" not in captured.err and "OK" not in captured.out
