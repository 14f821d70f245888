from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class GenResponsesParams:
    """Retrieval-grounded responses (issue: self-generation)."""

    retrieval: bool = knob(True, help="ground responses in retrieved passages (the paper ablation)")
    top_k: int = knob(3, gt=0, help="passages per prompt")
    n_demos: int = knob(5, ge=0, help="seed demonstrations per prompt")
