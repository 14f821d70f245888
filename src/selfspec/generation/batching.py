"""How the gen stages cut their prompts into batches (part of the resume key: see ``resume``)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any


def length_sorted_batches(items: Sequence[Any], key, size: int, group=None) -> list[list[Any]]:
    """Batches of similar-length prompts (less padding), longest first; ties keep input order, so
    batch composition — and with it every batch's output — is fixed by the inputs alone.

    ``group`` (a number per item, e.g. the answer budget): batches are cut per group, largest
    first, so a batch holds answers of one budget. A batch runs until its longest answer ends;
    short answers batched with long ones would wait for them."""
    rank = group or (lambda _: 0)
    order = sorted(range(len(items)), key=lambda i: (-rank(items[i]), -key(items[i]), i))
    batches: list[list[Any]] = []
    for _, members in groupby(order, key=lambda i: rank(items[i])):
        ranked = [items[i] for i in members]
        batches += [ranked[j : j + size] for j in range(0, len(ranked), size)]
    return batches
