from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class PrepareEvalsParams:
    """Fetching and converting evaluation data sets (issue: benchmark)."""

    sources: str = knob("evals/sources.yaml", help="public source and checksum of each data set")
