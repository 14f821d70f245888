"""Stage ``gen_inputs``: an input context for each instruction that needs one.

An instruction flagged ``needs_input`` (it points at "the abstract", "this note"...) gets one of:

* real corpus passages (``source: corpus``, or ``mixed`` for the ``corpus_task_types``): the best
  ``inputs_per_instruction`` unused passages retrieved for the instruction's topic words, cut to
  whole sentences, one record each (the instruction is written once and applied to several real
  texts, as Self-Instruct generates several instances per task); each passage's id and score are
  kept as ``input_passage``. No usable passage: the input is written instead (one).
* a context written by the model after ``n_demos`` seed (instruction, input) pairs — the seeds whose
  instructions are closest by ROUGE-L, so an abstract task is shown abstracts. With
  ``classification: output_first`` a classification task's label is drawn first (evenly over its
  label space) and the model writes an input for it; the label is kept as ``target_label``.

Others get an explicit empty input. ``input_source`` says which (none | corpus | generated). A
needed input that comes out empty or too short drops the record.
Output: ``data/gen_inputs/inputs.jsonl`` (the instruction records plus ``input``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from selfspec.generation import Sampling, derive_seed
from selfspec.generation.batching import length_sorted_batches
from selfspec.generation.demos import nearest_seeds
from selfspec.generation.resume import BatchRunner
from selfspec.generation.text import RougePool, words
from selfspec.grounding.cuts import shorten
from selfspec.grounding.passages import pick_passages
from selfspec.prompts import load_prompt
from selfspec.prompts.inputs import parse_input

STAGE = "gen_inputs"
OUTPUT = "inputs.jsonl"


def sampling(p) -> Sampling:
    return Sampling(p.max_new_tokens, p.temperature, p.top_p, load_prompt("inputs").stop)


def target_label(record: dict, p, seed: int) -> str | None:
    """The label an output-first input is written for (None: input first)."""
    labels = record.get("labels") or []
    if p.classification != "output_first" or not record.get("is_classification") or not labels:
        return None
    return labels[derive_seed(seed, STAGE, record["id"]) % len(labels)]


def build_prompts(
    instructions: Sequence[dict], seeds: Sequence[Any], p, domain: str, seed: int = 0
) -> dict[str, str]:
    """Prompt text by record id, for the records that need an input."""
    with_input = [s for s in seeds if s.instances[0].input]
    labelled = [s for s in with_input if s.is_classification] or with_input
    # output-first prompts show classification seeds (their answer is a label)
    groups = {
        g: (seeds_, RougePool(s.instruction for s in seeds_))
        for g, seeds_ in ((False, with_input), (True, labelled))
    }
    prompts = {}
    for record in instructions:
        if record["needs_input"]:
            label = target_label(record, p, seed)
            demos = nearest_seeds(record["instruction"], *groups[label is not None], p.n_demos)
            prompts[record["id"]] = _render(record, demos, label, p, domain)
    return prompts


def _render(record: dict, demos: Sequence[Any], label: str | None, p, domain: str) -> str:
    shown = [
        {
            "instruction": d.instruction,
            "input": shorten(d.instances[0].input, p.demo_max_words, p.cut, keep_last=True),
            "output": d.instances[0].output,
        }
        for d in demos
    ]
    if label is None:
        return load_prompt("inputs").render(domain=domain, demos=shown, instruction=record["instruction"])
    return load_prompt("inputs_label_first").render(
        domain=domain, demos=shown, instruction=record["instruction"], label=label
    )


def corpus_records(instructions: Sequence[dict], p) -> list[dict]:
    """The records whose input should be a corpus passage."""
    if p.source == "generated":
        return []
    wanted = set(p.corpus_task_types)
    return [
        r
        for r in instructions
        if r["needs_input"] and (p.source == "corpus" or r.get("task_type", "") in wanted)
    ]


def run(
    instructions: Sequence[dict], seeds: Sequence[Any], p, runner: BatchRunner, batch_size: int, domain: str,
    retriever=None, seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """``retriever`` None: every needed input is written by the model, whatever ``p.source``."""
    found = (
        pick_passages(
            corpus_records(instructions, p),
            retriever,
            p.corpus_top_k,
            p.corpus_max_words,
            p.corpus_min_words,
            p.inputs_per_instruction,
        )  # fmt: skip
        if retriever is not None
        else {}
    )
    to_write = [r for r in instructions if r["id"] not in found]
    prompts = build_prompts(to_write, seeds, p, domain, seed)
    written = {}
    batches = length_sorted_batches(list(prompts), lambda rid: len(prompts[rid]), batch_size)
    for index, ids in enumerate(batches):
        completions = runner.run(index, [prompts[rid] for rid in ids])
        for rid, completion in zip(ids, completions, strict=True):
            written[rid] = parse_input(completion.text, completion.finish_reason == "length")
    kept, drops = [], Counter()
    for record in instructions:
        out = _with_inputs(record, found, written, p, seed)
        if not out:
            drops["empty_input" if not written.get(record["id"]) else "input_too_short"] += 1
        kept.extend(out)
    metrics = {
        "kept": len(kept),
        "dropped": dict(sorted(drops.items())),
        "with_input": len(prompts) + sum(map(len, found.values())),
        "instructions": len(instructions),
    }
    metrics["input_sources"] = dict(sorted(Counter(r["input_source"] for r in kept).items()))
    return kept, metrics


def _with_inputs(record: dict, found: dict, written: dict, p, seed: int) -> list[dict]:
    """The record with its input and provenance (one per corpus passage: the first keeps the
    instruction's id, the others get ``<id>.2``, ``<id>.3``...), or none when a needed input is
    missing."""
    rid = record["id"]
    if rid in found:
        return [
            {**record, "id": rid if j == 0 else f"{rid}.{j + 1}", "input": text, "input_source": "corpus",
             "input_passage": _ref(hit)}
            for j, (text, hit) in enumerate(found[rid])
        ]  # fmt: skip
    if not record["needs_input"]:
        return [{**record, "input": "", "input_source": "none", "input_passage": None}]
    text = written.get(rid, "")
    if len(words(text)) < p.min_words:
        return []
    out = {**record, "input": text, "input_source": "generated", "input_passage": None}
    label = target_label(record, p, seed)
    return [{**out, "target_label": label} if label else out]


def _ref(hit) -> dict[str, Any]:
    return {"id": hit.id, "score": round(hit.score, 4)}


def main(params) -> None:
    from selfspec.generation import open_generator
    from selfspec.generation.resume import index_files, model_files, partial_store
    from selfspec.generation.stage_io import finish, progress
    from selfspec.io import ensure_writable, read_jsonl
    from selfspec.outputs import main_file
    from selfspec.retrieval import INDEX_DIR, open_retriever
    from selfspec.runtime import data_dir, metrics_path
    from selfspec.seeds import load_seeds, seeds_path

    started = time.perf_counter()
    p = params.gen_inputs
    source = main_file("gen_instructions")
    instructions = read_jsonl(source)
    seeds = load_seeds(seeds_path(params))
    retriever = open_retriever(params) if p.source != "generated" else None
    generator = open_generator(params)
    deps = [source, seeds_path(params), *model_files()] + (index_files(INDEX_DIR) if retriever else [])
    store = partial_store(STAGE, params, generator, ["inputs", "inputs_label_first"], deps)
    ensure_writable(data_dir(STAGE) / OUTPUT, store.path, metrics_path(STAGE))  # before generating
    with progress(sum(r["needs_input"] for r in instructions), STAGE) as bar:
        runner = BatchRunner(generator, sampling(p), params.base.seed, STAGE, store, bar)
        records, metrics = run(
            instructions, seeds, p, runner, params.generation.batch_size, params.base.domain, retriever,
            params.base.seed,
        )  # fmt: skip
    metrics.update(runner.stats.metrics(), generator=generator.describe())
    finish(STAGE, OUTPUT, records, metrics, store, started)
