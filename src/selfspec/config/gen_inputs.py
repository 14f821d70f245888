from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class GenInputsParams:
    """An input context for each instruction (issue: self-generation)."""

    temperature: float = knob(1.0, ge=0)
    top_p: float = knob(0.98, gt=0, le=1)
