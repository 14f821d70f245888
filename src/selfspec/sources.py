"""Public files, read from a local data mirror when it has a copy, else fetched from their URL.

A mirror is a folder of copies of public files (``base.data_mirror`` or SELFSPEC_DATA_MIRROR). Each
source names its URL and its path inside the mirror; a failure names both, so the user knows what
to download or where to put it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

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


def resolve(file: RemoteFile, mirror: Path | None, cache_dir: Path = DOWNLOAD_CACHE) -> Path:
    """Local path of ``file``: the mirror copy if present, else a verified download."""
    tried: list[str] = []
    if mirror is not None and file.mirror_path:
        candidate = Path(mirror) / file.mirror_path
        if candidate.is_file():
            verify(candidate, file.sha256)
            return candidate
        tried.append(f"mirror copy {candidate} (not found)")
    if file.url:
        try:
            return download(file, cache_dir)
        except SourceUnavailableError as e:
            tried.append(str(e))
    elif not tried:
        tried.append("no URL and no mirror path given")
    raise SourceUnavailableError(
        f"cannot read {file.describe()}: tried " + "; ".join(tried)
        + ". Set base.data_mirror (or SELFSPEC_DATA_MIRROR) to a folder holding a copy, or go online."
    )


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
