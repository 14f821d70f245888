"""``selfspec report``: one self-contained HTML (and Markdown) report of a specialization.

``collect`` gathers what the pipeline wrote (seeds, stage metrics, records, evaluation, registry);
``render`` turns it into HTML with the plots inlined as base64 PNG, so the file opens anywhere,
offline, with no CDN. Nothing here recomputes pipeline results: it only reads them.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from selfspec import tracking
from selfspec.io import read_json, read_jsonl

log = logging.getLogger(__name__)

LOSS_METRIC = "train/loss"  # what training/loop.py logs per logging step
GEN_STAGES = ("gen_instructions", "gen_inputs", "gen_responses", "filter_records")


def _maybe_json(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def collect(params, root: Path = Path("."), n_examples: int = 5) -> dict[str, Any]:
    """Everything the report shows, as plain data (the unit tests check this)."""
    from selfspec.report.quality import grounding_stats
    from selfspec.seeds import load_seeds, seeds_path, summarize

    seeds = load_seeds(root / seeds_path(params))
    records_path = root / "data/filter_records/records.jsonl"
    records = read_jsonl(records_path) if records_path.is_file() else []
    responses_path = root / "data/gen_responses/responses.jsonl"
    responses = read_jsonl(responses_path) if responses_path.is_file() else []
    return {
        "domain": params.base.domain,
        "seeds": summarize(seeds),
        "stages": {s: _maybe_json(root / f"metrics/{s}.json") for s in GEN_STAGES},
        "data": data_stats(records),
        "grounding": grounding_stats(responses, records),
        "examples": examples(records, root / "data/build_corpus/passages.jsonl", n_examples),
        "train": _maybe_json(root / "metrics/train.json"),
        "evaluation": _maybe_json(root / "metrics/evaluate.json"),
        "registry": _maybe_json(root / tracking.REGISTRY_FILE),
        "comparison_png": root / "data/evaluate/comparison.png",
    }


def data_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Kept-record statistics: task types, grounding share and instruction diversity."""
    if not records:
        return {"n_records": 0}
    first_words = Counter((r["instruction"].split() or [""])[0].lower() for r in records)
    bigrams = [pair for r in records for pair in pairwise(r["instruction"].lower().split())]
    return {
        "n_records": len(records),
        "task_types": dict(Counter(r.get("task_type") or "unknown" for r in records).most_common()),
        "grounded_share": sum(bool(r.get("passages")) for r in records) / len(records),
        "with_input_share": sum(bool(r.get("input")) for r in records) / len(records),
        "distinct_first_words": len(first_words),
        "top_first_words": dict(first_words.most_common(10)),
        # distinct-2: unique word bigrams over all bigrams of the instructions (a diversity index)
        "distinct_2": len(set(bigrams)) / max(1, len(bigrams)),
        "mean_output_words": sum(len(r["output"].split()) for r in records) / len(records),
    }


def examples(records: list[dict[str, Any]], passages_path: Path, n: int) -> list[dict[str, Any]]:
    """``n`` evenly spaced records, each with the text of the passages it was grounded in."""
    if not records or n <= 0:
        return []
    picked = records[:: max(1, len(records) // n)][:n]
    wanted = {p["id"] for r in picked for p in r.get("passages", [])}
    texts: dict[str, dict[str, Any]] = {}
    if wanted and passages_path.is_file():
        with open(passages_path, encoding="utf-8") as f:
            for line in f:
                p = json.loads(line)
                if p["id"] in wanted:
                    texts[p["id"]] = p
    out = []
    for r in picked:
        passages = [{**p, **texts.get(p["id"], {})} for p in r.get("passages", [])]
        out.append({**r, "passages": passages})
    return out


def training_curve_png(registry: dict[str, Any] | None) -> str | None:
    """The loss curve of the training run from MLflow, as a base64 PNG (None if unavailable)."""
    if not registry:
        return None
    from mlflow import MlflowClient

    try:
        client = MlflowClient(registry["tracking_uri"])
        history = client.get_metric_history(registry["run_id"], LOSS_METRIC)
    except Exception as e:  # the report still renders without the curve, and says why
        log.warning("no training curve: %s", e)
        return None
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([m.step for m in history], [m.value for m in history], marker=".")
    ax.set(xlabel="step", ylabel="training loss", title="QLoRA training loss")
    ax.grid(alpha=0.3)
    return fig_to_base64(fig)


def filtering_png(stages: dict[str, Any]) -> str | None:
    """Kept vs dropped-by-reason counts of each generation stage, as a base64 PNG bar chart."""
    rows = []  # (label, count, kept?)
    for stage, m in stages.items():
        if not m:
            continue
        if "kept" in m:
            rows.append((f"{stage}: kept", m["kept"], True))
        for reason, n in sorted((m.get("dropped") or {}).items(), key=lambda kv: -kv[1]):
            rows.append((f"{stage}: {reason}", n, False))
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.28 * len(rows) + 0.9))
    labels, counts, kept = zip(*reversed(rows), strict=True)
    ax.barh(labels, counts, color=["#3a7" if k else "#c66" for k in kept])
    for y, n in enumerate(counts):
        ax.annotate(str(n), (n, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set(xlabel="records", title="Generated data: kept and dropped by reason")
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return fig_to_base64(fig)


def fig_to_base64(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def png_base64(path: Path) -> str | None:
    return base64.b64encode(path.read_bytes()).decode() if path.is_file() else None


def registry_state(registry: dict[str, Any] | None) -> dict[str, Any] | None:
    """Current aliases of the registered version (they change after the report's stage ran)."""
    if not registry:
        return None
    from mlflow import MlflowClient

    try:
        mv = MlflowClient(registry["tracking_uri"]).get_model_version(
            registry["model_name"], registry["version"]
        )
        return {**registry, "aliases": sorted(mv.aliases or [])}
    except Exception as e:
        log.warning("registry not reachable: %s", e)
        return {**registry, "aliases": [registry.get("alias", "?")]}
