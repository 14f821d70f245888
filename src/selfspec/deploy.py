"""Deployment: pull a registered adapter by alias or version, verify it, merge it for export.

The registry holds, per model version, the training run whose ``adapter/`` artifact folder is a
standard PEFT adapter (safetensors + adapter_config.json + tokenizer) with ``checksums.json``
and ``provenance.json``. At registration every file's sha256 is also written as a tag of the model
version (``selfspec.sha256.<path>``): outside the artifact, so rewriting the artifact's own
``checksums.json`` after tampering does not help. ``pull`` downloads the folder beside ``dest``,
refuses pickle formats (any letter case) and files the registry does not list, checks every
digest, and only then renames the folder into place.

A mixture of experts (``selfspec mixture``) is registered the same way; its version's tag
``selfspec.artifact`` = ``mixture`` names the artifact folder (router + one adapter per expert under
``experts/``, manifest ``mixture.json``), which ``pull`` checks file by file like an adapter.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import NotWritableError, SelfspecError
from selfspec.io import sha256_file, write_json

log = logging.getLogger(__name__)

CHECKSUMS = "checksums.json"
PROVENANCE = "provenance.json"
ADAPTER_ARTIFACT = "adapter"
# Formats that can run code when loaded (pickle): never accepted from a registry.
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
REQUIRED = ("adapter_model.safetensors", "adapter_config.json")
DIGEST_TAG = "selfspec.sha256."  # + the file's path in the adapter folder: a model-version tag
ARTIFACT_TAG = "selfspec.artifact"  # the run's artifact folder a version pulls (absent: the adapter)
MIXTURE_ARTIFACT = "mixture"
MANIFEST = "mixture.json"  # a mixture's experts, router and merge, relative paths inside the folder
MIXTURE_REQUIRED = (MANIFEST, "router/router.safetensors", "router/router.json")


class RegistryError(SelfspecError):
    """A model name, alias or version that the registry does not have."""


class IntegrityError(SelfspecError):
    """A pulled file is missing, unsafe (pickle), unlisted or does not match its recorded digest."""


class DestinationError(SelfspecError):
    """``pull --dest`` names a file, or a folder that is not empty (without ``--force``)."""


@dataclass(frozen=True)
class ModelRef:
    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"


@dataclass
class Pulled:
    ref: ModelRef
    version: str
    run_id: str
    dest: Path
    aliases: list[str]
    provenance: dict[str, Any]
    eval_metrics: dict[str, float] = field(default_factory=dict)
    kind: str = ADAPTER_ARTIFACT  # or MIXTURE_ARTIFACT


def parse_ref(ref: str) -> ModelRef:
    """``NAME@ALIAS`` or ``NAME/VERSION`` (``models:/`` prefix allowed)."""
    ref = ref.removeprefix("models:/")
    if m := re.fullmatch(r"([^@/]+)@([\w.-]+)", ref):
        return ModelRef(m[1], alias=m[2])
    if m := re.fullmatch(r"([^@/]+)/(\d+)", ref):
        return ModelRef(m[1], version=m[2])
    raise RegistryError(
        f"model reference {ref!r}: expected NAME@ALIAS or NAME/VERSION (e.g. biomedical-expert@champion)"
    )


def resolve_version(client, ref: ModelRef):
    """The registry's ModelVersion for ``ref``; a miss lists what exists."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(ref.name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        raise RegistryError(
            f"no registered model {ref.name!r}; registered models: {names or 'none'}"
        ) from None
    try:
        if ref.alias:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        return client.get_model_version(ref.name, ref.version)
    except MlflowException:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{ref.name}'"))
        aliases = dict(sorted((model.aliases or {}).items()))
        what = f"alias {ref.alias!r}" if ref.alias else f"version {ref.version}"
        raise RegistryError(
            f"{ref.name} has no {what}; versions: {versions or 'none'}; aliases: {aliases or 'none'}"
        ) from None


def folder_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by its posix path relative to it."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}


def verify_adapter(
    folder: Path, expected: dict[str, str] | None = None, required: tuple[str, ...] = REQUIRED
) -> dict[str, str]:
    """Check a PEFT adapter folder (or any folder with ``required`` files) against ``expected`` digests
    (the registry's), or else against its own checksums.json (a local check: it catches corruption,
    not tampering). Safetensors only; every file must be listed and match."""
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    if unsafe := sorted(f for f in present if Path(f).suffix.lower() in UNSAFE_SUFFIXES):
        raise IntegrityError(f"{folder}: refusing non-safetensors weights {unsafe}")
    if missing := [f for f in required if f not in present]:
        raise IntegrityError(f"{folder}: missing {missing[0]}")
    origin = "the registry's digests"
    if expected is None:
        if CHECKSUMS not in present:
            raise IntegrityError(f"{folder}: missing {CHECKSUMS}")
        expected, origin = json.loads((folder / CHECKSUMS).read_text()), CHECKSUMS
        present.discard(CHECKSUMS)
    if unlisted := sorted(present - set(expected)):
        raise IntegrityError(f"{folder}: refusing files not listed in {origin}: {unlisted}")
    if absent := sorted(set(expected) - present):
        raise IntegrityError(f"{folder}: {absent[0]} is listed in {origin} but missing")
    for name, sha in sorted(expected.items()):
        if (actual := sha256_file(folder / name)) != sha:
            raise IntegrityError(f"{folder / name}: sha256 {actual} does not match {origin}: {sha}")
    return expected


