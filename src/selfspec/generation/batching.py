"""How the gen stages cut their prompts into batches (part of the resume key: see ``resume``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def length_sorted_batches(items: Sequence[Any], key, size: int) -> list[list[Any]]:
    """Batches of similar-length prompts (less padding), longest first; ties keep input order, so
    batch composition — and with it every batch's output — is fixed by the inputs alone."""
    order = sorted(range(len(items)), key=lambda i: (-key(items[i]), i))
    return [[items[i] for i in order[j : j + size]] for j in range(0, len(order), size)]
