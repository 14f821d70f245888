from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class GenerationParams:
    """The generation backend shared by the gen_* stages (issue: self-generation)."""

    backend: str = knob("transformers", choices=["transformers", "openai", "vllm"])
    batch_size: int = knob(8, gt=0, help="prompts per batch (transformers) or concurrent requests (openai)")