def verify_mixture(folder: Path, expected: dict[str, str] | None = None) -> dict[str, str]:
    """``verify_adapter`` for a mixture folder, then every expert its manifest lists must be there."""
    sums = verify_adapter(folder, expected, MIXTURE_REQUIRED)
    for expert in json.loads((folder / MANIFEST).read_text()).get("experts", []):
        if missing := [f for f in REQUIRED if f"{expert['adapter']}/{f}" not in sums]:
            raise IntegrityError(
                f"{folder}: expert {expert['name']!r}: missing {expert['adapter']}/{missing[0]}"
            )
    return sums


def write_checksums(folder: Path) -> dict[str, str]:
    """Record the sha256 of every file in an adapter folder (called at training time)."""
    sums = {k: v for k, v in folder_digests(folder).items() if k != CHECKSUMS}
    write_json(folder / CHECKSUMS, sums)
    return sums


def record_digests(client, name: str, version: str, folder: Path) -> dict[str, str]:
    """Write the digest of every file of the registered adapter as tags of its model version."""
    sums = folder_digests(folder)
    for path, sha in sums.items():
        client.set_model_version_tag(name, version, DIGEST_TAG + path, sha)
    return sums


def registry_digests(mv) -> dict[str, str]:
    """The digests recorded for a model version; a version without any cannot be verified."""
    sums = {k.removeprefix(DIGEST_TAG): v for k, v in (mv.tags or {}).items() if k.startswith(DIGEST_TAG)}
    if not sums:
        raise IntegrityError(
            f"{mv.name} version {mv.version} has no file digests in the registry (tags {DIGEST_TAG}*), "
            "so its adapter cannot be verified; register it again with `dvc repro train`"
        )
    return sums


def check_dest(dest: Path, force: bool) -> None:
    """Refuse a file, or a folder with anything in it unless ``force`` (pull replaces it whole)."""
    if dest.exists() and not dest.is_dir():
        raise DestinationError(f"--dest {dest}: is a file; give a folder path")
    if dest.is_dir() and not force and (entries := sorted(p.name for p in dest.iterdir())):
        raise DestinationError(
            f"--dest {dest}: not empty ({len(entries)} entries: {', '.join(entries[:3])}); pull replaces "
            "the whole folder, so choose a new or empty one, or pass --force to replace it"
        )


def staging_dir(dest: Path) -> Path:
    """A fresh folder beside ``dest`` (same filesystem, so the final rename is atomic)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
    except OSError as e:
        raise NotWritableError(f"{dest.parent}: cannot write here ({e.strerror or e})") from None


def swap_into_place(new: Path, dest: Path) -> None:
    """Rename ``new`` to ``dest``; an existing ``dest`` is moved aside first and deleted after."""
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}") if dest.exists() else None
    if old:
        os.replace(dest, old)
    os.replace(new, dest)
    if old and old.is_symlink():  # --dest was a link to a folder: the link goes, its target stays
        old.unlink()
    elif old:
        shutil.rmtree(old)


def pull(ref: ModelRef, dest: Path, tracking_uri: str, force: bool = False) -> Pulled:
    """Download the adapter of a registered version beside ``dest``, verify it against the
    registry's digests, then rename it into place (nothing is touched when a check fails)."""
    import mlflow
    from mlflow import MlflowClient

    from selfspec.tracking import check_store

    check_dest(dest, force)
    client = MlflowClient(tracking_uri=check_store(tracking_uri))
    mv = resolve_version(client, ref)
    expected = registry_digests(mv)
    kind = (mv.tags or {}).get(ARTIFACT_TAG, ADAPTER_ARTIFACT)
    if kind not in (ADAPTER_ARTIFACT, MIXTURE_ARTIFACT):
        raise IntegrityError(f"{mv.name} version {mv.version}: unknown {ARTIFACT_TAG} {kind!r}")
    staging = staging_dir(dest)
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=kind, dst_path=str(staging), tracking_uri=tracking_uri
        )
        (verify_mixture if kind == MIXTURE_ARTIFACT else verify_adapter)(Path(local), expected)
        swap_into_place(Path(local), dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    run = client.get_run(mv.run_id)
    about = dest / (MANIFEST if kind == MIXTURE_ARTIFACT else PROVENANCE)
    provenance = json.loads(about.read_text()) if about.is_file() else {}
    metrics = {k: v for k, v in run.data.metrics.items() if k.startswith(("eval/", "router/"))}
    return Pulled(ref, str(mv.version), mv.run_id, dest, sorted(mv.aliases or []), provenance, metrics, kind)


def export_merged(base_dir: Path, adapter_dir: Path, dest: Path, dtype: str = "float32") -> Path:
    """Merge ``adapter_dir`` into the full-precision base and save full safetensors weights."""
    from selfspec.loading import load_model, load_tokenizer

    merged = load_model(base_dir, dtype, "cpu", adapter=adapter_dir)
    dest.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(dest, safe_serialization=True)
    tok_src = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_dir
    load_tokenizer(tok_src).save_pretrained(dest)
    for extra in (PROVENANCE,):
        if (adapter_dir / extra).is_file():
            shutil.copy2(adapter_dir / extra, dest / f"adapter_{extra}")
    return dest
