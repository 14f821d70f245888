"""Self-consistency (Wang et al. 2023): sample several answers, keep the majority.

An answer a small model gives once at temperature 0 may be one draw of many; when k sampled
answers mostly agree, the answer is more likely right. Answers are compared by their label (for a
classification task with a label space) or by their words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from selfspec.generation.text import words
from selfspec.grounding.tasks import label_of


def answer_key(answer: str, labels: Sequence[str]) -> str:
    """What two answers must share to count as the same: the label, else the lowercased words."""
    if labels:
        return label_of(answer, labels) or "<off-label>"
    return " ".join(words(answer))


def majority(answers: Sequence[str], labels: Sequence[str]) -> tuple[str, float]:
    """(the majority answer, agreement = its share of the votes). ``answers[0]`` is the greedy
    answer: it wins ties and is the text kept when its key is the majority; otherwise the first
    answer with the majority key is kept."""
    keys = [answer_key(a, labels) for a in answers]
    counts = Counter(keys)
    top = max(counts.values())
    winner = keys[0] if counts[keys[0]] == top else next(k for k in keys if counts[k] == top)
    text = answers[keys.index(winner)]
    return text, round(counts[winner] / len(answers), 4)
