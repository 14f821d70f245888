"""Tokens/s of the transformers backend (batched, left-padded, KV cache) vs a naive loop that calls
``model.generate`` one prompt at a time, on the same prompts, greedy, in one run; the ratio is the
number to read. Optionally the same for each compute dtype (bf16 vs fp32 on CPU).

    python benchmarks/engine_batching.py                          # models/prepare_model, 16 prompts
    python benchmarks/engine_batching.py --model DIR --prompts 32 --batch-size 16 --dtypes bfloat16 float32

Prompts are the gen_instructions prompts built from the seed file (real prompt lengths).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from selfspec.generation import Sampling
from selfspec.generation.demos import sample_seeds
from selfspec.generation.hf import TransformersGenerator
from selfspec.prompts import load_prompt
from selfspec.seeds import load_seeds


def prompts(seed_file: Path, n: int) -> list[str]:
    seeds = load_seeds(seed_file)
    template = load_prompt("instructions")
    groups = [sample_seeds(seeds, 3, 0, "bench", i) for i in range(n)]
    return [template.render(domain="biomedical", tasks=[s.instruction for s in g]) for g in groups]


def naive(gen: TransformersGenerator, texts: list[str], new: int) -> tuple[int, float]:
    """One prompt per ``generate`` call: what a simple script does."""
    import torch

    tokens, start = 0, time.perf_counter()
    for text in texts:
        ids = gen.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(gen.device)
        with torch.inference_mode():
            out = gen.model.generate(
                **ids, max_new_tokens=new, do_sample=False, pad_token_id=gen.tokenizer.pad_token_id
            )
        tokens += out.shape[1] - ids["input_ids"].shape[1]
    return tokens, time.perf_counter() - start


def batched(gen: TransformersGenerator, texts: list[str], new: int, size: int) -> tuple[int, float]:
    tokens, start = 0, time.perf_counter()
    for i in range(0, len(texts), size):
        out = gen.generate(texts[i : i + size], Sampling(new, temperature=0), seed=0)
        tokens += sum(c.completion_tokens for c in out)
    return tokens, time.perf_counter() - start


def main() -> None:
    # as the stages do (selfspec.generation.open_generator): no spinning OpenMP waits on a shared CPU
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from selfspec.stages.prepare_model import load_prepared

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/prepare_model")
    ap.add_argument("--seeds", default="seeds/biomedical.jsonl")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--dtypes", nargs="+", default=["bfloat16"], choices=["bfloat16", "float32"])
    args = ap.parse_args()
    texts = prompts(Path(args.seeds), args.prompts)
    threads = torch.get_num_threads()
    print(f"{args.prompts} prompts, {args.new_tokens} new tokens each (greedy), {threads} threads")
    for dtype in args.dtypes:
        model, tok = load_prepared(args.model, dtype=getattr(torch, dtype))
        gen = TransformersGenerator(model, tok, "cpu")
        gen.generate(texts[:1], Sampling(4, temperature=0), 0)  # warm-up (allocator, kernels)
        n_tok, n_s = naive(gen, texts, args.new_tokens)
        b_tok, b_s = batched(gen, texts, args.new_tokens, args.batch_size)
        print(f"{dtype}: naive one-at-a-time {n_tok / n_s:7.1f} tok/s ({n_tok} tokens, {n_s:.1f} s)")
        size = args.batch_size
        print(f"{dtype}: batched (size {size})  {b_tok / b_s:7.1f} tok/s ({b_tok} tokens, {b_s:.1f} s)")
        print(f"{dtype}: speed-up ratio        {(b_tok / b_s) / (n_tok / n_s):7.2f}x")


if __name__ == "__main__":
    main()
