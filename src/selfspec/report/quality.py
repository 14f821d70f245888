"""The report's data-quality part (issue 13): how grounded the generated answers are.

Support scores and self-consistency agreement as distributions, task types and input sources —
each for all generated records (``data/gen_responses``) beside the kept ones (``data/filter_records``),
so the effect of the thresholds is visible. Read only; nothing is recomputed.
"""

from __future__ import annotations

from collections import Counter
from statistics import mean, median
from typing import Any

EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def distribution(values: list[float | None]) -> dict[str, Any]:
    """Count, mean, median and a 5-bin histogram over [0, 1] (the last bin holds 1.0); records
    without a value are counted as ``none``."""
    scored = [v for v in values if v is not None]
    bins = {f"{lo:.1f}-{hi:.1f}": 0 for lo, hi in zip(EDGES, EDGES[1:], strict=False)}
    for v in scored:
        i = min(int(v / 0.2), len(bins) - 1)
        bins[list(bins)[i]] += 1
    return {
        "n": len(scored),
        "none": len(values) - len(scored),
        "mean": round(mean(scored), 4) if scored else None,
        "median": round(median(scored), 4) if scored else None,
        "bins": bins,
    }


def grounding_stats(generated: list[dict[str, Any]], kept: list[dict[str, Any]]) -> dict[str, Any]:
    """Distributions and counts for generated vs kept records."""
    both = {"generated": generated, "kept": kept}
    return {
        "support": {k: distribution([r.get("support") for r in rs]) for k, rs in both.items()},
        "agreement": {k: distribution([r.get("agreement") for r in rs]) for k, rs in both.items()},
        "task_types": {k: _counts(rs, "task_type") for k, rs in both.items()},
        "input_sources": {k: _counts(rs, "input_source") for k, rs in both.items()},
    }


def _counts(records: list[dict[str, Any]], key: str) -> dict[str, int]:
    return dict(Counter(r.get(key) or "unknown" for r in records).most_common())


def grounding_rows(stats: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(label, generated, kept) rows of one table, for both templates."""
    rows: list[tuple[str, Any, Any]] = []
    for name in ("support", "agreement"):
        g, k = stats[name]["generated"], stats[name]["kept"]
        for field in ("n", "none", "mean", "median"):
            rows.append((f"{name} {field}", g[field], k[field]))
        rows += [(f"{name} in {b}", g["bins"][b], k["bins"][b]) for b in g["bins"]]
    for name in ("task_types", "input_sources"):
        g, k = stats[name]["generated"], stats[name]["kept"]
        rows += [
            (f"{name[:-1].replace('_', ' ')}: {t}", g.get(t, 0), k.get(t, 0)) for t in dict.fromkeys([*g, *k])
        ]
    return rows


def support_png(stats: dict[str, Any]) -> str | None:
    """Support-score histograms, generated vs kept, as a base64 PNG (None without scores)."""
    g, k = stats["support"]["generated"], stats["support"]["kept"]
    if not g["n"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selfspec.report import fig_to_base64

    fig, ax = plt.subplots(figsize=(6, 2.8))
    labels = list(g["bins"])
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [g["bins"][b] for b in labels], 0.4, label="generated", color="#99a")
    ax.bar([i + 0.2 for i in x], [k["bins"][b] for b in labels], 0.4, label="kept", color="#3a7")
    ax.set_xticks(list(x), labels)
    ax.set(xlabel="support score (answer content words found in input + passages)", ylabel="records")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return fig_to_base64(fig)
