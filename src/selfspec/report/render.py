"""Rendering of the collected report data into HTML and Markdown (strict templates)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfspec.report import filtering_png, png_base64, registry_state, training_curve_png
from selfspec.report.quality import grounding_rows, support_png

HERE = Path(__file__).parent


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def interval(row: dict[str, Any]) -> str:
    """``[+0.0040, +0.0580]``: the paired bootstrap interval of a comparison row ("-" without one)."""
    if row.get("ci_low") is None or row.get("ci_high") is None:
        return "-"
    return f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"


def p_value(row: dict[str, Any]) -> str:
    return "-" if row.get("p_value") is None else f"{row['p_value']:.3g}"


def evaluation_rows(evaluation: dict[str, Any] | None) -> tuple[list[dict[str, Any]], Any]:
    """Flatten metrics/evaluate.json into table rows; the gate entry is returned apart."""
    if not evaluation:
        return [], None
    rows = []
    for task, metrics in sorted(evaluation.items()):
        if task == "gate" or not isinstance(metrics, dict):
            continue
        for metric, v in sorted(metrics.items()):
            if isinstance(v, dict) and "base" in v and "specialized" in v:
                rows.append(
                    {
                        "task": task,
                        "metric": metric,
                        "base_stderr": None,
                        "specialized_stderr": None,
                        "delta": v["specialized"] - v["base"],
                        **v,
                        "interval": interval(v),
                        "p": p_value(v),
                    }
                )
    return rows, evaluation.get("gate")


def render(ctx: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write report.html and report.md into ``out_dir``; returns their paths."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE), undefined=jinja2.StrictUndefined, autoescape=False
    )
    env.filters["fmt"] = fmt
    rows, gate = evaluation_rows(ctx["evaluation"])
    full = {**ctx, "rows": rows, "gate": gate, "registry": registry_state(ctx["registry"])}
    full["grounding_rows"] = grounding_rows(ctx["grounding"])
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text(env.get_template("report.md.j2").render(**full))
    html_env = env.overlay(autoescape=True)
    html_full = {
        **full,
        "curve": training_curve_png(ctx["registry"]),
        "comparison": png_base64(ctx["comparison_png"]),
        "filtering": filtering_png(ctx["stages"]),
        "support_png": support_png(ctx["grounding"]),
    }
    html = out_dir / "report.html"
    html.write_text(html_env.get_template("report.html.j2").render(**html_full))
    return html, md
