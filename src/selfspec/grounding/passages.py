"""Real corpus passages as task inputs (``gen_inputs.source: corpus | mixed``).

A model-written abstract is a confabulation the answer is then grounded in; a retrieved one is
real text. Each record gets the best passage for its instruction that no earlier record took (a
generic "Summarize the abstract" would otherwise get the same passage every time). A yes/no task
needs a question: it takes only passages whose title is one (PubMedQA's titles are) and shows it
as "Question: ...\\nAbstract: ...", the seeds' format. An instruction can take several passages
(``gen_inputs.inputs_per_instruction``): one record per passage, the instruction written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfspec.grounding.cuts import cut_sentences

QUESTION_TASKS = frozenset({"yes_no_qa"})
# The words of a task's wording, not of its topic: "Extract all gene names from the abstract" is a
# query for "gene", not for passages about first names.
TASK_WORDS = frozenset(
    """abstract abstracts all and answer any are as based below briefly by choose classify describe
    does each every extract following from given identify in is label list main maybe mentioned
    mentions name names no of one or passage read sentence sentences short state study summarize
    summarise summary text the this to what which with yes""".split()
)


def query(instruction: str) -> str:
    """The instruction's topic words (the instruction itself when it has none)."""
    from selfspec.generation.text import words

    topic = [w for w in words(instruction) if w not in TASK_WORDS]
    return " ".join(topic) or instruction


def as_input(hit: Any, task_type: str, max_words: int) -> str:
    text = cut_sentences(hit.text, max_words, keep_last=True)  # keep the conclusion
    return f"Question: {hit.title}\nAbstract: {text}" if task_type in QUESTION_TASKS else text


def usable(hit: Any, task_type: str, min_words: int) -> bool:
    """Long enough, starting at a sentence start (a later chunk of a split abstract begins
    mid-sentence: no text a user would hand over), and with a question title for yes/no tasks."""
    text = hit.text.lstrip()
    if len(text.split()) < min_words or not text[:1].isupper():
        return False
    return task_type not in QUESTION_TASKS or hit.title.rstrip().endswith("?")


def pick_passages(
    records: Sequence[dict], retriever: Any, k: int, max_words: int, min_words: int, per_record: int = 1
) -> dict[str, list[tuple[str, Any]]]:
    """Up to ``per_record`` (input text, hit) pairs by record id, best first, for the records a
    usable unused passage was found for. Records take their first passage in order, then their
    second..., so a later record is not starved of its best passage by an earlier one's extras."""
    if not records:
        return {}
    hits = retriever.search([query(r["instruction"]) for r in records], k)
    used: set[str] = set()
    picked: dict[str, list[tuple[str, Any]]] = {}
    for _ in range(per_record):
        for record, found in zip(records, hits, strict=True):
            task_type = record.get("task_type", "")
            hit = next((h for h in found if h.id not in used and usable(h, task_type, min_words)), None)
            if hit is not None:
                used.add(hit.id)
                picked.setdefault(record["id"], []).append((as_input(hit, task_type, max_words), hit))
    return picked
