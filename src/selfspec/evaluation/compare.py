"""Base vs specialized: per task and metric, and per group, the paired delta with its bootstrap
interval (selfspec.evaluation.paired); the promotion gate on the interval's lower bound; the chart.

A comparison row: ``base``, ``specialized``, ``delta`` (specialized - base, same documents),
``ci_low``/``ci_high`` (percentile bootstrap, ``confidence``), ``n`` (paired documents),
``p_value`` (exact sign test / McNemar for per-doc scalars, else None), ``better``/``worse``
(documents where specialized scores above/below base) and lm-eval's standard errors.

Groups: lm-eval's ``aggregate_metric_list`` rows (weighted by size when it says so, as lm-eval
does); a group or tag without one gets ``pooled``: the unweighted mean over its member tasks of
each member's primary metric, every member resampled within itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfspec.errors import StageError
from selfspec.evaluation.paired import Replicates, boot_indices, pair, pool, replicates, rng_for, sign_test
from selfspec.evaluation.paired import summarize as summarize_row

Comparison = dict[str, dict[str, dict[str, Any]]]
POOLED = "pooled"
STAGE = "evaluate"


def compare(base_samples, spec_samples, suite, *, seed: int, n_boot: int, confidence: float) -> Comparison:
    """``{task or group: {metric: row}}`` over the suite's tasks (both sides' samples must hold them)."""
    out: Comparison = {}
    reps: dict[str, dict[str, Replicates]] = {}
    for task, spec in sorted(suite.tasks.items()):
        for side, samples in (("base", base_samples), ("specialized", spec_samples)):
            if not samples.get(task):
                raise StageError(STAGE, f"no {side} per-sample scores for task {task}")
        paired = pair(task, base_samples[task], spec_samples[task])
        idx = boot_indices(len(paired.doc_ids), n_boot, rng_for(seed, task))
        out[task], reps[task] = {}, {}
        for label, (b, s) in paired.values.items():
            agg = spec.aggregation.get(paired.metric_of[label])
            if agg is None:
                raise StageError(STAGE, f"{task}: per-sample metric {label!r} has no aggregation in its task")
            r = replicates(b, s, agg, idx)
            reps[task][label] = r
            out[task][label] = {**summarize_row(r, confidence), **sign_test(b, s)}
    for name, group in sorted(suite.groups.items()):
        out[name] = {
            label: {**summarize_row(pool(rs, ws), confidence), "p_value": None, "better": None, "worse": None}
            for label, rs, ws in _group_rows(name, group, suite, reps)
        }
    return out


def _group_rows(name, group, suite, reps):
    """(label, member replicates, weights) of a group's rows."""
    if not group.aggregate:
        missing = [t for t in group.members if suite.tasks[t].primary not in reps[t]]
        if missing:
            raise StageError(STAGE, f"group {name}: primary metric of {missing} not in their samples "
                             f"(metadata.primary_metric; they have {sorted(reps[missing[0]])})")  # fmt: skip
        rs = [reps[t][suite.tasks[t].primary] for t in group.members]
        yield POOLED, rs, [1.0] * len(rs)
        return
    for metric, by_size in group.aggregate:
        labels = {
            lab for t in group.members for lab in reps[t] if lab == metric or lab.startswith(f"{metric}-")
        }
        for label in sorted(labels):
            rs = [reps[t][label] for t in group.members if label in reps[t]]  # as lm-eval: skip who lacks it
            yield label, rs, [float(r.n) if by_size else 1.0 for r in rs]


def add_stderrs(comparison: Comparison, base_metrics, spec_metrics) -> Comparison:
    """lm-eval's standard errors beside the paired numbers (None where lm-eval gave none)."""
    for task, rows in comparison.items():
        for label, row in rows.items():
            row["base_stderr"] = base_metrics.get(task, {}).get(f"{label}_stderr")
            row["specialized_stderr"] = spec_metrics.get(task, {}).get(f"{label}_stderr")
    return comparison


def check_reproduces(comparison: Comparison, base_metrics, spec_metrics, tol: float = 1e-6) -> None:
    """The per-sample values re-aggregated must give lm-eval's own numbers; else a task's per-doc
    values are not what its aggregation consumes, and every interval would be wrong."""
    for task, rows in comparison.items():
        for label, row in rows.items():
            for side, metrics in (("base", base_metrics), ("specialized", spec_metrics)):
                reported = metrics.get(task, {}).get(label)
                if reported is not None and abs(reported - row[side]) > tol:
                    raise StageError(STAGE, f"{task}/{label}: per-sample values give {row[side]!r} for "
                                     f"{side}, lm-eval reported {reported!r}")  # fmt: skip


def gate(comparison: Comparison, task: str, metric: str, margin: float, confidence: float) -> dict[str, Any]:
    """Promote when the interval's lower bound on ``task/metric`` is at least ``margin``."""
    decision: dict[str, Any] = {"primary": f"{task}/{metric}", "margin": margin, "promoted": False}
    row = comparison.get(task, {}).get(metric)
    if row is None:
        decision["reason"] = f"{task}/{metric} was not evaluated (task skipped or metric absent)"
        return decision
    promoted = bool(row["ci_low"] >= margin)
    decision.update({k: row[k] for k in ("base", "specialized", "delta", "ci_low", "ci_high")})
    decision.update(confidence=confidence, promoted=promoted)
    verb = ">=" if promoted else "<"
    interval = f"{confidence:.0%} CI [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"
    decision["reason"] = f"{task}/{metric}: delta {row['delta']:+.4f}, {interval} {verb} margin {margin:+.4f}"
    return decision


def chart(
    comparison: Comparison, path: Path, title: str = "specialized - base", primary: str = "", margin=None
) -> Path:
    """A forest plot: each task/metric's paired delta (point) and interval (bar) around zero; blue:
    the interval is above zero, red: below, grey: it contains zero. ★ marks the gate's row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{t} / {m}", v) for t, ms in comparison.items() for m, v in ms.items()]
    if not rows:
        raise ValueError("nothing to plot: the comparison is empty")
    rows.reverse()  # first task at the top
    fig, ax = plt.subplots(figsize=(8.5, 0.38 * len(rows) + 1.4))
    for y, (label, v) in enumerate(rows):
        color = "#2f6fb0" if v["ci_low"] > 0 else "#c0392b" if v["ci_high"] < 0 else "#6b7785"
        ax.plot([v["ci_low"], v["ci_high"]], [y, y], color=color, lw=2, solid_capstyle="butt")
        ax.plot(v["delta"], y, "o", color=color, ms=6 if label.replace(" / ", "/") == primary else 4)
        ax.annotate(f"{v['base']:.3f} → {v['specialized']:.3f}", (1.0, y), xycoords=("axes fraction", "data"),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)  # fmt: skip
    ax.axvline(0.0, color="black", lw=0.8)
    if margin is not None and margin != 0.0:
        ax.axvline(margin, color="#b07d2f", lw=0.8, ls="--", label=f"gate margin {margin:+.3f}")
        ax.legend(loc="lower right", fontsize=8)
    ax.annotate("base → specialized", (1.0, 1.0), xycoords="axes fraction", xytext=(6, 4),
                textcoords="offset points", fontsize=8, style="italic")  # fmt: skip
    marks = [label + (" ★" if label.replace(" / ", "/") == primary else "") for label, _ in rows]
    ax.set_yticks(range(len(rows)), marks, fontsize=8)
    ax.set_xlabel("delta, specialized - base (point: paired mean difference; bar: bootstrap interval)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path
