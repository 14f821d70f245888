"""What makes a generated line a task, which task type it is, and which labels it allows.

* ``is_task``: a question (ends with "?") or an imperative: its first word — or, after a lead-in
  clause ("Based on the abstract below, classify ..."), the first word after the comma — is a task
  verb. A statement ("A 45-year-old man presents with ...") is neither.
* ``script_ok``: letters of the Latin and Greek scripts, digits and the symbols of clinical text
  (µ, β, °, ±, ≥) are fine; other scripts (a small model drifting into CJK, Cyrillic...) are not.
* ``nearest_type``: the task type (and classification flag) of the closest seed: most shared
  content words, then ROUGE-L.
* ``label_space``: the labels a classification instruction lists ("yes, no, or maybe").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from selfspec.generation.text import RougePool, words

LEAD_IN_WORDS = 12  # a lead-in clause longer than this is a statement, not "Based on X, ..."
# Unicode blocks allowed besides ASCII: Latin-1 + Latin Extended, Greek, General Punctuation,
# super/subscripts, letterlike symbols, arrows and mathematical operators.
ALLOWED_BLOCKS = ((0x80, 0x24F), (0x370, 0x3FF), (0x2000, 0x209F), (0x2100, 0x22FF))


def is_task(task: str, verbs: frozenset[str]) -> bool:
    """Some sentence of ``task`` is a question or starts (after a lead-in) with one of ``verbs``:
    "A parent asks why ... Write a kind answer." is a task, "A man presents with ..." is not."""
    from selfspec.grounding.cuts import sentences

    return any(_is_task_sentence(s, verbs) for s in sentences(task))


def _is_task_sentence(task: str, verbs: frozenset[str]) -> bool:
    if task.rstrip().endswith("?"):
        return True
    tokens = words(task)
    if tokens and tokens[0] in verbs:
        return True
    head, comma, rest = task.partition(",")
    after = words(rest)
    return bool(comma) and len(words(head)) <= LEAD_IN_WORDS and bool(after) and after[0] in verbs


def script_ok(text: str) -> bool:
    return all(ord(c) < 0x80 or any(lo <= ord(c) <= hi for lo, hi in ALLOWED_BLOCKS) for c in text)


def nearest_type(instruction: str, seeds: Sequence[Any], pool: RougePool) -> tuple[str, bool]:
    """(task_type, is_classification) of the seed whose instruction is closest by ROUGE-L F1
    (``pool`` holds the seed instructions in seed order; ties go to the earlier seed)."""
    from selfspec.grounding.support import content_words

    # shared topic words first ("abbreviation", "interaction"), then ROUGE-L: short generic
    # questions all share "what is the" with a dozen seeds
    mine = content_words(instruction)
    rouge = _scores(instruction, pool)
    scores = [(len(mine & content_words(s.instruction)), rouge[i]) for i, s in enumerate(seeds)]
    best = max(range(len(seeds)), key=lambda i: (scores[i], -i))
    if scores[best] == (0, 0):  # no word in common: no seed to inherit from
        return "", False
    return seeds[best].task_type, seeds[best].is_classification


def _scores(text: str, pool: RougePool) -> list[float]:
    return pool.scores(text)


_LETTERS = re.compile(r"\(A-([B-H])\)|\bletter\b", re.IGNORECASE)
_CLAUSE = re.compile(r"[.?;!](?:\s+|$)")
_OR_LIST = re.compile(r"(?:\w[\w\-/+ ]*?, )+(?:or )?\w[\w\-/+ ]*$|\w[\w\-/+ ]*? or \w[\w\-/+ ]*$")
_ARTICLE = re.compile(r"^(?:a|an|the)\s+")
MAX_LABEL_WORDS = 4


def label_space(instruction: str) -> list[str]:
    """Lowercased labels a classification instruction offers, in order ([] when it lists none):
    answer letters ("(A-D)", "reply with its letter"), or the last clause's list, after a colon
    ("as one of: X, Y, Z") or as "X, Y, or Z". Parenthesised glosses are ignored, and the first
    item of a list with no colon is cut to the shortest other item's length ("answer with yes")."""
    letters = _LETTERS.search(instruction)
    if letters:
        return [chr(c) for c in range(ord("a"), ord((letters.group(1) or "E").lower()) + 1)]
    for clause in reversed(_CLAUSE.split(re.sub(r"\s*\([^)]*\)", "", instruction))):
        items = _list_items(clause.strip())
        if len(items) >= 2 and all(len(i.split()) <= MAX_LABEL_WORDS for i in items):
            return list(dict.fromkeys(items))
    return []


def _list_items(clause: str) -> list[str]:
    head, colon, tail = clause.rpartition(":")
    match = None if colon else _OR_LIST.search(clause)
    if not colon and not match:
        return []
    text = tail if colon else match.group(0)
    items = [_ARTICLE.sub("", i.strip().lower()) for i in re.split(r",\s*(?:or\s+)?|\s+or\s+", text)]
    items = [i for i in items if i]
    if colon or len(items) < 2:
        return items
    # no colon: the list starts inside the item before the short ones ("is the answer yes, no")
    start = len(items) - 1
    while start > 1 and len(items[start - 1].split()) <= MAX_LABEL_WORDS:
        start -= 1
    shortest = min(len(i.split()) for i in items[start:])
    first = _ARTICLE.sub("", " ".join(items[start - 1].split()[-shortest:]))
    return [first, *items[start:]]


def label_of(answer: str, labels: Sequence[str]) -> str | None:
    """The label ``answer`` gives: its leading words equal one label (longest match first), so
    "Yes." and "yes, because ..." are "yes"; None when it starts with none of them."""
    tokens = words(answer)
    while tokens and tokens[0].isdigit():  # "1. BACKGROUND": an enumerated answer
        tokens = tokens[1:]
    for label in sorted(labels, key=lambda lab: -len(words(lab))):
        lab = words(label)
        if lab and tokens[: len(lab)] == lab:
            return label
    return None
