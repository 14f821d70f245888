"""evals/sources.yaml: where each evaluation data set comes from, and reading it.

A data set's ``files`` are read from the data mirror when it holds a copy, else downloaded (both
through ``selfspec.sources.resolve``, sha256-checked when pinned). Only when that fails and the data
set names an ``hf`` dataset is Hugging Face ``datasets`` tried: it needs the network, so offline
(HF_DATASETS_OFFLINE / HF_HUB_OFFLINE) it is refused at once with a clear reason.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from selfspec.errors import ConfigError, DataError, SourceUnavailableError, missing_extra
from selfspec.io import read_json, read_jsonl, sha256_file
from selfspec.sources import RemoteFile, resolve, unavailable_errors

FORMATS = ("pubmedqa", "medmcqa", "medqa", "mmlu", "conll_ner", "chemprot")


@dataclass(frozen=True)
class EvalSource:
    name: str
    format: str
    files: dict[str, RemoteFile]
    hf: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    license: str = ""
    homepage: str = ""

    def public(self) -> dict[str, Any]:
        """What the manifest says about the source (URLs, mirror paths, pinned checksums)."""
        files = {
            k: {"url": f.url, "mirror_path": f.mirror_path, "sha256": f.sha256} for k, f in self.files.items()
        }
        return {"format": self.format, "files": files, "hf": self.hf, "license": self.license,
                "homepage": self.homepage, "description": self.description}  # fmt: skip


@dataclass
class Fetched:
    """A data set's raw contents: parsed file per file name, and where each came from."""

    data: dict[str, Any]
    inputs: dict[str, dict[str, Any]]


def load_sources(path: str | os.PathLike) -> dict[str, EvalSource]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: sources file not found (prepare_evals.sources)")
    doc = yaml.safe_load(path.read_text()) or {}
    datasets = doc.get("datasets")
    if not isinstance(datasets, dict) or not datasets:
        raise ConfigError(f"{path}: datasets: expected a mapping of data set names")
    return {name: _parse_source(path, name, spec) for name, spec in datasets.items()}


def _parse_source(path: Path, name: str, spec: Any) -> EvalSource:
    where = f"{path}: datasets.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(spec) - {"format", "files", "hf", "options", "description", "license", "homepage"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if spec.get("format") not in FORMATS:
        raise ConfigError(f"{where}.format: must be one of {list(FORMATS)}, got {spec.get('format')!r}")
    files = {}
    for key, f in (spec.get("files") or {}).items():
        if not isinstance(f, dict) or not (f.get("url") or f.get("mirror_path")):
            raise ConfigError(f"{where}.files.{key}: needs url and/or mirror_path")
        files[key] = RemoteFile(f.get("url"), f.get("mirror_path"), f.get("sha256"))
    if not files and not spec.get("hf"):
        raise ConfigError(f"{where}: give files and/or an hf dataset")
    rest = {k: spec.get(k) or "" for k in ("description", "license", "homepage")}
    return EvalSource(name, spec["format"], files, spec.get("hf"), dict(spec.get("options") or {}), **rest)


def fetch(source: EvalSource, mirror: Path | None) -> Fetched:
    """A data set's files (mirror or URL), else its HF dataset; the error names every try."""
    reasons = []
    if source.files:
        try:
            return _fetch_files(source, mirror)
        except SourceUnavailableError as e:
            reasons.append(str(e))
    if source.hf:
        try:
            return _fetch_hf(source.hf)
        except SourceUnavailableError as e:
            reasons.append(str(e))
    raise SourceUnavailableError(f"{source.name}: " + " | ".join(reasons))


def _fetch_files(source: EvalSource, mirror: Path | None) -> Fetched:
    data, inputs = {}, {}
    for key, remote in source.files.items():
        path = resolve(remote, mirror)
        origin = (
            "mirror" if mirror and remote.mirror_path and path == Path(mirror) / remote.mirror_path else "url"
        )
        data[key] = read_file(path)
        inputs[key] = {"origin": origin, "path": str(path), "url": remote.url, "sha256": sha256_file(path),
                       "pinned": remote.sha256 is not None}  # fmt: skip
    return Fetched(data, inputs)


def read_file(path: Path) -> Any:
    """Parsed contents by extension: .json (as is), .jsonl / .parquet (row dicts), .csv (row lists),
    .txt (lines without their line ends: CoNLL)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_json(path)
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise missing_extra("pyarrow") from None
        return pq.read_table(path).to_pylist()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))
    if suffix == ".txt":
        return path.read_text(encoding="utf-8").splitlines()
    raise DataError(path, None, f"unsupported file type {suffix!r} (json, jsonl, parquet, csv, txt)")


@cache
def _probe(endpoint: str) -> str | None:
    import httpx

    try:
        httpx.head(endpoint, timeout=10, follow_redirects=True)
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {e}"
    return None


def hub_reachable() -> None:
    """Fail fast offline: ``datasets`` would retry each request for ~20 s before giving up."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if problem := _probe(endpoint):
        raise SourceUnavailableError(f"Hugging Face hub {endpoint} unreachable ({problem})")


def _fetch_hf(hf: dict[str, Any]) -> Fetched:
    name = f"hf:{hf['dataset']}" + (f"/{hf['config']}" if hf.get("config") else "")
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise SourceUnavailableError(
            f"{name}: Hugging Face datasets is offline (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE)"
        )
    try:
        hub_reachable()
    except SourceUnavailableError as e:
        raise SourceUnavailableError(f"{name}: {e}") from None
    try:
        import datasets
    except ImportError:
        raise missing_extra("datasets") from None
    splits = {"test": hf.get("split", "test"), "fewshot": hf.get("fewshot_split")}
    data, inputs = {}, {}
    for key, split in splits.items():
        if not split:
            continue
        try:
            rows = datasets.load_dataset(
                hf["dataset"], hf.get("config"), split=split, revision=hf.get("revision")
            )
        except unavailable_errors() as e:  # offline, unknown dataset, no access; a bug propagates
            raise SourceUnavailableError(f"{name}[{split}]: cannot load ({type(e).__name__}: {e})") from None
        data[key] = [dict(r) for r in rows]
        inputs[key] = {"origin": "hf", "dataset": hf["dataset"], "config": hf.get("config"), "split": split,
                       "fingerprint": getattr(rows, "_fingerprint", None)}  # fmt: skip
    return Fetched(data, inputs)
