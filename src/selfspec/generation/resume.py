"""Resumable batch generation: every finished batch is appended (and fsynced) to a partial file.

The partial file lives in ``data/.partial/``, outside every stage's DVC output folder: DVC deletes
a stage's outputs before running it, which would throw away the work a resumed run needs. Its
name carries a hash of everything that determines the results (params, seed, backend, prompt
templates, the code that renders prompts, picks demonstrations and orders batches, input file
hashes, the retrieval index's files), so a change starts afresh instead of mixing runs. Each saved
batch also carries the hash of its prompts: a batch whose prompts differ at replay (a change the key
missed) is generated again, never attached to the wrong prompts. A file of another format version
is refused, never appended to. A killed run leaves at most a torn last line, which is cut off on
load; batches are redone whole, and each batch's seed depends only on its index, so a resumed run
writes exactly what an uninterrupted one would. The stage deletes its partial file after writing
the final output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from selfspec.errors import StageError
from selfspec.generation import Completion, Generator, Sampling, derive_seed
from selfspec.io import dumps

log = logging.getLogger(__name__)

PARTIAL_DIR = Path("data/.partial")
# Version 2: a header line, and each batch's prompt hash. Bump it whenever the line format changes.
FORMAT = 2
# The code that turns inputs into prompts and batches, besides the stage module itself.
PROMPT_CODE = ("selfspec.prompts", "selfspec.generation.demos", "selfspec.generation.batching",
               "selfspec.generation.text", "selfspec.seeds")  # fmt: skip


def resume_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(dumps(parts).encode()).hexdigest()[:16]


def prompts_hash(prompts: Sequence[str]) -> str:
    return hashlib.sha256(dumps(list(prompts)).encode()).hexdigest()[:16]


def code_files(module: str) -> list[Path]:
    """The source files of ``module``: one file, or every file of a package folder (templates too)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise StageError("resume", f"module {module} not found (hashed into resume keys)")
    origin = Path(spec.origin)
    if origin.name != "__init__.py":
        return [origin]
    return sorted(f for f in origin.parent.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def code_digest(stage: str) -> str:
    """sha256 over the prompt code's files: a changed template, renderer, demo choice or batch order
    gives another resume key."""
    digest = hashlib.sha256()
    for module in (*PROMPT_CODE, f"selfspec.stages.{stage}"):
        for path in code_files(module):
            digest.update(f"{module}:{path.name}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def index_files(index_dir: Path) -> list[Path]:
    """Every file of the built retrieval index (manifest included): its identity in a resume key."""
    return sorted(f for f in Path(index_dir).rglob("*") if f.is_file())


def model_files() -> list[Path]:
    """The prepared model's identity files (hashed into resume keys; weights are too big to hash)."""
    from selfspec.runtime import model_dir

    folder = model_dir("prepare_model")
    return [f for f in (folder / "config.json", folder / "provenance.json") if f.is_file()]


def partial_store(
    stage: str, params, generator, prompts: Sequence[str], inputs: Sequence[Path], name: str | None = None
) -> PartialStore:
    """The stage's partial file, keyed by everything its results depend on. ``name``: another file
    for the same stage code run on other inputs (a round of ``rounds`` re-running gen_responses)."""
    import dataclasses

    from selfspec.io import sha256_file
    from selfspec.prompts import load_prompt

    key = {
        "stage": stage,
        "params": dataclasses.asdict(getattr(params, stage)),
        "generation": dataclasses.asdict(params.generation),
        "seed": params.base.seed,
        "domain": params.base.domain,
        "generator": generator.describe(),
        "prompts": {name: load_prompt(name).source for name in prompts},
        "code": code_digest(stage),
        "inputs": {str(p): sha256_file(p) for p in inputs},
        "format": FORMAT,
    } | ({"name": name} if name else {})
    return PartialStore.for_stage(name or stage, key)


class PartialStore:
    """Append-only JSONL: a header ``{"format": 2}``, then one line per finished batch:
    ``{"batch": i, "prompts": <hash of its prompts>, "results": [...]}``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def for_stage(cls, stage: str, key_parts: dict[str, Any]) -> PartialStore:
        return cls(PARTIAL_DIR / f"{stage}-{resume_key(key_parts)}.jsonl")

    def load(self) -> dict[int, list[dict[str, Any]]]:
        """Finished batches' results by index (the last line of an index wins)."""
        return {i: results for i, (_, results) in self.load_batches().items()}

    def load_batches(self) -> dict[int, tuple[str | None, list[dict[str, Any]]]]:
        """``{index: (prompts hash, results)}``; a torn last line (killed mid-write) is cut off the file;
        a file of another format is refused."""
        if not self.path.is_file():
            return {}
        done: dict[int, tuple[str | None, list[dict[str, Any]]]] = {}
        good = 0
        with open(self.path, "rb") as f:
            for n, line in enumerate(f):
                entry = _entry(line)
                if entry is None:
                    break
                if n == 0:
                    self._check_header(entry)
                else:
                    done[entry["batch"]] = (entry.get("prompts"), entry["results"])
                good += len(line)
        if good < self.path.stat().st_size:
            log.warning("%s: cutting a torn last line (an interrupted write)", self.path)
            os.truncate(self.path, good)
        return done

    def _check_header(self, entry: dict[str, Any]) -> None:
        if entry.get("format") != FORMAT:
            found = entry.get("format", "1 (no header)")
            raise StageError(
                "resume",
                f"{self.path}: a partial file of format {found}, this version writes format {FORMAT}; "
                "it is not appended to. Delete it to start the stage afresh",
            )

    def append(self, index: int, results: list[dict[str, Any]], prompts: str | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = not self.path.is_file() or self.path.stat().st_size == 0
        with open(self.path, "a", encoding="utf-8") as f:
            if header:
                f.write(dumps({"format": FORMAT}) + "\n")
            f.write(dumps({"batch": index, "prompts": prompts, "results": results}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _entry(line: bytes) -> dict[str, Any] | None:
    """A whole JSON line, or None for a torn one."""
    try:
        return json.loads(line) if line.endswith(b"\n") else None
    except json.JSONDecodeError:
        return None


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
        self.done = store.load_batches() if store else {}
        self.stats = Throughput()
        if self.done:
            log.info("%s: resuming, %d finished batches in %s", stage, len(self.done), store.path)

    def run(self, index: int, prompts: Sequence[str], max_new_tokens: int | None = None) -> list[Completion]:
        """``max_new_tokens``: this batch's budget instead of the sampling's (part of its digest)."""
        self.stats.batches += 1
        sampling = self.sampling
        digest = prompts_hash(prompts)
        if max_new_tokens is not None and max_new_tokens != sampling.max_new_tokens:
            sampling = replace(sampling, max_new_tokens=max_new_tokens)
            digest = prompts_hash([*prompts, f"max_new_tokens={max_new_tokens}"])
        if self._replayable(index, digest):
            completions = [Completion(**c) for c in self.done[index][1]]
            self.stats.resumed_batches += 1
        else:
            start = time.perf_counter()
            seed = derive_seed(self.seed, self.stage, index)
            completions = self.generator.generate(prompts, sampling, seed)
            self.stats.seconds += time.perf_counter() - start
            self.stats.new_tokens += sum(c.completion_tokens for c in completions)
            if self.store:
                self.store.append(index, [asdict(c) for c in completions], digest)
        self.stats.add(completions)
        self._tick(len(prompts))
        return completions

    def _replayable(self, index: int, digest: str) -> bool:
        """A saved batch is replayed only for the very prompts it was generated from."""
        if index not in self.done:
            return False
        if self.done[index][0] == digest:
            return True
        log.warning("%s: batch %d was saved for other prompts; generating it again", self.stage, index)
        return False

    def _tick(self, n: int) -> None:
        if self.progress is None:
            return
        self.progress.update(n)
        s = self.stats
        self.progress.set_postfix_str(f"{s.rate:.0f} tok/s, {s.completion_tokens} tokens", refresh=False)
