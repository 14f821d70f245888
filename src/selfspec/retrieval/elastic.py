"""Elasticsearch backend (official ``elasticsearch`` client, >= 8).

The connection comes only from the environment — never params or git:
``ELASTICSEARCH_URL`` (required), ``ELASTICSEARCH_API_KEY`` or ``ELASTICSEARCH_USERNAME`` /
``ELASTICSEARCH_PASSWORD``, ``ELASTICSEARCH_CA_CERTS`` (a CA bundle for TLS). Only index-level APIs
are used, so an API key scoped to ``<alias>*`` (privileges ``create_index``, ``manage``, ``write``,
``read``, ``view_index_metadata``) is enough: no cluster privilege such as ``monitor``.

Building creates a versioned index ``<alias>-<hash>`` (hash of the passage file and the analyzer),
bulk-loads it and then points ``<alias>`` at it in one atomic alias update, so searchers never see
a half-built index; older versioned indices beyond ``index.keep_indices`` are deleted. An existing
complete index with that name is reused. The pipeline searches the exact index named in the
manifest, not the alias (which another run may move). Documents carry the terms of ``analysis`` and
the index splits them on whitespace only: Elasticsearch and the embedded backend index identical
terms and report identical BM25 scores. Searches use ``dfs_query_then_fetch``: corpus-wide term
statistics even when the index has several shards (``index.shards: null``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from selfspec.errors import BackendError, missing_extra
from selfspec.retrieval import K1, TIE_MARGIN, B, Hit, top_k
from selfspec.retrieval.analysis import analyze, contents, query_terms

log = logging.getLogger(__name__)

MSEARCH_BATCH = 100
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "contents": {"type": "text", "analyzer": "selfspec_terms"},
        "title": {"type": "text", "index": False},
        "text": {"type": "text", "index": False},
    },
}
NEEDED = "create_index, manage, write, read and view_index_metadata"


def index_settings(ip) -> dict[str, Any]:
    """BM25 and the whitespace analyzer; shards and replicas only when set (serverless refuses them)."""
    settings: dict[str, Any] = {
        "similarity": {"default": {"type": "BM25", "k1": K1, "b": B}},
        "analysis": {"analyzer": {"selfspec_terms": {"type": "custom", "tokenizer": "whitespace"}}},
    }
    if ip.shards is not None:
        settings["number_of_shards"] = ip.shards
    if ip.replicas is not None:
        settings["number_of_replicas"] = ip.replicas
    return settings


def connect(ip, index: str) -> Any:
    """A client for ``ELASTICSEARCH_URL``, checked with one index-level request on ``index``.

    Errors name the URL without its credentials and come without the transport's retry logging.
    """
    try:
        from elasticsearch import Elasticsearch
    except ImportError:
        raise missing_extra("elasticsearch") from None
    from selfspec.tracking import redact_uri

    url = os.environ.get("ELASTICSEARCH_URL")
    if not url:
        raise BackendError("index.backend is 'elasticsearch' but ELASTICSEARCH_URL is not set")
    _quiet_transport()
    es = Elasticsearch(url, **_auth(), request_timeout=ip.request_timeout, max_retries=ip.max_retries,
                       retry_on_timeout=True)  # fmt: skip
    _check(es, index, url, redact_uri(url))
    return es


def _check(es, index: str, url: str, shown: str) -> None:
    """``HEAD /<index>``: reachable, credentials accepted, index privileges granted."""
    import elasticsearch

    try:
        es.options(max_retries=0).indices.exists(index=index)
    except elasticsearch.AuthenticationException:
        raise BackendError(f"Elasticsearch at {shown} refused the credentials (401): check "
                           "ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME/PASSWORD") from None  # fmt: skip
    except elasticsearch.AuthorizationException:
        raise BackendError(f"Elasticsearch at {shown}: the credentials have no access to index {index} "
                           f"(403); the index stage needs {NEEDED} on {index}*") from None  # fmt: skip
    except Exception as e:  # connection refused, DNS, TLS, timeout: the user must fix the URL
        reason = f"{type(e).__name__}: {e}".replace(url, shown)
        raise BackendError(f"Elasticsearch at {shown} is unreachable: {reason}") from None


def _quiet_transport() -> None:
    """elastic_transport logs every request (INFO) and every retry with a full traceback (WARNING);
    the failure that matters is raised as one BackendError. ``-v`` (DEBUG) keeps them."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)


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


