"""``selfspec seeds [validate] [--file PATH | --all]``: validate seed files, print their counts per task type.

Every bad line is reported as ``FILE:LINE: FIELD: what is wrong`` (all of them, not only the first),
and the command exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["validate"], default="validate", help="(the only action)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--file",
        type=Path,
        help="seed file to check (default: <base.seeds_dir>/<base.domain>.jsonl from params)",
    )
    which.add_argument("--all", action="store_true", help="check every domain's <base.seeds_dir>/*.jsonl")


def main(args: argparse.Namespace, params) -> int:
    from selfspec.errors import DataError
    from selfspec.seeds import seeds_path

    if args.all:
        paths = sorted(Path(params.base.seeds_dir).glob("*.jsonl"))
        if not paths:
            raise DataError(params.base.seeds_dir, None, "no <domain>.jsonl seed files in this folder")
    else:
        paths = [args.file or seeds_path(params)]
    return max(_check(path) for path in paths)


def _check(path: Path) -> int:
    from selfspec.seeds import check_seeds, summarize

    seeds, problems = check_seeds(path)  # a missing or empty file raises: the CLI prints it, exit 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{path}: {len(problems)} bad line(s), {len(seeds)} good seed task(s)", file=sys.stderr)
        return 1
    summary = summarize(seeds)
    print(f"{path}: OK")
    width = max([len("task types"), *map(len, summary["task_types"])])
    for task_type, count in summary["task_types"].items():
        print(f"  {task_type:<{width}}  {count:>4}")
    print(f"  {'task types':<{width}}  {len(summary['task_types']):>4}")
    print(f"  {'seed tasks':<{width}}  {summary['n_seeds']:>4}")
    print(f"  {'instances':<{width}}  {summary['n_instances']:>4}")
    print(f"  {'with input':<{width}}  {summary['with_input']:>4}")
    return 0
