"""Local sources: an HF folder (``config.json``), a ``.gguf`` file, or a folder holding GGUF files."""

from __future__ import annotations

from pathlib import Path

from selfspec.errors import SourceUnavailableError
from selfspec.io import sha256_file
from selfspec.model_sources._common import Materialized, pick


def local_path(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise SourceUnavailableError(
            f"prepare_model.source: {path}: no such folder or file (cwd {Path.cwd()}); "
            "give an HF model folder (with config.json), a .gguf file, or a folder holding one"
        )
    return p


def local_model(path: Path, gguf_file: str | None) -> Materialized:
    """An HF folder (config.json) wins over GGUF files; a .gguf path is used as is."""
    if path.is_file():
        if path.suffix != ".gguf":
            raise SourceUnavailableError(f"{path}: a model file must be a .gguf")
        return gguf_in(path.parent, path.name)
    if (path / "config.json").is_file():
        return Materialized(path, None, {"sha256": tree_sha256(path), "sha256_of": "folder"})
    return gguf_in(path, pick(sorted(p.name for p in path.glob("*.gguf")), gguf_file, str(path)))


def gguf_in(folder: Path, name: str) -> Materialized:
    digest = sha256_file(folder / name)
    return Materialized(
        folder, name, {"gguf_file": name, "gguf_sha256": digest, "sha256": digest, "sha256_of": "gguf"}
    )


def tree_sha256(folder: Path) -> str:
    """One digest for a model folder: sha256 over sorted ``<file sha256>  <relative path>`` lines."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(f"{sha256_file(p)}  {rel.as_posix()}\n".encode())
    return h.hexdigest()
