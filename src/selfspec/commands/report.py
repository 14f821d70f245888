"""``selfspec report``: write reports/report.html and report.md and log them to the training run."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports/)")
    p.add_argument("--examples", type=int, default=5, help="example records to show")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the report to the training run")


def main(args: argparse.Namespace, params) -> int:
    from selfspec.report import collect
    from selfspec.report.render import render

    ctx = collect(params, n_examples=args.examples)
    html, md = render(ctx, args.out)
    if ctx["registry"] and not args.no_mlflow:
        from mlflow import MlflowClient

        from selfspec.tracking import check_store

        client = MlflowClient(check_store(ctx["registry"]["tracking_uri"]))
        for path in (html, md):
            client.log_artifact(ctx["registry"]["run_id"], str(path), artifact_path="report")
    print(f"wrote {html} and {md}")
    return 0
