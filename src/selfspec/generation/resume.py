"""Resumable batch generation: every finished batch is appended (and fsynced) to a partial file.

The partial file lives in ``data/.partial/``, outside every stage's DVC output folder: DVC deletes
a stage's outputs before running it, which would throw away the work a resumed run needs. Its
name carries a hash of everything that determines the results (params, seed, backend, prompt
templates, input file hashes), so a changed param starts afresh instead of mixing runs. A killed
run leaves at most a torn last line, which is cut off on load; batches are redone whole, and each
batch's seed depends only on its index, so a resumed run writes exactly what an uninterrupted one
would. The stage deletes its partial file after writing the final output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from selfspec.generation import Completion, Generator, Sampling, derive_seed
from selfspec.io import dumps

log = logging.getLogger(__name__)

PARTIAL_DIR = Path("data/.partial")


def resume_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(dumps(parts).encode()).hexdigest()[:16]


class PartialStore:
    """Append-only JSONL, one line per finished batch: ``{"batch": i, "results": [...]}``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def for_stage(cls, stage: str, key_parts: dict[str, Any]) -> PartialStore:
        return cls(PARTIAL_DIR / f"{stage}-{resume_key(key_parts)}.jsonl")

    def load(self) -> dict[int, list[dict[str, Any]]]:
        """Finished batches by index; a torn last line (killed mid-write) is cut off the file."""
        if not self.path.is_file():
            return {}
        done: dict[int, list[dict[str, Any]]] = {}
        good = 0
        with open(self.path, "rb") as f:
            for line in f:
                try:
                    entry = json.loads(line) if line.endswith(b"\n") else None
                except json.JSONDecodeError:
                    entry = None
                if entry is None:
                    break
                done[entry["batch"]] = entry["results"]
                good += len(line)
        if good < self.path.stat().st_size:
            log.warning("%s: cutting a torn last line (an interrupted write)", self.path)
            os.truncate(self.path, good)
        return done

    def append(self, index: int, results: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(dumps({"batch": index, "results": results}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class Throughput:
    """Token counts and generation time; resumed batches count tokens but not seconds."""

    prompts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    batches: int = 0
    resumed_batches: int = 0
    finish_length: int = 0
    new_tokens: int = 0  # generated in this run (the rate's numerator)

    def add(self, completions: Sequence[Completion]) -> None:
        self.prompts += len(completions)
        self.prompt_tokens += sum(c.prompt_tokens for c in completions)
        self.completion_tokens += sum(c.completion_tokens for c in completions)
        self.finish_length += sum(c.finish_reason == "length" for c in completions)

    @property
    def rate(self) -> float:
        return self.new_tokens / self.seconds if self.seconds else 0.0

    def metrics(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "completions_hit_max_new_tokens": self.finish_length,
            "generation_seconds": round(self.seconds, 2),
            "tokens_per_s": round(self.rate, 2),
            "batches": self.batches,
            "resumed_batches": self.resumed_batches,
        }


class BatchRunner:
    """Runs batch ``i`` with seed ``derive_seed(seed, stage, i)``, or replays it from the store."""

    def __init__(
        self,
        generator: Generator,
        sampling: Sampling,
        seed: int,
        stage: str,
        store: PartialStore | None = None,
        progress: Any = None,
    ):
        self.generator, self.sampling, self.seed, self.stage = generator, sampling, seed, stage
        self.store, self.progress = store, progress
        self.done = store.load() if store else {}
        self.stats = Throughput()
        if self.done:
            log.info("%s: resuming, %d finished batches in %s", stage, len(self.done), store.path)

    def run(self, index: int, prompts: Sequence[str]) -> list[Completion]:
        self.stats.batches += 1
        if index in self.done:
            completions = [Completion(**c) for c in self.done[index]]
            self.stats.resumed_batches += 1
        else:
            start = time.perf_counter()
            completions = self.generator.generate(
                prompts, self.sampling, derive_seed(self.seed, self.stage, index)
            )
            self.stats.seconds += time.perf_counter() - start
            self.stats.new_tokens += sum(c.completion_tokens for c in completions)
            if self.store:
                self.store.append(index, [asdict(c) for c in completions])
        self.stats.add(completions)
        self._tick(len(prompts))
        return completions

    def _tick(self, n: int) -> None:
        if self.progress is None:
            return
        self.progress.update(n)
        s = self.stats
        self.progress.set_postfix_str(f"{s.rate:.0f} tok/s, {s.completion_tokens} tokens", refresh=False)
