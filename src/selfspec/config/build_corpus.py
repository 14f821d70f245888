from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class BuildCorpusParams:
    """Turning corpora/<domain>.yaml into one passage file (issue: retrieval)."""

    max_words: int = knob(200, gt=0, help="passage length bound, in words")
    overlap_words: int = knob(40, ge=0, help="words shared by consecutive passages of one document")
    min_words: int = knob(12, ge=0, help="shorter passages are dropped")
