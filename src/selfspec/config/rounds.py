from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class RoundsParams:
    """Iterative self-specialization (issue 16, paper v2): after round 1 (``train``), the specialized
    model (base + the previous round's adapter, merged) answers the same instructions and inputs again,
    with retrieval, the same prompts and filters, and a new adapter is trained on its answers."""

    n: int = knob(
        1, ge=1, le=20, help="rounds in all, round 1 being gen_responses -> filter_records -> train; "
        "1: no extra round (the default cost); 3: rounds 2 and 3 after train",
    )  # fmt: skip
