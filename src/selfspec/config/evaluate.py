from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class EvaluateParams:
    """lm-eval settings shared by evaluate_base and evaluate (issue: benchmark)."""

    num_fewshot: int = knob(0, ge=0)
    batch_size: int = knob(8, gt=0)
    limit: int | None = knob(None, gt=0, help="examples per task; null: all")
