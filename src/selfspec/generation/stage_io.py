"""A gen stage's terminal and files: the progress bar, and the output written once at the end."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from selfspec.errors import StageError
from selfspec.generation.resume import PartialStore

log = logging.getLogger(__name__)


def progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="rec", dynamic_ncols=True, mininterval=1.0)


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
