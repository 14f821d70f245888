"""Shortening demos and passages at sentence boundaries instead of mid-sentence.

A demo cut mid-sentence teaches the model to stop mid-sentence; an abstract cut after its first 40
words loses its results, which is what a yes/no answer rests on. ``cut_sentences`` keeps whole
sentences: the first one, then (``keep_last``) the last ones that fit, so an abstract keeps its
question and its conclusion.
"""

from __future__ import annotations

import re

from selfspec.generation.text import truncate_words

# A sentence ends at . ! ? (optionally closed by a quote or bracket) before whitespace, or at a line
# break; "e.g. x" and "2.5 mg" do not end one (lowercase / digit follows the dot).
_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z(\[\"'])|\n+")
GAP = " ... "


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _END.split(text) if s and s.strip()]


def cut_sentences(text: str, max_words: int, keep_last: bool = False) -> str:
    """Whole sentences of ``text`` within ``max_words`` (the first always, even when longer);
    dropped sentences leave a " ... ". ``keep_last``: fill the budget from the end, not the start."""
    parts = sentences(text)
    sizes = [len(s.split()) for s in parts]
    if sum(sizes) <= max_words:
        return text
    chosen, used = {0}, sizes[0]
    order = range(len(parts) - 1, 0, -1) if keep_last else range(1, len(parts))
    for i in order:
        if used + sizes[i] > max_words:
            break
        chosen.add(i)
        used += sizes[i]
    out, last = "", -1
    for i in sorted(chosen):
        out += (GAP if i != last + 1 else " ") + parts[i] if out else parts[i]
        last = i
    return out + (" ..." if last < len(parts) - 1 else "")


def shorten(text: str, max_words: int, mode: str, keep_last: bool = False) -> str:
    """``mode`` "sentences" (whole sentences) or "words" (the old cut: the first ``max_words``)."""
    if mode == "words":
        return truncate_words(text, max_words)
    return cut_sentences(text, max_words, keep_last)
