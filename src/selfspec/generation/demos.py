"""Which seeds a prompt shows: the closest by ROUGE-L (gen_inputs, gen_responses) or a seeded draw
(gen_instructions). Both are functions of their inputs alone, so a resumed run shows the same."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from selfspec.generation import derive_seed
from selfspec.generation.text import RougePool


def nearest_seeds(instruction: str, seeds: Sequence[Any], pool: RougePool, n: int) -> list[Any]:
    """The ``n`` seeds whose instructions are closest (ROUGE-L) to ``instruction``, closest last
    (nearest the open slot in the prompt); ties keep seed-file order, so the choice is stable.
    ``pool`` holds the seeds' instructions in seed order."""
    if n == 0:
        return []
    scores = pool.scores(instruction)
    order = sorted(range(len(seeds)), key=lambda i: (-scores[i], i))[:n]
    return [seeds[i] for i in reversed(order)]


def sample_seeds(seeds: Sequence[Any], k: int, *parts: object) -> list[Any]:
    """``k`` seeds drawn with an RNG of their own (seeded by ``parts``): no global random state."""
    return random.Random(derive_seed(*parts)).sample(list(seeds), min(k, len(seeds)))
