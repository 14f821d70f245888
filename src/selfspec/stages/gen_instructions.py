"""Stage ``gen_instructions``: the base model brainstorms new domain instructions (Self-Instruct).

Each prompt shows ``seeds_per_prompt`` seed instructions, drawn with an RNG seeded by
(seed, batch, slot), as a numbered list; the model continues the list (raw text, no chat
template). Every task it writes passes the filters below, in order, or is dropped and counted by
reason: empty, too short/long, bad start, blacklisted word, ROUGE-L > threshold against the pool
(seed instructions + those kept so far). Batches continue until ``n_instructions`` are kept or the
``max_prompts`` attempt budget is spent. Output: ``data/gen_instructions/instructions.jsonl``.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from selfspec.generation import Sampling
from selfspec.generation.resume import BatchRunner
from selfspec.generation.stagekit import sample_seeds
from selfspec.generation.text import RougePool, words
from selfspec.prompts import load_prompt
from selfspec.prompts.instructions import needs_input, parse_tasks

log = logging.getLogger(__name__)

STAGE = "gen_instructions"
OUTPUT = "instructions.jsonl"


def sampling(p) -> Sampling:
    return Sampling(p.max_new_tokens, p.temperature, p.top_p, load_prompt("instructions").stop)


def run(
    seeds: Sequence[Any], p, runner: BatchRunner, batch_size: int, seed: int, domain: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Brainstorm until ``p.n_instructions`` pass the filters or ``p.max_prompts`` are spent."""
    prompt = load_prompt("instructions")
    pool = RougePool(s.instruction for s in seeds)
    starts = task_starts(seeds, p.task_verbs)
    kept: list[dict[str, Any]] = []
    drops: Counter[str] = Counter()
    index = 0
    while len(kept) < p.n_instructions and index * batch_size < p.max_prompts:
        size = min(batch_size, p.max_prompts - index * batch_size)
        shown = [sample_seeds(seeds, p.seeds_per_prompt, seed, STAGE, index, j) for j in range(size)]
        texts = [prompt.render(domain=domain, tasks=[s.instruction for s in group]) for group in shown]
        for group, completion in zip(shown, runner.run(index, texts), strict=True):
            tasks, n_cut = parse_tasks(completion.text, completion.finish_reason == "length")
            drops["truncated"] += n_cut
            for task in tasks:
                if len(kept) == p.n_instructions:
                    break
                _consider(task, group, index, p, pool, starts, kept, drops)
        index += 1
    metrics = {"kept": len(kept), "dropped": dict(sorted(drops.items())), "prompts": runner.stats.prompts}
    metrics["candidates"] = len(kept) + sum(drops.values())
    metrics["needs_input"] = sum(r["needs_input"] for r in kept)
    return kept, metrics


def task_starts(seeds: Sequence[Any], verbs: Sequence[str]) -> frozenset[str]:
    """First words that make an instruction a task: the verb list plus the seeds' own first words
    (an empty verb list turns the check off)."""
    if not verbs:
        return frozenset()
    return frozenset(v.lower() for v in verbs) | {
        words(s.instruction)[0] for s in seeds if words(s.instruction)
    }


def _consider(task: str, group, index: int, p, pool: RougePool, starts, kept: list, drops: Counter) -> None:
    reason = check_instruction(task, p, pool, starts)
    if reason:
        drops[reason] += 1
        return
    pool.add(task)
    kept.append(
        {
            "id": f"ins-{len(kept) + 1:05d}",
            "instruction": task,
            "needs_input": needs_input(task),
            "seed_ids": [s.id for s in group],
            "batch": index,
        }
    )


def check_instruction(task: str, p, pool: RougePool, starts: frozenset[str]) -> str | None:
    """The first filter ``task`` fails, or None when it is kept."""
    tokens = words(task)
    n = len(tokens)
    lowered = task.lower()
    if n == 0:
        return "empty"
    if n < p.min_words:
        return "too_short"
    if n > p.max_words:
        return "too_long"
    if not task[0].isalnum() or not task.isascii() or lowered.startswith(tuple(p.bad_starts)):
        return "bad_start"
    if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in p.blacklist):
        return "blacklisted"
    if starts and not task.rstrip().endswith("?") and tokens[0] not in starts:
        return "not_a_task"
    if pool.exceeds(task, p.rouge_threshold):
        return "similar_to_pool"
    return None


def main(params) -> None:
    from selfspec.generation import open_generator
    from selfspec.generation.stagekit import finish, model_files, partial_store, progress
    from selfspec.runtime import model_dir
    from selfspec.seeds import load_seeds, seeds_path

    started = time.perf_counter()
    p, gp = params.gen_instructions, params.generation
    seeds = load_seeds(seeds_path(params))
    generator = open_generator(params)
    store = partial_store(STAGE, params, generator, ["instructions"], [seeds_path(params), *model_files()])
    with progress(p.max_prompts, f"{STAGE} (prompts, until {p.n_instructions} kept)") as bar:
        runner = BatchRunner(generator, sampling(p), params.base.seed, STAGE, store, bar)
        records, metrics = run(seeds, p, runner, gp.batch_size, params.base.seed, params.base.domain)
    if len(records) < p.n_instructions:
        log.warning(
            "%s: attempt budget spent: %d of %d instructions kept", STAGE, len(records), p.n_instructions
        )
    metrics.update(
        runner.stats.metrics(), generator=generator.describe(), model=str(model_dir("prepare_model"))
    )
    finish(STAGE, OUTPUT, records, metrics, store, started)
