"""Retrieval: shared analysis, the embedded BM25 backend (Lucene's formula), index stage, search CLI."""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path

import pytest

from selfspec.cli import main as cli
from selfspec.config import default_params, load_params
from selfspec.errors import BackendError, StageError
from selfspec.io import read_json, write_json, write_jsonl
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


def byte4_length(dl: int) -> int:
    """The document length Lucene stores: SmallFloat.intToByte4 then byte4ToInt (24 free values,
    then 1 implicit + 3 stored mantissa bits), written here from Lucene's SmallFloat.java."""
    free = 24
    if dl < free:
        return dl
    i = dl - free
    if i.bit_length() < 4:
        return dl  # subnormal int4: exact
    shift = i.bit_length() - 4
    return free + ((i >> shift) << shift)  # keep the 4 most significant bits


def lucene_bm25(query: list[str], docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Lucene >= 8 BM25Similarity (Elasticsearch's default), one score per document, independently of
    the code under test: idf = ln(1 + (N - n + .5) / (n + .5)); tf part = f / (f + k1 (1 - b + b dl / avgdl))
    with dl the 1-byte norm's length and avgdl the exact mean length. No (k1 + 1) (LUCENE-8563)."""
    avgdl = sum(map(len, docs)) / len(docs)
    scores = [0.0] * len(docs)
    for term in dict.fromkeys(query):
        n = sum(term in d for d in docs)
        idf = math.log(1 + (len(docs) - n + 0.5) / (n + 0.5))
        for i, d in enumerate(docs):
            f = d.count(term)
            if f:
                scores[i] += idf * f / (f + k1 * (1 - b + b * byte4_length(len(d)) / avgdl))
    return scores


def test_byte4_reference_matches_lucenes_table():
    # values from Lucene's SmallFloat: exact to 39, then steps of 2 to 54, of 4 to 108, ...
    assert [byte4_length(x) for x in (23, 24, 39, 40, 41, 55, 56, 61, 100, 1000)] == [
        23, 24, 39, 40, 40, 54, 56, 60, 96, 984,
    ]  # fmt: skip


def test_embedded_scores_are_elasticsearchs_lucene_bm25(embedded):
    docs = [analyze(f"{p['title']}\n{p['text']}") for p in PASSAGES]
    expected = dict(zip([p["id"] for p in PASSAGES], lucene_bm25(["stroke", "therapy"], docs), strict=True))
    hits = {h.id: h.score for h in embedded.search(["stroke therapy"], k=4)[0]}
    assert hits == pytest.approx({i: s for i, s in expected.items() if s}, rel=1e-6)
    assert set(hits) == {"p1", "p3", "p4"}


def test_embedded_scores_use_lossy_length_norms_on_long_passages(tmp_path):
    """Lengths 1..200 terms: past 39 terms Lucene's 1-byte norm rounds the length down."""
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(30)]
    passages = [
        {"id": f"d{n:03d}", "title": "", "text": " ".join(rng.choices(vocab, k=n))} for n in range(1, 201)
    ]
    build_embedded(passages, tmp_path, stopwords=True, include_title=False)
    docs = [analyze(p["text"]) for p in passages]
    for query in (["w1"], ["w2", "w3", "w29"]):
        expected = {p["id"]: s for p, s in zip(passages, lucene_bm25(query, docs), strict=True) if s}
        hits = {h.id: h.score for h in EmbeddedRetriever(tmp_path).search([" ".join(query)], 200)[0]}
        assert hits == pytest.approx(expected, rel=1e-6), query


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
        connect(default_params().index, "selfspec-test")


def test_unreachable_elasticsearch_names_the_url_without_credentials_or_retry_tracebacks(
    repo, monkeypatch, capsys, caplog
):
    caplog.set_level(logging.INFO)
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ELASTICSEARCH_URL", url.replace("//", "//elastic:hunter2@"))
    overrides = ["-S", "index.backend=elasticsearch", "-S", "index.request_timeout=2"]
    assert cli(["index", *overrides]) == 1
    err = capsys.readouterr().err
    assert f"error: Elasticsearch at {url} is unreachable: ConnectionError" in err
    assert "hunter2" not in err + caplog.text and "elastic:" not in err
    assert len(err.splitlines()) == 1  # one line, no traceback
    assert [r for r in caplog.records if r.name.startswith("elastic_transport")] == []


def test_a_failed_elasticsearch_rebuild_leaves_the_existing_index_in_place(repo, monkeypatch, capsys):
    """The connection is checked before anything under data/index is touched."""
    index_stage.main(load_params("params.yaml"))
    before = {str(f): f.read_bytes() for f in sorted(Path("data/index").rglob("*")) if f.is_file()}
    monkeypatch.delenv("ELASTICSEARCH_URL", raising=False)
    assert cli(["index", "-S", "index.backend=elasticsearch"]) == 1
    assert "ELASTICSEARCH_URL is not set" in capsys.readouterr().err
    monkeypatch.setenv("ELASTICSEARCH_URL", f"http://127.0.0.1:{free_port()}")
    assert cli(["index", "-S", "index.backend=elasticsearch", "-S", "index.request_timeout=2"]) == 1
    after = {str(f): f.read_bytes() for f in sorted(Path("data/index").rglob("*")) if f.is_file()}
    assert after == before
    assert open_retriever(load_params("params.yaml")).search(["malaria"], 1)[0][0].id == "p3"


def test_searches_during_a_rebuild_see_the_old_index_then_the_new_one(repo, monkeypatch):
    from selfspec.retrieval import embedded

    index_stage.main(load_params("params.yaml"))
    old_dir = read_json("data/index/manifest.json")["index"]
    seen = []
    real_build = embedded.build_embedded

    def build_and_search(*args, **kwargs):
        seen.append([h.id for h in open_retriever(load_params("params.yaml")).search(["malaria"], 2)[0]])
        real_build(*args, **kwargs)
        seen.append([h.id for h in open_retriever(load_params("params.yaml")).search(["malaria"], 2)[0]])

    monkeypatch.setattr(embedded, "build_embedded", build_and_search)
    extra = {
        "id": "p5",
        "title": "Malaria vaccine",
        "text": "A malaria vaccine trial in infants.",
        "source": "t",
    }
    write_jsonl("data/build_corpus/passages.jsonl", [*PASSAGES, extra])
    index_stage.main(load_params("params.yaml"))
    assert seen == [["p3"], ["p3"]]  # the live index, untouched while the new one was built
    assert open_retriever(load_params("params.yaml")).search(["malaria"], 2)[0][0].id == "p5"
    new_dir = read_json("data/index/manifest.json")["index"]
    assert new_dir != old_dir and sorted(p.name for p in Path("data/index").iterdir()) == [
        "manifest.json", new_dir,
    ]  # fmt: skip


def test_opening_checks_the_index_against_the_manifest(repo):
    index_stage.main(load_params("params.yaml"))
    manifest = read_json("data/index/manifest.json")
    write_json("data/index/manifest.json", {**manifest, "passages": 5})
    with pytest.raises(
        StageError, match=f"index {manifest['index']} holds 4 passages but the manifest says 5"
    ):
        open_retriever(load_params("params.yaml"))
    write_json("data/index/manifest.json", {**manifest, "index": "tantivy-000000000000"})
    with pytest.raises(StageError, match="tantivy-000000000000 no longer exists"):
        open_retriever(load_params("params.yaml"))
    write_json("data/index/manifest.json", {k: v for k, v in manifest.items() if k != "index"})
    with pytest.raises(StageError, match="written by an older version"):
        open_retriever(load_params("params.yaml"))
