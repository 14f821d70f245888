"""What the gen_* stages' ``main()`` share: resume keys, progress bars, demonstrations, outputs."""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selfspec.errors import StageError
from selfspec.generation import derive_seed
from selfspec.generation.resume import PartialStore
from selfspec.generation.text import RougePool

log = logging.getLogger(__name__)


def partial_store(
    stage: str, params, generator, prompts: Sequence[str], inputs: Sequence[Path]
) -> PartialStore:
    """The stage's partial file, keyed by everything its results depend on."""
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
        "inputs": {str(p): sha256_file(p) for p in inputs},
    }
    return PartialStore.for_stage(stage, key)


def model_files() -> list[Path]:
    """The prepared model's identity files (hashed into resume keys; weights are too big to hash)."""
    from selfspec.runtime import model_dir

    folder = model_dir("prepare_model")
    return [f for f in (folder / "config.json", folder / "provenance.json") if f.is_file()]


def progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="rec", dynamic_ncols=True, mininterval=1.0)


def nearest_seeds(instruction: str, seeds: Sequence[Any], pool: RougePool, n: int) -> list[Any]:
    """The ``n`` seeds whose instructions are closest (ROUGE-L) to ``instruction``, closest last
    (nearest the open slot in the prompt); ties keep seed-file order, so the choice is stable."""
    if n == 0:
        return []
    scores = pool.scores(instruction)
    order = sorted(range(len(seeds)), key=lambda i: (-scores[i], i))[:n]
    return [seeds[i] for i in reversed(order)]


def sample_seeds(seeds: Sequence[Any], k: int, *parts: object) -> list[Any]:
    """``k`` seeds drawn with an RNG of their own (seeded by ``parts``): no global random state."""
    return random.Random(derive_seed(*parts)).sample(list(seeds), min(k, len(seeds)))


def length_sorted_batches(items: Sequence[Any], key, size: int) -> list[list[Any]]:
    """Batches of similar-length prompts (less padding), longest first; ties keep input order, so
    batch composition — and with it every batch's output — is fixed by the inputs alone."""
    order = sorted(range(len(items)), key=lambda i: (-key(items[i]), i))
    return [[items[i] for i in order[j : j + size]] for j in range(0, len(order), size)]


def finish(
    stage: str, filename: str, records: list[dict], metrics: dict, store: PartialStore, started: float
) -> Path:
    """Write ``data/<stage>/<filename>`` atomically, then metrics; an empty output is an error."""
    from selfspec.io import write_json, write_jsonl
    from selfspec.runtime import data_dir, metrics_path

    if not records:
        raise StageError(stage, f"no records kept (drops: {metrics.get('dropped')}); nothing to write")
    out = data_dir(stage) / filename
    write_jsonl(out, records)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    write_json(metrics_path(stage), metrics)
    store.remove()  # only after the output is safely in place
    log.info("%s: wrote %d records to %s (%.0f s)", stage, len(records), out, metrics["seconds"])
    return out
