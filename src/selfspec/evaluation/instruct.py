"""Instruction-style evaluation prompts, rendered through the training template.

The generative tasks of evals/tasks/biomed_gen build an ``(instruction, input)`` pair per document
and hand it to :func:`render`, which renders it with ``selfspec.training.data.render_prompt``: the
very function training uses (``train.template``: alpaca, or the tokenizer's chat template). The
harness sets the template and the tokenizer around ``simple_evaluate`` (:func:`rendering`); both
evaluate stages load the tokenizer of models/prepare_model, so the base and the specialized model
are given identical text.

lm-eval calls ``doc_to_text`` from inside ``simple_evaluate`` with no way to pass our settings, so
they live in a module-level slot for the duration of one evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from selfspec.errors import StageError


@dataclass(frozen=True)
class Rendering:
    template: str
    tokenizer: Any = None


_active: list[Rendering | None] = []


@contextmanager
def rendering(template: str | None, tokenizer) -> Iterator[None]:
    """Within the block, :func:`render` uses ``template`` (None: rendering is refused, loudly)."""
    _active.append(Rendering(template, tokenizer) if template else None)
    try:
        yield
    finally:
        _active.pop()


def render(instruction: str, input_text: str = "") -> str:
    """The prompt the adapter was trained on, for one instruction and its input."""
    from selfspec.training.data import render_prompt

    current = _active[-1] if _active else None
    if current is None:
        raise StageError(
            "evaluate",
            "an instruction-style task was rendered without a training template: run it through "
            "selfspec.evaluation.harness.evaluate(..., template=params.train.template)",
        )
    record = {"instruction": instruction, "input": input_text}
    return render_prompt(record, current.template, current.tokenizer)
