"""Normalising documents and splitting long ones into overlapping, bounded passages."""

from __future__ import annotations

import math
import re
import unicodedata

_SPACE = re.compile(r"\s+")
_CONTROL = {c for c in map(chr, range(32)) if c not in "\t\n\r"} | {"\x7f"}


def normalise(text: str) -> str:
    """NFC, control characters removed, whitespace runs collapsed to one space."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if ch in _CONTROL else ch for ch in text)
    return _SPACE.sub(" ", text).strip()


def split_words(text: str, max_words: int, overlap_words: int) -> list[str]:
    """Windows of at most ``max_words`` words; consecutive windows share ``overlap_words`` words.

    Windows are balanced (equal length, as few as fit) so that no passage is a short leftover tail
    nor a near copy of its neighbour, as a fixed stride with an end-aligned last window would give.
    """
    words = text.split()
    if len(words) <= max_words:
        return [text]
    n = math.ceil((len(words) - overlap_words) / (max_words - overlap_words))
    size = math.ceil((len(words) + (n - 1) * overlap_words) / n)
    step = size - overlap_words
    return [" ".join(words[i * step : i * step + size]) for i in range(n)]


def alpha_ratio(text: str) -> float:
    """Share of letters among the non-space characters (0 for an empty text)."""
    chars = [ch for ch in text if not ch.isspace()]
    return sum(ch.isalpha() for ch in chars) / len(chars) if chars else 0.0
