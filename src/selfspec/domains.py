"""A domain is data: ``base.domain`` picks its seeds, its corpus and its evaluation suite.

Seeds are ``<base.seeds_dir>/<domain>.jsonl``, the corpus ``<base.corpora_dir>/<domain>.yaml`` and the
evaluation suite ``<base.suites_dir>/<domain>.yaml``: the data sets ``prepare_evals`` fetches and the
lm-eval tasks, primary task and metric the evaluate stages run and gate on. Those four params are
left ``null`` in params.yaml, which means "the domain's"; a value set there (or with ``-S``) wins.
A suite may bring its own task folders (``include_path``), added to ``evaluate.include_path``.
So ``-S base.domain=finance`` changes seeds, corpus and evaluation, and no other param.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfspec.errors import ConfigError

# param (section.key) -> suite file key; these, and only these, follow the domain
OWNED = {
    "prepare_evals.datasets": "datasets",
    "evaluate.tasks": "tasks",
    "evaluate.primary_task": "primary_task",
    "evaluate.primary_metric": "primary_metric",
}
# and the suite's own task folders, added to evaluate.include_path (biomedical's live in evals/tasks)
SUITE_KEYS = {"description", "include_path", *OWNED.values()}


@dataclass(frozen=True)
class Suite:
    path: Path
    datasets: list[str]
    tasks: list[str]
    primary_task: str
    primary_metric: str
    description: str = ""
    include_path: tuple[str, ...] = ()


def suite_path(params: Any, root: str | Path = ".") -> Path:
    """``<root>/<base.suites_dir>/<base.domain>.yaml``; ``root``: the folder of the params file."""
    suites = Path(params.base.suites_dir)
    return (suites if suites.is_absolute() else Path(root) / suites) / f"{params.base.domain}.yaml"


def load_suite(path: str | Path) -> Suite:
    """Read and check a suite file; a missing file or a wrong key is a ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        found = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise ConfigError(
            f"{path}: evaluation suite not found for domain {path.stem!r} (<base.suites_dir>/<base.domain>"
            f".yaml; suites present: {', '.join(found) or 'none'}). Write one, or set "
            f"{', '.join(OWNED)} in params.yaml"
        )
    from selfspec.io import read_yaml_config

    raw = read_yaml_config(path)
    return _parse(raw, path)


def _parse(raw: Any, path: Path) -> Suite:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): must be a mapping, got {type(raw).__name__}")
    if unknown := sorted(set(raw) - SUITE_KEYS):
        raise ConfigError(f"{path}: {unknown[0]}: unknown key (allowed: {', '.join(sorted(SUITE_KEYS))})")
    for key in ("datasets", "tasks"):
        value = raw.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{path}: {key}: must be a non-empty list of names, got {value!r}")
        if dupes := sorted({v for v in value if value.count(v) > 1}):
            raise ConfigError(f"{path}: {key}: duplicate names {dupes}")
    for key in ("primary_task", "primary_metric"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{path}: {key}: must be a non-empty string, got {raw.get(key)!r}")
    folders = raw.get("include_path") or []
    if not isinstance(folders, list) or not all(isinstance(f, str) and f for f in folders):
        raise ConfigError(f"{path}: include_path: must be a list of folders, got {folders!r}")
    return Suite(path, list(raw["datasets"]), list(raw["tasks"]), raw["primary_task"],
                 raw["primary_metric"], str(raw.get("description") or ""), tuple(folders))  # fmt: skip


def resolve(params: Any, root: str | Path = ".", required: Sequence[str] = ()) -> None:
    """Fill the domain-owned params left null from the domain's suite, in place.

    ``required``: the params entries a stage reads (``section`` or ``section.key``). A missing suite
    is an error when one of them is still null; otherwise (a script reading other sections, a test's
    small params file) the nulls stay, and nothing outside the repo is needed.
    """
    unset = [key for key in OWNED if _get(params, key) is None]
    if not unset:
        return
    path = suite_path(params, root)
    if not path.is_file() and not any(_covers(entry, key) for entry in required for key in unset):
        return
    suite = load_suite(path)
    for key in unset:
        section, name = key.split(".")
        setattr(getattr(params, section), name, getattr(suite, OWNED[key]))
    known = params.evaluate.include_path
    params.evaluate.include_path = [*known, *(f for f in suite.include_path if f not in known)]


def _get(params: Any, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(params, section), name)


def _covers(entry: str, key: str) -> bool:
    return key == entry or key.startswith(entry + ".")
