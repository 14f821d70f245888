from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class BuildCorpusParams:
    """Turning corpora/<domain>.yaml into one passage file (issue: retrieval)."""

    max_words: int = knob(200, gt=0, help="passage length bound, in words")
    overlap_words: int = knob(40, ge=0, help="words shared by consecutive passages of one document")
    min_words: int = knob(12, ge=0, help="shorter passages are dropped")
    min_alpha_ratio: float = knob(
        0.5,
        ge=0,
        le=1,
        help="passages whose share of letters among non-space characters is lower are non-text",
    )
    near_duplicates: bool = knob(True, help="also drop near duplicates (MinHash over word 5-grams)")
    near_dup_threshold: float = knob(
        0.8, gt=0, le=1, help="estimated Jaccard similarity at or above which a passage is a near duplicate"
    )

    def check(self) -> None:
        if self.overlap_words >= self.max_words:
            raise ValueError(
                f"overlap_words: must be < max_words ({self.max_words}), got {self.overlap_words}"
            )
        if self.min_words > self.max_words:
            raise ValueError(f"min_words: must be <= max_words ({self.max_words}), got {self.min_words}")
