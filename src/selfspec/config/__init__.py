"""params.yaml → OmegaConf → dataclasses. One section per stage plus ``base``.

A wrong key, a wrong type or an out-of-range value raises ``ConfigError`` naming the file and
the key, before any compute. Each section's schema lives in its own module of this package.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
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
from selfspec.config.mixture import MixtureParams
from selfspec.config.prepare_evals import PrepareEvalsParams
from selfspec.config.prepare_model import PrepareModelParams
from selfspec.config.rounds import RoundsParams
from selfspec.config.tracking import TrackingParams
from selfspec.config.train import TrainParams
from selfspec.domains import resolve as resolve_domain
from selfspec.errors import ConfigError

__all__ = ["Params", "load_params", "default_params", "stage_sections", "knob", "validate", "DEFAULT_PARAMS"]

DEFAULT_PARAMS = "params.yaml"
DEFAULTS = "(schema defaults)"  # the source of params built without a file


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
    mixture: MixtureParams = field(default_factory=MixtureParams)
    rounds: RoundsParams = field(default_factory=RoundsParams)

    # where these params were read from (not a params key)
    source: str = field(default=DEFAULT_PARAMS, metadata={"internal": True})

    @property
    def data_mirror(self) -> Path | None:
        """The data mirror folder, from SELFSPEC_DATA_MIRROR or base.data_mirror; None if unset."""
        value = os.environ.get("SELFSPEC_DATA_MIRROR") or self.base.data_mirror
        return _outside_exp_copy(Path(value)) if value else None


def _outside_exp_copy(path: Path) -> Path:
    """A relative path as seen from the real repo root when running in ``dvc exp run --temp/--queue``'s
    copy (``<repo>/.dvc/tmp/exps/standalone/tmpXXXX/``, where stages run at the copy's root): the mirror
    is beside the repo, not beside the copy. Matters since ``data/external/`` is not cached: those
    copies re-read the mirror."""
    parts = Path.cwd().parts
    if path.is_absolute():
        return path
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i]) / path
    return path


def validate(obj: Any, prefix: str, source: str | Callable[[str], str]) -> None:
    """Check every knob's bounds and choices, then the section's own ``check()`` if it has one.

    ``source`` names where a key came from: a file name, or a function of the key (``-S`` overrides).
    """
    where = source if callable(source) else (lambda key: source)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(value):
            validate(value, key, where)
            continue
        problem = check_field(value, dict(f.metadata))
        if problem:
            raise ConfigError(f"{where(key)}: {key}: {problem}")
    check = getattr(obj, "check", None)
    if callable(check):
        try:
            check()
        except ValueError as e:  # sections raise ValueError("field: problem")
            key = f"{prefix}.{str(e).split(':', 1)[0]}"
            raise ConfigError(f"{where(key)}: {prefix}.{e}") from None


def load_params(
    path: str | os.PathLike = DEFAULT_PARAMS, overrides: Sequence[str] = (), sections: Sequence[str] = ()
) -> Params:
    """Load and validate params; ``overrides`` are ``section.key=value`` strings.

    A missing file is an error (a mistyped ``--params`` must not run on defaults: use
    ``default_params`` for those on purpose). ``sections``: entries (``section`` or ``section.key``)
    that the file or an override must set — what a stage reads (``stage_sections``).
    """
    from omegaconf import OmegaConf

    if not Path(path).is_file():
        raise ConfigError(f"{path}: params file not found (cwd {Path.cwd()}); give --params PATH")
    try:
        loaded = OmegaConf.load(path)
    except Exception as e:  # yaml syntax errors carry their own line numbers
        raise ConfigError(f"{path}: cannot parse YAML: {e}") from None
    params = _build(loaded, overrides, str(path))  # wrong keys and values first, then what is missing
    _require(loaded, overrides, sections, str(path))
    resolve_domain(params, Path(path).parent, sections)  # null evaluation params: the domain's suite
    return params


def default_params(overrides: Sequence[str] = ()) -> Params:
    """The schema's defaults (not params.yaml's) plus ``overrides``: for tests and scripts, on purpose."""
    from omegaconf import OmegaConf

    params = _build(OmegaConf.create({}), overrides, DEFAULTS)
    resolve_domain(params)  # from ./<base.suites_dir> when it is there
    return params


def _build(loaded: Any, overrides: Sequence[str], source: str) -> Params:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if "source" in loaded:
        raise ConfigError(f"{source}: source: unknown key")
    where = _attribution(source, overrides)
    try:
        merged = OmegaConf.merge(
            OmegaConf.structured(Params), loaded, OmegaConf.from_dotlist(list(overrides))
        )
        params: Params = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"{where(key)}: {key}: {str(e).splitlines()[0]}") from None
    params.source = source
    for f in dataclasses.fields(params):
        if not f.metadata.get("internal"):
            validate(getattr(params, f.name), f.name, where)
    return params


def _attribution(source: str, overrides: Sequence[str]) -> Callable[[str], str]:
    """Where a key's value came from: ``-S key=value`` when an override set it, else the file.

    ``dvc exp run -S`` writes its values into params.yaml before the stage runs, so those can only
    be traced to the file; under ``dvc exp run`` (DVC_EXP_NAME set) the message says so.
    """
    given = {o.split("=", 1)[0].strip(): o for o in overrides}
    label = source
    if os.environ.get("DVC_EXP_NAME") and source != DEFAULTS:
        label = f"{source} (possibly set by `dvc exp run -S`, experiment {os.environ['DVC_EXP_NAME']})"

    def where(key: str) -> str:
        hit = next((o for k, o in given.items() if key == k or key.startswith(k + ".")), None)
        return f"-S {hit}" if hit else label

    return where


def _require(loaded: Any, overrides: Sequence[str], sections: Sequence[str], source: str) -> None:
    from omegaconf import OmegaConf

    given = OmegaConf.merge(loaded, OmegaConf.from_dotlist(list(overrides)))
    for entry in sections:
        if OmegaConf.select(given, entry, default=_MISSING) is _MISSING:
            raise ConfigError(
                f"{source}: {entry}: missing; this stage reads it (dvc.yaml params). "
                "Add it (see the shipped params.yaml) or pass -S"
            )


_MISSING = object()


def stage_sections(stage: str, dvc_yaml: str | os.PathLike = "dvc.yaml") -> list[str]:
    """The params entries ``stage`` reads: its dvc.yaml ``params`` list, else its own section.

    DVC refuses a stage whose params are missing from params.yaml; a stage run directly
    (``selfspec <stage>``) gets the same check from the CLI instead of running on defaults.
    """
    import yaml

    path = Path(dvc_yaml)
    if path.is_file():
        stages = (yaml.safe_load(path.read_text()) or {}).get("stages") or {}
        if stage in stages:
            return [p for p in stages[stage].get("params") or [] if isinstance(p, str)]
    return [stage] if stage in {f.name for f in dataclasses.fields(Params)} else []


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
