from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class FilterRecordsParams:
    """Filters on generated records (issue: self-generation)."""

    contamination_ngram: int = knob(13, gt=0, help="n-gram size for the evaluation-overlap check")
