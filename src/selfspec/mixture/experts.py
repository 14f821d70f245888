"""The experts of a mixture: each adapter brought into the mixture folder, verified, with its records.

An expert's ``adapter`` is a local PEFT adapter folder (when that folder exists) or a registry
reference ``NAME@ALIAS`` / ``NAME/VERSION``, pulled with ``selfspec pull``'s checks (registry digests,
safetensors only). A local folder is checked against its own ``checksums.json`` when it has one, and
always for pickle files and the two adapter files. Each expert's entry in the manifest names where it
came from: registered model + version + run, or the local path, and the sha256 of every file.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfspec.errors import SelfspecError, StageError

STAGE = "mixture"
EXPERTS = "experts"  # sub-folder of the mixture: one adapter folder per expert


@dataclass
class Expert:
    name: str
    folder: Path  # inside the mixture folder
    records: list[dict[str, Any]]
    entry: dict[str, Any]  # the manifest entry


def is_local(adapter: str) -> bool:
    return Path(adapter).is_dir()


def collect(specs, mixture_dir: Path, tracking_uri: str) -> list[Expert]:
    """Every expert's adapter copied or pulled to ``mixture_dir/experts/<name>``, with its records."""
    experts = []
    for spec in specs:
        records, records_entry = read_records(spec)
        folder = mixture_dir / EXPERTS / spec.name
        source = _copy_local(spec, folder) if is_local(spec.adapter) else _pull(spec, folder, tracking_uri)
        entry = {"name": spec.name, "adapter": f"{EXPERTS}/{spec.name}", **source, "records": records_entry}
        entry["sha256"] = _digests(folder)
        experts.append(Expert(spec.name, folder, records, entry))
    return experts


def read_records(spec) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from selfspec.io import read_jsonl, sha256_file
    from selfspec.training.data import validate_records

    path = Path(spec.records)
    if not path.is_file():
        raise StageError(STAGE, f"mixture.experts {spec.name!r}: records {path}: not found")
    records = read_jsonl(path)
    validate_records(records, str(path))  # file:line of a record without instruction or output
    if len(records) < 2:
        raise StageError(STAGE, f"{path}: {len(records)} record(s); the router needs >= 2 per expert")
    return records, {"path": path.as_posix(), "sha256": sha256_file(path), "n": len(records)}


def _copy_local(spec, folder: Path) -> dict[str, Any]:
    from selfspec.deploy import CHECKSUMS, folder_digests, verify_adapter

    src = Path(spec.adapter)
    try:
        own = (src / CHECKSUMS).is_file()
        verify_adapter(src, None if own else folder_digests(src))  # no checksums: pickle + files only
    except SelfspecError as e:
        raise StageError(STAGE, f"mixture.experts {spec.name!r}: {e}") from None
    shutil.copytree(src, folder)
    return {"source": "local", "path": src.resolve().as_posix()}


def _pull(spec, folder: Path, tracking_uri: str) -> dict[str, Any]:
    from selfspec.deploy import RegistryError, parse_ref, pull

    try:
        ref = parse_ref(spec.adapter)
    except RegistryError:
        raise StageError(
            STAGE, f"mixture.experts {spec.name!r}: adapter {spec.adapter!r}: no such folder, and not a "
            "registry reference NAME@ALIAS or NAME/VERSION",
        ) from None  # fmt: skip
    try:
        pulled = pull(ref, folder, tracking_uri)
    except SelfspecError as e:
        raise StageError(STAGE, f"mixture.experts {spec.name!r}: adapter {spec.adapter!r}: {e}") from None
    return {"source": f"{ref.name}/{pulled.version}", "registered_model": ref.name,
            "version": pulled.version, "run_id": pulled.run_id, "ref": str(ref)}  # fmt: skip


def _digests(folder: Path) -> dict[str, str]:
    from selfspec.deploy import folder_digests

    return folder_digests(folder)


def check_same_base(experts: list[Expert], base_dir: Path) -> None:
    """Every expert whose provenance names its base's sha256 must have been trained on this base."""
    from selfspec.io import read_json

    base = read_json(base_dir / "provenance.json") if (base_dir / "provenance.json").is_file() else {}
    for expert in experts:
        prov_path = expert.folder / "provenance.json"
        theirs = (read_json(prov_path).get("base_model") or {}) if prov_path.is_file() else {}
        if base.get("sha256") and theirs.get("sha256") and theirs["sha256"] != base["sha256"]:
            raise StageError(
                STAGE, f"expert {expert.name!r} was trained on base sha256 {theirs['sha256']}, "
                f"but {base_dir} is {base['sha256']}: a mixture shares one frozen base",
            )  # fmt: skip
