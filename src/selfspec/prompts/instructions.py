"""Parser for ``instructions.yaml``: the numbered tasks a completion continues with, and whether
each one needs an input context."""

from __future__ import annotations

import re

TASK_LINE = re.compile(r"^\s*Task\s+\d+\s*[:.]\s*(.*)$")
# An instruction that points at material it does not contain ("the following abstract", "this
# note") needs an input. Checked against the seed file, whose inputs are known (see tests).
NEEDS_INPUT = re.compile(
    r"\b(following|given|below|above|provided|attached|as described)\b"
    r"|\b(this|these|the)\s+(\w+[- ])?(abstracts?|texts?|passages?|sentences?|notes?|reports?|vignettes?|"
    r"cases?|results?|options?|paragraphs?|excerpts?|statements?|summary|document|article|stud(y|ies)|"
    r"list|table|findings?|values?|panel|questions?|patient|drug|abbreviations?|orders?|instructions|"
    r"tests?|gas|data|record|history|medications?|poisoning|claims?|trial|answers?|letter|description)\b"
    r"|^(extract|summari[sz]e|rewrite|classify|interpret|calculate|expand|translate|paraphrase|"
    r"simplify|identify|choose|select|pick|label|tag|correct|categori[sz]e|read)\b"
    r"|\b(which option|multiple-choice|2x2|most likely diagnosis)\b",
    re.IGNORECASE,
)


def parse_tasks(completion: str, truncated: bool) -> tuple[list[str], int]:
    """Instructions in a completion that started right after ``Task N:``; ``(tasks, n_cut)``.

    The first line continues the open task; each following line must start a new ``Task M:``
    (the first line that does not ends the list — the model has left the pattern). When the
    completion hit the token limit its last task may be cut mid-sentence: it is dropped and
    counted in ``n_cut``.
    """
    lines = completion.split("\n")
    tasks = [lines[0].strip()]
    ended = False
    for line in lines[1:]:
        match = TASK_LINE.match(line)
        if not match:
            ended = True
            break
        tasks.append(match.group(1).strip())
    n_cut = 0
    if truncated and not ended:
        tasks, n_cut = tasks[:-1], 1
    return [t for t in tasks if t], n_cut


def needs_input(instruction: str) -> bool:
    return bool(NEEDS_INPUT.search(instruction))
