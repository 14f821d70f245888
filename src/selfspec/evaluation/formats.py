"""Converters from each data set's public format to the local task format of evals/tasks/.

Every record has ``id`` and ``question`` (the filter stage's contamination check reads it).
PubMedQA: ``context`` (the abstract's sections joined by newlines, as lm-eval's built-in task) and
``answer`` (yes / no / maybe), ``long_answer`` (the abstract's conclusion). Multiple choice:
``options`` (four answer texts) and ``answer`` (0-3). CoNLL NER: ``question`` (the sentence) and
``entities`` ({type: [mention, ...]}, every type of the file on every record). ChemProt: ``question``
(the sentence with its two marked entities), ``answer`` (the CPR group) and ``label`` (the original).
A malformed row is a DataError naming the data set, the split, the row (or line) and the field.
"""

from __future__ import annotations

import re
from collections import Counter
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
    dropped: dict[str, int] = field(default_factory=dict)  # why -> how many source rows were left out


def convert(fmt: str, name: str, data: dict[str, Any], options: dict[str, Any]) -> Converted:
    converters: dict[str, Callable[[str, dict[str, Any], dict[str, Any]], Converted]] = {
        "pubmedqa": pubmedqa, "medmcqa": medmcqa, "medqa": medqa, "mmlu": mmlu,
        "conll_ner": conll_ner, "chemprot": chemprot,
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


# --- NER: CoNLL (token ... BIO tag per line, blank line between sentences, -DOCSTART- between documents)


_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}]|'s\b|n't\b)")
_SPACE_AFTER = re.compile(r"([(\[{]) ")


def detokenize(tokens: list[str]) -> str:
    """Tokens back into readable text (no space before ``.,;:)`` or after ``(``; PTB quotes to ``"``).
    The NER scorer's normaliser ignores spacing around punctuation, so this only serves readability."""
    text = " ".join(tokens).replace("``", '"').replace("''", '"')
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))


def conll_ner(name: str, data: dict[str, Any], options: dict[str, Any]) -> Converted:
    """``test`` = the lines of a CoNLL file (allenai/scibert data/ner): one record per sentence, in file
    order; entity types are those the file's tags name (``B-Disease`` -> ``Disease``)."""
    lines = _need(data, "test", name, list)
    sentences = _conll_sentences(lines, name)
    types = sorted({t for _, tags in sentences for tag in tags if (t := tag[2:])})
    test = []
    for i, (tokens, tags) in enumerate(sentences):
        found = _bio_entities(tokens, tags)
        entities = {t: list(dict.fromkeys(text for typ, text in found if typ == t)) for t in types}
        test.append({"id": f"{name}-{i}", "question": detokenize(tokens), "entities": entities})
    return Converted(test)


def _conll_sentences(lines: list[str], name: str) -> list[tuple[list[str], list[str]]]:
    sentences, tokens, tags = [], [], []
    for lineno, line in enumerate(lines, start=1):
        cols = line.split()
        if not cols or cols[0] == "-DOCSTART-":
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        tag = cols[-1]
        if len(cols) < 2 or not (tag == "O" or re.fullmatch(r"[BI]-\w+", tag)):
            raise DataError(
                f"{name}[test]", lineno, f"expected 'TOKEN ... B-/I-TYPE or O', got {line!r}", "tag"
            )
        tokens.append(cols[0])
        tags.append("" if tag == "O" else tag)
    if tokens:
        sentences.append((tokens, tags))
    return sentences


def _bio_entities(tokens: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """(type, text) spans; an ``I-`` that does not continue a span of its type starts one."""
    spans: list[tuple[str, list[str]]] = []
    for i, (token, tag) in enumerate(zip(tokens, tags, strict=True)):
        if not tag:
            continue
        continues = bool(spans) and tag[0] == "I" and i > 0 and tags[i - 1][2:] == tag[2:]
        if continues:
            spans[-1][1].append(token)
        else:
            spans.append((tag[2:], [token]))
    return [(typ, detokenize(toks)) for typ, toks in spans]


def _json_line(line: str, where: str) -> Any:
    import json

    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(where, None, f"not JSON ({e.msg})") from None


# --- ChemProt: {"text", "label", "metadata"} per line (allenai/scibert text_classification) -------------

# The five CPR groups of the BioCreative VI ChemProt task and the fine labels each holds. Labels of
# the groups it does not evaluate (CPR:1/2/7/8/10: PART-OF, REGULATOR, MODULATOR, COFACTOR, NOT, ...)
# and "false" are left out: their items are dropped and counted in the manifest.
CPR_GROUPS = {
    "activation": ("ACTIVATOR", "UPREGULATOR", "INDIRECT-UPREGULATOR"),  # CPR:3
    "inhibition": ("INHIBITOR", "DOWNREGULATOR", "INDIRECT-DOWNREGULATOR"),  # CPR:4
    "agonist": ("AGONIST", "AGONIST-ACTIVATOR", "AGONIST-INHIBITOR"),  # CPR:5
    "antagonist": ("ANTAGONIST",),  # CPR:6
    "substrate": ("SUBSTRATE", "PRODUCT-OF", "SUBSTRATE_PRODUCT-OF"),  # CPR:9
}
CPR_GROUP_OF = {label: group for group, labels in CPR_GROUPS.items() for label in labels}


def chemprot(name: str, data: dict[str, Any], options: dict[str, Any]) -> Converted:
    """One record per (sentence, entity pair), in file order; the CPR group is the ``answer``. Rows are
    JSON objects, or the lines of the file when it was read as text (the public URL names it dev.txt)."""
    test, dropped = [], Counter()
    for i, row in enumerate(_rows(data, "test", name)):
        where = f"{name}[test][{i}]"
        if isinstance(row, str) and not row.strip():
            continue
        row = _json_line(row, where) if isinstance(row, str) else row
        if not isinstance(row, dict):
            raise DataError(where, None, "expected a JSON object")
        text, label = _text(row, "text", where), _text(row, "label", where)
        if not ("<<" in text and ">>" in text and "[[" in text and "]]" in text):
            raise DataError(where, None, "expected the entities marked << ... >> and [[ ... ]]", "text")
        group = CPR_GROUP_OF.get(label.upper())
        if group is None:
            dropped[f"label {label} (not in the 5 CPR groups)"] += 1
            continue
        test.append({"id": f"{name}-{i}", "question": text, "answer": group, "label": label})
    return Converted(test, dropped=dict(sorted(dropped.items())))
