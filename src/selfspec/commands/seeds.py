"""``selfspec seeds [--file PATH]``: validate a seed file and print its counts per task type."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--file",
        type=Path,
        help="seed file to check (default: <base.seeds_dir>/<base.domain>.jsonl from params)",
    )


def main(args: argparse.Namespace, params) -> int:
    from selfspec.seeds import load_seeds, seeds_path, summarize

    path = args.file or seeds_path(params)
    # A bad line raises DataError; the CLI prints it as "FILE:LINE: FIELD: ..." and exits 1.
    summary = summarize(load_seeds(path))
    print(f"{path}: OK")
    width = max([len("task types"), *map(len, summary["task_types"])])
    for task_type, count in summary["task_types"].items():
        print(f"  {task_type:<{width}}  {count:>4}")
    print(f"  {'task types':<{width}}  {len(summary['task_types']):>4}")
    print(f"  {'seed tasks':<{width}}  {summary['n_seeds']:>4}")
    print(f"  {'instances':<{width}}  {summary['n_instances']:>4}")
    print(f"  {'with input':<{width}}  {summary['with_input']:>4}")
    return 0
