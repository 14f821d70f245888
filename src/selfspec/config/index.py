from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class IndexParams:
    """Retrieval index and backend (issue: retrieval)."""

    backend: str = knob("embedded", choices=["embedded", "elasticsearch"])
