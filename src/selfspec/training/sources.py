"""What ``train`` trains on (``train.source``), and how much of it (``train.max_records``).

- ``records``: the pipeline's own data, data/filter_records/records.jsonl, read as it is.
- ``seeds``: the domain's human-written seed tasks alone, one record per instance (the study's
  "seeds only" row: what the ~100 examples the generation starts from teach without it).
- ``seeds+records``: both, the seeds first (run 3: seeds alone beat the base, the generated records
  alone made it worse; this row asks what the generated records add to the seeds).
- ``gold``: real labelled examples of the gated suite's tasks (:mod:`selfspec.training.gold`),
  the upper bracket: how far self-generated data is from correct data of the same size.

Every source yields the record fields the trainer reads (instruction, input, output) plus where each
record came from. ``max_records`` then keeps a seeded sample: the first N of one seeded permutation,
so the study's 100-record set lies inside its 300-record set, both from one generation.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import StageError
from selfspec.outputs import main_file

log = logging.getLogger(__name__)

RECORDS = main_file("filter_records")
SOURCES = ("records", "seeds", "gold", "seeds+records")


@dataclass
class TrainingData:
    records: list[dict[str, Any]]
    source: str
    paths: list[Path] = field(default_factory=list)  # the files the records were read from
    n_available: int = 0  # records of the source before train.max_records

    @property
    def where(self) -> str:
        """What a bad record's error names: the file when its records are read whole, in file order."""
        whole = self.source == "records" and len(self.records) == self.n_available
        return (
            str(self.paths[0])
            if whole
            else f"train.source={self.source} (from {', '.join(map(str, self.paths))})"
        )


def load_training_data(params) -> TrainingData:
    """The records of ``train.source``, cut to ``train.max_records``."""
    from selfspec.io import read_jsonl

    source = params.train.source
    if source in ("records", "seeds+records"):
        if not RECORDS.is_file():
            raise StageError("train", f"{RECORDS}: not found; run `dvc repro filter_records` first")
        records, paths = read_jsonl(RECORDS), [RECORDS]
        if source == "seeds+records":
            seeds, seed_paths = seed_records(params)
            records, paths = seeds + records, seed_paths + paths
    elif source == "seeds":
        records, paths = seed_records(params)
    elif source == "gold":
        from selfspec.training.gold import gold_records

        records, paths = gold_records(params)
    else:  # the schema's choices stop this before; a caller building params by hand may not
        raise StageError("train", f"train.source: must be one of {list(SOURCES)}, got {source!r}")
    kept = sample_records(records, params.train.max_records, params.base.seed)
    if (n := params.train.max_records) is not None and n > len(records):  # metrics/train.json: n_records
        log.warning("train.max_records=%d: the source has only %d records; training on all", n, len(records))
    log.info("train.source=%s: %d records (%d available)", source, len(kept), len(records))
    return TrainingData(kept, source, paths, len(records))


def seed_records(params) -> tuple[list[dict[str, Any]], list[Path]]:
    """Every instance of every seed task of the domain, in file order."""
    from selfspec.seeds import load_seeds, seeds_path

    path = seeds_path(params)
    records = [
        {"instruction": seed.instruction, "input": inst.input, "output": inst.output,
         "source": "seeds", "seed_id": seed.id, "task_type": seed.task_type}
        for seed in load_seeds(path)
        for inst in seed.instances
    ]  # fmt: skip
    return records, [path]


def sample_records(records: list[dict[str, Any]], n: int | None, seed: int) -> list[dict[str, Any]]:
    """``records`` itself when ``n`` is None or covers them all; else the first ``n`` indices of a
    permutation seeded by ``seed``, back in file order. filter_records keeps generation order, prompt
    batch by prompt batch (runs of one task type), so its head would be a few batches, not a sample."""
    if n is None or n >= len(records):
        return records
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    return [records[i] for i in sorted(order[:n])]
