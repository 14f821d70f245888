"""Parser for ``responses.yaml``: the answer a completion wrote."""

from __future__ import annotations


def parse_response(completion: str) -> str:
    """The answer text, stripped. Truncation is kept as ``finish_reason`` for ``filter_records``."""
    return completion.strip()
