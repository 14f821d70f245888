"""Elasticsearch backend (official ``elasticsearch`` client, >= 8).

The connection comes only from the environment — never params or git:
``ELASTICSEARCH_URL`` (required), ``ELASTICSEARCH_API_KEY`` or ``ELASTICSEARCH_USERNAME`` /
``ELASTICSEARCH_PASSWORD``, ``ELASTICSEARCH_CA_CERTS`` (a CA bundle for TLS).

Building creates a versioned index ``<alias>-<hash>`` (hash of the passage file and the analyzer),
bulk-loads it and then points ``<alias>`` at it in one atomic alias update, so searchers never see
a half-built index. An existing complete index with that name is reused. Documents carry the terms
of ``analysis`` and the index splits them on whitespace only: Elasticsearch and the embedded
backend index identical terms and rank identically under the default BM25.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from selfspec.errors import BackendError, missing_extra
from selfspec.retrieval import TIE_MARGIN, Hit, top_k
from selfspec.retrieval.analysis import analyze, contents, query_terms

log = logging.getLogger(__name__)

MSEARCH_BATCH = 100
INDEX_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,  # one shard: corpus-wide term statistics, as in the embedded index
    "number_of_replicas": 0,
    "similarity": {"default": {"type": "BM25", "k1": 1.2, "b": 0.75}},
    "analysis": {"analyzer": {"selfspec_terms": {"type": "custom", "tokenizer": "whitespace"}}},
}
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "contents": {"type": "text", "analyzer": "selfspec_terms"},
        "title": {"type": "text", "index": False},
        "text": {"type": "text", "index": False},
    },
}


def connect(ip) -> Any:
    """A client for ``ELASTICSEARCH_URL``, checked with a ping; errors name the URL."""
    try:
        from elasticsearch import Elasticsearch
    except ImportError:
        raise missing_extra("elasticsearch") from None
    url = os.environ.get("ELASTICSEARCH_URL")
    if not url:
        raise BackendError("index.backend is 'elasticsearch' but ELASTICSEARCH_URL is not set")
    es = Elasticsearch(url, **_auth(), request_timeout=ip.request_timeout, max_retries=ip.max_retries,
                       retry_on_timeout=True)  # fmt: skip
    try:
        es.info()
    except Exception as e:  # connection refused, TLS, auth: the user must fix the URL or credentials
        raise BackendError(
            f"Elasticsearch at {url} is unreachable or refused us: {type(e).__name__}: {e}"
        ) from None
    return es


def _auth() -> dict[str, Any]:
    env = os.environ
    kwargs: dict[str, Any] = {}
    if env.get("ELASTICSEARCH_API_KEY"):
        kwargs["api_key"] = env["ELASTICSEARCH_API_KEY"]
    elif env.get("ELASTICSEARCH_USERNAME"):
        kwargs["basic_auth"] = (env["ELASTICSEARCH_USERNAME"], env.get("ELASTICSEARCH_PASSWORD", ""))
    if env.get("ELASTICSEARCH_CA_CERTS"):
        kwargs["ca_certs"] = env["ELASTICSEARCH_CA_CERTS"]
    return kwargs


def index_name(alias: str, corpus_sha256: str, analyzer: str) -> str:
    digest = hashlib.sha256(f"{corpus_sha256}:{analyzer}".encode()).hexdigest()[:12]
    return f"{alias}-{digest}"


def build_elastic(es, passages: list[dict[str, Any]], name: str, alias: str, ip) -> dict[str, Any]:
    """Create + bulk-load ``name`` unless a complete copy exists, then swap ``alias`` onto it."""
    reused = _complete(es, name, len(passages))
    if not reused:
        if es.indices.exists(index=name):  # a partial load from an interrupted run
            es.indices.delete(index=name)
        es.indices.create(index=name, settings=INDEX_SETTINGS, mappings=MAPPINGS)
        _bulk(es, _actions(passages, name, ip), len(passages), ip)
        es.indices.refresh(index=name)
        if not _complete(es, name, len(passages)):
            raise BackendError(
                f"Elasticsearch index {name}: document count differs from the corpus after loading"
            )
    swap_alias(es, alias, name)
    return {"index": name, "alias": alias, "reused": reused}


def _complete(es, name: str, n: int) -> bool:
    return bool(es.indices.exists(index=name)) and es.count(index=name)["count"] == n


def _actions(passages: Iterable[dict[str, Any]], name: str, ip) -> Iterator[dict[str, Any]]:
    for p in passages:
        terms = analyze(contents(p["title"], p["text"], ip.include_title), ip.stopwords)
        yield {
            "_index": name,
            "_id": p["id"],
            "contents": " ".join(terms),
            "title": p["title"],
            "text": p["text"],
        }


def _bulk(es, actions: Iterable[dict[str, Any]], total: int, ip) -> None:
    """The client's streaming bulk helper: rejected (429) chunks are retried with backoff."""
    from elasticsearch import helpers
    from tqdm import tqdm

    stream = helpers.streaming_bulk(
        es, actions, chunk_size=ip.bulk_batch_size, max_retries=ip.max_retries,
        initial_backoff=1, raise_on_error=True,
    )  # fmt: skip
    with tqdm(total=total, desc="index (elasticsearch)", unit="passage", mininterval=2) as bar:
        try:
            for _ok, _item in stream:
                bar.update(1)
        except helpers.BulkIndexError as e:  # rejected documents, after the helper's retries
            raise BackendError(
                f"Elasticsearch bulk load failed for {len(e.errors)} passages: {e.errors[:3]}"
            ) from e


