"""params.yaml → OmegaConf → dataclasses. One section per stage plus ``base``.

A wrong key, a wrong type or an out-of-range value raises ``ConfigError`` naming the file and
the key, before any compute. Each section's schema lives in its own module of this package.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.config._fields import check_field, knob
from selfspec.config.base import BaseParams
from selfspec.config.build_corpus import BuildCorpusParams
from selfspec.config.evaluate import EvaluateParams
from selfspec.config.filter_records import FilterRecordsParams
from selfspec.config.gen_inputs import GenInputsParams
from selfspec.config.gen_instructions import GenInstructionsParams
from selfspec.config.gen_responses import GenResponsesParams
from selfspec.config.generation import GenerationParams
from selfspec.config.index import IndexParams
from selfspec.config.prepare_evals import PrepareEvalsParams
from selfspec.config.prepare_model import PrepareModelParams
from selfspec.config.tracking import TrackingParams
from selfspec.config.train import TrainParams
from selfspec.errors import ConfigError

__all__ = ["Params", "load_params", "knob", "validate", "DEFAULT_PARAMS"]

DEFAULT_PARAMS = "params.yaml"


@dataclass
class Params:
    base: BaseParams = field(default_factory=BaseParams)
    prepare_model: PrepareModelParams = field(default_factory=PrepareModelParams)
    build_corpus: BuildCorpusParams = field(default_factory=BuildCorpusParams)
    index: IndexParams = field(default_factory=IndexParams)
    generation: GenerationParams = field(default_factory=GenerationParams)
    gen_instructions: GenInstructionsParams = field(default_factory=GenInstructionsParams)
    gen_inputs: GenInputsParams = field(default_factory=GenInputsParams)
    gen_responses: GenResponsesParams = field(default_factory=GenResponsesParams)
    filter_records: FilterRecordsParams = field(default_factory=FilterRecordsParams)
    train: TrainParams = field(default_factory=TrainParams)
    tracking: TrackingParams = field(default_factory=TrackingParams)
    prepare_evals: PrepareEvalsParams = field(default_factory=PrepareEvalsParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)

    # where these params were read from (not a params key)
    source: str = field(default=DEFAULT_PARAMS, metadata={"internal": True})

    @property
    def data_mirror(self) -> Path | None:
        """The data mirror folder, from SELFSPEC_DATA_MIRROR or base.data_mirror; None if unset."""
        value = os.environ.get("SELFSPEC_DATA_MIRROR") or self.base.data_mirror
        return Path(value) if value else None


def validate(obj: Any, prefix: str, source: str) -> None:
    """Check every knob's bounds and choices, then the section's own ``check()`` if it has one."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(value):
            validate(value, key, source)
            continue
        problem = check_field(value, dict(f.metadata))
        if problem:
            raise ConfigError(f"{source}: {key}: {problem}")
    check = getattr(obj, "check", None)
    if callable(check):
        try:
            check()
        except ValueError as e:  # sections raise ValueError("field: problem")
            raise ConfigError(f"{source}: {prefix}.{e}") from None


def load_params(path: str | os.PathLike = DEFAULT_PARAMS, overrides: Sequence[str] = ()) -> Params:
    """Load and validate params; ``overrides`` are ``section.key=value`` strings."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    source = str(path)
    schema = OmegaConf.structured(Params)
    try:
        loaded = OmegaConf.load(path) if Path(path).exists() else OmegaConf.create({})
    except Exception as e:  # yaml syntax errors carry their own line numbers
        raise ConfigError(f"{source}: cannot parse YAML: {e}") from None
    if "source" in loaded:
        raise ConfigError(f"{source}: source: unknown key")
    try:
        merged = OmegaConf.merge(schema, loaded, OmegaConf.from_dotlist(list(overrides)))
        params: Params = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = str(e).splitlines()[0]
        raise ConfigError(f"{source}: {key}: {msg}") from None
    params.source = source
    validate_sections(params)
    return params


def validate_sections(params: Params) -> None:
    for f in dataclasses.fields(params):
        if not f.metadata.get("internal"):
            validate(getattr(params, f.name), f.name, params.source)


def to_dict(params: Params) -> dict[str, Any]:
    """Plain nested dict of the params (for logging), without internal fields."""
    return {
        f.name: dataclasses.asdict(getattr(params, f.name))
        for f in dataclasses.fields(params)
        if not f.metadata.get("internal")
    }


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} → {"a.b": 1}`` for MLflow params."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
