"""Converters from each data set's public format to the local task format of evals/tasks/.

Every record has ``id`` and ``question`` (the filter stage's contamination check reads it).
PubMedQA: ``context`` (the abstract's sections joined by newlines, as lm-eval's built-in task) and
``answer`` (yes / no / maybe). Multiple choice: ``options`` (four answer texts) and ``answer`` (0-3).
A malformed row is a DataError naming the data set, the split, the row and the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from selfspec.errors import DataError

LETTERS = "ABCD"
PUBMEDQA_LABELS = ("yes", "no", "maybe")
Record = dict[str, Any]


@dataclass
class Converted:
    test: list[Record]
    fewshot: list[Record] = field(default_factory=list)


def convert(fmt: str, name: str, data: dict[str, Any], options: dict[str, Any]) -> Converted:
    converters: dict[str, Callable[[str, dict[str, Any], dict[str, Any]], Converted]] = {
        "pubmedqa": pubmedqa, "medmcqa": medmcqa, "medqa": medqa, "mmlu": mmlu,
    }  # fmt: skip
    return converters[fmt](name, data, options)


def _need(data: dict[str, Any], key: str, name: str, kind: type) -> Any:
    if key not in data:
        raise DataError(name, None, f"no {key!r} file or split given in the sources file")
    if not isinstance(data[key], kind):
        raise DataError(f"{name}[{key}]", None, f"expected a JSON {kind.__name__}")
    return data[key]


def _text(row: Any, key: Any, where: str) -> str:
    value = row[key] if isinstance(row, list) or key in row else None
    if not isinstance(value, str) or not value.strip():
        raise DataError(where, None, "missing or empty text", field=str(key))
    return value


def _option(row: Any, key: Any, where: str) -> str:
    """An answer text: may be empty (a few MMLU/MedMCQA options are), numbers become strings."""
    value = row[key] if isinstance(row, list) or key in row else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(where, None, "missing answer option", field=str(key))
    return value


# --- PubMedQA: ori_pqal.json (PMID -> item) + test_ground_truth.json (the 500 test PMIDs) ---------------


def pubmedqa(name: str, data: dict[str, Any], options: dict[str, Any]) -> Converted:
    """Test = the PMIDs of test_ground_truth.json, in ori_pqal.json's order: the ground-truth file is
    sorted by label, so its order would make ``limit`` take only "yes" items. Few-shot = the rest."""
    items = _need(data, "pqal", name, dict)
    test_ids = _need(data, "test_ids", name, dict)
    if missing := sorted(set(test_ids) - set(items)):
        raise DataError(
            f"{name}[test_ids]", None, f"{len(missing)} test PMIDs not in pqal, e.g. {missing[:3]}"
        )
    test, fewshot = [], []
    for pmid, item in items.items():
        record = _pubmedqa_record(pmid, item, f"{name}[pqal][{pmid}]")
        if pmid in test_ids and test_ids[pmid] != record["answer"]:
            raise DataError(
                f"{name}[test_ids][{pmid}]", None, f"label {test_ids[pmid]!r} != {record['answer']!r}"
            )
        (test if pmid in test_ids else fewshot).append(record)
    return Converted(test, fewshot)


def _pubmedqa_record(pmid: str, item: Any, where: str) -> Record:
    if not isinstance(item, dict):
        raise DataError(where, None, "expected a JSON object")
    contexts = item.get("CONTEXTS")
    if not isinstance(contexts, list) or not contexts or not all(isinstance(c, str) for c in contexts):
        raise DataError(where, None, "expected a non-empty list of strings", field="CONTEXTS")
    label = item.get("final_decision")
    if label not in PUBMEDQA_LABELS:
        raise DataError(
            where, None, f"expected one of {list(PUBMEDQA_LABELS)}, got {label!r}", "final_decision"
        )
    return {"id": str(pmid), "question": _text(item, "QUESTION", where), "context": "\n".join(contexts),
            "answer": label, "long_answer": item.get("LONG_ANSWER") or ""}  # fmt: skip


# --- multiple choice ---------------------------------------------------------------------------------


def _mc_record(rid: str, question: str, options: list[str], answer: int, where: str, **extra: Any) -> Record:
    if len(options) != 4:
        raise DataError(where, None, f"expected 4 options, got {len(options)}", field="options")
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < 4:
        raise DataError(where, None, f"expected an answer index 0-3, got {answer!r}", field="answer")
    return {"id": rid, "question": question, "options": options, "answer": answer, **extra}


def _rows(data: dict[str, Any], key: str, name: str) -> list[Any]:
    return list(_need(data, key, name, list))


def medmcqa(name: str, data: dict[str, Any], options: dict[str, Any]) -> Converted:
    """HF ``openlifescienceai/medmcqa`` rows: question, opa..opd, cop (0-3; ``answer_base: 1`` for 1-4)."""
    base = int(options.get("answer_base", 0))
    out = []
    for i, row in enumerate(_rows(data, "test", name)):
        where = f"{name}[test][{i}]"
        opts = [_option(row, k, where) for k in ("opa", "opb", "opc", "opd")]
        cop = row.get("cop")
        answer = cop - base if isinstance(cop, int) else cop
        extra = {"subject": row.get("subject_name") or ""}
        out.append(
            _mc_record(str(row.get("id") or i), _text(row, "question", where), opts, answer, where, **extra)
        )
    return Converted(out)


def medqa(name: str, data: dict[str, Any], options: dict[str, Any]) -> Converted:
    """MedQA-USMLE 4 options: the original jsonl (question, options {A..D}, answer_idx) or the HF
    ``-hf`` rows (sent1, ending0..3, label)."""
    out = []
    for i, row in enumerate(_rows(data, "test", name)):
        where = f"{name}[test][{i}]"
        if not isinstance(row, dict):
            raise DataError(where, None, "expected a JSON object")
        if "sent1" in row:
            q, opts, answer = (
                _text(row, "sent1", where),
                [_option(row, f"ending{k}", where) for k in range(4)],
                row.get("label"),
            )
        else:
            choices = row.get("options")
            if not isinstance(choices, dict) or sorted(choices) != list(LETTERS):
                raise DataError(where, None, "expected an object with keys A-D", field="options")
            q, opts = _text(row, "question", where), [_option(choices, k, where) for k in LETTERS]
            idx = row.get("answer_idx")
            answer = LETTERS.index(idx) if isinstance(idx, str) and idx in LETTERS else idx
        out.append(_mc_record(str(row.get("id") or i), q, opts, answer, where))
    return Converted(out)


def mmlu(name: str, data: dict[str, Any], options: dict[str, Any]) -> Converted:
    """cais/mmlu parquet rows (question, subject, choices, answer 0-3) or the original header-less
    CSV rows (question, A, B, C, D, answer letter). ``fewshot`` = the dev split."""
    test = [_mmlu_record(name, "test", i, row) for i, row in enumerate(_rows(data, "test", name))]
    dev = data.get("fewshot") or []
    return Converted(test, [_mmlu_record(name, "fewshot", i, row) for i, row in enumerate(dev)])


def _mmlu_record(name: str, split: str, i: int, row: Any) -> Record:
    where = f"{name}[{split}][{i}]"
    if isinstance(row, list):  # CSV
        if len(row) != 6:
            raise DataError(where, None, f"expected 6 CSV columns, got {len(row)}")
        answer = LETTERS.index(row[5].strip()) if row[5].strip() in LETTERS else row[5]
        options = [_option(row, k, where) for k in range(1, 5)]
        return _mc_record(f"{name}-{split}-{i}", _text(row, 0, where), options, answer, where)
    choices = row.get("choices") if isinstance(row, dict) else None
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise DataError(where, None, "expected a list of strings", field="choices")
    extra = {"subject": row.get("subject") or ""}
    return _mc_record(
        f"{name}-{split}-{i}", _text(row, "question", where), choices, row.get("answer"), where, **extra
    )
