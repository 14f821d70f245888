"""Retrieval: a ``Retriever`` protocol and two backends that rank identically.

* ``embedded`` (default): a tantivy index under ``data/index/``, no server.
* ``elasticsearch``: an alias on a cluster given by the environment (see ``elastic``).

Both index the same terms (``analysis``) and report Lucene >= 8's BM25 score (Elasticsearch's
default, k1=1.2, b=0.75), so the same query returns the same passages *and the same scores* from
either: a score threshold means the same on both. The ``index`` stage builds; ``open_retriever``
opens what it built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from selfspec.errors import StageError

INDEX_DIR = Path("data/index")
MANIFEST = "manifest.json"
# Hits are fetched k + TIE_MARGIN deep and ties ordered by id, so that backends that break score
# ties differently (internal doc order) still return the same top k.
TIE_MARGIN = 10
# Lucene's (and Elasticsearch's) default BM25 parameters; neither backend has a knob for them.
K1, B = 1.2, 0.75


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    title: str
    text: str


class Retriever(Protocol):
    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Top ``k`` passages for each query, best first (an empty list when no term matches)."""
        ...


def top_k(hits: list[Hit], k: int) -> list[Hit]:
    """Best first; equal scores (to 4 decimals, float32 noise aside) ordered by id."""
    return sorted(hits, key=lambda h: (-round(h.score, 4), h.id))[:k]


def index_name(prefix: str, corpus_sha256: str, analyzer: str) -> str:
    """``<prefix>-<12 hex>``: the versioned name of the index of these passages under this analyzer."""
    import hashlib

    digest = hashlib.sha256(f"{corpus_sha256}:{analyzer}".encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def read_manifest(index_dir: Path = INDEX_DIR) -> dict[str, Any]:
    from selfspec.io import read_json

    path = index_dir / MANIFEST
    if not path.is_file():
        raise StageError("index", f"{path}: no index built; run `dvc repro index` (or `selfspec index`)")
    return read_json(path)


def open_retriever(params, index_dir: Path = INDEX_DIR) -> Retriever:
    """The retriever the ``index`` stage built, for ``params.index.backend``: the exact index named in
    the manifest (never a mutable alias), checked to hold the manifest's number of passages."""
    manifest = read_manifest(index_dir)
    backend = params.index.backend
    if manifest["backend"] != backend:
        raise StageError(
            "index",
            f"{index_dir / MANIFEST}: built for backend {manifest['backend']!r} but index.backend is "
            f"{backend!r}; re-run `dvc repro index`",
        )
    if not manifest.get("index"):
        raise StageError(
            "index", f"{index_dir / MANIFEST}: written by an older version; re-run `dvc repro index`"
        )
    retriever, found = _open(manifest, params.index, index_dir)
    if found != manifest["passages"]:
        what = "no longer exists" if found is None else f"holds {found} passages"
        raise StageError(
            "index",
            f"{index_dir / MANIFEST}: index {manifest['index']} {what} but the manifest says "
            f"{manifest['passages']}; re-run `dvc repro index`",
        )
    return retriever


def _open(manifest: dict[str, Any], ip, index_dir: Path) -> tuple[Retriever | None, int | None]:
    """The retriever of ``manifest`` and the number of passages its index holds (None: gone)."""
    name = manifest["index"]
    if manifest["backend"] == "embedded":
        from selfspec.retrieval.embedded import EmbeddedRetriever

        if not (index_dir / name).is_dir():
            return None, None
        retriever = EmbeddedRetriever(index_dir / name, stopwords=manifest["stopwords"])
        return retriever, len(retriever)
    from selfspec.retrieval.elastic import ElasticRetriever, connect, count

    es = connect(ip, name)
    return ElasticRetriever(es, name, stopwords=manifest["stopwords"]), count(es, name)


__all__ = ["Hit", "Retriever", "index_name", "open_retriever", "read_manifest", "top_k", "INDEX_DIR"]
