"""Paired statistics of base vs specialized on the same documents.

lm-eval's per-sample log (``log_samples``) holds, per document and filter, each metric's per-doc
value: 0/1 for acc, or the tuple a corpus-level aggregation consumes (``[tp, fp, fn]``, ``[gold,
pred]``). A task's aggregation function applied to any list of these values gives the metric, so a
bootstrap replicate resamples the document indices *jointly* for both sides and re-applies it.

- ``pair``: line both sides up by ``(doc_id, filter)``; the documents must be the same (``doc_hash``).
- ``replicates``: point estimates and bootstrap replicates of one metric on both sides.
- ``summarize``: delta, percentile interval and, for per-doc scalars, the exact sign test (for 0/1
  values this is McNemar's exact test: only discordant documents count).
- ``pool``: a weighted mean over member tasks, each resampled within itself (a stratified bootstrap).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selfspec.errors import StageError

STAGE = "evaluate"


@dataclass
class Paired:
    """One task's per-doc values, documents in the same order on both sides."""

    doc_ids: list[int]
    values: dict[str, tuple[list[Any], list[Any]]]  # metric label -> (base values, specialized values)
    metric_of: dict[str, str]  # label ("exact_match-strict") -> lm-eval metric name ("exact_match")


@dataclass
class Replicates:
    base: float
    specialized: float
    base_reps: np.ndarray
    specialized_reps: np.ndarray
    n: int


def _index(task: str, side: str, samples: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for s in samples:
        key = (int(s["doc_id"]), str(s.get("filter", "none")))
        if key in out:
            raise StageError(STAGE, f"{side} samples of {task}: doc_id {key[0]} (filter {key[1]}) twice")
        out[key] = s
    return out


def pair(task: str, base: list[dict[str, Any]], specialized: list[dict[str, Any]]) -> Paired:
    """Per-doc metric values of both sides aligned by doc id; other documents are an error."""
    from selfspec.evaluation.harness import metric_name

    b, s = _index(task, "base", base), _index(task, "specialized", specialized)
    only_b, only_s = sorted(set(b) - set(s)), sorted(set(s) - set(b))
    if only_b or only_s:
        detail = f"only base: {only_b[:5]}, only specialized: {only_s[:5]}"
        raise StageError(
            STAGE, f"{task}: base and specialized scored different documents ({detail}); re-run both"
        )
    changed = sorted(k for k in b if b[k].get("doc_hash") != s[k].get("doc_hash"))
    if changed:
        why = "doc_hash: the evaluation data changed between the stages; re-run both"
        raise StageError(
            STAGE, f"{task}: documents {changed[:5]} differ between base and specialized ({why})"
        )
    doc_ids = sorted({d for d, _ in b})
    values: dict[str, tuple[list[Any], list[Any]]] = {}
    metric_of: dict[str, str] = {}
    for filt in sorted({f for _, f in b}):
        for metric in b[(doc_ids[0], filt)]["metrics"]:
            label = metric_name(f"{metric},{filt}")[0]
            metric_of[label] = metric
            values[label] = ([b[(d, filt)][metric] for d in doc_ids], [s[(d, filt)][metric] for d in doc_ids])
    return Paired(doc_ids, values, metric_of)


def rng_for(seed: int, task: str) -> np.random.Generator:
    """One stream per task (stable across runs and task order): members of a pool resample independently."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(task.encode())]))


def boot_indices(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, n, size=(n_boot, n))


def _scalars(values: Sequence[Any]) -> np.ndarray | None:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=float)
    if all(isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=float)
    return None


def _is_mean(agg: Callable) -> bool:
    """lm-eval's ``mean`` aggregation (checked by name: importing lm_eval costs seconds)."""
    return getattr(agg, "__module__", "") == "lm_eval.api.metrics" and getattr(agg, "__name__", "") == "mean"


def replicates(base: list[Any], spec: list[Any], agg: Callable, idx: np.ndarray) -> Replicates:
    """Point estimates and per-replicate metric values; both sides use the same resampled docs."""
    b_arr, s_arr = _scalars(base), _scalars(spec)
    if _is_mean(agg) and b_arr is not None and s_arr is not None:  # vectorized: same numbers, faster
        return Replicates(float(b_arr.mean()), float(s_arr.mean()), b_arr[idx].mean(axis=1),
                          s_arr[idx].mean(axis=1), len(base))  # fmt: skip

    def each(values: list[Any]) -> np.ndarray:
        return np.array([float(agg([values[i] for i in row])) for row in idx])

    return Replicates(float(agg(list(base))), float(agg(list(spec))), each(base), each(spec), len(base))


def sign_test(base: list[Any], spec: list[Any]) -> dict[str, Any]:
    """Exact two-sided sign test on per-doc differences, ties dropped (McNemar's exact test for
    0/1 values). ``better``/``worse``: documents where specialized scores above/below base.
    Corpus-level per-doc values (lists) have no per-doc difference: p_value None."""
    from scipy.stats import binomtest

    b_arr, s_arr = _scalars(base), _scalars(spec)
    if b_arr is None or s_arr is None:
        return {"p_value": None, "better": None, "worse": None}
    better, worse = int((s_arr > b_arr).sum()), int((s_arr < b_arr).sum())
    p = 1.0 if better + worse == 0 else float(binomtest(better, better + worse, 0.5).pvalue)
    return {"p_value": p, "better": better, "worse": worse}


def summarize(r: Replicates, confidence: float) -> dict[str, Any]:
    """Base, specialized, delta and its percentile bootstrap interval."""
    deltas = r.specialized_reps - r.base_reps
    alpha = 1.0 - confidence
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    return {"base": r.base, "specialized": r.specialized, "delta": r.specialized - r.base,
            "ci_low": float(low), "ci_high": float(high), "n": r.n}  # fmt: skip


def pool(members: list[Replicates], weights: list[float]) -> Replicates:
    """The weighted mean of member metrics, replicate by replicate (each member was resampled
    within itself). Equal weights: the unweighted mean over tasks; sizes: lm-eval's weight_by_size."""
    w = np.asarray(weights, dtype=float) / float(sum(weights))

    def mix(get: Callable[[Replicates], Any]) -> Any:
        return sum(wi * get(m) for wi, m in zip(w, members, strict=True))

    return Replicates(float(mix(lambda m: m.base)), float(mix(lambda m: m.specialized)),
                      mix(lambda m: m.base_reps), mix(lambda m: m.specialized_reps),
                      sum(m.n for m in members))  # fmt: skip
