"""Exact and near-duplicate detection over passages, in corpus order (the first copy is kept).

Exact: the same folded word sequence (case, accents and punctuation ignored). Near: MinHash over
word 5-grams with LSH banding (16 bands x 8 rows: a pair at Jaccard 0.8 becomes a candidate with
p ~ 0.95, at 0.5 with p ~ 0.06); a candidate is a duplicate when its estimated Jaccard similarity
with an earlier kept passage reaches the threshold. Vectorised with numpy: ~1 s per 20k passages.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import defaultdict

import numpy as np

from selfspec.retrieval.analysis import fold

_WORD = re.compile(r"\w+")
SHINGLE = 5
NUM_PERM, BANDS = 128, 16
ROWS = NUM_PERM // BANDS


class Deduper:
    def __init__(self, near: bool = True, threshold: float = 0.8, seed: int = 1):
        self.near, self.threshold = near, threshold
        rng = np.random.default_rng(seed)
        # multiply-shift hashing: odd 64-bit multipliers, keep the top 32 bits
        self._a = rng.integers(1, 2**63, NUM_PERM, dtype=np.uint64) | np.uint64(1)
        self._b = rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
        self._exact: set[bytes] = set()
        self._buckets: list[dict[bytes, list[int]]] = [defaultdict(list) for _ in range(BANDS)]
        self._signatures: list[np.ndarray] = []

    def check(self, text: str) -> str | None:
        """``"exact"`` or ``"near"`` if ``text`` duplicates a kept passage, else None (and keep it)."""
        words = _WORD.findall(fold(text))
        key = hashlib.blake2b(" ".join(words).encode(), digest_size=16).digest()
        if key in self._exact:
            return "exact"
        if self.near:
            sig = self._signature(words)
            bands = [sig[i * ROWS : (i + 1) * ROWS].tobytes() for i in range(BANDS)]
            if self._has_near(sig, bands):
                return "near"
            self._keep_signature(sig, bands)
        self._exact.add(key)
        return None

    def _signature(self, words: list[str]) -> np.ndarray:
        n = max(1, len(words) - SHINGLE + 1)
        shingles = {" ".join(words[i : i + SHINGLE]) for i in range(n)}
        x = np.fromiter((zlib.crc32(s.encode()) for s in shingles), dtype=np.uint64, count=len(shingles))
        with np.errstate(over="ignore"):  # wrap-around mod 2**64 is the hash
            hashed = (x[:, None] * self._a[None, :] + self._b[None, :]) >> np.uint64(32)
        return hashed.min(axis=0)

    def _has_near(self, sig: np.ndarray, bands: list[bytes]) -> bool:
        candidates = {j for i, band in enumerate(bands) for j in self._buckets[i].get(band, ())}
        if not candidates:
            return False
        others = np.stack([self._signatures[j] for j in candidates])
        return bool(((others == sig).mean(axis=1) >= self.threshold).any())

    def _keep_signature(self, sig: np.ndarray, bands: list[bytes]) -> None:
        j = len(self._signatures)
        self._signatures.append(sig)
        for i, band in enumerate(bands):
            self._buckets[i][band].append(j)
