"""build_corpus end to end on a fixture mirror: PubMedQA test abstracts never reach the corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from selfspec.config import load_params
from selfspec.errors import SourceUnavailableError
from selfspec.io import read_json, read_jsonl
from selfspec.stages import build_corpus
from tests.conftest import REPO
from tests.fixtures.mirror import build_mirror

FIXTURES = Path(__file__).parent / "fixtures" / "corpus"


@pytest.fixture
def repo(in_tmp_repo: Path) -> Path:
    """A tmp repo with the shipped biomedical.yaml, its HPO source pointed at a tiny obo file."""
    (in_tmp_repo / "corpora").mkdir()
    text = (REPO / "corpora" / "biomedical.yaml").read_text()
    text = text.replace("    kind: hpo\n", "    kind: hpo\n    path: mini_hp.obo\n")
    (in_tmp_repo / "corpora" / "biomedical.yaml").write_text(text)
    shutil.copy(FIXTURES / "mini_hp.obo", in_tmp_repo / "corpora")
    build_mirror(in_tmp_repo / "mirror")
    (in_tmp_repo / "params.yaml").write_text("base:\n  data_mirror: mirror\n")
    return in_tmp_repo


def test_default_corpus_builds_from_mirror_without_test_pmids(repo, monkeypatch):
    monkeypatch.delenv("SELFSPEC_DATA_MIRROR", raising=False)
    build_corpus.main(load_params("params.yaml"))
    passages = read_jsonl("data/build_corpus/passages.jsonl")
    test_pmids = set(json.loads((repo / "mirror/pubmedqa/test_ground_truth.json").read_text()))
    ids = {p["id"].split("#")[0] for p in passages}
    assert len(test_pmids) == 12 and not ids & {f"pmid:{p}" for p in test_pmids}
    assert {p["text"] for p in passages}.isdisjoint(_test_texts(repo, test_pmids))
    stats = read_json("metrics/build_corpus.json")
    # the 12 test PMIDs come from both PubMedQA and the abstracts file; the 12 non-test PubMedQA
    # abstracts repeat in the abstracts file and go by PMID
    assert stats["dropped"]["excluded_pmid"] == 24 and stats["dropped"]["duplicate_document"] == 12
    assert stats["per_source"]["hpo"] == {"documents": 3, "passages": 2}  # 'All' is too short
    assert stats["passages"] == len(passages) == 12 + 36 + 2 and stats["skipped_sources"] == []


def _test_texts(repo: Path, pmids: set[str]) -> set[str]:
    rows = read_jsonl(repo / "mirror/corpus/pubmed_abstracts.jsonl")
    return {r["text"] for r in rows if r["pmid"] in pmids}


def test_mirror_only_source_is_skipped_and_reported(repo):
    (repo / "mirror/corpus/pubmed_abstracts.jsonl").unlink()
    build_corpus.main(load_params("params.yaml"))
    stats = read_json("metrics/build_corpus.json")
    assert stats["skipped_sources"] == ["pubmed_abstracts"] and "pubmed_abstracts" not in stats["per_source"]
    assert stats["per_source"]["pubmedqa"]["passages"] == 12


def test_missing_exclusion_list_fails_naming_url_and_mirror_path(repo):
    (repo / "mirror/pubmedqa/test_ground_truth.json").unlink()
    yaml = repo / "corpora/biomedical.yaml"
    yaml.write_text(yaml.read_text().replace("https://raw.githubusercontent.com", "http://127.0.0.1:9"))
    with pytest.raises(SourceUnavailableError) as e:
        build_corpus.main(load_params("params.yaml"))
    assert "http://127.0.0.1:9/pubmedqa" in str(e.value)
    assert "mirror/pubmedqa/test_ground_truth.json (not found)" in str(e.value)
    assert not Path("data/build_corpus/passages.jsonl").exists()


def test_an_empty_mirror_file_is_a_warning_listed_in_metrics(repo, caplog):
    """It used to give one INFO line, and the source vanished from per_source."""
    (repo / "mirror/corpus/pubmed_abstracts.jsonl").write_text("")
    with caplog.at_level("WARNING", logger="selfspec.stages.build_corpus"):
        build_corpus.main(load_params("params.yaml"))
    stats = read_json("metrics/build_corpus.json")
    assert stats["empty_sources"] == ["pubmed_abstracts"] and stats["skipped_sources"] == []
    assert stats["per_source"]["pubmed_abstracts"] == {"documents": 0, "passages": 0}
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        f"source pubmed_abstracts: no documents in {Path('mirror/corpus/pubmed_abstracts.jsonl')}"
    ]


def test_metrics_and_data_external_record_the_sha256_of_each_file_read(repo):
    from selfspec.io import sha256_file

    build_corpus.main(load_params("params.yaml"))
    inputs = read_json("metrics/build_corpus.json")["inputs"]
    assert inputs == read_json("data/external/build_corpus/inputs.json")
    assert sorted(inputs) == ["exclude_pmids.0", "hpo", "pubmed_abstracts", "pubmedqa"]
    assert inputs["pubmedqa"] == {
        "origin": "mirror", "mirror_path": "pubmedqa/ori_pqal.json", "link": "pubmedqa.json",
        "url": "https://raw.githubusercontent.com/pubmedqa/pubmedqa/master/data/ori_pqal.json",
        "sha256": sha256_file(repo / "mirror/pubmedqa/ori_pqal.json"),
        "bytes": (repo / "mirror/pubmedqa/ori_pqal.json").stat().st_size,
    }  # fmt: skip
    assert inputs["hpo"]["origin"] == "local" and inputs["hpo"]["sha256"] == sha256_file(
        repo / "corpora/mini_hp.obo"
    )
    assert Path("data/external/build_corpus/pubmedqa.json").resolve() == (
        repo / "mirror/pubmedqa/ori_pqal.json"
    )


def test_a_skipped_source_is_listed_unavailable_without_a_link(repo):
    """A dangling link would make `dvc status` fail: an unreadable source gets its reason only."""
    (repo / "mirror/corpus/pubmed_abstracts.jsonl").unlink()
    build_corpus.main(load_params("params.yaml"))
    entry = read_json("data/external/build_corpus/inputs.json")["pubmed_abstracts"]
    assert entry["origin"] is None and "pubmed_abstracts.jsonl (not found)" in entry["unavailable"]
    assert sorted(p.name for p in Path("data/external/build_corpus").iterdir()) == [
        "exclude_pmids.0.json", "hpo.obo", "inputs.json", "pubmedqa.json"
    ]  # fmt: skip
