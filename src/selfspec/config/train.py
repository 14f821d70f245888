from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class TrainParams:
    """QLoRA specialization (issue: specialization)."""

    lora_r: int = knob(8, gt=0)
    lora_alpha: int = knob(16, gt=0)
    learning_rate: float = knob(3e-4, gt=0)
    epochs: float = knob(3.0, gt=0)
