from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class GenInstructionsParams:
    """Self-Instruct brainstorming of new domain instructions (issue: self-generation)."""

    n_instructions: int = knob(100, gt=0, help="instructions to keep")
    seeds_per_prompt: int = knob(3, gt=0)
    temperature: float = knob(1.0, ge=0)
    top_p: float = knob(0.98, gt=0, le=1)
