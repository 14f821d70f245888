"""Which seeds to show as demonstrations for a record.

The nearest seeds by ROUGE-L alone make the same few seeds (those with the commonest words) the
demos of most records. Ranking seeds of the record's own task type first keeps the answer format
right (a yes/no task sees yes/no answers), and drawing ``n`` of the ``candidates`` nearest with an
RNG seeded by the record spreads the demos over more seeds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from selfspec.generation import derive_seed
from selfspec.generation.text import RougePool


def choose_demos(
    instruction: str, task_type: str, seeds: Sequence[Any], pool: RougePool, n: int, candidates: int,
    match_type: bool, *rng_parts: object,
) -> list[Any]:  # fmt: skip
    """``n`` demos, closest last. ``candidates`` <= ``n``: exactly the ``n`` nearest (no draw)."""
    if n == 0:
        return []
    scores = pool.scores(instruction)
    same = [match_type and bool(task_type) and s.task_type == task_type for s in seeds]
    order = sorted(range(len(seeds)), key=lambda i: (not same[i], -scores[i], i))
    top = order[: max(n, candidates)]
    if len(top) > n:
        picked = set(random.Random(derive_seed(*rng_parts)).sample(top, n))
        top = [i for i in top if i in picked]
    return [seeds[i] for i in reversed(top)]
