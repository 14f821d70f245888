"""Deployment: pull a registered adapter by alias or version, verify it, merge it for export.

The registry holds, per model version, the training run whose ``adapter/`` artifact folder is a
standard PEFT adapter (safetensors + adapter_config.json + tokenizer) with ``checksums.json``
and ``provenance.json``. ``pull`` downloads that folder, refuses anything that is not safetensors
and checks every file's sha256 against the checksums written at training time.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import SelfspecError
from selfspec.io import sha256_file, write_json

log = logging.getLogger(__name__)

CHECKSUMS = "checksums.json"
PROVENANCE = "provenance.json"
ADAPTER_ARTIFACT = "adapter"
# Formats that can run code when loaded (pickle): never accepted from a registry.
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


class RegistryError(SelfspecError):
    """A model name, alias or version that the registry does not have."""


class IntegrityError(SelfspecError):
    """A pulled file is missing, unsafe (pickle) or does not match its recorded checksum."""


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


def verify_adapter(folder: Path) -> dict[str, str]:
    """Check a PEFT adapter folder: safetensors only, every file matching checksums.json."""
    unsafe = sorted(p.name for p in folder.rglob("*") if p.suffix in UNSAFE_SUFFIXES)
    if unsafe:
        raise IntegrityError(f"{folder}: refusing non-safetensors weights {unsafe}")
    for required in ("adapter_model.safetensors", "adapter_config.json", CHECKSUMS):
        if not (folder / required).is_file():
            raise IntegrityError(f"{folder}: missing {required}")
    expected: dict[str, str] = json.loads((folder / CHECKSUMS).read_text())
    for name, sha in expected.items():
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"{folder}: {name} is listed in {CHECKSUMS} but missing")
        if (actual := sha256_file(path)) != sha:
            raise IntegrityError(f"{path}: sha256 {actual} does not match the recorded {sha}")
    if "adapter_model.safetensors" not in expected:
        raise IntegrityError(f"{folder}/{CHECKSUMS} does not cover adapter_model.safetensors")
    return expected


def write_checksums(folder: Path) -> dict[str, str]:
    """Record the sha256 of every file in an adapter folder (called at training time)."""
    sums = {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != CHECKSUMS
    }
    write_json(folder / CHECKSUMS, sums)
    return sums


def pull(ref: ModelRef, dest: Path, tracking_uri: str) -> Pulled:
    """Download the adapter of a registered version into ``dest`` and verify it."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    mv = resolve_version(client, ref)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=ADAPTER_ARTIFACT, dst_path=tmp, tracking_uri=tracking_uri
        )
        verify_adapter(Path(local))
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(local, dest)
    run = client.get_run(mv.run_id)
    provenance = json.loads((dest / PROVENANCE).read_text()) if (dest / PROVENANCE).is_file() else {}
    evals = {k: v for k, v in run.data.metrics.items() if k.startswith("eval/")}
    return Pulled(ref, str(mv.version), mv.run_id, dest, sorted(mv.aliases or []), provenance, evals)


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
