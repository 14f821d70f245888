"""Stage ``prepare_evals``: fetch the evaluation data sets and convert them for evals/tasks/.

``run`` is the core: raw contents of each data set (or why it is unavailable) in, converted records
and the manifest out. ``main`` reads evals/sources.yaml, fetches each data set (mirror, URL, then HF)
and writes data/prepare_evals/<name>.jsonl, fewshot/<name>.jsonl and manifest.json.

Unavailable data sets (offline: only the mirror's are readable) are never dropped silently: each
is logged, listed in the manifest with its reason, and the evaluate stages skip its tasks with a
warning. ``prepare_evals.allow_missing: false`` turns any of them into an error.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfspec.errors import SourceUnavailableError, StageError

log = logging.getLogger(__name__)

STAGE = "prepare_evals"
MANIFEST = "manifest.json"
FEWSHOT_DIR = "fewshot"


@dataclass
class Prepared:
    records: dict[str, Any]  # name -> formats.Converted
    manifest: dict[str, Any]


def run(raw: dict[str, Any], sources: dict[str, Any], params) -> Prepared:
    """``raw``: name -> ``Fetched`` or the ``SourceUnavailableError`` met while fetching it."""
    from selfspec.evaluation.formats import convert

    records, entries = {}, {}
    for name, got in raw.items():
        src = sources[name]
        if isinstance(got, SourceUnavailableError):
            log.warning("[%s] %s is unavailable, its tasks will be skipped: %s", STAGE, name, got)
            entries[name] = {"status": "unavailable", "reason": str(got), "source": src.public()}
            continue
        converted = convert(src.format, name, got.data, src.options)
        if not converted.test:
            raise StageError(STAGE, f"{name}: no test records after conversion")
        records[name] = converted
        entries[name] = {"status": "prepared", "source": src.public(), "inputs": got.inputs,
                         "counts": counts(converted)}  # fmt: skip
    check_missing(entries, params.prepare_evals.allow_missing)
    return Prepared(records, {"datasets": entries, "prepared": sorted(records),
                              "unavailable": sorted(set(entries) - set(records))})  # fmt: skip


def counts(converted) -> dict[str, Any]:
    """Records per split, the answer distribution (NER: mentions per type and sentences with none) and
    the source rows the converter left out, with why."""
    out: dict[str, Any] = {"test": len(converted.test), "fewshot": len(converted.fewshot)}
    if any("answer" in r for r in converted.test):
        answers = Counter(str(r["answer"]) for r in converted.test)
        out["answers"] = dict(sorted(answers.items()))
    if any("entities" in r for r in converted.test):
        mentions = Counter(t for r in converted.test for t, found in r["entities"].items() for _ in found)
        out["entities"] = dict(sorted(mentions.items()))
        out["without_entities"] = sum(not any(r["entities"].values()) for r in converted.test)
    if converted.dropped:
        out["dropped"] = converted.dropped
    return out


def check_missing(entries: dict[str, Any], allow_missing: bool) -> None:
    missing = {n: e["reason"] for n, e in entries.items() if e["status"] == "unavailable"}
    if missing and not allow_missing:
        detail = "; ".join(f"{n}: {r}" for n, r in missing.items())
        raise StageError(STAGE, f"unavailable data sets (prepare_evals.allow_missing is false): {detail}")
    if len(missing) == len(entries):
        raise StageError(STAGE, "no evaluation data set could be read: " + "; ".join(missing.values()))


def fetch_all(sources: dict[str, Any], names: list[str], mirror: Path | None) -> dict[str, Any]:
    from selfspec.evaluation.sources import fetch

    raw: dict[str, Any] = {}
    for name in names:
        try:
            raw[name] = fetch(sources[name], mirror)
        except SourceUnavailableError as e:
            raw[name] = e
    return raw


def write_outputs(prepared: Prepared, out: Path) -> None:
    import shutil

    from selfspec.io import sha256_file, write_json, write_jsonl

    if out.exists():  # a data set that became unavailable must not leave a stale file behind
        shutil.rmtree(out)
    for name, converted in prepared.records.items():
        entry = prepared.manifest["datasets"][name]
        entry["output"] = {"test": f"{name}.jsonl"}
        write_jsonl(out / f"{name}.jsonl", converted.test)
        entry["sha256"] = {"test": sha256_file(out / f"{name}.jsonl")}
        if converted.fewshot:
            path = out / FEWSHOT_DIR / f"{name}.jsonl"
            write_jsonl(path, converted.fewshot)
            entry["output"]["fewshot"] = f"{FEWSHOT_DIR}/{name}.jsonl"
            entry["sha256"]["fewshot"] = sha256_file(path)
    write_json(out / MANIFEST, prepared.manifest)


def main(params) -> None:
    from selfspec.evaluation.sources import load_sources
    from selfspec.runtime import data_dir

    pp = params.prepare_evals
    sources = load_sources(pp.sources)
    if unknown := [n for n in pp.datasets if n not in sources]:
        raise StageError(STAGE, f"prepare_evals.datasets: {unknown} not in {pp.sources} ({sorted(sources)})")
    raw = fetch_all(sources, pp.datasets, params.data_mirror)
    prepared = run(raw, sources, params)
    write_outputs(prepared, data_dir(STAGE))
    record_external(raw, sources)
    for name, entry in prepared.manifest["datasets"].items():
        log.info(
            "[%s] %s: %s %s", STAGE, name, entry["status"], entry.get("counts", "(reason in the manifest)")
        )


def record_external(raw: dict[str, Any], sources: dict[str, Any]) -> None:
    """``data/external/prepare_evals/``: a link to each file read (DVC watches its bytes) and
    ``metrics/prepare_evals.json`` with their sha256; HF datasets are no files and are not linked."""
    from selfspec.io import write_json
    from selfspec.runtime import metrics_path
    from selfspec.sources import Input, record_inputs

    found, missing = {}, {n: str(e) for n, e in raw.items() if isinstance(e, SourceUnavailableError)}
    for name, got in raw.items():
        for key, i in ({} if name in missing else got.inputs).items():
            if i.get("path"):
                remote = sources[name].files[key]
                found[f"{name}.{key}"] = Input(Path(i["path"]), i["origin"], remote.url, remote.mirror_path)
    inputs = record_inputs(STAGE, found, missing)
    write_json(metrics_path(STAGE), {"prepared": len(raw) - len(missing), "unavailable": len(missing),
                                     "inputs": inputs})  # fmt: skip
