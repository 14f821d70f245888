"""The ROUGE-L novelty filter of gen_instructions at scale: the rapidfuzz pool with its prefix
filter vs the implementation it replaced (rouge-score's pure-Python LCS against every entry), on
the same candidates, in one run. Prints the time to keep N instructions, the ratio, and checks
that both make the same decision on every candidate the old one is timed on.

    python benchmarks/rouge_pool.py                  # keep 5,000; the old one timed on 1 in 25
    python benchmarks/rouge_pool.py --keep 1000 --old-every 1

Candidates are seed instructions with 30-60 % of their words swapped for other seed words, plus
near-copies of kept ones, so both outcomes occur (about the mix gen_instructions sees).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from selfspec.generation.text import RougePool
from selfspec.seeds import load_seeds


class OldRougePool:
    """The pool as it was: rouge-score's tokenizer and ``_score_lcs`` against every entry."""

    def __init__(self, texts):
        from rouge_score import rouge_scorer

        self._tokenize = rouge_scorer.RougeScorer(["rougeL"])._tokenizer.tokenize
        self._lcs = rouge_scorer._score_lcs
        self.tokens = [self._tokenize(t) for t in texts]

    def add(self, text: str) -> None:
        self.tokens.append(self._tokenize(text))

    def max_similarity(self, text: str) -> float:
        candidate = self._tokenize(text)
        return max((self._lcs(t, candidate).fmeasure for t in self.tokens), default=0.0)


def candidates(seeds: list[str], rng: random.Random):
    """An endless stream of instruction-like texts: mutated seeds, and now and then a near-copy of
    one already produced (which the filter should drop)."""
    vocab = sorted({w for s in seeds for w in s.split()})
    made: list[str] = []
    while True:
        if made and rng.random() < 0.25:
            ws = rng.choice(made).split()
            ws[rng.randrange(len(ws))] = rng.choice(vocab)
        else:
            share = rng.uniform(0.3, 0.6)
            ws = [rng.choice(vocab) if rng.random() < share else w for w in rng.choice(seeds).split()]
        made.append(" ".join(ws))
        yield made[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="seeds/biomedical.jsonl")
    ap.add_argument("--keep", type=int, default=5000)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--old-every", type=int, default=25, help="time the old pool on 1 in N candidates")
    args = ap.parse_args()
    seeds = [s.instruction for s in load_seeds(Path(args.seeds))]
    new, old = RougePool(seeds), OldRougePool(seeds)
    new_s = old_s = 0.0
    seen = timed = 0
    for text in candidates(seeds, random.Random(0)):
        start = time.perf_counter()
        similar = new.exceeds(text, args.threshold)
        new_s += time.perf_counter() - start
        if seen % args.old_every == 0:
            start = time.perf_counter()
            assert (old.max_similarity(text) > args.threshold) == similar, text
            old_s += time.perf_counter() - start
            timed += 1
        seen += 1
        if not similar:
            start = time.perf_counter()
            new.add(text)
            new_s += time.perf_counter() - start
            old.add(text)
        if len(new) - len(seeds) == args.keep:
            break
    old_total = old_s * seen / timed
    print(f"kept {args.keep} of {seen} candidates (ROUGE-L F1 > {args.threshold} dropped), pool {len(new)}")
    print(f"new (rapidfuzz LCS + prefix filter): {new_s:8.2f} s")
    how = "measured" if args.old_every == 1 else f"estimated from {timed} candidates (1 in {args.old_every})"
    print(f"old (rouge-score, every entry):      {old_total:8.2f} s  {how}; same decisions on all")
    print(f"speed-up ratio:                      {old_total / new_s:8.1f}x")


if __name__ == "__main__":
    main()
