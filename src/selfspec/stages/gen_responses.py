"""Stage ``gen_responses``: the base model answers each instruction, grounded in retrieved passages.

For each record the retriever returns the ``top_k`` passages for instruction + input; the prompt
shows ``n_demos`` seed demonstrations (the closest seeds by ROUGE-L), the passages as background
knowledge, then the task. Decoding is greedy by default (as in Kang et al. 2023). The record keeps
the passage ids and scores, the demonstration ids and the finish reason (``filter_records`` drops
truncated answers). ``retrieval: false`` is the paper's ablation: same prompt, no passages.
Output: ``data/gen_responses/responses.jsonl``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from selfspec.generation import Sampling
from selfspec.generation.batching import length_sorted_batches
from selfspec.generation.demos import nearest_seeds
from selfspec.generation.resume import BatchRunner
from selfspec.generation.text import RougePool, truncate_words
from selfspec.prompts import load_prompt
from selfspec.prompts.responses import parse_response

STAGE = "gen_responses"
OUTPUT = "responses.jsonl"
QUERY_MAX_WORDS = 64  # BM25 queries: the instruction and the start of the input


def sampling(p) -> Sampling:
    stop = load_prompt("responses").stop
    return Sampling(p.max_new_tokens, p.temperature, p.top_p, stop, p.repetition_penalty)


def retrieve(records: Sequence[dict], retriever, k: int) -> list[list[Any]]:
    """Top-k hits per record (empty lists when retrieval is off)."""
    if retriever is None:
        return [[] for _ in records]
    queries = [truncate_words(f"{r['instruction']} {r['input']}", QUERY_MAX_WORDS) for r in records]
    return retriever.search(queries, k)


def build_prompt(record: dict, hits: Sequence[Any], demos: Sequence[Any], p, domain: str) -> str:
    cut = p.demo_max_words
    shown = [
        {
            "instruction": d.instruction,
            "input": truncate_words(d.instances[0].input, cut),
            "output": truncate_words(d.instances[0].output, cut),
        }
        for d in demos
    ]
    passages = [{"title": h.title, "text": truncate_words(h.text, p.passage_max_words)} for h in hits]
    return load_prompt("responses").render(
        domain=domain,
        demos=shown,
        passages=passages,
        instruction=record["instruction"],
        input=record["input"],
    )


def run(
    records: Sequence[dict], seeds: Sequence[Any], p, runner: BatchRunner, batch_size: int, domain: str,
    retriever=None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    hits = retrieve(records, retriever if p.retrieval else None, p.top_k)
    pool = RougePool(s.instruction for s in seeds)
    demos = [nearest_seeds(r["instruction"], seeds, pool, p.n_demos) for r in records]
    prompts = [build_prompt(r, h, d, p, domain) for r, h, d in zip(records, hits, demos, strict=True)]
    outputs: dict[int, Any] = {}
    for index, rows in enumerate(
        length_sorted_batches(range(len(records)), lambda i: len(prompts[i]), batch_size)
    ):
        for i, completion in zip(rows, runner.run(index, [prompts[i] for i in rows]), strict=True):
            outputs[i] = completion
    out = [
        {
            **{k: v for k, v in r.items() if k not in ("batch", "needs_input")},
            "output": parse_response(outputs[i].text),
            "finish_reason": outputs[i].finish_reason,
            "task_type": "",
            "passages": [{"id": h.id, "score": round(h.score, 4)} for h in hits[i]],
            "demo_ids": [d.id for d in demos[i]],
        }
        for i, r in enumerate(records)
    ]
    metrics = {
        "records": len(out),
        "retrieval": bool(p.retrieval and retriever is not None),
        "without_passages": sum(not h for h in hits),
    }
    return out, metrics


def main(params) -> None:
    from selfspec.generation import open_generator
    from selfspec.generation.resume import index_files, model_files, partial_store
    from selfspec.generation.stage_io import finish, progress
    from selfspec.io import read_jsonl
    from selfspec.outputs import main_file
    from selfspec.retrieval import INDEX_DIR, open_retriever
    from selfspec.seeds import load_seeds, seeds_path

    started = time.perf_counter()
    p = params.gen_responses
    source = main_file("gen_inputs")
    records = read_jsonl(source)
    seeds = load_seeds(seeds_path(params))
    retriever = open_retriever(params) if p.retrieval else None
    generator = open_generator(params)
    deps = [source, seeds_path(params), *model_files()] + (index_files(INDEX_DIR) if p.retrieval else [])
    store = partial_store(STAGE, params, generator, ["responses"], deps)
    with progress(len(records), STAGE) as bar:
        runner = BatchRunner(generator, sampling(p), params.base.seed, STAGE, store, bar)
        out, metrics = run(
            records, seeds, p, runner, params.generation.batch_size, params.base.domain, retriever
        )
    metrics.update(runner.stats.metrics(), generator=generator.describe())
    finish(STAGE, OUTPUT, out, metrics, store, started)
