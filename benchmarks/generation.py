"""Kept records per minute of the generation chain, today's settings vs the new ones, in one run.

Runs gen_instructions → gen_inputs → gen_responses → filter_records twice on the same workload
(the same params, seed, model, seeds and index), once per configuration, each in a scratch folder,
and prints per-stage wall time, new and processed tokens/s, records kept, and the ratio.

    python benchmarks/generation.py                       # default workload vs the chain issue 12 measured
    python benchmarks/generation.py --today grounded      # vs the grounded chain with issue 12's knobs off
    python benchmarks/generation.py --instructions 16     # a smaller one, same settings otherwise
    python benchmarks/generation.py --new generation.batch_size=32 gen_responses.repetition_penalty=1.0

Needs models/prepare_model, data/build_corpus and data/index from `dvc repro index` (or
`selfspec prepare_model && selfspec build_corpus && selfspec index`). ``benchmarks/engine_batching.py``
measures the backend alone (batched vs one prompt at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

STAGES = ["gen_instructions", "gen_inputs", "gen_responses", "filter_records"]
# The new knobs of issue 12 off: one input per instruction, one answer budget, batches of 8.
BEFORE_12 = [
    "gen_inputs.inputs_per_instruction=1", "gen_responses.budget_by_type=false", "generation.batch_size=8",
]  # fmt: skip
BASELINES = {
    # the chain issue 12 measured (before issues 12 and 13): docs/grounding.md's "as before issue 13"
    "issue": [
        *BEFORE_12,
        "generation.penalize_prompt=true",
        "gen_instructions.seed_first_words=true",
        "gen_instructions.generated_per_prompt=0",
        "gen_instructions.charset=ascii",
        "gen_instructions.task_types=false",
        "gen_inputs.cut=words",
        "gen_inputs.source=generated",
        "gen_responses.cut=words",
        "gen_responses.demo_candidates=0",
        "gen_responses.demo_match_type=false",
        "filter_records.check_labels=false",
        "filter_records.min_support=0",
        "gen_responses.n_demos=5",
        "gen_responses.top_k=3",
        "gen_responses.passage_max_words=80",
    ],  # fmt: skip
    # the grounded chain of issue 13 with issue 12's knobs off
    "grounded": [*BEFORE_12, "gen_responses.n_demos=5", "gen_responses.top_k=3"],
}
NEW: list[str] = []  # the shipped defaults; docs/throughput.md says what else was measured


def scratch(root: Path, repo: Path) -> Path:
    """A run folder that shares the repo's model, seeds, corpus and index (read only)."""
    root.mkdir(parents=True)
    for name in ("params.yaml", "seeds", "corpora", "models"):
        (root / name).symlink_to((repo / name).resolve())
    for stage in ("build_corpus", "index"):
        (root / "data").mkdir(exist_ok=True)
        (root / "data" / stage).symlink_to((repo / "data" / stage).resolve())
    return root


def run_chain(root: Path, overrides: list[str]) -> dict:
    """The four stages in-process in ``root``; per-stage seconds and the stages' own metrics."""
    from selfspec.config import load_params
    from selfspec.stages import filter_records, gen_inputs, gen_instructions, gen_responses

    cwd = os.getcwd()
    os.chdir(root)
    try:
        params = load_params("params.yaml", overrides)
        result = {}
        for name, stage in zip(
            STAGES, (gen_instructions, gen_inputs, gen_responses, filter_records), strict=True
        ):
            start = time.perf_counter()
            stage.main(params)
            seconds = time.perf_counter() - start
            result[name] = {"seconds": seconds, **json.loads((root / "metrics" / f"{name}.json").read_text())}
        return result
    finally:
        os.chdir(cwd)


def summary(label: str, result: dict) -> float:
    """Print one configuration's per-stage line; return kept records per minute."""
    total = sum(r["seconds"] for r in result.values())
    kept = result["filter_records"].get("kept", result["filter_records"].get("records"))
    for name in STAGES[:3]:
        r = result[name]
        new, prompt = r.get("completion_tokens", 0), r.get("prompt_tokens", 0)
        print(
            f"  {label:5s} {name:16s} {r['seconds']:7.1f} s  {new / r['seconds']:6.1f} new tok/s  "
            f"{(new + prompt) / r['seconds']:7.1f} processed tok/s  ({prompt} prompt + {new} new)"
        )
    print(
        f"  {label:5s} {'filter_records':16s} kept {kept}, dropped {result['filter_records'].get('dropped')}"
    )
    per_minute = kept / (total / 60)
    print(f"  {label:5s} total {total:7.1f} s: {per_minute:.2f} kept records per minute")
    return per_minute


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instructions", type=int, default=None, help="gen_instructions.n_instructions")
    ap.add_argument(
        "--today", nargs="*", default=["issue"],
        help=f"the baseline chain: a preset ({', '.join(BASELINES)}) or overrides",
    )  # fmt: skip
    ap.add_argument("--new", nargs="*", default=NEW, help="overrides for the new chain")
    ap.add_argument("--keep", help="keep the run folders here (default: a temporary folder)")
    args = ap.parse_args()
    common = [f"gen_instructions.n_instructions={args.instructions}"] if args.instructions else []
    repo = Path.cwd()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="selfspec-bench-"))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    print(
        f"CPU: {cpu} ({os.cpu_count()} cores, {platform.machine()}); workload overrides: {common or 'none'}"
    )
    rates = {}
    today = BASELINES[args.today[0]] if args.today[:1] and args.today[0] in BASELINES else args.today
    for label, overrides in (("today", today), ("new", args.new)):
        result = run_chain(scratch(base / label, repo), [*common, *overrides])
        print(f"{label}: {' '.join(overrides)}")
        rates[label] = summary(label, result)
    print(f"kept records per minute, new / today: {rates['new'] / rates['today']:.2f}x")
    if not args.keep:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
