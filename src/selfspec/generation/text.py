"""Text checks shared by the generation stages: ROUGE-L pools, n-grams, repetition loops."""

from __future__ import annotations

import math
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
    """Texts kept so far, for ROUGE-L F1 novelty checks: rouge-score's numbers, computed fast.

    rouge-score tokenizes as ``words`` does (lowercased ``[a-z0-9]+`` runs, no stemming) and takes
    F1 from the LCS length as ``2*p*r/(p+r)``; here the LCS is rapidfuzz's bit-parallel C++ one on
    token ids, and F1 is that same float expression, so every score and decision is rouge-score's.

    ``exceeds(text, t)`` compares only the entries that could score above ``t``. F1 > t needs an
    LCS, hence a shared multiset of tokens, of more than ``t*n/(2-t)`` tokens for an entry of ``n``.
    By the prefix filter of set-similarity joins, such a pair then shares one of the few *rarest*
    tokens of each (rarity fixed by the texts the pool starts with), so a check reads a few posting
    lists instead of the whole pool (benchmarks/rouge_pool.py: 180x rouge-score at 5,000 kept).
    """

    def __init__(self, texts: Iterable[str] = ()):
        self.words: list[list[str]] = []  # per entry, in text order
        self.tokens: list[list[int]] = []  # the same as ids, for rapidfuzz
        self._vocab: dict[str, int] = {}
        self._indexes: dict[float, dict[tuple[str, int], list[int]]] = {}  # threshold: prefix index
        start = [words(t) for t in texts]
        self._df = Counter(w for ws in start for w in set(ws))  # fixed: the prefix order must not move
        for ws in start:
            self._add(ws)

    def add(self, text: str) -> None:
        self._add(words(text))

    def scores(self, text: str) -> list[float]:
        """ROUGE-L F1 of ``text`` against every entry, in pool order."""
        ids = self._ids(words(text))
        return [self._f1(ids, j) for j in range(len(self.tokens))]

    def max_similarity(self, text: str) -> float:
        return max(self.scores(text), default=0.0)

    def exceeds(self, text: str, threshold: float) -> bool:
        """``max_similarity(text) > threshold``, without comparing entries that cannot get there."""
        if threshold < 0:
            return bool(self.tokens)
        index, ws = self._index(threshold), words(text)
        near = sorted({j for key in self._prefix(ws, threshold) for j in index.get(key, ())})
        ids = self._ids(ws)
        return any(self._f1(ids, j) > threshold for j in near)

    def __len__(self) -> int:
        return len(self.tokens)

    def _add(self, ws: list[str]) -> None:
        self.words.append(ws)
        self.tokens.append([self._vocab.setdefault(w, len(self._vocab)) for w in ws])
        for threshold, index in self._indexes.items():
            for key in self._prefix(ws, threshold):
                index.setdefault(key, []).append(len(self.tokens) - 1)

    def _ids(self, ws: list[str]) -> list[int]:
        return [self._vocab.get(w, -1 - i) for i, w in enumerate(ws)]  # unknown words match nothing

    def _f1(self, ids: list[int], j: int) -> float:
        """rouge-score's ``_score_lcs(target=entry j, prediction=ids).fmeasure``, the same floats."""
        from rapidfuzz.distance import LCSseq

        target = self.tokens[j]
        if not ids or not target:
            return 0.0
        lcs = LCSseq.similarity(ids, target)
        precision, recall = lcs / len(ids), lcs / len(target)
        return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0

    def _prefix(self, ws: list[str], threshold: float) -> list[tuple[str, int]]:
        """The rarest ``n - a + 1`` of the ``n`` (word, occurrence) pairs of ``ws``, where ``a`` is
        the least LCS that can give F1 > threshold with any text (see the class note)."""
        n = len(ws)
        if threshold >= 1 or n == 0:
            return []
        least = math.floor(threshold * n / (2 - threshold) - 1e-9) + 1  # rounded down: never misses
        seen: Counter[str] = Counter()
        pairs = []
        for w in ws:
            pairs.append((w, seen[w]))
            seen[w] += 1
        pairs.sort(key=lambda pair: (self._df[pair[0]], pair))
        return pairs[: max(0, n - max(1, least) + 1)]

    def _index(self, threshold: float) -> dict[tuple[str, int], list[int]]:
        """The prefix index for ``threshold``: built on first use, kept up to date by ``add``."""
        if threshold not in self._indexes:
            index: dict[tuple[str, int], list[int]] = {}
            for j, ws in enumerate(self.words):
                for key in self._prefix(ws, threshold):
                    index.setdefault(key, []).append(j)
            self._indexes[threshold] = index
        return self._indexes[threshold]
