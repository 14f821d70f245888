"""Which of the requested lm-eval tasks can run: their local data files exist, or the data set is
known to be unavailable (listed in data/prepare_evals/manifest.json) and the task is skipped.

Only the folders of ``evaluate.include_path`` are indexed (lm-eval's built-in tasks download their
data from the hub and would not run offline). Paths in ``data_files`` are relative to the repo root.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import StageError

log = logging.getLogger(__name__)


@dataclass
class Plan:
    run: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # task -> why


def task_manager(include_path: list[str]):
    from lm_eval.tasks import TaskManager

    for folder in include_path:
        if not Path(folder).is_dir():
            raise StageError("evaluate", f"evaluate.include_path: {folder} is not a folder")
    return TaskManager(include_path=[str(p) for p in include_path], include_defaults=False)


def data_files(index: dict[str, Any], name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """The local data files a task, group or tag reads (recursively through groups and tags)."""
    from lm_eval.tasks._index import Kind

    if name in seen or name not in index:
        return []
    entry, seen = index[name], seen | {name}
    if entry.kind == Kind.TAG:
        members: list[Any] = [n for n, e in index.items() if name in e.tags]
    elif entry.kind == Kind.GROUP:
        members = list((entry.cfg or {}).get("task") or [])
    else:
        return _config_files(entry.cfg or {})
    # a group member is a name, or an inline task config with its own dataset_kwargs
    return [
        f for m in members for f in (data_files(index, m, seen) if isinstance(m, str) else _config_files(m))
    ]


def _config_files(cfg: dict[str, Any]) -> list[str]:
    files = (cfg.get("dataset_kwargs") or {}).get("data_files") or []
    if isinstance(files, dict):
        files = list(files.values())
    flat = [files] if isinstance(files, str) else files
    return [f for item in flat for f in ([item] if isinstance(item, str) else item)]


def plan_tasks(index: dict[str, Any], names: list[str], unavailable: set[str], stage: str) -> Plan:
    """Split ``names`` into tasks to run and tasks skipped because their data set is unavailable.

    A missing data file that the manifest does not explain is an error: the data was never prepared.
    """
    plan = Plan()
    for name in names:
        if name not in index:
            known = ", ".join(sorted(n for n in index if not n.startswith("_")))
            raise StageError(
                stage, f"evaluate.tasks: {name!r} is not in evaluate.include_path (known: {known})"
            )
        missing = sorted({f for f in data_files(index, name) if not Path(f).is_file()})
        if not missing:
            plan.run.append(name)
            continue
        unexplained = [f for f in missing if Path(f).stem not in unavailable]
        if unexplained:
            raise StageError(
                stage, f"task {name}: data files {unexplained} not found; run `dvc repro prepare_evals`"
            )
        sets = sorted({Path(f).stem for f in missing})
        plan.skipped[name] = f"data sets {sets} unavailable (see data/prepare_evals/manifest.json)"
        log.warning("[%s] skipping task %s: %s", stage, name, plan.skipped[name])
    if not plan.run:
        raise StageError(stage, f"no task can run: {plan.skipped}")
    return plan


# --- the loaded suite: what the paired comparison and per-task limits need ---------------------------


@dataclass
class TaskSpec:
    aggregation: dict[str, Any]  # lm-eval metric -> its aggregation function (the Task's own)
    primary: str  # metadata.primary_metric, else the first metric of metric_list
    size: int  # documents in the evaluation split


@dataclass
class GroupSpec:
    members: list[str]  # leaf tasks
    aggregate: list[tuple[str, bool]]  # lm-eval's aggregate_metric_list: (metric, weight_by_size)


@dataclass
class Suite:
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    groups: dict[str, GroupSpec] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)  # leaf -> the evaluate.tasks name it came from


def load_suite(task_manager, names: list[str]) -> Suite:
    """lm-eval's Task and Group objects of ``names``; a tag becomes a group without aggregation."""
    from lm_eval.tasks._index import Kind

    suite = Suite()
    for name in names:
        loaded = task_manager.load([name])
        for leaf, task in loaded["tasks"].items():
            primary = (task.config.metadata or {}).get("primary_metric") or next(iter(task.aggregation()))
            suite.tasks[leaf] = TaskSpec(dict(task.aggregation()), primary, len(task.eval_docs))
            suite.parent[leaf] = name
        for gname, group in loaded["groups"].items():
            aggregate = [(a.metric, bool(a.weight_by_size)) for a in group.aggregate_metric_list or []]
            suite.groups[gname] = GroupSpec([t.task_name for t in group.get_all_tasks()], aggregate)
        if task_manager.task_index[name].kind == Kind.TAG:
            suite.groups[name] = GroupSpec(sorted(loaded["tasks"]), [])
    return suite


def check_limit_keys(index: dict[str, Any], limit: Any, stage: str) -> None:
    """A per-task ``evaluate.limit`` names tasks or groups that exist (a typo would silently run all)."""
    if not isinstance(limit, dict):
        return
    unknown = sorted(k for k in limit if k != "default" and k not in index)
    if unknown:
        raise StageError(stage, f"evaluate.limit: {unknown} are not tasks or groups in evaluate.include_path")


def resolve_limits(limit: Any, suite: Suite) -> dict[str, int | None]:
    """Per leaf task: its own key, else that of the evaluate.tasks entry it belongs to, else
    ``default`` (None: all documents)."""
    if not isinstance(limit, dict):
        return {leaf: limit for leaf in suite.tasks}
    return {
        leaf: limit.get(leaf, limit.get(suite.parent[leaf], limit.get("default"))) for leaf in suite.tasks
    }


def sample_indices(limit: Any, suite: Suite) -> dict[str, list[int]]:
    """lm-eval's ``samples`` argument: the first N documents of each limited task (lm-eval's own
    ``limit`` is one number for all tasks)."""
    limits = resolve_limits(limit, suite)
    return {leaf: list(range(min(n, suite.tasks[leaf].size))) for leaf, n in limits.items() if n is not None}
