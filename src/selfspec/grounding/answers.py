"""Second passes over generated answers: self-consistency votes and the judge's ratings.

Both run through a ``BatchRunner`` of their own (own sampling, own resume file), after the greedy
answers; neither writes files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from selfspec.generation.batching import length_sorted_batches
from selfspec.generation.resume import BatchRunner
from selfspec.generation.text import words
from selfspec.grounding.votes import majority


def needs_vote(answer: str, labels: Sequence[str], max_words: int) -> bool:
    """Short answers and classification answers are voted on; long ones are not comparable."""
    return bool(labels) or len(words(answer)) <= max_words


def vote(
    rows: Sequence[int], prompts: Sequence[str], greedy: dict[int, str], labels: Callable[[int], list[str]],
    runner: BatchRunner, k: int, batch_size: int,
) -> dict[int, tuple[str, float]]:  # fmt: skip
    """(majority answer, agreement) for each row: the greedy answer plus ``k`` samples of its
    prompt (the same prompt ``k`` times in a batch: each row draws its own sample)."""
    jobs = [(i, j) for i in rows for j in range(k)]
    batches = length_sorted_batches(jobs, lambda job: len(prompts[job[0]]), batch_size)
    samples: dict[int, list[str]] = {i: [] for i in rows}
    for index, batch in enumerate(batches):
        for (i, _), completion in zip(batch, runner.run(index, [prompts[i] for i, _ in batch]), strict=True):
            samples[i].append(completion.text.strip())
    return {i: majority([greedy[i], *samples[i]], labels(i)) for i in rows}


def judge(prompts: dict[int, str], runner: BatchRunner, batch_size: int, parse) -> dict[int, int | None]:
    """The judge's rating of each row (None when it wrote no digit 1-5)."""
    rows = list(prompts)
    scores: dict[int, int | None] = {}
    for index, batch in enumerate(length_sorted_batches(rows, lambda i: len(prompts[i]), batch_size)):
        for i, completion in zip(batch, runner.run(index, [prompts[i] for i in batch]), strict=True):
            scores[i] = parse(completion.text)
    return scores
