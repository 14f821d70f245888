"""What the repetition penalty does to gen_responses' answers: penalising the prompt's tokens too
(transformers' default, today), the generated tokens only (the new default), or no penalty, on
the same records, in one run.

    python benchmarks/generation.py --instructions 16 --keep /tmp/bench    # makes the records
    python benchmarks/repetition_penalty.py /tmp/bench/new

For each setting it prints: records kept by filter_records (drops by reason), the answers' mean
repeat ratio (4-gram loops), and "copied": the share of an answer's content words (4+ letters)
found in its input or retrieved passages: what grounding is for.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

SETTINGS = {
    "prompt+generated (today)": ["generation.penalize_prompt=true"],
    "generated only (new)": ["generation.penalize_prompt=false"],
    "off": ["gen_responses.repetition_penalty=1.0"],
}


def copied(record: dict, passages: dict[str, str]) -> float | None:
    from selfspec.generation.text import words

    source = " ".join([record["input"], *(passages[p["id"]] for p in record["passages"])])
    have = set(words(source))
    content = [w for w in words(record["output"]) if len(w) >= 4]
    return sum(w in have for w in content) / len(content) if content else None


def measure(root: Path, overrides: list[str], passages: dict[str, str]) -> str:
    from selfspec.config import load_params
    from selfspec.generation.text import repeat_ratio
    from selfspec.io import read_jsonl
    from selfspec.stages import filter_records, gen_responses

    params = load_params("params.yaml", overrides)
    start = time.perf_counter()
    gen_responses.main(params)
    filter_records.main(params)
    out = read_jsonl(root / "data" / "gen_responses" / "responses.jsonl")
    kept = json.loads((root / "metrics" / "filter_records.json").read_text())
    shares = [s for s in (copied(r, passages) for r in out) if s is not None]
    return (
        f"kept {kept['kept']}/{len(out)} {kept['dropped']}; repeat ratio "
        f"{statistics.mean(repeat_ratio(r['output']) for r in out):.3f}; copied "
        f"{statistics.mean(shares):.3f}; {time.perf_counter() - start:.0f} s"
    )


def main() -> None:
    from selfspec.io import read_jsonl

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "run", type=Path, help="a run folder with data/gen_inputs (benchmarks/generation.py --keep)"
    )
    args = ap.parse_args()
    os.chdir(args.run)
    passages = {p["id"]: p["text"] for p in read_jsonl(Path("data/build_corpus/passages.jsonl"))}
    for label, overrides in SETTINGS.items():
        print(f"{label:26s} {measure(args.run, overrides, passages)}", flush=True)


if __name__ == "__main__":
    main()
