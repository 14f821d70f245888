"""File helpers: JSONL with file:line errors, atomic writes, metrics files."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selfspec.errors import ConfigError, DataError, NotWritableError


def read_yaml_config(path: Path) -> Any:
    """A YAML config file's content (``{}`` when empty); a syntax error is a ConfigError naming the file."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: cannot parse YAML: {e}") from None


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)``; blank lines are skipped, bad JSON is a DataError."""
    for lineno, record in iter_jsonl_lines(path):
        if isinstance(record, DataError):
            raise record
        yield lineno, record


def iter_jsonl_lines(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any] | DataError]]:
    """Like ``iter_jsonl``, but a bad line is yielded as its DataError (to report every bad line)."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                # e.msg may end in "at" ("Unterminated string starting at"): put the column first
                yield lineno, DataError(path, lineno, f"invalid JSON (column {e.colno}: {e.msg})")
                continue
            if not isinstance(record, dict):
                record = DataError(path, lineno, f"expected a JSON object, got {type(record).__name__}")
            yield lineno, record


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    return [record for _, record in iter_jsonl(path)]


def dumps(record: Any) -> str:
    """One canonical JSON line: stable key order so outputs hash the same run to run."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; rename it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600: give the mode a plain open would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def current_umask() -> int:
    """The process umask (reading it means setting it: put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ensure_writable(*files: str | os.PathLike) -> None:
    """Fail before any compute if one of the ``files`` a stage will write cannot be written.

    Each file's folder is created and probed with a temporary file; an existing file must be
    writable itself. One line names the path, instead of a traceback after the slow part.
    """
    for file in map(Path, files):
        folder = file.parent
        if folder.exists() and not folder.is_dir():
            raise NotWritableError(f"{folder}: is a file, but {file.name} must be written inside it")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".selfspec-probe-"):
                pass
        except OSError as e:
            raise NotWritableError(
                f"{folder}: cannot write here ({e.strerror or e}); needed for {file.name}"
            ) from None
        if file.is_dir():
            raise NotWritableError(f"{file}: is a folder, expected a file path")
        if file.exists() and not os.access(file, os.W_OK):
            raise NotWritableError(f"{file}: not writable (check its permissions)")


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Write records atomically; returns how many were written."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(dumps(record) + "\n")
            n += 1
    return n


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, f"invalid JSON ({e.msg})") from None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def md5_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
