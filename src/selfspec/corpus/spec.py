"""``corpora/<domain>.yaml``: which sources make a domain corpus. Validated before anything is read.

Every key is checked: an unknown key or source kind is a ConfigError naming the yaml file and the
key (``corpora/x.yaml: sources[1].feilds: unknown key``), so a typo never silently drops a source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import ConfigError

KINDS = ("jsonl", "json", "hpo", "hf", "folder")
DOC_FIELDS = ("id", "pmid", "title", "text")  # what a field mapping may fill; text is required
FILE_KEYS = {"path", "url", "mirror_path", "sha256"}
COMMON_KEYS = {"name", "kind", "if_missing"}
KIND_KEYS: dict[str, set[str]] = {
    "jsonl": FILE_KEYS | {"fields"},
    "json": FILE_KEYS | {"fields", "keyed_by"},
    "hpo": {"path"},
    "hf": {"dataset", "config", "split", "revision", "fields"},
    # a user's own folder of .txt / .md (one document per file) and .jsonl (one per line) files
    "folder": {"path", "fields", "suffixes"},
}
FOLDER_SUFFIXES = (".txt", ".md", ".jsonl")
FOLDER_FIELDS = {"id": "id", "title": "title", "text": "text"}  # .jsonl records, unless `fields` says
TOP_KEYS = {"description", "sources", "exclude_pmids"}


@dataclass(frozen=True)
class FileRef:
    """A local file (``path``, relative to the yaml's folder) or a public file (url / mirror_path)."""

    path: str | None = None
    url: str | None = None
    mirror_path: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    file: FileRef = field(default_factory=FileRef)
    fields: dict[str, str] = field(default_factory=dict)  # document field -> record key
    keyed_by: str | None = None  # json: the top-level object maps this field's value -> record
    if_missing: str = "error"  # "skip": an unavailable source is left out and reported
    options: dict[str, Any] = field(default_factory=dict)  # hf: dataset, config, split, revision;
    # folder: suffixes


@dataclass(frozen=True)
class CorpusSpec:
    path: Path
    sources: tuple[SourceSpec, ...]
    exclude_pmids: tuple[FileRef, ...] = ()
    description: str = ""

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_spec(path: str | Path) -> CorpusSpec:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: corpus definition not found (base.corpora_dir / base.domain)")
    from selfspec.io import read_yaml_config

    raw = read_yaml_config(path)
    return parse_spec(raw, path)


def parse_spec(raw: Any, path: Path) -> CorpusSpec:
    where = str(path)
    _require_mapping(raw, where, "(top level)")
    _check_keys(raw, TOP_KEYS, where, "")
    sources = raw.get("sources")
    if not isinstance(sources, list) or not sources:
        raise ConfigError(f"{where}: sources: must be a non-empty list")
    specs = tuple(_parse_source(s, where, f"sources[{i}]") for i, s in enumerate(sources))
    names = [s.name for s in specs]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ConfigError(f"{where}: sources: duplicate source names {dupes}")
    excludes = raw.get("exclude_pmids") or []
    if not isinstance(excludes, list):
        raise ConfigError(f"{where}: exclude_pmids: must be a list of files")
    refs = tuple(_parse_file(e, where, f"exclude_pmids[{i}]") for i, e in enumerate(excludes))
    return CorpusSpec(path, specs, refs, str(raw.get("description") or ""))


def _parse_source(raw: Any, where: str, key: str) -> SourceSpec:
    _require_mapping(raw, where, key)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: {key}.kind: unknown source kind {kind!r} (one of {list(KINDS)})")
    _check_keys(raw, COMMON_KEYS | KIND_KEYS[kind], where, key)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: {key}.name: required, a non-empty string")
    if_missing = raw.get("if_missing", "error")
    if if_missing not in ("error", "skip"):
        raise ConfigError(f"{where}: {key}.if_missing: must be 'error' or 'skip', got {if_missing!r}")
    file = FileRef()
    if kind in ("jsonl", "json"):
        file = _parse_file({k: v for k, v in raw.items() if k in FILE_KEYS}, where, key)
    elif kind == "hpo" and raw.get("path"):
        file = FileRef(path=str(raw["path"]))
    elif kind == "folder":
        file, options = _parse_folder(raw, where, key), {"suffixes": _suffixes(raw, where, key)}
    fields = _parse_fields(raw.get("fields"), where, key, required=kind in ("jsonl", "json", "hf"))
    if kind == "folder":
        fields = fields or dict(FOLDER_FIELDS)
    else:
        options = {k: raw[k] for k in ("dataset", "config", "split", "revision") if k in raw}
    if kind == "hf" and not options.get("dataset"):
        raise ConfigError(f"{where}: {key}.dataset: required for kind 'hf'")
    return SourceSpec(name, kind, file, fields, raw.get("keyed_by"), if_missing, options)


def _parse_folder(raw: dict, where: str, key: str) -> FileRef:
    """The folder's path: ``~`` and ``$VARS`` expanded, so a yaml can name ``$SELFSPEC_FINANCE_CORPUS``."""
    import os

    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{where}: {key}.path: required for kind 'folder' (the folder to read)")
    expanded = os.path.expanduser(os.path.expandvars(path))
    if "$" in expanded:
        raise ConfigError(
            f"{where}: {key}.path: {path!r}: environment variable not set (export it, or write the path)"
        )
    return FileRef(path=expanded)


def _suffixes(raw: dict, where: str, key: str) -> tuple[str, ...]:
    value = raw.get("suffixes", list(FOLDER_SUFFIXES))
    if not isinstance(value, list) or not value or any(v not in FOLDER_SUFFIXES for v in value):
        allowed = list(FOLDER_SUFFIXES)
        raise ConfigError(f"{where}: {key}.suffixes: a non-empty list of {allowed}, got {value!r}")
    return tuple(value)


def _parse_file(raw: Any, where: str, key: str) -> FileRef:
    _require_mapping(raw, where, key)
    _check_keys(raw, FILE_KEYS, where, key)
    if not (raw.get("path") or raw.get("url") or raw.get("mirror_path")):
        raise ConfigError(f"{where}: {key}: give a path, or a url and/or a mirror_path")
    return FileRef(**{k: str(v) for k, v in raw.items() if v is not None})


def _parse_fields(raw: Any, where: str, key: str, required: bool) -> dict[str, str]:
    if raw is None and not required:
        return {}
    _require_mapping(raw, where, f"{key}.fields")
    _check_keys(raw, set(DOC_FIELDS), where, f"{key}.fields")
    if not raw.get("text"):
        raise ConfigError(f"{where}: {key}.fields.text: required (the record key holding the text)")
    return {k: str(v) for k, v in raw.items()}


def _check_keys(raw: dict, allowed: set[str], where: str, key: str) -> None:
    for k in raw:
        if k not in allowed:
            full = f"{key}.{k}" if key else str(k)
            raise ConfigError(f"{where}: {full}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _require_mapping(raw: Any, where: str, key: str) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {key}: must be a mapping, got {type(raw).__name__}")
