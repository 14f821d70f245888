"""Stage ``gen_inputs``: an input context for each instruction that needs one.

An instruction flagged ``needs_input`` (it points at "the abstract", "this note"...) gets a
context written by the model after ``n_demos`` seed (instruction, input) pairs — the seeds whose
instructions are closest by ROUGE-L, so an abstract task is shown abstracts. Others get an
explicit empty input. A needed input that comes out empty or too short drops the record.
Output: ``data/gen_inputs/inputs.jsonl`` (the instruction records plus ``input``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from selfspec.generation import Sampling
from selfspec.generation.batching import length_sorted_batches
from selfspec.generation.demos import nearest_seeds
from selfspec.generation.resume import BatchRunner
from selfspec.generation.text import RougePool, truncate_words, words
from selfspec.prompts import load_prompt
from selfspec.prompts.inputs import parse_input

STAGE = "gen_inputs"
OUTPUT = "inputs.jsonl"


def sampling(p) -> Sampling:
    return Sampling(p.max_new_tokens, p.temperature, p.top_p, load_prompt("inputs").stop)


def build_prompts(instructions: Sequence[dict], seeds: Sequence[Any], p, domain: str) -> dict[str, str]:
    """Prompt text by record id, for the records that need an input."""
    prompt = load_prompt("inputs")
    with_input = [s for s in seeds if s.instances[0].input]
    pool = RougePool(s.instruction for s in with_input)
    prompts = {}
    for record in instructions:
        if record["needs_input"]:
            demos = nearest_seeds(record["instruction"], with_input, pool, p.n_demos)
            shown = [
                {
                    "instruction": d.instruction,
                    "input": truncate_words(d.instances[0].input, p.demo_max_words),
                }
                for d in demos
            ]
            prompts[record["id"]] = prompt.render(
                domain=domain, demos=shown, instruction=record["instruction"]
            )
    return prompts


def run(
    instructions: Sequence[dict], seeds: Sequence[Any], p, runner: BatchRunner, batch_size: int, domain: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    prompts = build_prompts(instructions, seeds, p, domain)
    written = {}
    batches = length_sorted_batches(list(prompts), lambda rid: len(prompts[rid]), batch_size)
    for index, ids in enumerate(batches):
        completions = runner.run(index, [prompts[rid] for rid in ids])
        for rid, completion in zip(ids, completions, strict=True):
            written[rid] = parse_input(completion.text, completion.finish_reason == "length")
    kept, drops = [], Counter()
    for record in instructions:
        text = written.get(record["id"], "")
        if record["needs_input"] and len(words(text)) < p.min_words:
            drops["empty_input" if not text else "input_too_short"] += 1
            continue
        kept.append({**record, "input": text})
    metrics = {"kept": len(kept), "dropped": dict(sorted(drops.items())), "with_input": len(prompts)}
    return kept, metrics


def main(params) -> None:
    from selfspec.generation import open_generator
    from selfspec.generation.resume import model_files, partial_store
    from selfspec.generation.stage_io import finish, progress
    from selfspec.io import read_jsonl
    from selfspec.outputs import main_file
    from selfspec.seeds import load_seeds, seeds_path

    started = time.perf_counter()
    p = params.gen_inputs
    source = main_file("gen_instructions")
    instructions = read_jsonl(source)
    seeds = load_seeds(seeds_path(params))
    generator = open_generator(params)
    store = partial_store(STAGE, params, generator, ["inputs"], [source, seeds_path(params), *model_files()])
    with progress(sum(r["needs_input"] for r in instructions), STAGE) as bar:
        runner = BatchRunner(generator, sampling(p), params.base.seed, STAGE, store, bar)
        records, metrics = run(
            instructions, seeds, p, runner, params.generation.batch_size, params.base.domain
        )
    metrics.update(runner.stats.metrics(), generator=generator.describe())
    finish(STAGE, OUTPUT, records, metrics, store, started)
