"""Stage ``index``: ``data/build_corpus/passages.jsonl`` -> the BM25 index of ``index.backend``.

* embedded: a tantivy index in ``data/index/tantivy-<hash>/`` (a DVC output).
* elasticsearch: a versioned index ``<alias>-<hash>`` on the cluster from the environment, with
  ``<alias>`` swapped onto it; ``data/index/`` then holds only the manifest.

``<hash>`` is that of the passage file and the analyzer. ``data/index/manifest.json`` records what
was built (backend, analyzer, corpus hash, the exact index, alias) and is what
``selfspec.retrieval.open_retriever`` reads. A rebuild never removes what searchers use: the
Elasticsearch connection is checked before anything is touched, the new index is built beside the old
one, the manifest is replaced atomically (``os.replace``), and only then are stale files removed.
``run`` is the core; ``main`` does the I/O.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from selfspec.errors import StageError
from selfspec.outputs import main_file

log = logging.getLogger(__name__)

STAGE = "index"
PASSAGES = main_file("build_corpus")


def run(
    passages: list[dict[str, Any]], ip, index_dir: Path, corpus_sha256: str, alias: str, es=None
) -> dict[str, Any]:
    """Build the index for ``ip.backend`` (``es``: a connected client for elasticsearch) beside any
    existing one in ``index_dir``; returns the manifest (what was built, from what)."""
    from selfspec.retrieval import K1, B, index_name
    from selfspec.retrieval.analysis import analyzer_id

    if not passages:
        raise StageError(STAGE, "no passages to index; run `dvc repro build_corpus`")
    analyzer = analyzer_id(ip.stopwords, ip.include_title)
    name = index_name(alias if ip.backend == "elasticsearch" else "tantivy", corpus_sha256, analyzer)
    manifest: dict[str, Any] = {
        "backend": ip.backend, "analyzer": analyzer, "stopwords": ip.stopwords,
        "include_title": ip.include_title, "corpus_sha256": corpus_sha256, "passages": len(passages),
        "similarity": {"type": "BM25", "k1": K1, "b": B, "score": "lucene>=8"}, "index": name,
    }  # fmt: skip
    if ip.backend == "embedded":
        build_beside(passages, ip, index_dir, name)
    else:
        from selfspec.retrieval.elastic import build_elastic, connect

        manifest.update(build_elastic(es or connect(ip, alias), passages, name, alias, ip))
    return manifest


def build_beside(passages: list[dict[str, Any]], ip, index_dir: Path, name: str) -> None:
    """The embedded index ``index_dir/name``, built in a staging folder and renamed into place. A
    complete one of that name is kept: same passages and analyzer, so the same bytes."""
    from selfspec.retrieval.embedded import EmbeddedRetriever, build_embedded

    target, staging = index_dir / name, index_dir / f".{name}.partial"
    try:
        if len(EmbeddedRetriever(target)) == len(passages):
            log.info("%s: complete index for these passages, reused", target)
            return
    except Exception:  # missing or partial: rebuilt
        pass
    if staging.exists():
        shutil.rmtree(staging)
    build_embedded(passages, staging, ip.stopwords, ip.include_title)
    if target.exists():
        shutil.rmtree(target)  # an incomplete leftover, not searchable anyway
    staging.rename(target)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def remove_stale(index_dir: Path, keep: str) -> None:
    """Everything in ``index_dir`` but the manifest and the live index ``keep``."""
    from selfspec.retrieval import MANIFEST

    for path in index_dir.iterdir():
        if path.name not in (MANIFEST, keep):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def main(params) -> None:
    from selfspec.io import read_jsonl, sha256_file, write_json
    from selfspec.retrieval import INDEX_DIR, MANIFEST
    from selfspec.runtime import metrics_path

    if not PASSAGES.is_file():
        raise StageError(STAGE, f"{PASSAGES}: not found; run `dvc repro build_corpus` first")
    ip = params.index
    alias = ip.alias or f"selfspec-{params.base.domain}"
    es = None
    if ip.backend == "elasticsearch":  # before anything is touched: a bad URL leaves the old index
        from selfspec.retrieval.elastic import connect

        es = connect(ip, alias)
    passages = read_jsonl(PASSAGES)
    INDEX_DIR.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    manifest = run(passages, ip, INDEX_DIR, sha256_file(PASSAGES), alias, es)
    seconds = round(time.perf_counter() - start, 2)
    write_json(INDEX_DIR / MANIFEST, manifest)  # atomic: temp file + os.replace
    remove_stale(INDEX_DIR, manifest["index"])  # only now: searches opened the old manifest's index
    metrics = {"passages": len(passages), "build_seconds": seconds, "index_bytes": dir_bytes(INDEX_DIR)}
    if es is not None:
        from selfspec.retrieval.elastic import prune

        metrics["deleted_indices"] = prune(es, alias, manifest["index"], ip.keep_indices)
    write_json(metrics_path(STAGE), metrics)
    log.info("indexed %d passages with %s in %.1f s (%s)", len(passages), ip.backend, seconds, metrics)
