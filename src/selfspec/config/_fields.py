"""``knob()``: a dataclass field that carries its own bounds and help, checked by ``validate``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


def knob(
    default: Any = dataclasses.MISSING,
    *,
    help: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[Any] | None = None,
    factory: Any = dataclasses.MISSING,
) -> Any:
    """A params field. Bounds and choices are enforced by ``selfspec.config.validate``."""
    meta = {"help": help, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_field(value: Any, meta: dict[str, Any]) -> str | None:
    """Return what is wrong with ``value`` under ``meta``'s bounds, or None."""
    if value is None:
        return None
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        return f"must be one of {list(choices)}, got {value!r}"
    for op, bound, ok in (
        (">=", meta.get("ge"), lambda v, b: v >= b),
        (">", meta.get("gt"), lambda v, b: v > b),
        ("<=", meta.get("le"), lambda v, b: v <= b),
        ("<", meta.get("lt"), lambda v, b: v < b),
    ):
        if bound is not None and isinstance(value, (int, float)) and not ok(value, bound):
            return f"must be {op} {bound}, got {value!r}"
    return None
