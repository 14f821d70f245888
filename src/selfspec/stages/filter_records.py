"""Stage ``filter_records``: drop degenerate, duplicate and contaminated records.

Every record passes these checks in order, or is dropped and counted under the first reason it
fails: ``truncated`` (hit max_new_tokens, with ``truncated: drop`` or with no full sentence to
trim back to under ``trim``), ``empty`` output, ``too_short`` / ``too_long`` output,
``degenerate`` (a repetition loop in the output or the input: repeated word 4-grams), ``echo``
(output equals the input or the instruction), ``template_leak`` (the output runs on into a new
"## Question:" or "Task:" block), ``contaminated`` (shares a word n-gram with an evaluation
question, its options or its context, ``n = min(contamination_ngram, the text's length)``: see
``selfspec.generation.contamination``; counted per evaluation set in the metrics) and
``near_duplicate`` (Jaccard of word 3-grams of instruction + input against a kept record).
Then the grounding checks (issue 13; each off at its default of 0 / false): ``off_label`` (a
classification answer that gives none of the instruction's labels), ``low_agreement`` (a voted
answer under ``min_agreement``), ``unsupported`` (``support`` under ``min_support``; answers with
nothing to check pass) and ``judged_low`` (``judge_score`` under ``min_judge_score``); last,
``label_skew`` (``max_label_share`` < 1: a task type's most frequent label is cut back to that share
of its labelled answers). Output: the
training set, ``data/filter_records/records.jsonl``: ``id, instruction, input, output, task_type,
seed_ids, passages`` and the provenance ``input_source, input_passage, support, agreement``.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from selfspec.generation.contamination import EvalOverlap, item_texts
from selfspec.generation.text import ngrams, repeat_ratio, words
from selfspec.prompts.inputs import trim_to_sentence

log = logging.getLogger(__name__)

STAGE = "filter_records"
OUTPUT = "records.jsonl"
FIELDS = ("id", "instruction", "input", "output", "task_type", "seed_ids", "passages")
PROVENANCE = ("input_source", "input_passage", "support", "agreement")  # None when not recorded
SHINGLE = 3  # words per shingle for near-duplicates
# The model went on past its answer into a new prompt block ("## Question: ...", "Task: ...").
SCAFFOLD = re.compile(r"#{2,}|(^|\n)\s*(Task|Input|Answer|Instruction|Question)\s*:", re.IGNORECASE)


EvalSets = Mapping[str, Sequence[str]]  # evaluation set name -> its texts


def eval_overlap(eval_sets: EvalSets | Sequence[str] | None, n: int, min_words: int = 1) -> EvalOverlap:
    """The overlap index of ``eval_sets`` (a plain list of texts is one set named "eval")."""
    if eval_sets is not None and not isinstance(eval_sets, Mapping):
        eval_sets = {"eval": list(eval_sets)}
    return EvalOverlap(eval_sets or {}, n, min_words)


def record_text(record: dict[str, Any]) -> str:
    """What the contamination check reads: instruction, input and output."""
    return " ".join((record["instruction"], record["input"], record["output"].strip()))


def contamination_metrics(overlap: EvalOverlap, hits: Counter) -> dict[str, Any]:
    """Per evaluation set: texts checked and records dropped because they overlap it."""
    sets = {name: {"texts": n, "too_short": overlap.too_short[name], "records_dropped": hits[name]}
            for name, n in sorted(overlap.texts.items())}  # fmt: skip
    return {"ngram_max": overlap.ngram, "min_words": overlap.min_words, "eval_sets": sets}


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


def check_record(record: dict[str, Any], p, contamination: EvalOverlap) -> str | None:
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
    if contamination and contamination.match(record_text(record)):
        return "contaminated"
    return None


def check_grounding(record: dict[str, Any], p) -> str | None:
    """The first grounding check ``record`` fails; a record without the score passes its check."""
    from selfspec.grounding.tasks import label_of

    labels = record.get("labels") or []
    if p.check_labels and labels and label_of(record["output"], labels) is None:
        return "off_label"
    agreement, support, score = (record.get(k) for k in ("agreement", "support", "judge_score"))
    if agreement is not None and agreement < p.min_agreement:
        return "low_agreement"
    if support is not None and support < p.min_support:
        return "unsupported"
    if score is not None and score < p.min_judge_score:
        return "judged_low"
    return None


def grounding_metrics(kept: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean support and agreement of the kept records (over those that have one)."""
    out: dict[str, Any] = {}
    for key in ("support", "agreement"):
        values = [r[key] for r in kept if r.get(key) is not None]
        out[f"{key}_mean"] = round(sum(values) / len(values), 4) if values else None
        out[f"with_{key}"] = len(values)
    out["input_sources"] = dict(sorted(Counter(r.get("input_source") or "unknown" for r in kept).items()))
    return out


