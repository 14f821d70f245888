"""Stage ``build_corpus``: ``corpora/<domain>.yaml`` -> ``data/build_corpus/passages.jsonl``.

``run`` is the core: documents in, passages + stats out (normalise, drop excluded PMIDs and repeated
documents, split into bounded overlapping passages, drop empty / non-text / too-short / duplicate
passages, counting each reason). ``main`` reads the sources named by the yaml (mirror or URL) and
writes the passage file, ``metrics/build_corpus.json`` and ``data/external/build_corpus/`` (a link to
each file read, with its sha256: how DVC sees a changed mirror file, see corpora/README.md).

Never in the corpus: any document whose PMID is listed by the yaml's ``exclude_pmids`` files
(PubMedQA's 500 test questions), so retrieval cannot leak evaluation answers into training data.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from selfspec.errors import DataError, SourceUnavailableError, StageError

log = logging.getLogger(__name__)

STAGE = "build_corpus"
PASSAGES = "passages.jsonl"


def run(
    documents: Iterable[dict[str, Any]], params, exclude_pmids: frozenset[str] = frozenset()
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Passages (id, title, text, source) in document order, and the stats for the metrics file."""
    from tqdm import tqdm

    from selfspec.corpus.dedup import Deduper

    deduper = Deduper(params.near_duplicates, params.near_dup_threshold)
    dropped: Counter[str] = Counter()
    per_source: dict[str, Counter[str]] = defaultdict(Counter)
    seen: set[str] = set()
    passages: list[dict[str, Any]] = []
    for doc in tqdm(documents, desc=STAGE, unit="doc", mininterval=2):
        per_source[doc["source"]]["documents"] += 1
        reason = _document_drop(doc, exclude_pmids, seen)
        if reason:
            dropped[reason] += 1
            continue
        seen.add(doc["id"])
        for passage in _passages(doc, params, deduper, dropped):
            per_source[doc["source"]]["passages"] += 1
            passages.append(passage)
    return passages, _stats(passages, dropped, per_source, len(exclude_pmids))


def _document_drop(doc: dict[str, Any], exclude_pmids: frozenset[str], seen: set[str]) -> str | None:
    if doc.get("pmid") and doc["pmid"] in exclude_pmids:
        return "excluded_pmid"
    if doc["id"] in seen:  # e.g. the same PubMed abstract from two sources
        return "duplicate_document"
    return None


def _passages(doc: dict[str, Any], params, deduper, dropped: Counter[str]) -> Iterator[dict[str, Any]]:
    from selfspec.corpus.splitting import alpha_ratio, normalise, split_words

    text, title = normalise(doc["text"]), normalise(doc.get("title") or "")
    pieces = split_words(text, params.max_words, params.overlap_words) if text else [""]
    for i, piece in enumerate(pieces):
        if not piece:
            reason = "empty"
        elif alpha_ratio(piece) < params.min_alpha_ratio:
            reason = "non_text"
        elif len(piece.split()) < params.min_words:
            reason = "too_short"
        else:
            dup = deduper.check(piece)
            reason = f"{dup}_duplicate" if dup else None
        if reason:
            dropped[reason] += 1
            continue
        pid = doc["id"] if len(pieces) == 1 else f"{doc['id']}#{i + 1}"
        yield {"id": pid, "title": title, "text": piece, "source": doc["source"]}


def _stats(passages, dropped: Counter[str], per_source, n_excluded: int) -> dict[str, Any]:
    reasons = ("excluded_pmid", "duplicate_document", "empty", "non_text", "too_short")
    all_dropped = {r: dropped.get(r, 0) for r in (*reasons, "exact_duplicate", "near_duplicate")}
    return {
        "passages": len(passages),
        "tokens": sum(len(p["text"].split()) for p in passages),
        "documents": sum(c["documents"] for c in per_source.values()),
        "per_source": {name: dict(c) for name, c in per_source.items()},
        "dropped": all_dropped,
        "duplicates_dropped": sum(
            all_dropped[r] for r in ("duplicate_document", "exact_duplicate", "near_duplicate")
        ),
        "excluded_pmids_listed": n_excluded,
    }


def corpus_path(params) -> Path:
    return Path(params.base.corpora_dir) / f"{params.base.domain}.yaml"


def load_documents(spec, mirror: Path | None, report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every source's documents in yaml order. Fills ``report``: ``inputs`` (the file each source read),
    ``skipped`` (unavailable ``if_missing: skip`` sources) and ``empty`` (sources with no documents)."""
    from selfspec.corpus.sources import read_source, source_input

    for src in spec.sources:
        try:
            found = source_input(src, spec.base_dir, mirror)
            docs = list(read_source(src, spec.base_dir, mirror, found))
        except SourceUnavailableError as e:
            if src.if_missing != "skip":
                raise
            log.warning("source %s skipped (if_missing: skip): %s", src.name, e)
            report["skipped"][src.name] = str(e)
            continue
        if found is not None:
            report["inputs"][src.name] = found
        if not docs:  # e.g. an empty mirror file: the corpus silently loses a whole source otherwise
            log.warning("source %s: no documents in %s", src.name, found.path if found else src.options)
            report["empty"].append(src.name)
        log.info("source %s: %d documents", src.name, len(docs))
        yield from docs


def load_exclusions(spec, mirror: Path | None, inputs: dict[str, Any]) -> frozenset[str]:
    """PMIDs from the yaml's ``exclude_pmids`` files (a JSON object's keys or a JSON list). Never skipped."""
    from selfspec.corpus.sources import locate_input
    from selfspec.io import read_json

    pmids: set[str] = set()
    for i, ref in enumerate(spec.exclude_pmids):
        found = locate_input(ref, spec.base_dir, mirror)
        inputs[f"exclude_pmids.{i}"] = found
        data = read_json(found.path)
        if not isinstance(data, (dict, list)):
            raise DataError(found.path, None, "expected a JSON object keyed by PMID or a list of PMIDs")
        pmids.update(str(k) for k in data)
    return frozenset(pmids)


def main(params) -> None:
    from selfspec.corpus.spec import load_spec
    from selfspec.io import write_json, write_jsonl
    from selfspec.runtime import data_dir, metrics_path
    from selfspec.sources import record_inputs

    spec = load_spec(corpus_path(params))
    mirror = params.data_mirror
    report: dict[str, Any] = {"inputs": {}, "skipped": {}, "empty": []}
    exclusions = load_exclusions(spec, mirror, report["inputs"])
    passages, stats = run(load_documents(spec, mirror, report), params.build_corpus, exclusions)
    if not passages:
        raise StageError(STAGE, f"{spec.path}: no passages survived (dropped: {stats['dropped']})")
    for name in report["empty"]:  # listed with zeros rather than missing from per_source
        stats["per_source"].setdefault(name, {"documents": 0, "passages": 0})
    stats.update(skipped_sources=list(report["skipped"]), empty_sources=report["empty"])
    stats["inputs"] = record_inputs(STAGE, report["inputs"], report["skipped"])
    write_jsonl(data_dir(STAGE) / PASSAGES, passages)
    write_json(metrics_path(STAGE), stats)
    log.info("%d passages, %d tokens; dropped %s", stats["passages"], stats["tokens"], stats["dropped"])
