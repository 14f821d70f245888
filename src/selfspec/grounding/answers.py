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

TOKENS_PER_WORD = 2  # SmolLM2's tokenizer on the biomedical seed answers: 1.51 a word overall, 2.5 at p90
BUDGET_SLACK = 8  # tokens for the answer's end and a stop string


def answer_budgets(seeds: Sequence, max_new_tokens: int) -> dict[str, int]:
    """New-token budget by task type: the longest seed answer of that type, in tokens (with
    slack), capped at ``max_new_tokens``. A yes/no or label answer that has not ended after 10-30
    tokens is rambling; stepping on until 128 only makes its whole batch wait."""
    longest: dict[str, int] = {}
    for s in seeds:
        n = max(len(i.output.split()) for i in s.instances)
        longest[s.task_type] = max(longest.get(s.task_type, 0), n)
    return {t: min(max_new_tokens, TOKENS_PER_WORD * n + BUDGET_SLACK) for t, n in longest.items() if t}


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
