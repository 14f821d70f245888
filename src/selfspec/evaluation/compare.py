"""Base vs specialized: per task and metric, both scores, the delta and both standard errors; the
promotion gate on the primary task/metric; the comparison bar chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

Comparison = dict[str, dict[str, dict[str, float | None]]]


def compare(base: dict[str, dict[str, float]], specialized: dict[str, dict[str, float]]) -> Comparison:
    """``{task: {metric: {base, specialized, delta, base_stderr, specialized_stderr}}}`` over the tasks
    and metrics both sides have (they ran the same tasks; a mismatch was refused before)."""
    out: Comparison = {}
    for task in sorted(set(base) & set(specialized)):
        b, s = base[task], specialized[task]
        metrics = sorted(m for m in set(b) & set(s) if not m.endswith("_stderr") and m != "n")
        out[task] = {
            m: {"base": b[m], "specialized": s[m], "delta": s[m] - b[m],
                "base_stderr": b.get(f"{m}_stderr"), "specialized_stderr": s.get(f"{m}_stderr")}
            for m in metrics
        }  # fmt: skip
    return out


def gate(comparison: Comparison, task: str, metric: str, margin: float) -> dict[str, Any]:
    """Promote when ``specialized - base >= margin`` on ``task/metric``; the decision and its numbers."""
    decision: dict[str, Any] = {"primary": f"{task}/{metric}", "margin": margin, "promoted": False}
    row = comparison.get(task, {}).get(metric)
    if row is None:
        decision["reason"] = f"{task}/{metric} was not evaluated (task skipped or metric absent)"
        return decision
    delta = float(row["delta"])  # type: ignore[arg-type]
    promoted = delta >= margin
    decision.update(base=row["base"], specialized=row["specialized"], delta=delta, promoted=promoted)
    verb = ">=" if promoted else "<"
    decision["reason"] = f"delta {delta:+.4f} {verb} margin {margin:+.4f}"
    return decision


def chart(comparison: Comparison, path: Path, title: str = "base vs specialized") -> Path:
    """Grouped bars (base, specialized) per task/metric with standard-error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{t}\n{m}", v) for t, ms in comparison.items() for m, v in ms.items()]
    if not rows:
        raise ValueError("nothing to plot: the comparison is empty")
    x = range(len(rows))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(rows) + 2), 4.2))
    for offset, side, color in ((-width / 2, "base", "#9aa5b1"), (width / 2, "specialized", "#2f6fb0")):
        values = [v[side] for _, v in rows]
        errors = [v[f"{side}_stderr"] or 0.0 for _, v in rows]
        ax.bar([i + offset for i in x], values, width, yerr=errors, capsize=3, label=side, color=color)
    ax.set_xticks(list(x), [label for label, _ in rows], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (± standard error)")
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
