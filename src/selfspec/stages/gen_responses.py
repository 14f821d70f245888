"""Stage ``gen_responses``: the base model answers each instruction, grounded in retrieved passages.

For each record the retriever returns the ``top_k`` passages for instruction + input (the passage
that already is the input is not shown twice); the prompt shows ``n_demos`` seed demonstrations
(drawn from the ``demo_candidates`` closest seeds by ROUGE-L, the record's task type first), the
passages as background knowledge, then the task. Decoding is greedy by default (as in Kang et al.
2023). Then, each a param:

* an output-first record (``target_label``) is answered by its label (Self-Instruct);
* self-consistency (``consistency_samples`` > 0): a short or classification answer is voted on with
  k sampled answers; the majority is kept, with its ``agreement``;
* every answer gets a ``support`` score (``selfspec.grounding.support``) against what the prompt
  showed; ``judge``: the model rates it 1-5 (``judge_score``).

``filter_records`` applies the thresholds. The record keeps passage ids and scores, demo ids and
the finish reason. ``retrieval: false`` is the paper's ablation: same prompt, no passages.
Output: ``data/gen_responses/responses.jsonl``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from selfspec.generation import Sampling
from selfspec.generation.batching import length_sorted_batches
from selfspec.generation.resume import BatchRunner
from selfspec.generation.text import RougePool, truncate_words
from selfspec.grounding.answers import answer_budgets, judge, needs_vote, vote
from selfspec.grounding.cuts import shorten
from selfspec.grounding.demos import choose_demos
from selfspec.grounding.support import support_score
from selfspec.prompts import load_prompt
from selfspec.prompts.judge import parse_score
from selfspec.prompts.responses import parse_response

STAGE = "gen_responses"
OUTPUT = "responses.jsonl"
QUERY_MAX_WORDS = 64  # BM25 queries: the instruction and the start of the input
DROPPED_FIELDS = ("batch", "needs_input", "labels", "is_classification")


def sampling(p) -> Sampling:
    stop = load_prompt("responses").stop
    return Sampling(p.max_new_tokens, p.temperature, p.top_p, stop, p.repetition_penalty)


def consistency_sampling(p) -> Sampling:
    """Votes are on short answers: a sample longer than ~3 tokens a word disagrees anyway."""
    stop = load_prompt("responses").stop
    budget = min(p.max_new_tokens, 3 * p.consistency_max_words)
    return Sampling(budget, p.consistency_temperature, p.top_p, stop, p.repetition_penalty)


def judge_sampling() -> Sampling:
    prompt = load_prompt("judge")
    return Sampling(int(prompt.settings["max_new_tokens"]), 0.0, 1.0, prompt.stop)


def retrieve(records: Sequence[dict], retriever, k: int) -> list[list[Any]]:
    """Top-k hits per record (empty lists when retrieval is off), without the record's own input
    passage (it is in the prompt already)."""
    if retriever is None:
        return [[] for _ in records]
    queries = [truncate_words(f"{r['instruction']} {r['input']}", QUERY_MAX_WORDS) for r in records]
    found = retriever.search(queries, k + 1)
    own = [(r.get("input_passage") or {}).get("id") for r in records]
    return [[h for h in hits if h.id != pid][:k] for hits, pid in zip(found, own, strict=True)]


def shown_passages(hits: Sequence[Any], p) -> list[dict[str, str]]:
    return [{"title": h.title, "text": shorten(h.text, p.passage_max_words, p.cut)} for h in hits]


def build_prompt(record: dict, hits: Sequence[Any], demos: Sequence[Any], p, domain: str) -> str:
    cut = p.demo_max_words
    shown = [
        {
            "instruction": d.instruction,
            "input": shorten(d.instances[0].input, cut, p.cut, keep_last=True),
            "output": shorten(d.instances[0].output, cut, p.cut),
        }
        for d in demos
    ]
    return load_prompt("responses").render(
        domain=domain,
        demos=shown,
        passages=shown_passages(hits, p),
        instruction=record["instruction"],
        input=record["input"],
    )


def run(
    records: Sequence[dict], seeds: Sequence[Any], p, runner: BatchRunner, batch_size: int, domain: str,
    retriever=None, sample_runner: BatchRunner | None = None, judge_runner: BatchRunner | None = None,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """``sample_runner`` / ``judge_runner``: the runners of the second passes (default: on
    ``runner``'s generator with their own sampling, no resume file)."""
    hits = retrieve(records, retriever if p.retrieval else None, p.top_k)
    pool = RougePool(s.instruction for s in seeds)
    demos = [
        choose_demos(
            r["instruction"], r.get("task_type", ""), seeds, pool, p.n_demos, p.demo_candidates,
            p.demo_match_type, seed, STAGE, r["id"],
        )
        for r in records
    ]  # fmt: skip
    prompts = [build_prompt(r, h, d, p, domain) for r, h, d in zip(records, hits, demos, strict=True)]
    budgets = answer_budgets(seeds, p.max_new_tokens) if p.budget_by_type else {}
    answers = _greedy(records, prompts, runner, batch_size, budgets)
    votes = _votes(
        records,
        prompts,
        answers,
        p,
        sample_runner or _second(runner, consistency_sampling(p), "votes"),
        batch_size,
    )
    out = [_record(r, answers[i], votes.get(i), hits[i], demos[i], p) for i, r in enumerate(records)]
    if p.judge:
        _add_judge_scores(
            out, hits, p, judge_runner or _second(runner, judge_sampling(), "judge"), batch_size, domain
        )
    metrics = {
        "records": len(out),
        "retrieval": bool(p.retrieval and retriever is not None),
        "without_passages": sum(not h for h in hits),
        "voted": len(votes),
        "answered_by_label": sum("target_label" in r for r in records),
    }
    return out, metrics


def _second(runner: BatchRunner, sampling: Sampling, name: str) -> BatchRunner:
    return BatchRunner(runner.generator, sampling, runner.seed, f"{runner.stage}-{name}")


def _greedy(records, prompts, runner: BatchRunner, batch_size: int, budgets: dict[str, int]) -> dict:
    """(text, finish_reason) by row; output-first records take their label and spend no prompt.
    ``budgets``: new tokens by task type (missing: the sampling's); a batch holds one budget."""
    answers = {i: (r["target_label"], "stop") for i, r in enumerate(records) if r.get("target_label")}
    rows = [i for i in range(len(records)) if i not in answers]
    default = runner.sampling.max_new_tokens
    budget = {i: budgets.get(records[i].get("task_type", ""), default) for i in rows}
    batches = length_sorted_batches(rows, lambda i: len(prompts[i]), batch_size, budget.get)
    for index, batch in enumerate(batches):
        cap = max(budget[i] for i in batch)
        completions = runner.run(index, [prompts[i] for i in batch], None if cap == default else cap)
        for i, completion in zip(batch, completions, strict=True):
            answers[i] = (parse_response(completion.text), completion.finish_reason)
    return answers


def _votes(records, prompts, answers, p, sample_runner, batch_size) -> dict[int, tuple[str, float]]:
    if not p.consistency_samples:
        return {}
    labels = [r.get("labels") or [] for r in records]
    rows = [
        i
        for i, r in enumerate(records)
        if "target_label" not in r and answers[i][1] == "stop"
        and needs_vote(answers[i][0], labels[i], p.consistency_max_words)
    ]  # fmt: skip
    greedy = {i: answers[i][0] for i in rows}
    return vote(rows, prompts, greedy, lambda i: labels[i], sample_runner, p.consistency_samples, batch_size)


def _record(r: dict, answer: tuple[str, str], voted, hits: Sequence[Any], demos: Sequence[Any], p) -> dict:
    output = voted[0] if voted else answer[0]
    sources = [r["input"], *(x["text"] for x in shown_passages(hits, p))]
    return {
        **{k: v for k, v in r.items() if k not in DROPPED_FIELDS},
        "output": output,
        "finish_reason": answer[1],
        "task_type": r.get("task_type", ""),
        "labels": r.get("labels") or [],
        "passages": [{"id": h.id, "score": round(h.score, 4)} for h in hits],
        "demo_ids": [d.id for d in demos],
        "support": support_score(output, r["instruction"], sources),
        "agreement": voted[1] if voted else None,
    }


def _add_judge_scores(
    out: list[dict], hits, p, judge_runner: BatchRunner, batch_size: int, domain: str
) -> None:
    prompt = load_prompt("judge")
    texts = {
        i: prompt.render(
            domain=domain, passages=shown_passages(hits[i], p), instruction=r["instruction"],
            input=r["input"], output=r["output"],
        )
        for i, r in enumerate(out)
    }  # fmt: skip
    for i, score in judge(texts, judge_runner, batch_size, parse_score).items():
        out[i]["judge_score"] = score


def main(params) -> None:
    from selfspec.generation import open_generator
    from selfspec.generation.stage_io import finish
    from selfspec.runtime import data_dir, metrics_path

    started = time.perf_counter()
    outputs = (data_dir(STAGE) / OUTPUT, metrics_path(STAGE))
    out, metrics, stores = generate(params, open_generator(params), STAGE, outputs)
    finish(STAGE, OUTPUT, out, metrics, stores[0], started)
    for store in stores[1:]:
        store.remove()


def generate(params, generator, name: str, outputs: Sequence, extra_inputs: Sequence = ()):
    """``run`` on data/gen_inputs with ``generator``, resumable: ``(records, metrics, stores)``; the
    caller writes the records, then removes the stores (the first is the greedy pass's). ``name``
    keys the partial files (``rounds`` passes one per round); ``extra_inputs``: files hashed into their
    keys besides the inputs, the seeds, the prepared model and the index (a round's previous adapter)."""
    from selfspec.generation.resume import PartialStore, index_files, model_files, partial_store
    from selfspec.generation.stage_io import progress
    from selfspec.io import ensure_writable, read_jsonl
    from selfspec.outputs import main_file
    from selfspec.retrieval import INDEX_DIR, open_retriever
    from selfspec.seeds import load_seeds, seeds_path

    p, seed = params.gen_responses, params.base.seed
    source = main_file("gen_inputs")
    records = read_jsonl(source)
    seeds = load_seeds(seeds_path(params))
    retriever = open_retriever(params) if p.retrieval else None
    deps = [source, seeds_path(params), *model_files(), *extra_inputs]
    deps += index_files(INDEX_DIR) if p.retrieval else []
    store = partial_store(
        STAGE, params, generator, ["responses", "judge"], deps, None if name == STAGE else name
    )
    ensure_writable(*outputs, store.path)  # before generating
    # the second passes resume from files of their own, keyed like the first
    sample_store, judge_store = (
        PartialStore(store.path.with_suffix(f".{n}.jsonl")) for n in ("votes", "judge")
    )
    with progress(len(records), name) as bar:
        runner = BatchRunner(generator, sampling(p), seed, STAGE, store, bar)
        samples = BatchRunner(generator, consistency_sampling(p), seed, f"{STAGE}-votes", sample_store)
        judging = BatchRunner(generator, judge_sampling(), seed, f"{STAGE}-judge", judge_store)
        out, metrics = run(
            records, seeds, p, runner, params.generation.batch_size, params.base.domain, retriever,
            samples, judging, seed,
        )  # fmt: skip
    metrics.update(runner.stats.metrics(), generator=generator.describe())
    metrics["second_passes"] = {"votes": samples.stats.metrics(), "judge": judging.stats.metrics()}
    return out, metrics, (store, sample_store, judge_store)
