"""prepare_evals: public formats -> local task records, the manifest, and the offline policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfspec.config import load_params
from selfspec.errors import DataError, SourceUnavailableError, StageError
from selfspec.evaluation.formats import convert, medqa, mmlu, pubmedqa
from selfspec.evaluation.sources import EvalSource, fetch, load_sources
from selfspec.io import read_json, read_jsonl, sha256_file
from selfspec.stages import prepare_evals
from tests.conftest import REPO
from tests.fixtures.evals.builders import (
    MMLU_SUBJECTS,
    build_eval_mirror,
    medqa_rows,
    mmlu_rows,
    sources_for_mirror,
)

ALL = [
    "pubmedqa",
    "medmcqa",
    "medqa_4options",
    *(f"mmlu_{s}" for s in MMLU_SUBJECTS),
    "ncbi_disease",
    "jnlpba",
    "chemprot",
]


def prepare(tmp_path: Path, only=None, overrides=()) -> dict:
    """Run the stage in ``tmp_path`` (cwd) against a fixture mirror; returns the manifest."""
    mirror = build_eval_mirror(tmp_path / "mirror", only)
    sources = sources_for_mirror(REPO / "evals/sources.yaml", tmp_path / "sources.yaml", mirror)
    params = load_params(
        REPO / "params.yaml", [f"base.data_mirror={mirror}", f"prepare_evals.sources={sources}", *overrides]
    )
    prepare_evals.main(params)
    return read_json("data/prepare_evals/manifest.json")


def test_every_data_set_converts_from_its_public_format(in_tmp_repo):
    manifest = prepare(in_tmp_repo)
    assert manifest["prepared"] == sorted(ALL) and manifest["unavailable"] == []
    for name in ALL:
        entry = manifest["datasets"][name]
        records = read_jsonl(f"data/prepare_evals/{name}.jsonl")
        assert entry["counts"]["test"] == len(records) > 0
        assert entry["sha256"]["test"] == sha256_file(f"data/prepare_evals/{name}.jsonl")
        assert all(isinstance(r["question"], str) and r["question"] for r in records), "filter contract"
        assert {i["origin"] for i in entry["inputs"].values()} == {"mirror"}
    mc = read_jsonl("data/prepare_evals/medmcqa.jsonl")[1]
    assert mc["options"][mc["answer"]] == "the lung" and mc["answer"] == 1  # cop 1 -> second option
    assert manifest["datasets"]["mmlu_anatomy"]["counts"]["fewshot"] == 5
    assert len(read_jsonl("data/prepare_evals/fewshot/mmlu_anatomy.jsonl")) == 5


def test_pubmedqa_keeps_dataset_order_not_the_label_sorted_ground_truth(in_tmp_repo):
    prepare(in_tmp_repo, only=("pubmedqa",))
    test = read_jsonl("data/prepare_evals/pubmedqa.jsonl")
    fewshot = read_jsonl("data/prepare_evals/fewshot/pubmedqa.jsonl")
    assert [r["answer"] for r in test] == [
        "yes",
        "maybe",
        "no",
        "yes",
        "maybe",
        "no",
    ]  # a limit sees all labels
    assert not {r["id"] for r in test} & {r["id"] for r in fewshot}, "few-shot examples never come from test"
    assert (
        test[0]["context"]
        == "We randomised 20 adults to metformin or placebo.\nAdmissions changed by 0 percent."
    )


def test_offline_unavailable_sets_are_listed_with_reasons_not_dropped_silently(in_tmp_repo, caplog):
    manifest = prepare(in_tmp_repo, only=("pubmedqa",))
    assert manifest["prepared"] == ["pubmedqa"]
    assert sorted(manifest["unavailable"]) == sorted(ALL[1:])
    reason = manifest["datasets"]["medmcqa"]["reason"]
    assert "medmcqa/validation-00000-of-00001.parquet (not found)" in reason  # the mirror path tried
    assert "http://127.0.0.1:9/" in reason and "offline" in reason  # the URL, then the HF dataset
    assert manifest["datasets"]["medmcqa"]["source"]["hf"]["dataset"] == "openlifescienceai/medmcqa"
    assert not Path("data/prepare_evals/medmcqa.jsonl").exists()
    assert "medmcqa is unavailable" in caplog.text


def test_allow_missing_false_fails_on_any_unavailable_set(in_tmp_repo):
    with pytest.raises(StageError, match="allow_missing is false.*medqa_4options"):
        prepare(in_tmp_repo, only=("pubmedqa", "medmcqa"), overrides=["prepare_evals.allow_missing=false"])


def test_nothing_available_is_an_error_even_when_missing_is_allowed(in_tmp_repo):
    with pytest.raises(StageError, match="no evaluation data set could be read"):
        prepare(in_tmp_repo, only=("nothing",))


def test_checksum_mismatch_makes_the_set_unavailable(in_tmp_repo):
    mirror = build_eval_mirror(in_tmp_repo / "mirror", ("pubmedqa",))
    sources = load_sources(REPO / "evals/sources.yaml")  # the real PubMedQA checksums
    with pytest.raises(SourceUnavailableError, match="sha256 is"):
        fetch(sources["pubmedqa"], mirror)


def test_hf_fallback_offline_is_a_clear_error():
    src = EvalSource("x", "mmlu", {}, hf={"dataset": "cais/mmlu", "config": "anatomy", "split": "test"})
    with pytest.raises(SourceUnavailableError, match="hf:cais/mmlu/anatomy.*offline"):
        fetch(src, None)


def test_unknown_data_set_name_is_refused(in_tmp_repo):
    with pytest.raises(StageError, match="'medmcqa2'.* not in"):
        prepare(in_tmp_repo, overrides=["prepare_evals.datasets=[pubmedqa,medmcqa2]"])


def test_medqa_original_jsonl_and_hf_rows_give_the_same_records():
    orig = medqa("m", {"test": medqa_rows(3)}, {}).test
    hf_rows = [
        {
            "id": str(i),
            "sent1": r["question"],
            "sent2": "",
            "label": "ABCD".index(r["answer_idx"]),
            **{f"ending{k}": r["options"][c] for k, c in enumerate("ABCD")},
        }
        for i, r in enumerate(medqa_rows(3))
    ]
    hf = medqa("m", {"test": hf_rows}, {}).test
    assert [(r["question"], r["options"], r["answer"]) for r in orig] == [
        (r["question"], r["options"], r["answer"]) for r in hf
    ]


def test_mmlu_original_csv_rows_equal_the_parquet_rows():
    rows = mmlu_rows("anatomy", 4)
    csv_rows = [[r["question"], *r["choices"], "ABCD"[r["answer"]]] for r in rows]
    a, b = mmlu("mmlu_anatomy", {"test": rows}, {}).test, mmlu("mmlu_anatomy", {"test": csv_rows}, {}).test
    assert [(r["question"], r["options"], r["answer"]) for r in a] == [
        (r["question"], r["options"], r["answer"]) for r in b
    ]


def test_medmcqa_answer_base_one_for_the_original_release():
    row = {"id": "q", "question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 4}
    assert convert("medmcqa", "medmcqa", {"test": [row]}, {"answer_base": 1}).test[0]["answer"] == 3
    with pytest.raises(DataError, match=r"medmcqa\[test\]\[0\]: answer: expected an answer index 0-3, got 4"):
        convert("medmcqa", "medmcqa", {"test": [row]}, {"answer_base": 0})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "pqal": {"1": {"QUESTION": "Q?", "CONTEXTS": ["c"], "final_decision": "perhaps"}},
                "test_ids": {},
            },
            r"pubmedqa\[pqal\]\[1\]: final_decision: expected one of",
        ),
        (
            {"pqal": {"1": {"QUESTION": "Q?", "CONTEXTS": "c", "final_decision": "yes"}}, "test_ids": {}},
            r"CONTEXTS: expected a non-empty list",
        ),
        (
            {
                "pqal": {"1": {"QUESTION": "Q?", "CONTEXTS": ["c"], "final_decision": "yes"}},
                "test_ids": {"2": "no"},
            },
            r"1 test PMIDs not in pqal",
        ),
        (
            {
                "pqal": {"1": {"QUESTION": "Q?", "CONTEXTS": ["c"], "final_decision": "yes"}},
                "test_ids": {"1": "no"},
            },
            r"label 'no' != 'yes'",
        ),
    ],
)
def test_malformed_pubmedqa_names_the_item_and_field(data, message):
    with pytest.raises(DataError, match=message):
        pubmedqa("pubmedqa", data, {})


def test_shipped_sources_cover_the_default_data_sets_and_task_files():
    sources = load_sources(REPO / "evals/sources.yaml")
    params = load_params(REPO / "params.yaml")
    assert set(params.prepare_evals.datasets) <= set(sources)
    assert all(f.sha256 for f in sources["pubmedqa"].files.values()), "the mirrored files are pinned"
    for yaml_path in (REPO / "evals/tasks").rglob("*.yaml"):
        text = yaml_path.read_text()
        for line in text.splitlines():
            if "data/prepare_evals/" in line:
                stem = Path(line.split(":", 1)[1].strip()).stem
                assert stem in sources, f"{yaml_path.name} reads {stem}, which no source prepares"


def test_manifest_is_json_with_source_provenance(in_tmp_repo):
    manifest = prepare(in_tmp_repo, only=("pubmedqa",))
    entry = manifest["datasets"]["pubmedqa"]
    assert entry["source"]["files"]["pqal"]["mirror_path"] == "pubmedqa/ori_pqal.json"
    assert entry["counts"] == {"test": 6, "fewshot": 6, "answers": {"maybe": 2, "no": 2, "yes": 2}}
    assert json.loads(Path("data/prepare_evals/manifest.json").read_text()) == manifest


def test_conll_ner_sentences_become_records_with_their_mentions_per_type(in_tmp_repo):
    manifest = prepare(in_tmp_repo, only=("ncbi_disease", "jnlpba"))
    ncbi = read_jsonl("data/prepare_evals/ncbi_disease.jsonl")
    assert [r["entities"]["Disease"] for r in ncbi] == [
        ["breast cancer"],
        [],  # the task's target is "none"
        ["Adrenoleukodystrophy", "ALD"],
        ["hepatic failure"],  # an I- tag with no B- before it starts a mention
        ["Ataxia"],  # named twice, listed once; the untagged "ataxia" is no mention
    ]
    assert ncbi[2]["question"] == "Adrenoleukodystrophy (ALD) is inherited."  # spacing restored
    assert manifest["datasets"]["ncbi_disease"]["counts"] == {
        "test": 5, "fewshot": 0, "entities": {"Disease": 5}, "without_entities": 1,
    }  # fmt: skip
    jnlpba = read_jsonl("data/prepare_evals/jnlpba.jsonl")  # -DOCSTART- lines separate, never join
    assert [r["question"] for r in jnlpba] == [
        "IL-2 binds the IL-2 receptor alpha chain in T cells.",
        "The NF-kappa B site of the c-fos gene was mutated.",
        "Jurkat cells were grown.",
    ]
    assert jnlpba[0]["entities"] == {"DNA": [], "cell_line": [], "cell_type": ["T cells"],
                                     "protein": ["IL-2", "IL-2 receptor alpha chain"]}  # fmt: skip
    assert jnlpba[2]["entities"]["protein"] == [] and jnlpba[2]["entities"]["cell_line"] == ["Jurkat cells"]


def test_chemprot_maps_labels_to_cpr_groups_and_counts_what_it_drops(in_tmp_repo):
    manifest = prepare(in_tmp_repo, only=("chemprot",))
    records = read_jsonl("data/prepare_evals/chemprot.jsonl")
    assert [(r["label"], r["answer"]) for r in records] == [
        ("INHIBITOR", "inhibition"),
        ("UPREGULATOR", "activation"),
        ("SUBSTRATE", "substrate"),
        ("AGONIST", "agonist"),
        ("ANTAGONIST", "antagonist"),
        ("PRODUCT-OF", "substrate"),
    ]
    counts = manifest["datasets"]["chemprot"]["counts"]
    assert counts["dropped"] == {"label PART-OF (not in the 5 CPR groups)": 1}
    assert counts["answers"] == {
        "activation": 1,
        "agonist": 1,
        "antagonist": 1,
        "inhibition": 1,
        "substrate": 2,
    }
    assert records[0]["question"] == "<< Aspirin >> inhibits [[ COX-1 ]] in platelets."


def test_chemprot_read_as_text_lines_gives_the_same_records(tmp_path):
    """Downloaded from its public URL the file is named dev.txt and read as lines, not JSON rows."""
    from selfspec.evaluation.formats import chemprot
    from selfspec.evaluation.sources import read_file
    from tests.fixtures.evals.builders import chemprot_file

    chemprot_file(tmp_path)
    rows = read_file(tmp_path / "chemprot/dev.jsonl")
    (tmp_path / "dev.txt").write_text((tmp_path / "chemprot/dev.jsonl").read_text() + "\n")
    lines = read_file(tmp_path / "dev.txt")
    assert isinstance(lines[0], str)
    assert chemprot("chemprot", {"test": lines}, {}) == chemprot("chemprot", {"test": rows}, {})


@pytest.mark.parametrize(
    "fmt, data, message",
    [
        ("conll_ner", ["BRCA1\tNN\tO\tO", "cancer\tNN\tO\tX-Disease"], "ncbi[test]:2: tag: expected"),
        ("conll_ner", ["lonely"], "ncbi[test]:1: tag: expected"),
        ("chemprot", [{"text": "Aspirin inhibits COX-1.", "label": "INHIBITOR"}], "ncbi[test][0]: text:"),
        ("chemprot", ["{not json"], "ncbi[test][0]: not JSON"),
        ("chemprot", [{"text": "<< a >> [[ b ]]", "label": ""}], "ncbi[test][0]: label: missing"),
    ],
)
def test_malformed_ner_and_chemprot_rows_name_the_line_and_field(fmt, data, message):
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        convert(fmt, "ncbi", {"test": data}, {})
