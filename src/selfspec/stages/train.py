"""Stage ``train``: QLoRA-tune an adapter on the records of ``train.source``; track and register it in MLflow.

``run`` is the core (records + params in, trained PEFT model + metrics out; no files written,
no tracking). ``main`` reads the records of ``train.source`` (default ``data/filter_records/records.jsonl``;
or the domain's seeds, or gold examples of the evaluation tasks: ``selfspec.training.sources``) and
``models/prepare_model``, wraps ``run`` in an MLflow run and writes ``models/train/`` (adapter, provenance),
``registry/train.json`` and ``metrics/train.json``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import StageError
from selfspec.training.publish import save_adapter  # noqa: F401  (its home before training/)
from selfspec.training.sources import RECORDS  # noqa: F401  (train.source=records reads it)

log = logging.getLogger(__name__)

STAGE = "train"


@dataclass
class TrainResult:
    model: Any  # peft.PeftModel
    tokenizer: Any
    metrics: dict[str, Any]
    data_stats: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    seed: int = 0
    dtype: str = ""
    device: str = ""


def run(records: list[dict[str, Any]], params, base_dir: str | Path, log_fn=None) -> TrainResult:
    """Validate, encode, load the 4-bit base, add LoRA and train. Errors come before training."""
    from selfspec.runtime import resolve_device, resolve_dtype, set_seed
    from selfspec.training.data import encode_records, validate_records
    from selfspec.training.model import add_lora, count_parameters, load_base, load_tokenizer

    tp = params.train
    validate_records(records)  # an empty or malformed set fails before any model is loaded
    seed = params.base.seed if tp.seed is None else tp.seed
    device = resolve_device(params.base.device)
    dtype = resolve_dtype(params.base.dtype, device)
    tokenizer = load_tokenizer(base_dir)
    encoded = encode_records(records, tokenizer, tp.template, tp.max_length)
    set_seed(seed)  # LoRA's A matrices are randomly initialised
    model = add_lora(load_base(base_dir, tp, device, dtype), tp)
    counts = count_parameters(model)
    log.info("training %d examples, %s", len(encoded.examples), counts)
    metrics = _train(model, tokenizer, encoded.examples, tp, seed, dtype, device, log_fn)
    history = metrics.pop("history")
    metrics.update(counts, n_records=len(records), n_examples=len(encoded.examples))
    return TrainResult(
        model, tokenizer, metrics, encoded.stats, history, seed, str(dtype).removeprefix("torch."), device
    )


def _train(model, tokenizer, examples, tp, seed, dtype, device, log_fn) -> dict[str, Any]:
    from selfspec.training.loop import mixed_precision, train

    with tempfile.TemporaryDirectory(prefix="selfspec-train-") as tmp:
        return train(
            model, tokenizer, examples, tp, seed, use_cpu=device == "cpu", output_dir=tmp, log_fn=log_fn,
            **mixed_precision(dtype, device),
        )  # fmt: skip


def launch_command(params, argv: list[str]) -> list[str] | None:
    """``accelerate launch`` of this same command when ``train.num_processes`` > 1 and this process
    is not already one of the launched workers (accelerate sets WORLD_SIZE in each); else None."""
    n = params.train.num_processes
    if n <= 1 or "WORLD_SIZE" in os.environ:
        return None
    config = Path(params.train.accelerate_config)
    if not config.is_file():
        raise StageError(STAGE, f"train.accelerate_config: {config} not found (see configs/accelerate/)")
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--num_processes",
        str(n),
        "-m",
        "selfspec.cli",
        *argv,
    ]


def main(params) -> None:
    if cmd := launch_command(params, sys.argv[1:]):
        log.info("%s: %d processes: %s", STAGE, params.train.num_processes, " ".join(cmd))
        if (code := subprocess.run(cmd).returncode) != 0:
            raise StageError(STAGE, f"accelerate launch exited with {code}")
        return
    from selfspec.io import ensure_writable
    from selfspec.loading import prepared_dir
    from selfspec.runtime import metrics_path
    from selfspec.tracking import REGISTRY_FILE
    from selfspec.training.data import validate_records
    from selfspec.training.publish import publish, training_run
    from selfspec.training.sources import load_training_data

    base_dir = prepared_dir(stage=STAGE)
    data = load_training_data(params)
    validate_records(data.records, data.where)  # fail before an MLflow run is opened
    ensure_writable(Path(REGISTRY_FILE), metrics_path(STAGE))  # before training
    with training_run(params) as tracked:
        result = run(data.records, params, base_dir, log_fn=tracked.log_fn)
        publish(params, data, base_dir, result, tracked)
