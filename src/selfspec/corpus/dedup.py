"""Exact and near-duplicate detection over passages, in corpus order (the first copy is kept).

Exact: the same folded word sequence (case, accents and punctuation ignored). Near: ``datasketch``
MinHash (128 permutations) over word 5-grams, indexed by its MinHashLSH with 16 bands x 8 rows (a
pair at Jaccard 0.8 becomes a candidate with p ~ 0.95, at 0.5 with p ~ 0.06). A candidate is a
duplicate when its exact Jaccard similarity (shingle hash sets, kept as sorted arrays) with an
earlier kept passage reaches the threshold: the MinHash estimate is off by ~0.035 (one standard
deviation at 128 permutations), enough to flip a pair at 0.83 under a 0.8 threshold.
"""

from __future__ import annotations

import hashlib
import re
import zlib

import numpy as np

from selfspec.retrieval.analysis import fold

_WORD = re.compile(r"\w+")
SHINGLE = 5
NUM_PERM, BANDS = 128, 16
ROWS = NUM_PERM // BANDS


class Deduper:
    def __init__(self, near: bool = True, threshold: float = 0.8, seed: int = 1):
        from datasketch import MinHash, MinHashLSH

        self.near, self.threshold, self.seed = near, threshold, seed
        self._exact: set[bytes] = set()
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, params=(BANDS, ROWS))
        # datasketch 2's default scheme, made explicit; permutations drawn once, not per passage
        self._permutations = MinHash(num_perm=NUM_PERM, seed=seed, scheme="affine32").permutations
        self._kept: list[np.ndarray] = []  # shingle hashes of each kept passage, by its LSH key

    def check(self, text: str) -> str | None:
        """``"exact"`` or ``"near"`` if ``text`` duplicates a kept passage, else None (and keep it)."""
        words = _WORD.findall(fold(text))
        key = hashlib.blake2b(" ".join(words).encode(), digest_size=16).digest()
        if key in self._exact:
            return "exact"
        if self.near:
            hashes = shingle_hashes(words)
            sig = self._signature(hashes)
            if any(jaccard(hashes, self._kept[j]) >= self.threshold for j in self._lsh.query(sig)):
                return "near"
            self._lsh.insert(len(self._kept), sig)
            self._kept.append(hashes)
        self._exact.add(key)
        return None

    def _signature(self, hashes: np.ndarray):
        """The MinHash of the shingles' crc32 values (already 32-bit hashes: ``hashfunc=int``)."""
        from datasketch import MinHash

        sig = MinHash(
            num_perm=NUM_PERM,
            seed=self.seed,
            permutations=self._permutations,
            scheme="affine32",
            hashfunc=int,
        )
        sig.update_batch(hashes)
        return sig


def shingle_hashes(words: list[str]) -> np.ndarray:
    """Sorted unique crc32 of the word 5-grams (one shingle for a shorter text)."""
    shingles = [" ".join(words[i : i + SHINGLE]).encode() for i in range(max(1, len(words) - SHINGLE + 1))]
    return np.unique(np.fromiter(map(zlib.crc32, shingles), dtype=np.uint32, count=len(shingles)))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a & b| / |a | b| of two sorted unique arrays."""
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
