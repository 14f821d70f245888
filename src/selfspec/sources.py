"""Public files, read from a local data mirror when it has a copy, else fetched from their URL.

A mirror is a folder of copies of public files (``base.data_mirror`` or SELFSPEC_DATA_MIRROR). Each
source names its URL and its path inside the mirror; a failure names both, so the user knows what
to download or where to put it.

What a stage read from outside the repo is recorded by ``record_inputs`` in ``data/external/<stage>/``:
one symlink per file plus ``inputs.json`` (origin, URL, mirror path, sha256). DVC hashes a link's
target, so with that folder as the stage's output ``dvc status`` sees a changed mirror file
(corpora/README.md says why this way).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfspec.errors import SourceUnavailableError
from selfspec.io import atomic_path, sha256_file

log = logging.getLogger(__name__)

DOWNLOAD_CACHE = Path(os.environ.get("SELFSPEC_DOWNLOAD_CACHE", Path.home() / ".cache" / "selfspec"))


@dataclass(frozen=True)
class RemoteFile:
    url: str | None
    mirror_path: str | None = None  # path relative to the mirror root
    sha256: str | None = None

    def describe(self) -> str:
        return self.url or self.mirror_path or "?"


@dataclass(frozen=True)
class Input:
    """A file a stage read, and where it came from: mirror | url (a download) | local | package."""

    path: Path
    origin: str
    url: str | None = None
    mirror_path: str | None = None

    def entry(self) -> dict[str, Any]:
        """What ``inputs.json``, the metrics and the run tags say: no absolute path (machine-specific)."""
        return {"origin": self.origin, "url": self.url, "mirror_path": self.mirror_path,
                "sha256": sha256_file(self.path), "bytes": self.path.stat().st_size}  # fmt: skip


def resolve(file: RemoteFile, mirror: Path | None, cache_dir: Path = DOWNLOAD_CACHE) -> Path:
    """Local path of ``file``: the mirror copy if present, else a verified download."""
    return resolve_input(file, mirror, cache_dir).path


def resolve_input(file: RemoteFile, mirror: Path | None, cache_dir: Path = DOWNLOAD_CACHE) -> Input:
    """``resolve``, saying where the file came from."""
    tried: list[str] = []
    if mirror is not None and file.mirror_path:
        candidate = Path(mirror) / file.mirror_path
        if candidate.is_file():
            verify(candidate, file.sha256)
            return Input(candidate, "mirror", file.url, file.mirror_path)
        tried.append(f"mirror copy {candidate} (not found)")
    if file.url:
        try:
            return Input(download(file, cache_dir), "url", file.url, file.mirror_path)
        except SourceUnavailableError as e:
            tried.append(str(e))
    elif not tried:
        tried.append("no URL and no mirror path given")
    raise SourceUnavailableError(
        f"cannot read {file.describe()}: tried "
        + "; ".join(tried)
        + ". Set base.data_mirror (or SELFSPEC_DATA_MIRROR) to a folder holding a copy, or go online."
    )


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """What "cannot be read now" raises: a missing file, the network, a hub that is offline or refuses
    (requests', huggingface_hub's and datasets' errors are all OSError) and httpx's errors. Anything
    else (KeyError, TypeError, ...) is a bug: callers let it fail the stage instead of skipping."""
    import httpx

    return (OSError, httpx.HTTPError)


def verify(path: Path, sha256: str | None) -> None:
    if sha256 and (actual := sha256_file(path)) != sha256:
        raise SourceUnavailableError(f"{path}: sha256 is {actual}, expected {sha256}")


def download(file: RemoteFile, cache_dir: Path) -> Path:
    import httpx

    assert file.url
    name = file.url.rstrip("/").rsplit("/", 1)[-1] or "download"
    key = file.sha256[:16] if file.sha256 else hashlib.sha256(file.url.encode()).hexdigest()[:16]
    dest = Path(cache_dir) / key / name
    if dest.is_file():
        verify(dest, file.sha256)
        return dest
    log.info("downloading %s", file.url)
    try:
        with httpx.stream("GET", file.url, follow_redirects=True, timeout=60) as r:
            r.raise_for_status()
            with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                for chunk in r.iter_bytes(1 << 20):
                    f.write(chunk)
                f.flush()
                verify(tmp, file.sha256)
    except httpx.HTTPError as e:
        raise SourceUnavailableError(f"download of {file.url} failed ({type(e).__name__}: {e})") from None
    return dest


# --- what a stage read, where DVC sees it ---------------------------------------------------------

EXTERNAL_DIR = Path("data/external")
INPUTS_FILE = "inputs.json"


def record_inputs(stage: str, inputs: dict[str, Input], unavailable: dict[str, str] | None = None,
                  root: Path = EXTERNAL_DIR) -> dict[str, Any]:  # fmt: skip
    """Write ``root/<stage>/``: a symlink per input and ``inputs.json``; returns inputs.json's content.

    The folder is replaced whole (written beside, then renamed), so a link never outlives its input.
    Inputs that could not be read are listed with their reason and get no link: a dangling link
    would make ``dvc status`` fail.
    """
    import shutil

    from selfspec.io import write_json

    folder = root / stage
    tmp = root / f".{stage}.{os.getpid()}.tmp"  # mkdir, not mkdtemp: the umask's mode, not 0700
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed run
    tmp.mkdir(parents=True)
    entries: dict[str, Any] = {}
    for key, found in sorted(inputs.items()):
        link = _link_name(key, found.path)
        (tmp / link).symlink_to(found.path.resolve())
        entries[key] = {**found.entry(), "link": link}
    for key, reason in sorted((unavailable or {}).items()):
        entries[key] = {"origin": None, "unavailable": reason}
    write_json(tmp / INPUTS_FILE, entries)
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return entries


def _link_name(key: str, path: Path) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return safe + "".join(path.suffixes[-1:])
