"""corpus.dedup: exact duplicates by folded words; near duplicates found by datasketch's MinHash LSH
and decided by the exact Jaccard of word 5-gram sets (so a pair below the threshold is never dropped)."""

from __future__ import annotations

import random

from selfspec.corpus.dedup import Deduper

VOCAB = [f"term{i}" for i in range(400)]


def shingle_jaccard(a: str, b: str, n: int = 5) -> float:
    """Exact Jaccard of word n-gram sets, written here independently of the code under test."""
    grams = [{tuple(t[i : i + n]) for i in range(len(t) - n + 1)} for t in (a.split(), b.split())]
    return len(grams[0] & grams[1]) / len(grams[0] | grams[1])


def pairs(count: int, edits: range, seed: int = 3) -> list[tuple[str, str, float]]:
    """(text, the text with a few words replaced, their exact Jaccard)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = rng.choices(VOCAB, k=120)
        edited = list(words)
        for i in rng.sample(range(120), rng.choice(edits)):
            edited[i] = "changed"
        a, b = " ".join(words), " ".join(edited)
        out.append((a, b, shingle_jaccard(a, b)))
    return out


def near(a: str, b: str, threshold: float = 0.8) -> bool:
    deduper = Deduper(near=True, threshold=threshold)
    assert deduper.check(a) is None
    return deduper.check(b) == "near"


def test_exact_duplicates_ignore_case_accents_and_punctuation():
    deduper = Deduper(near=False)
    assert deduper.check("Ménière's disease, treated.") is None
    assert deduper.check("MENIERE S DISEASE TREATED") == "exact"
    assert deduper.check("Meniere disease treated") is None


def test_a_pair_below_the_threshold_is_never_dropped():
    close = [(a, b, j) for a, b, j in pairs(300, range(4, 7)) if 0.7 <= j < 0.8]
    assert len(close) > 100  # near the threshold, where a MinHash estimate (sd ~0.035) would flip
    assert [j for a, b, j in close if near(a, b)] == []


def test_a_pair_well_above_the_threshold_is_dropped():
    similar = [(a, b, j) for a, b, j in pairs(100, range(1, 2), seed=5) if j >= 0.9]
    assert len(similar) > 90
    assert [j for a, b, j in similar if not near(a, b)] == []


def test_dissimilar_passages_are_kept():
    rng = random.Random(9)
    deduper = Deduper()
    assert [deduper.check(" ".join(rng.choices(VOCAB, k=80))) for _ in range(200)] == [None] * 200
