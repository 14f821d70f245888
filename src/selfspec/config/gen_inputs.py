from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class GenInputsParams:
    """An input context for each instruction that needs one (issue: self-generation)."""

    temperature: float = knob(0.7, ge=0)
    top_p: float = knob(0.95, gt=0, le=1)
    max_new_tokens: int = knob(128, gt=0)
    n_demos: int = knob(3, ge=1, help="seed (instruction, input) demonstrations per prompt")
    demo_max_words: int = knob(80, gt=0, help="seed inputs are cut to this many words in prompts")
    min_words: int = knob(3, ge=1, help="a shorter generated input drops the record")