def training_record(record: dict[str, Any]) -> dict[str, Any]:
    """The training schema's fields, and the provenance (None when not recorded)."""
    fields = {k: record.get(k, "" if k in ("input", "task_type") else []) for k in FIELDS}
    return fields | {k: record.get(k) for k in PROVENANCE}


def balance_labels(kept: list[dict[str, Any]], max_share: float) -> tuple[list[dict[str, Any]], int]:
    """Per task type, drop answers of its most frequent label until that label is at most
    ``max_share`` of the type's labelled answers (1.0: off); returns the kept records and the count
    dropped. The model's labels are as biased as the model: SmolLM2-135M answered "no" to 24 of 26
    yes/no records of run 3, and the adapter learned to answer "no" to every PubMedQA question.
    The later records of the label go first (record order is fixed by the stages)."""
    from selfspec.grounding.tasks import label_of

    if max_share >= 1.0:
        return kept, 0
    by_type: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, r in enumerate(kept):
        if (label := label_of(r["output"], r.get("labels") or [])) is not None:
            by_type[r.get("task_type", "")].append((i, label))
    dropped: set[int] = set()
    for rows in by_type.values():
        label, n = Counter(lab for _, lab in rows).most_common(1)[0]
        others = len(rows) - n
        allowed = int(max_share * others / (1 - max_share) + 1e-9)  # 0.6 * 2 / 0.4 is 2.999...
        dropped.update([i for i, lab in rows if lab == label][allowed:])
    return [r for i, r in enumerate(kept) if i not in dropped], len(dropped)


def trim(record: dict[str, Any]) -> dict[str, Any]:
    """A response cut by the token limit, back to its last full sentence (still "length" when it
    has none, so that it is dropped as truncated)."""
    output = trim_to_sentence(record["output"])
    return {**record, "output": output, "finish_reason": "stop" if output else "length"}


def _same(a: str, b: str) -> bool:
    return bool(b.strip()) and words(a) == words(b)


def run(
    records: Sequence[dict[str, Any]], p, eval_questions: EvalSets | Sequence[str] | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``eval_questions``: evaluation set name -> texts (``read_eval_questions``); None: the
    contamination check is off (reported in the metrics)."""
    contamination = eval_overlap(eval_questions, p.contamination_ngram, p.contamination_min_words)
    contaminated_by: Counter = Counter()
    dups = NearDuplicates(p.near_dup_threshold)
    kept, drops = [], Counter()
    trimmed = 0
    for record in records:
        if p.truncated == "trim" and record.get("finish_reason") == "length":
            record, trimmed = trim(record), trimmed + 1
        reason = check_record(record, p, contamination) or check_grounding(record, p)
        if reason is None and dups.seen(f"{record['instruction']} {record['input']}"):
            reason = "near_duplicate"
        if reason == "contaminated":
            contaminated_by.update(contamination.match(record_text(record)))
        if reason:
            drops[reason] += 1
            continue
        kept.append(record)
    kept, skewed = balance_labels(kept, p.max_label_share)
    drops.update({"label_skew": skewed} if skewed else {})
    kept = [training_record(r) for r in kept]
    metrics = {
        "records_in": len(records),
        "kept": len(kept),
        "dropped": dict(sorted(drops.items())),
        "truncated_trimmed": trimmed,
        "contamination_check": eval_questions is not None,
        "eval_texts": sum(contamination.texts.values()),
        "contamination": contamination_metrics(contamination, contaminated_by),
        "output_words_mean": round(sum(len(words(r["output"])) for r in kept) / max(1, len(kept)), 1),
        "with_input": sum(bool(r["input"]) for r in kept),
    }
    metrics.update(grounding_metrics(kept))
    return kept, metrics


def read_eval_questions(folder: Path) -> dict[str, list[str]] | None:
    """Every ``folder/*.jsonl`` evaluation set (by file stem) -> the texts of its items: question,
    question + options, context (``contamination.item_texts``). None (check disabled, logged) when
    there are no files."""
    from selfspec.io import iter_jsonl

    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        log.warning("%s: no evaluation sets (*.jsonl): contamination check DISABLED", folder)
        return None
    return {f.stem: [t for _, item in iter_jsonl(f) for t in item_texts(item)] for f in files}


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
