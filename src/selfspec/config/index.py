from __future__ import annotations

import re
from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class IndexParams:
    """Retrieval index and backend (issue: retrieval).

    Both backends report Lucene >= 8's default BM25 scores (k1=1.2, b=0.75) over the same tokens
    from ``selfspec.retrieval.analysis``. Elasticsearch's connection comes only from the environment
    (ELASTICSEARCH_URL, ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME/PASSWORD, ELASTICSEARCH_CA_CERTS).
    """

    backend: str = knob("embedded", choices=["embedded", "elasticsearch"])
    stopwords: bool = knob(True, help="drop Lucene's 33 English stop words at index and query time")
    include_title: bool = knob(True, help="search the title together with the passage text")
    alias: str = knob("", help="Elasticsearch alias searched by the pipeline; empty: selfspec-<domain>")
    bulk_batch_size: int = knob(500, gt=0, help="Elasticsearch bulk request size, in passages")
    max_retries: int = knob(3, ge=0, help="Elasticsearch retries of a rejected bulk chunk or failed request")
    request_timeout: float = knob(30.0, gt=0, help="Elasticsearch request timeout, seconds")
    shards: int | None = knob(
        1, gt=0, help="Elasticsearch primary shards; null: the cluster's default (required on serverless)"
    )
    replicas: int | None = knob(
        0, ge=0, help="Elasticsearch replicas; null: the cluster's default (required on serverless)"
    )
    keep_indices: int = knob(
        2,
        ge=1,
        help="Elasticsearch versioned indices kept per alias (the current one included); older ones deleted",
    )

    def check(self) -> None:
        # Elasticsearch index and alias names: lowercase, no spaces or special characters
        if self.alias and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", self.alias):
            raise ValueError(f"alias: must be lowercase letters, digits, '_', '-' or '.', got {self.alias!r}")
