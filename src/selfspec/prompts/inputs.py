"""Parser for ``inputs.yaml``: the input context a completion wrote."""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"[.!?)\]](?=\s|$)")


def parse_input(completion: str, truncated: bool) -> str:
    """The input text; a context cut by the token limit is trimmed back to its last full sentence
    ("" when there is none, so the record is dropped rather than kept half-written)."""
    text = completion.strip()
    if truncated:
        text = trim_to_sentence(text)
    return text


def trim_to_sentence(text: str) -> str:
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""