def build_elastic(es, passages: list[dict[str, Any]], name: str, alias: str, ip) -> dict[str, Any]:
    """Create + bulk-load ``name`` unless a complete copy exists, then swap ``alias`` onto it (old
    versions stay until ``prune``: the caller prunes once nothing names them any more)."""
    reused = count(es, name) == len(passages)
    if not reused:
        if es.indices.exists(index=name):  # a partial load from an interrupted run
            es.indices.delete(index=name)
        _create(es, name, ip)
        _bulk(es, _actions(passages, name, ip), len(passages), ip)
        es.indices.refresh(index=name)
        if count(es, name) != len(passages):
            raise BackendError(
                f"Elasticsearch index {name}: document count differs from the corpus after loading"
            )
    swap_alias(es, alias, name)
    return {"index": name, "alias": alias, "reused": reused}


def _create(es, name: str, ip) -> None:
    import elasticsearch

    try:
        es.indices.create(index=name, settings=index_settings(ip), mappings=MAPPINGS)
    except elasticsearch.BadRequestError as e:
        hint = (
            " (on Elastic serverless set index.shards and index.replicas to null)"
            if "serverless" in str(e)
            else ""
        )
        raise BackendError(f"Elasticsearch refused to create index {name}: {e}{hint}") from None


def count(es, name: str) -> int | None:
    """Documents in index ``name`` (refreshed), None when it does not exist."""
    if not es.indices.exists(index=name):
        return None
    return es.count(index=name)["count"]


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


def versions(es, alias: str) -> list[str]:
    """The versioned indices ``<alias>-<12 hex>``, oldest first (by creation date)."""
    pattern = re.compile(rf"{re.escape(alias)}-[0-9a-f]{{12}}")
    found = es.indices.get_settings(index=f"{alias}-*", name="index.creation_date")
    names = [n for n in found if pattern.fullmatch(n)]
    return sorted(names, key=lambda n: (int(found[n]["settings"]["index"]["creation_date"]), n))


def prune(es, alias: str, current: str, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` versions of ``alias`` (never ``current``)."""
    older = [n for n in versions(es, alias) if n != current]
    doomed = older[: max(0, len(older) - (keep - 1))]
    for name in doomed:
        es.indices.delete(index=name)
        log.info("deleted superseded Elasticsearch index %s", name)
    return doomed


class ElasticRetriever:
    """Searches index ``index`` with a ``match`` query over the pre-analysed terms, batched via msearch."""

    def __init__(self, es, index: str, stopwords: bool = True):
        self.es, self.index, self.stopwords = es, index, stopwords

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
                    {"index": self.index},
                    {"query": query, "size": k + TIE_MARGIN, "_source": ["title", "text"]},
                ]
        try:
            responses = self.es.msearch(searches=body, search_type="dfs_query_then_fetch") if body else {}
        except Exception as e:  # transport/API errors: a BackendError the CLI prints cleanly
            raise BackendError(
                f"Elasticsearch search on index {self.index} failed: {type(e).__name__}: {e}"
            ) from e
        it = iter(responses.get("responses", ()))
        return [self._hits(next(it), k) if t and k > 0 else [] for t in terms]

    def _hits(self, response: dict[str, Any], k: int) -> list[Hit]:
        if "error" in response:
            raise BackendError(f"Elasticsearch search on index {self.index} failed: {response['error']}")
        hits = [
            Hit(h["_id"], float(h["_score"]), h["_source"].get("title", ""), h["_source"].get("text", ""))
            for h in response["hits"]["hits"]
        ]
        return top_k(hits, k)
