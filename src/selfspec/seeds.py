"""Seed tasks: the human-written examples that prompt the base model to brainstorm new ones.

One file per domain, ``<seeds_dir>/<domain>.jsonl``, in the Self-Instruct format plus a
``task_type``. The loader checks every line and names the file, the line and the field of the
first problem, so a hand-edited seed file fails before any generation is spent on it. Nothing
here is biomedical: another domain is a new file and ``base.domain``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfspec.errors import DataError

REQUIRED = ("id", "name", "instruction", "instances", "is_classification", "task_type")
NONEMPTY_STRINGS = ("id", "name", "instruction", "task_type")
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@dataclass(frozen=True)
class Instance:
    input: str  # "" when the task needs no input
    output: str


@dataclass(frozen=True)
class SeedTask:
    id: str
    name: str
    instruction: str
    instances: tuple[Instance, ...]
    is_classification: bool
    task_type: str


def seeds_path(params: Any) -> Path:
    """Where the configured domain's seeds live: ``<base.seeds_dir>/<base.domain>.jsonl``."""
    return Path(params.base.seeds_dir) / f"{params.base.domain}.jsonl"


def load_seeds(path: str | Path) -> list[SeedTask]:
    """Read and validate a seed file; the first bad line raises ``DataError`` (FILE:LINE: FIELD: msg)."""
    seeds, problems = check_seeds(path)
    if problems:
        raise problems[0]
    return seeds


def check_seeds(path: str | Path) -> tuple[list[SeedTask], list[DataError]]:
    """The good seeds and every bad line's problem (the first one of each line), in file order: a
    hand-edited file is fixed in one pass, not one error per run. A missing or empty file raises."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    seeds: list[SeedTask] = []
    problems: list[DataError] = []
    first_id: dict[str, int] = {}
    first_instruction: dict[str, int] = {}
    for lineno, record in _records(path):
        try:
            if isinstance(record, DataError):
                raise record
            seed = _parse(path, lineno, record)
            _check_unique(path, lineno, "id", seed.id, first_id)
            _check_unique(path, lineno, "instruction", _normalise(seed.instruction), first_instruction)
        except DataError as e:
            problems.append(e)
            continue
        seeds.append(seed)
    if not seeds and not problems:
        raise DataError(path, None, "the seed file has no seed tasks (it is empty)")
    return seeds, problems


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any] | DataError]]:
    from selfspec.io import iter_jsonl_lines

    return iter_jsonl_lines(path)


def _missing(path: Path) -> DataError:
    """Say where seeds are looked for and which domains exist, so a typo in base.domain is obvious."""
    found = sorted(p.stem for p in path.parent.glob("*.jsonl")) if path.parent.is_dir() else []
    return DataError(
        path,
        None,
        f"seed file not found; seeds are read from <base.seeds_dir>/<base.domain>.jsonl "
        f"(here seeds_dir={str(path.parent)!r}, domain={path.stem!r}; domains present: "
        f"{', '.join(found) or 'none'}). To add a domain, drop <domain>.jsonl into the seeds folder "
        f"and set base.domain",
    )


def _parse(path: Path, lineno: int, record: dict[str, Any]) -> SeedTask:
    def fail(field: str, message: str) -> DataError:
        return DataError(path, lineno, message, field)

    for field in REQUIRED:
        if field not in record:
            raise fail(field, "missing required field")
    for field in record:
        if field not in REQUIRED:
            raise fail(field, f"unknown field (allowed: {', '.join(REQUIRED)})")
    for field in NONEMPTY_STRINGS:
        if not isinstance(record[field], str):
            raise fail(field, f"must be a string, got {type(record[field]).__name__}")
        if not record[field].strip():
            raise fail(field, "must not be empty")
    if not isinstance(record["is_classification"], bool):
        raise fail("is_classification", f"must be true or false, got {record['is_classification']!r}")
    if not SNAKE_CASE.match(record["task_type"]):
        raise fail("task_type", f"must be snake_case (e.g. factoid_qa), got {record['task_type']!r}")
    instances = _parse_instances(record["instances"], fail)
    return SeedTask(
        id=record["id"],
        name=record["name"],
        instruction=record["instruction"],
        instances=instances,
        is_classification=record["is_classification"],
        task_type=record["task_type"],
    )


def _parse_instances(value: Any, fail) -> tuple[Instance, ...]:
    if not isinstance(value, list) or not value:
        raise fail("instances", "must be a non-empty list of {input, output} objects")
    parsed = []
    for i, item in enumerate(value):
        field = f"instances[{i}]"
        if not isinstance(item, dict):
            raise fail(field, f"must be an object with input and output, got {type(item).__name__}")
        extra = set(item) - {"input", "output"}
        if extra:
            raise fail(f"{field}.{sorted(extra)[0]}", "unknown field (allowed: input, output)")
        for key in ("input", "output"):
            if key not in item:
                raise fail(f"{field}.{key}", "missing required field")
            if not isinstance(item[key], str):
                raise fail(f"{field}.{key}", f"must be a string, got {type(item[key]).__name__}")
        if not item["output"].strip():
            raise fail(f"{field}.output", "must not be empty")
        parsed.append(Instance(input=item["input"], output=item["output"]))
    return tuple(parsed)


def _normalise(text: str) -> str:
    """Instructions that differ only in case or spacing are the same instruction."""
    return " ".join(text.lower().split())


def _check_unique(path: Path, lineno: int, field: str, key: str, seen: dict[str, int]) -> None:
    if key in seen:
        raise DataError(path, lineno, f"duplicate of line {seen[key]}", field)
    seen[key] = lineno


def summarize(seeds: Iterable[SeedTask]) -> dict[str, Any]:
    """Counts for a seed set; ``with_input`` is the number of seed tasks with a non-empty input in
    any instance (the generators prompt input-taking and input-free tasks differently)."""
    seeds = list(seeds)
    return {
        "n_seeds": len(seeds),
        "task_types": dict(sorted(Counter(s.task_type for s in seeds).items())),
        "n_instances": sum(len(s.instances) for s in seeds),
        "with_input": sum(1 for s in seeds if any(inst.input.strip() for inst in s.instances)),
    }
