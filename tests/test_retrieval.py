"""Retrieval: shared analysis, the embedded BM25 backend (Lucene's formula), index stage, search CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from selfspec.cli import main as cli
from selfspec.config import default_params, load_params
from selfspec.errors import BackendError, StageError
from selfspec.io import read_json, write_jsonl
from selfspec.retrieval import open_retriever, top_k
from selfspec.retrieval.analysis import analyze, query_terms
from selfspec.retrieval.embedded import EmbeddedRetriever, build_embedded
from selfspec.stages import index as index_stage
from tests.fixtures.es_server import free_port

PASSAGES = [
    {"id": f"p{i}", "title": title, "text": text, "source": "t"}
    for i, (title, text) in enumerate(
        [
            ("Statins", "Statin therapy after ischaemic stroke reduced vascular events."),
            ("Asthma", "Inhaled corticosteroids reduced asthma exacerbations in children."),
            ("Malaria", "Artemisinin therapy cleared malaria parasites within three days."),
            ("Stroke rehabilitation", "Early mobilisation after stroke improved walking."),
        ],
        start=1,
    )
]


def test_analysis_folds_case_accents_punctuation_and_stopwords():
    assert analyze("Ménière's disease: the IL-6 level (in µg/L) was HIGH") == [
        "meniere", "s", "disease", "il", "6", "level", "μg", "l", "high",
    ]  # fmt: skip
    assert analyze("The cat", stopwords=False) == ["the", "cat"]
    assert "x" * 41 not in analyze("x" * 41 + " y")  # over-long tokens are noise
    assert query_terms("stroke after stroke, the STROKE") == ["stroke", "after"]


def test_ties_are_ordered_by_id_so_backends_agree():
    from selfspec.retrieval import Hit

    hits = [Hit("b", 1.0, "", ""), Hit("a", 1.00000001, "", ""), Hit("c", 2.0, "", "")]
    assert [h.id for h in top_k(hits, 2)] == ["c", "a"]


@pytest.fixture
def embedded(tmp_path) -> EmbeddedRetriever:
    build_embedded(PASSAGES, tmp_path, stopwords=True, include_title=True)
    return EmbeddedRetriever(tmp_path)


def test_embedded_ranks_the_relevant_passage_first(embedded):
    results = embedded.search(["statins after a stroke", "asthma in children", "malaria"], k=2)
    assert [[h.id for h in hits] for hits in results] == [["p1", "p4"], ["p2"], ["p3"]]
    best = results[0][0]
    assert best.title == "Statins" and best.text == PASSAGES[0]["text"]
    assert results[0][0].score > results[0][1].score > 0


def test_embedded_returns_nothing_for_unknown_or_stopword_queries(embedded):
    assert embedded.search(["zebrafish", "the of and", ""], k=5) == [[], [], []]
    assert embedded.search(["stroke"], k=0) == [[]]
    assert len(embedded) == 4


def test_embedded_scores_are_lucene_bm25(embedded):
    """idf = ln(1 + (N - n + .5) / (n + .5)); tf part = tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))."""
    lengths = [len(analyze(f"{p['title']}\n{p['text']}")) for p in PASSAGES]  # short: norms are exact
    avgdl, k1, b = sum(lengths) / len(lengths), 1.2, 0.75

    def bm25(doc: int, n: int, tf: int = 1) -> float:
        idf = math.log(1 + (len(PASSAGES) - n + 0.5) / (n + 0.5))
        return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[doc] / avgdl))

    hits = {h.id: h.score for h in embedded.search(["stroke therapy"], k=4)[0]}
    expected = {"p1": bm25(0, 2) + bm25(0, 2), "p3": bm25(2, 2), "p4": bm25(3, 2, tf=2)}
    assert hits == pytest.approx(expected, rel=1e-5)


def test_title_is_searched_only_when_configured(tmp_path):
    build_embedded(PASSAGES, tmp_path / "a", stopwords=True, include_title=False)
    assert EmbeddedRetriever(tmp_path / "a").search(["rehabilitation"], 3) == [[]]


def test_the_same_passages_give_a_byte_identical_index(tmp_path):
    def files(root: Path) -> dict[str, bytes]:
        return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}

    for name in ("a", "b"):
        build_embedded(PASSAGES, tmp_path / name, stopwords=True, include_title=True)
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a == b and any(name.endswith(".idx") for name in a)
    build_embedded(PASSAGES[:3], tmp_path / "c", stopwords=True, include_title=True)
    assert set(files(tmp_path / "c")) != set(a), "segment names follow the content"
    hits = EmbeddedRetriever(tmp_path / "b").search(["malaria parasites"], 2)
    assert hits[0][0].id == "p3", "the renamed index still opens and answers"


@pytest.fixture
def repo(in_tmp_repo: Path) -> Path:
    write_jsonl("data/build_corpus/passages.jsonl", PASSAGES)
    (in_tmp_repo / "params.yaml").write_text("base:\n  data_mirror: ''\n")
    return in_tmp_repo


def test_index_stage_writes_manifest_and_search_answers(repo, capsys):
    index_stage.main(load_params("params.yaml"))
    manifest = read_json("data/index/manifest.json")
    assert manifest["backend"] == "embedded" and manifest["passages"] == 4
    assert manifest["analyzer"] == "v1-stop1-title1" and len(manifest["corpus_sha256"]) == 64
    assert read_json("metrics/index.json")["index_bytes"] > 0
    assert open_retriever(load_params("params.yaml")).search(["malaria"], 1)[0][0].id == "p3"
    assert cli(["search", "ischaemic", "stroke", "-k", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(" 1. p1  score ") and "Statin therapy" in out and "p4" not in out


def test_search_without_index_or_for_another_backend_says_what_to_run(repo, capsys):
    with pytest.raises(StageError, match="run `dvc repro index`"):
        open_retriever(load_params("params.yaml"))
    index_stage.main(load_params("params.yaml"))
    assert cli(["search", "stroke", "-S", "index.backend=elasticsearch"]) == 1
    assert "built for backend 'embedded' but index.backend is 'elasticsearch'" in capsys.readouterr().err


def test_index_stage_refuses_an_empty_corpus(repo):
    write_jsonl("data/build_corpus/passages.jsonl", [])
    with pytest.raises(StageError, match="no passages"):
        index_stage.main(load_params("params.yaml"))


def test_elasticsearch_needs_url_from_environment(monkeypatch):
    from selfspec.retrieval.elastic import connect

    monkeypatch.delenv("ELASTICSEARCH_URL", raising=False)
    with pytest.raises(BackendError, match="ELASTICSEARCH_URL is not set"):
        connect(default_params().index)


def test_unreachable_elasticsearch_names_the_url(monkeypatch):
    from selfspec.retrieval.elastic import connect

    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ELASTICSEARCH_URL", url)
    ip = default_params(["index.max_retries=0", "index.request_timeout=2"]).index
    with pytest.raises(BackendError, match=f"Elasticsearch at {url} is unreachable"):
        connect(ip)
