"""Stage ``index``: ``data/build_corpus/passages.jsonl`` -> the BM25 index of ``index.backend``.

* embedded: a tantivy index in ``data/index/tantivy/`` (a DVC output).
* elasticsearch: a versioned index ``<alias>-<hash>`` on the cluster from the environment, with
  ``<alias>`` swapped onto it; ``data/index/`` then holds only the manifest.

``data/index/manifest.json`` records what was built (backend, analyzer, corpus hash, alias) and is
what ``selfspec.retrieval.open_retriever`` reads. ``run`` is the core; ``main`` does the I/O.
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
    passages: list[dict[str, Any]], ip, index_dir: Path, corpus_sha256: str, alias: str
) -> dict[str, Any]:
    """Build the index for ``ip.backend``; returns the manifest (what was built, from what)."""
    from selfspec.retrieval.analysis import analyzer_id

    if not passages:
        raise StageError(STAGE, "no passages to index; run `dvc repro build_corpus`")
    analyzer = analyzer_id(ip.stopwords, ip.include_title)
    manifest: dict[str, Any] = {
        "backend": ip.backend,
        "analyzer": analyzer,
        "stopwords": ip.stopwords,
        "include_title": ip.include_title,
        "corpus_sha256": corpus_sha256,
        "passages": len(passages),
        "similarity": {"type": "BM25", "k1": 1.2, "b": 0.75},
    }
    if ip.backend == "embedded":
        from selfspec.retrieval.embedded import build_embedded

        build_embedded(passages, index_dir, ip.stopwords, ip.include_title)
    else:
        from selfspec.retrieval.elastic import build_elastic, connect, index_name

        name = index_name(alias, corpus_sha256, analyzer)
        manifest.update(build_elastic(connect(ip), passages, name, alias, ip))
    return manifest


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(params) -> None:
    from selfspec.io import read_jsonl, sha256_file, write_json
    from selfspec.retrieval import INDEX_DIR, MANIFEST
    from selfspec.runtime import metrics_path

    if not PASSAGES.is_file():
        raise StageError(STAGE, f"{PASSAGES}: not found; run `dvc repro build_corpus` first")
    passages = read_jsonl(PASSAGES)
    alias = params.index.alias or f"selfspec-{params.base.domain}"
    if INDEX_DIR.exists():
        shutil.rmtree(INDEX_DIR)  # the output is rebuilt whole: no stale files from another backend
    INDEX_DIR.mkdir(parents=True)
    start = time.perf_counter()
    manifest = run(passages, params.index, INDEX_DIR, sha256_file(PASSAGES), alias)
    seconds = round(time.perf_counter() - start, 2)
    write_json(INDEX_DIR / MANIFEST, manifest)
    metrics = {"passages": len(passages), "build_seconds": seconds, "index_bytes": dir_bytes(INDEX_DIR)}
    write_json(metrics_path(STAGE), metrics)
    log.info(
        "indexed %d passages with %s in %.1f s (%s)", len(passages), params.index.backend, seconds, metrics
    )
