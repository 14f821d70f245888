"""Stage ``gen_instructions``: the base model brainstorms new domain instructions (Self-Instruct).

Each prompt shows ``seeds_per_prompt`` seed instructions and then ``generated_per_prompt``
instructions kept in earlier batches (Self-Instruct's mix), drawn with an RNG seeded by (seed,
batch, slot), as a numbered list; the model continues the list (raw text, no chat template). Every
task it writes passes the filters below, in order, or is dropped and counted by reason: empty, too
short/long, bad start, foreign script, blacklisted word, not a task (neither a question nor a task
verb first), ROUGE-L > threshold against the pool (seed instructions + those kept so far). Kept
tasks carry the nearest seed's ``task_type`` and ``is_classification`` and, for classification, the
``labels`` the instruction lists. Batches continue until ``n_instructions`` are kept or the
``max_prompts`` attempt budget is spent. Output: ``data/gen_instructions/instructions.jsonl``.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from selfspec.generation import Sampling, derive_seed
from selfspec.generation.demos import sample_seeds
from selfspec.generation.resume import BatchRunner
from selfspec.generation.text import RougePool, words
from selfspec.grounding.tasks import is_task, label_space, nearest_type, script_ok
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
    typer = (seeds, RougePool(s.instruction for s in seeds)) if p.task_types else None
    starts = task_starts(seeds, p.task_verbs, p.seed_first_words)
    kept: list[dict[str, Any]] = []
    drops: Counter[str] = Counter()
    index = 0
    while len(kept) < p.n_instructions and index * batch_size < p.max_prompts:
        size = min(batch_size, p.max_prompts - index * batch_size)
        shown = [sample_seeds(seeds, p.seeds_per_prompt, seed, STAGE, index, j) for j in range(size)]
        extra = [sample_generated(kept, p.generated_per_prompt, seed, index, j) for j in range(size)]
        texts = [
            prompt.render(domain=domain, tasks=[s.instruction for s in group] + more)
            for group, more in zip(shown, extra, strict=True)
        ]
        for group, completion in zip(shown, runner.run(index, texts), strict=True):
            tasks, n_cut = parse_tasks(completion.text, completion.finish_reason == "length")
            drops["truncated"] += n_cut
            for task in tasks:
                if len(kept) == p.n_instructions:
                    break
                _consider(task, group, index, p, (pool, starts, typer), kept, drops)
        index += 1
    metrics = {"kept": len(kept), "dropped": dict(sorted(drops.items())), "prompts": runner.stats.prompts}
    metrics["candidates"] = len(kept) + sum(drops.values())
    metrics["needs_input"] = sum(r["needs_input"] for r in kept)
    metrics["task_types"] = dict(Counter(r["task_type"] or "unknown" for r in kept).most_common())
    return kept, metrics


def sample_generated(kept: Sequence[dict], k: int, seed: int, index: int, slot: int) -> list[str]:
    """``k`` instructions kept in earlier batches (none in batch 0), drawn with their own RNG."""
    earlier = [r["instruction"] for r in kept if r["batch"] < index]
    return random.Random(derive_seed(seed, STAGE, "generated", index, slot)).sample(
        earlier, min(k, len(earlier))
    )


def task_starts(seeds: Sequence[Any], verbs: Sequence[str], seed_first_words: bool = False) -> frozenset[str]:
    """First words that make an instruction a task: the verb list, plus (``seed_first_words``) the
    seeds' own first words — which lets "A", "In", "Given" through (an empty list: no check)."""
    if not verbs:
        return frozenset()
    own = {words(s.instruction)[0] for s in seeds if words(s.instruction)} if seed_first_words else set()
    return frozenset(v.lower() for v in verbs) | own


def _consider(task: str, group, index: int, p, checks, kept: list, drops: Counter) -> None:
    pool, starts, typer = checks
    reason = check_instruction(task, p, pool, starts)
    if reason:
        drops[reason] += 1
        return
    pool.add(task)
    task_type, is_classification = nearest_type(task, *typer) if typer else ("", False)
    labels = label_space(task) if is_classification else []
    kept.append(
        {
            "id": f"ins-{len(kept) + 1:05d}",
            "instruction": task,
            "needs_input": needs_input(task),
            "seed_ids": [s.id for s in group],
            "batch": index,
            "task_type": task_type,
            "is_classification": bool(labels),  # a label to check answers against, or not one
            "labels": labels,
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
    ascii_only = p.charset == "ascii"
    if (
        not task[0].isalnum()
        or (ascii_only and not task.isascii())
        or lowered.startswith(tuple(p.bad_starts))
    ):
        return "bad_start"
    if not script_ok(task):
        return "foreign_script"
    if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in p.blacklist):
        return "blacklisted"
    if starts and not is_task(task, starts):
        return "not_a_task"
    if pool.exceeds(task, p.rouge_threshold):
        return "similar_to_pool"
    return None


def main(params) -> None:
    from selfspec.generation import open_generator
    from selfspec.generation.resume import model_files, partial_store
    from selfspec.generation.stage_io import finish, progress
    from selfspec.io import ensure_writable
    from selfspec.runtime import data_dir, metrics_path, model_dir
    from selfspec.seeds import load_seeds, seeds_path

    started = time.perf_counter()
    p, gp = params.gen_instructions, params.generation
    seeds = load_seeds(seeds_path(params))
    generator = open_generator(params)
    store = partial_store(STAGE, params, generator, ["instructions"], [seeds_path(params), *model_files()])
    ensure_writable(data_dir(STAGE) / OUTPUT, store.path, metrics_path(STAGE))  # before generating
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
