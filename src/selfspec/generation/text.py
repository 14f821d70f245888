"""Text checks shared by the generation stages: ROUGE-L pools, n-grams, repetition loops."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lowercased alphanumeric words: the unit of every length and n-gram check here."""
    return WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def repeat_ratio(text: str, n: int = 4) -> float:
    """Share of word n-grams that are repeats of an earlier one: ~0 for prose, near 1 for a loop."""
    grams = [tuple(g) for g in zip(*(words(text)[i:] for i in range(n)), strict=False)]
    if len(grams) < 2:
        return 0.0
    counts = Counter(grams)
    return sum(c - 1 for c in counts.values()) / len(grams)


def truncate_words(text: str, max_words: int) -> str:
    """The first ``max_words`` whitespace-separated words (with "..." when cut)."""
    parts = text.split()
    return text if len(parts) <= max_words else " ".join(parts[:max_words]) + " ..."


class RougePool:
    """Instructions kept so far; ``max_similarity`` is ROUGE-L F1 (``rouge-score``) vs the closest.

    Texts are tokenized once with rouge-score's own tokenizer (the scorer would re-tokenize the
    whole pool for every candidate).
    """

    def __init__(self, texts: Iterable[str] = ()):
        from rouge_score import rouge_scorer

        self._tokenize = rouge_scorer.RougeScorer(["rougeL"])._tokenizer.tokenize
        self._lcs = rouge_scorer._score_lcs
        self.tokens: list[list[str]] = []
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        self.tokens.append(self._tokenize(text))

    def similarities(self, text: str) -> list[float]:
        """ROUGE-L F1 of ``text`` against each pooled text, in the order they were added."""
        candidate = self._tokenize(text)
        return [self._lcs(t, candidate).fmeasure for t in self.tokens]

    def max_similarity(self, text: str) -> float:
        return max(self.similarities(text), default=0.0)

    def __len__(self) -> int:
        return len(self.tokens)