def swap_alias(es, alias: str, name: str) -> None:
    """Point ``alias`` at ``name`` only, in one atomic update (remove from others + add)."""
    actions: list[dict[str, Any]] = [
        {"remove": {"index": old, "alias": alias}} for old in current_indices(es, alias) if old != name
    ]
    actions.append({"add": {"index": name, "alias": alias}})
    es.indices.update_aliases(actions=actions)


def current_indices(es, alias: str) -> list[str]:
    if not es.indices.exists_alias(name=alias):
        return []
    return sorted(es.indices.get_alias(name=alias))


class ElasticRetriever:
    """Searches ``alias`` with a ``match`` query over the pre-analysed terms, batched via msearch."""

    def __init__(self, es, alias: str, stopwords: bool = True):
        self.es, self.alias, self.stopwords = es, alias, stopwords

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        results: list[list[Hit]] = []
        for start in range(0, len(queries), MSEARCH_BATCH):
            results.extend(self._batch(queries[start : start + MSEARCH_BATCH], k))
        return results

    def _batch(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        terms = [query_terms(q, self.stopwords) for q in queries]
        body: list[dict[str, Any]] = []
        for t in terms:
            if t and k > 0:
                query = {"match": {"contents": " ".join(t)}}
                body += [
                    {"index": self.alias},
                    {"query": query, "size": k + TIE_MARGIN, "_source": ["title", "text"]},
                ]
        try:
            responses = iter(self.es.msearch(searches=body)["responses"]) if body else iter(())
        except Exception as e:  # transport/API errors: a BackendError the CLI prints cleanly
            raise BackendError(
                f"Elasticsearch search on alias {self.alias} failed: {type(e).__name__}: {e}"
            ) from e
        return [self._hits(next(responses), k) if t and k > 0 else [] for t in terms]

    def _hits(self, response: dict[str, Any], k: int) -> list[Hit]:
        if "error" in response:
            raise BackendError(f"Elasticsearch search on {self.alias} failed: {response['error']}")
        hits = [
            Hit(h["_id"], float(h["_score"]), h["_source"].get("title", ""), h["_source"].get("text", ""))
            for h in response["hits"]["hits"]
        ]
        return top_k(hits, k)
