from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfspec.config._fields import knob


@dataclass
class EvaluateParams:
    """lm-eval settings shared by evaluate_base and evaluate (issue: benchmark), and the promotion gate."""

    include_path: list[str] = knob(factory=lambda: ["evals/tasks"], help="folders of lm-eval task YAMLs")
    # null: the domain's suite (<base.suites_dir>/<base.domain>.yaml), as for primary_task/metric
    tasks: list[str] | None = knob(None, help="lm-eval task or group names; null: the domain's")
    num_fewshot: int = knob(0, ge=0)
    batch_size: int = knob(8, gt=0)
    # an int (every task), null (all documents) or a mapping {task or group: int | null, default: ...}
    # (measured: 200 PubMedQA + 100 per generative task keeps the default run near 30 min on 2 CPU cores)
    limit: Any = knob(
        factory=lambda: {"default": 100, "pubmedqa": 200},
        help="first N documents per task: int, null (all) or {task: N, default: N}",
    )
    # the gate: the interval's lower bound on primary_task/primary_metric must reach the margin. A group
    # (or tag) without lm-eval aggregation has metric `pooled`: the mean of its members' primary metrics
    primary_task: str | None = knob(None, help="task or group the gate reads; null: the domain's")
    primary_metric: str | None = knob(
        None, help="its metric (`pooled`: a group's pooled primary); null: the domain's"
    )
    # ci_low >= margin promotes; 0: better than base at the stated confidence; negative: non-inferiority
    margin: float = knob(0.0, ge=-1.0, le=1.0, help="promote (alias champion) when ci_low >= margin")
    n_boot: int = knob(1000, ge=100, le=100000, help="paired bootstrap replicates (seeded by base.seed)")
    confidence: float = knob(0.95, gt=0.5, lt=1.0, help="coverage of the bootstrap interval")

    def check(self) -> None:
        if self.tasks is not None and not self.tasks:
            raise ValueError("tasks: empty; name at least one lm-eval task")
        if not self.include_path:
            raise ValueError("include_path: empty; evals/tasks holds the suite's task YAMLs")
        problem = limit_problem(self.limit)
        if problem:
            raise ValueError(f"limit{problem}")


def limit_problem(limit: Any) -> str | None:
    """What is wrong with an ``evaluate.limit`` value (``": ..."`` or ``".key: ..."``), or None."""
    expected = "a positive int, null (all documents) or a mapping {task or group: positive int | null}"
    if limit is None or _positive_int(limit):
        return None
    if not isinstance(limit, dict):
        return f": expected {expected}, got {limit!r}"
    for key, value in limit.items():
        if value is not None and not _positive_int(value):
            return f".{key}: expected a positive int or null, got {value!r}"
    return None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
