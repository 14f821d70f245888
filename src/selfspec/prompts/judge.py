"""Parser for ``judge.yaml``: the rating a completion gave."""

from __future__ import annotations

import re

SCORE = re.compile(r"[1-5]")


def parse_score(completion: str) -> int | None:
    """The first digit 1-5 in the completion; None when it gave none (the record is not judged)."""
    match = SCORE.search(completion)
    return int(match.group(0)) if match else None
