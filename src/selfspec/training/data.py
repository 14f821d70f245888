"""Records → token ids with the loss on the response only.

A record is ``{"instruction", "input", "output", ...}`` (filter_records' output). The prompt is
rendered from a template file (Alpaca by default, or the tokenizer's chat template) and
tokenized separately from the response, exactly as it is at inference time: the model sees the
prompt tokens and learns to continue them. Prompt positions get label -100 so that only the
response (and its end-of-sequence token) contributes to the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from selfspec.errors import DataError, StageError

IGNORE_INDEX = -100  # label value the cross-entropy loss skips
TEMPLATES = Path(__file__).parent / "templates"
REQUIRED = ("instruction", "output")


@cache
def _template(name: str):
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string((TEMPLATES / f"{name}.j2").read_text(encoding="utf-8"))


def template_text(template: str) -> str:
    """The template source recorded in provenance (chat: the user-turn template)."""
    return (TEMPLATES / ("alpaca.j2" if template == "alpaca" else "chat_user.j2")).read_text(encoding="utf-8")


def render_prompt(record: dict[str, Any], template: str, tokenizer=None) -> str:
    """The prompt text for a record: Alpaca, or the tokenizer's chat template with a user turn."""
    values = {"instruction": record["instruction"], "input": record.get("input") or ""}
    if template == "alpaca":
        return _template("alpaca").render(**values)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise StageError("train", "train.template is 'chat' but the tokenizer has no chat template")
    user = _template("chat_user").render(**values).strip()
    messages = [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def validate_records(records: list[dict[str, Any]], source: str = "records") -> None:
    """Every record needs a non-empty instruction and output; an empty set is an error."""
    if not records:
        raise StageError("train", f"{source}: no training records (empty dataset)")
    for i, record in enumerate(records, start=1):
        for key in REQUIRED:
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise DataError(source, i, "missing or empty", field=key)


@dataclass
class Encoded:
    examples: list[dict[str, list[int]]]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CUTS, 0))
    stats: dict[str, float] = field(default_factory=dict)


CUTS = ("dropped", "input_shortened", "response_truncated")


def _prompt_ids(record: dict[str, Any], tokenizer, template: str) -> list[int]:
    prompt = render_prompt(record, template, tokenizer)
    return tokenizer(prompt, add_special_tokens=template == "alpaca")["input_ids"]


def fit_prompt(
    record: dict[str, Any], tokenizer, template: str, budget: int
) -> tuple[list[int] | None, bool]:
    """Prompt ids within ``budget`` tokens, shortening the ``input`` context (never the instruction)
    when needed: ``(ids, shortened)``; ids is None when even an empty context does not fit."""
    ids = _prompt_ids(record, tokenizer, template)
    overflow = len(ids) - budget
    if overflow <= 0:
        return ids, False
    context = tokenizer(record.get("input") or "", add_special_tokens=False)["input_ids"]
    keep = len(context) - overflow - 4  # slack: re-tokenizing the cut text can merge differently
    if keep <= 0:
        return None, False
    shortened = {**record, "input": tokenizer.decode(context[:keep]).rstrip() + " ..."}
    ids = _prompt_ids(shortened, tokenizer, template)
    return (ids, True) if len(ids) <= budget else (None, False)


def encode_record(
    record: dict[str, Any], tokenizer, template: str, max_length: int
) -> tuple[dict | None, str]:
    """``({input_ids, labels}, what)``; ``what`` says whether the input or the response was cut.

    Long contexts are shortened so that the response keeps up to half the window; a response
    longer than what is left is cut at ``max_length``. None when no response token would fit.
    """
    response_ids = tokenizer(record["output"], add_special_tokens=False)["input_ids"]
    response_ids = [*response_ids, tokenizer.eos_token_id]
    budget = max_length - min(len(response_ids), max_length // 2)
    prompt_ids, shortened = fit_prompt(record, tokenizer, template, budget)
    if prompt_ids is None:
        return None, "dropped"
    ids = (prompt_ids + response_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + response_ids)[:max_length]
    cut = ""
    if shortened:
        cut = "input_shortened"
    elif len(ids) < len(prompt_ids) + len(response_ids):
        cut = "response_truncated"
    return {"input_ids": ids, "labels": labels}, cut


def encode_records(records: list[dict[str, Any]], tokenizer, template: str, max_length: int) -> Encoded:
    """Encode all records; fails if none keeps a response token."""
    out = Encoded(examples=[])
    for record in records:
        example, cut = encode_record(record, tokenizer, template, max_length)
        if cut:
            out.counts[cut] += 1
        if example is not None:
            out.examples.append(example)
    if not out.examples:
        raise StageError(
            "train",
            f"all {len(records)} records: the instruction alone exceeds train.max_length={max_length}",
        )
    out.stats = data_stats(out, len(records))
    return out


def data_stats(encoded: Encoded, n_records: int) -> dict[str, float]:
    lengths = [len(e["input_ids"]) for e in encoded.examples]
    targets = [sum(label != IGNORE_INDEX for label in e["labels"]) for e in encoded.examples]
    return {
        "n_records": n_records,
        "n_examples": len(encoded.examples),
        **encoded.counts,
        "tokens": sum(lengths),
        "response_tokens": sum(targets),
        "mean_length": sum(lengths) / len(lengths),
        "max_length": max(lengths),
    }


class Collator:
    """Right-pads a batch: pad id for inputs, -100 for labels, 0 in the attention mask."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(e["input_ids"]) for e in batch)
        ids, labels, mask = [], [], []
        for e in batch:
            pad = width - len(e["input_ids"])
            ids.append(e["input_ids"] + [self.pad_token_id] * pad)
            labels.append(e["labels"] + [IGNORE_INDEX] * pad)
            mask.append([1] * len(e["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }
