"""QLoRA (4-bit NF4 base) vs plain fp32 LoRA: peak RSS and seconds per optimizer step, same data.

Each mode trains in its own subprocess (peak RSS is per process) on the same records with the
same LoRA settings; the ratios are computed from numbers measured in this one invocation.

    python benchmarks/train.py                       # models/prepare_model, 8 steps per mode
    python benchmarks/train.py --base DIR --records data/filter_records/records.jsonl --steps 12

The first step (allocator warm-up, lazy init) is excluded from seconds/step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = {
    # name: (train.quantization, base.dtype, train.gradient_checkpointing)
    "qlora-nf4": ("nf4", "auto", False),  # what the stage runs: 4-bit base, bf16 compute where fast
    "lora-fp32": ("none", "float32", False),  # plain LoRA on a full-precision base
    "qlora-ckpt": ("nf4", "auto", True),  # the memory knob: recompute activations in backward
}


def default_records() -> Path:
    produced = REPO / "data/filter_records/records.jsonl"
    return produced if produced.is_file() else REPO / "tests/fixtures/train/records.jsonl"


def worker(args: argparse.Namespace) -> None:
    """Train ``args.steps`` steps in this process and print one JSON line of measurements."""
    import tempfile

    import torch

    from selfspec.config import load_params
    from selfspec.io import read_jsonl
    from selfspec.runtime import resolve_dtype, set_seed
    from selfspec.training.data import encode_records
    from selfspec.training.loop import peak_rss_mb, train
    from selfspec.training.model import add_lora, count_parameters, load_base, load_tokenizer

    quant, dtype_name, ckpt = MODES[args.worker]
    overrides = [
        f"train.gradient_checkpointing={str(ckpt).lower()}",
        f"train.quantization={quant}",
        f"base.dtype={dtype_name}",
        f"train.max_steps={args.steps}",
        "train.logging_steps=1",
        f"train.batch_size={args.batch_size}",
        f"train.max_length={args.max_length}",
    ]
    params = load_params(REPO / "params.yaml", overrides)
    dtype = resolve_dtype(params.base.dtype, "cpu")
    tokenizer = load_tokenizer(args.base)
    records = read_jsonl(args.records)
    while len(records) < args.steps * args.batch_size:
        records = records + records  # small fixture sets: repeat so every step has a full batch
    encoded = encode_records(records, tokenizer, "alpaca", params.train.max_length)
    set_seed(0)
    model = add_lora(load_base(args.base, params.train, "cpu", dtype), params.train)
    rss_loaded = peak_rss_mb()
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        metrics = train(
            model,
            tokenizer,
            encoded.examples,
            params.train,
            0,
            dtype == torch.bfloat16,
            True,
            tmp,
            log_fn=lambda m, step: stamps.append(time.perf_counter()),
        )
    steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    print(
        json.dumps(
            {
                "mode": args.worker,
                "dtype": str(dtype),
                "seconds_per_step": steady,
                "peak_rss_mb": metrics["peak_rss_mb"],
                "rss_after_load_mb": rss_loaded,
                "tokens_per_s": metrics["tokens_per_s"],
                "final_loss": metrics["final_loss"],
                "mean_tokens": encoded.stats["mean_length"],
                **count_parameters(model),
            }
        )
    )


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        mode,
        "--base",
        str(args.base),
        "--records",
        str(args.records),
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--max-length",
        str(args.max_length),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        sys.exit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, default=REPO / "models/prepare_model")
    p.add_argument("--records", type=Path, default=default_records())
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--worker", choices=sorted(MODES), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if not (args.base / "config.json").is_file():
        sys.exit(f"{args.base}: no model; run `dvc repro prepare_model` or pass --base")
    rows = {mode: run_mode(mode, args) for mode in MODES}
    print(
        f"base {args.base}, records {args.records}, {args.steps} steps x batch {args.batch_size}, "
        f"mean {rows['qlora-nf4']['mean_tokens']:.0f} tokens/sequence"
    )
    print(f"{'mode':<10} {'dtype':<15} {'s/step':>8} {'peak RSS MB':>12} {'tokens/s':>9} {'final loss':>10}")
    for r in rows.values():
        print(
            f"{r['mode']:<10} {r['dtype']:<15} {r['seconds_per_step']:>8.2f} {r['peak_rss_mb']:>12.0f} "
            f"{r['tokens_per_s']:>9.0f} {r['final_loss']:>10.3f}"
        )
    q, f = rows["qlora-nf4"], rows["lora-fp32"]
    c = rows["qlora-ckpt"]
    print(
        f"ratio QLoRA + checkpointing / fp32 LoRA: peak RSS {c['peak_rss_mb'] / f['peak_rss_mb']:.2f}x, "
        f"seconds/step {c['seconds_per_step'] / f['seconds_per_step']:.2f}x"
    )
    print(
        f"ratio QLoRA / fp32 LoRA: peak RSS {q['peak_rss_mb'] / f['peak_rss_mb']:.2f}x, "
        f"seconds/step {q['seconds_per_step'] / f['seconds_per_step']:.2f}x"
    )


if __name__ == "__main__":
    main()
