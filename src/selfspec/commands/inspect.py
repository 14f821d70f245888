"""``selfspec inspect STAGE [-n N] [--id ID]``: a few records of a generation stage with their
provenance — the seed tasks that prompted the instruction, the demonstrations and the retrieved
passages (with their text, looked up in ``data/build_corpus/passages.jsonl`` when present)."""

from __future__ import annotations

import argparse
import random
import textwrap
from pathlib import Path
from typing import Any

STAGES = ("gen_instructions", "gen_inputs", "gen_responses", "filter_records")
PASSAGES = Path("data/build_corpus/passages.jsonl")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", choices=STAGES, help="whose output to show")
    p.add_argument("-n", type=int, default=3, help="how many records (default: 3)")
    p.add_argument("--id", action="append", default=[], help="show this record id (repeatable)")
    p.add_argument("--random", action="store_true", help="a random sample instead of the first n")
    p.add_argument("--width", type=int, default=100, help="wrap text at this width")


def main(args: argparse.Namespace, params) -> int:
    from selfspec.errors import StageError
    from selfspec.io import read_jsonl
    from selfspec.runtime import data_dir
    from selfspec.seeds import load_seeds, seeds_path

    files = sorted(data_dir(args.stage).glob("*.jsonl"))
    if not files:
        raise StageError(args.stage, f"{data_dir(args.stage)}: no output yet; run `dvc repro {args.stage}`")
    records = read_jsonl(files[0])
    chosen = pick(records, args)
    seeds = {s.id: s for s in load_seeds(seeds_path(params))} if seeds_path(params).is_file() else {}
    passages = passage_lookup({p["id"] for r in chosen for p in r.get("passages", [])})
    print(f"{files[0]}: {len(records)} records; showing {len(chosen)}\n")
    for record in chosen:
        print(render(record, seeds, passages, args.width))
    return 0


def pick(records: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.id:
        wanted = set(args.id)
        return [r for r in records if r.get("id") in wanted]
    if args.random:
        return random.Random(0).sample(records, min(args.n, len(records)))
    return records[: args.n]


def passage_lookup(ids: set[str]) -> dict[str, dict[str, Any]]:
    """Title and text of the given passage ids (one pass over the corpus file; empty if absent)."""
    if not ids or not PASSAGES.is_file():
        return {}
    from selfspec.io import iter_jsonl

    return {r["id"]: r for _, r in iter_jsonl(PASSAGES) if r.get("id") in ids}


def render(record: dict[str, Any], seeds: dict, passages: dict, width: int) -> str:
    def block(label: str, text: str) -> str:
        body = textwrap.fill(text, width - 4) if text else "(none)"
        return f"  {label}:\n" + textwrap.indent(body, "    ")

    lines = [f"== {record.get('id')}", block("instruction", record.get("instruction", ""))]
    if "input" in record:
        lines.append(block("input", record["input"]))
    if "output" in record:
        lines.append(block("output", record["output"]))
    for key in ("seed_ids", "demo_ids"):
        for sid in record.get(key, []):
            seed = seeds.get(sid)
            lines.append(f"  {key[:-4]} {sid}: {seed.instruction if seed else '(not in the seed file)'}")
    for p in record.get("passages", []):
        found = passages.get(p["id"], {})
        snippet = textwrap.shorten(found.get("text", ""), width - 30) if found else ""
        lines.append(f"  passage {p['id']} score {p['score']:.3f} {found.get('title', '')}: {snippet}")
    return "\n".join(lines) + "\n"
