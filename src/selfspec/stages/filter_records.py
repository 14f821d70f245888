"""Stage ``filter_records``: drop degenerate, duplicate and contaminated records.

Every record passes these checks in order, or is dropped and counted under the first reason it
fails: ``truncated`` (hit max_new_tokens, with ``truncated: drop`` or with no full sentence to
trim back to under ``trim``), ``empty`` output, ``too_short`` / ``too_long`` output,
``degenerate`` (a repetition loop in the output or the input: repeated word 4-grams), ``echo``
(output equals the input or the instruction), ``template_leak`` (the output runs on into a new
"## Question:" or "Task:" block), ``contaminated`` (shares a
``contamination_ngram``-word n-gram with an evaluation question) and ``near_duplicate`` (Jaccard
of word 3-grams of instruction + input against a kept record). Output: the training set,
``data/filter_records/records.jsonl``: ``id, instruction, input, output, task_type, seed_ids,
passages``.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from selfspec.generation.text import ngrams, repeat_ratio, words
from selfspec.prompts.inputs import trim_to_sentence

log = logging.getLogger(__name__)

STAGE = "filter_records"
OUTPUT = "records.jsonl"
FIELDS = ("id", "instruction", "input", "output", "task_type", "seed_ids", "passages")
SHINGLE = 3  # words per shingle for near-duplicates
# The model went on past its answer into a new prompt block ("## Question: ...", "Task: ...").
SCAFFOLD = re.compile(r"#{2,}|(^|\n)\s*(Task|Input|Answer|Instruction|Question)\s*:", re.IGNORECASE)


def eval_ngrams(questions: Iterable[str], n: int) -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for question in questions:
        grams |= ngrams(words(question), n)
    return grams


class NearDuplicates:
    """Jaccard similarity of shingle sets, with an inverted index so only records that share a
    shingle are compared (linear in practice rather than quadratic)."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.sets: list[set[tuple[str, ...]]] = []
        self.index: dict[tuple[str, ...], list[int]] = defaultdict(list)

    def seen(self, text: str) -> bool:
        """True if ``text`` is a near-duplicate of one added before; otherwise add it."""
        tokens = words(text)
        shingles = ngrams(tokens, SHINGLE) or {tuple(tokens)}
        shared = Counter(j for s in shingles for j in self.index.get(s, ()))
        for j, inter in shared.items():
            if inter / len(shingles | self.sets[j]) >= self.threshold:
                return True
        for s in shingles:
            self.index[s].append(len(self.sets))
        self.sets.append(shingles)
        return False


def check_record(record: dict[str, Any], p, contamination: set[tuple[str, ...]]) -> str | None:
    """The first per-record filter ``record`` fails (near-duplicates are checked by ``run``)."""
    output = record["output"].strip()
    n = len(words(output))
    if record.get("finish_reason") == "length" and p.truncated != "keep":
        return "truncated"  # trimmable ones were trimmed (and marked "stop") by ``trim``
    if n == 0:
        return "empty"
    if n < p.min_output_words:
        return "too_short"
    if n > p.max_output_words:
        return "too_long"
    if max(repeat_ratio(output), repeat_ratio(record["input"])) > p.max_repeat_ratio:
        return "degenerate"
    if _same(output, record["input"]) or _same(output, record["instruction"]):
        return "echo"
    if SCAFFOLD.search(output):
        return "template_leak"
    if contamination:
        text = words(" ".join((record["instruction"], record["input"], output)))
        if ngrams(text, p.contamination_ngram) & contamination:
            return "contaminated"
    return None


def trim(record: dict[str, Any]) -> dict[str, Any]:
    """A response cut by the token limit, back to its last full sentence (still "length" when it
    has none, so that it is dropped as truncated)."""
    output = trim_to_sentence(record["output"])
    return {**record, "output": output, "finish_reason": "stop" if output else "length"}


def _same(a: str, b: str) -> bool:
    return bool(b.strip()) and words(a) == words(b)


def run(
    records: Sequence[dict[str, Any]], p, eval_questions: Sequence[str] | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``eval_questions`` None: the contamination check is off (reported in the metrics)."""
    contamination = eval_ngrams(eval_questions or (), p.contamination_ngram)
    dups = NearDuplicates(p.near_dup_threshold)
    kept, drops = [], Counter()
    trimmed = 0
    for record in records:
        if p.truncated == "trim" and record.get("finish_reason") == "length":
            record, trimmed = trim(record), trimmed + 1
        reason = check_record(record, p, contamination)
        if reason is None and dups.seen(f"{record['instruction']} {record['input']}"):
            reason = "near_duplicate"
        if reason:
            drops[reason] += 1
            continue
        kept.append({k: record.get(k, "" if k in ("input", "task_type") else []) for k in FIELDS})
    metrics = {
        "records_in": len(records),
        "kept": len(kept),
        "dropped": dict(sorted(drops.items())),
        "truncated_trimmed": trimmed,
        "contamination_check": eval_questions is not None,
        "eval_texts": len(eval_questions or ()),
        "output_words_mean": round(sum(len(words(r["output"])) for r in kept) / max(1, len(kept)), 1),
        "with_input": sum(bool(r["input"]) for r in kept),
    }
    return kept, metrics


def read_eval_questions(folder: Path) -> list[str] | None:
    """The ``question`` of each evaluation item in ``folder/*.jsonl``, and its ``context`` (e.g.
    PubMedQA's abstract) when it has one. None (check disabled, logged) when there are no files."""
    from selfspec.io import iter_jsonl

    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        log.warning("%s: no evaluation sets (*.jsonl): contamination check DISABLED", folder)
        return None
    texts = []
    for f in files:
        for _, r in iter_jsonl(f):
            # separate texts: an n-gram must not span the question and its context
            texts += [r[k] for k in ("question", "context") if isinstance(r.get(k), str)]
    return texts


def main(params) -> None:
    from selfspec.errors import StageError
    from selfspec.io import read_jsonl, write_json, write_jsonl
    from selfspec.outputs import main_file
    from selfspec.runtime import data_dir, metrics_path

    started = time.perf_counter()
    p = params.filter_records
    records = read_jsonl(main_file("gen_responses"))
    kept, metrics = run(records, p, read_eval_questions(Path(p.evals_dir)))
    if not kept:
        raise StageError(STAGE, f"every record was dropped ({metrics['dropped']}); nothing to train on")
    write_jsonl(data_dir(STAGE) / OUTPUT, kept)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    write_json(metrics_path(STAGE), metrics)
    log.info("%s: kept %d of %d records; dropped %s", STAGE, len(kept), len(records), metrics["dropped"])
