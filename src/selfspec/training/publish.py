"""Everything around a training run that touches files or MLflow.

One MLflow run per training: flattened params, tags (git, DVC experiment, data hashes), step
metrics streamed while training, artifacts (adapter, params.yaml, data stats, a record sample),
a servable ``mlflow.transformers`` model whose base is the prepared local folder, and a model
version of ``<domain>-expert`` with alias ``candidate``. ``registry/train.json`` says where.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

from selfspec import tracking
from selfspec.io import dumps, md5_file, read_json, write_json, write_jsonl
from selfspec.runtime import metrics_path, model_dir

log = logging.getLogger(__name__)

STAGE = "train"
OUT = model_dir(STAGE)
METRICS = metrics_path(STAGE)
SERVING_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "tokenizers",
    "safetensors",
    "sentencepiece",
)


@dataclass(frozen=True)
class Destination:
    """Where a training goes: ``train``'s outputs by default; a round of ``rounds`` passes its own
    folder, metrics (None: the caller writes them), registry file, alias and MLflow tags."""

    stage: str = STAGE
    out: Path = OUT
    metrics: Path | None = METRICS
    registry: Path | None = Path(tracking.REGISTRY_FILE)  # None: the caller keeps the entry
    alias: str = tracking.CANDIDATE_ALIAS
    run_name: str = STAGE
    tags: dict[str, str] = field(default_factory=lambda: {"selfspec.round": "1"})
    provenance: dict[str, Any] = field(default_factory=dict)  # added to provenance.json (e.g. the round)


TRAIN = Destination()


@dataclass
class Tracking:
    """The open MLflow run of a training (``run_id`` None: a non-zero rank, which only trains)."""

    run_id: str | None = None
    experiment_id: str | None = None

    @property
    def log_fn(self):
        """Step metrics callback for the training loop (None where this process does not track)."""
        return _log_metrics if self.run_id else None


@contextmanager
def training_run(params, dest: Destination = TRAIN) -> Iterator[Tracking]:
    """An MLflow run with the params and tags logged (ended FAILED if the body raises).

    Under ``accelerate launch`` every process trains (data parallel) but only rank 0 tracks,
    writes outputs and registers: other ranks get an inactive ``Tracking``.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        yield Tracking()
        return
    import mlflow

    experiment_id = tracking.setup(params)
    tags = tracking.run_tags(params, dest.stage) | dest.tags | {"selfspec.train.source": params.train.source}
    with tracking.tracked_run(dest.run_name, tags) as active:  # KILLED on SIGTERM
        mlflow.log_params(tracking.loggable_params(params))
        yield Tracking(active.info.run_id, experiment_id)


def publish(params, data, base_dir: Path, result, run: Tracking, dest: Destination = TRAIN):
    """Outputs, artifacts, final metrics and the registered version of a finished training on ``data``
    (a ``selfspec.training.sources.TrainingData``); returns the registry entry (``{}`` on a rank that
    does not track)."""
    import mlflow

    if run.run_id is None:
        return {}
    mlflow.log_params({"resolved.seed": result.seed, "resolved.dtype": result.dtype,
                       "resolved.device": result.device})  # fmt: skip
    provenance = build_provenance(params, base_dir, data, result, dest.stage) | dest.provenance
    adapter = write_outputs(result, provenance, dest)
    log_artifacts(params, data.records, result, adapter)
    mlflow.log_metrics({f"final/{k}": float(v) for k, v in summary(result).items()})
    entry = register(params, run.run_id, run.experiment_id, base_dir, adapter, dest.alias)
    if dest.registry is not None:
        write_json(dest.registry, entry)
    return entry


def _log_metrics(metrics: dict[str, float], step: int) -> None:
    import mlflow

    mlflow.log_metrics({k: v for k, v in metrics.items() if v == v}, step=step)  # drop NaN


def summary(result) -> dict[str, float]:
    """metrics/train.json: numbers only (DVC compares them across experiments)."""
    m = result.metrics
    keys = ("final_loss", "mean_loss", "steps", "epochs", "train_seconds", "seconds_per_step", "train_tokens",
            "tokens_per_s", "peak_rss_mb", "gpu_peak_mb", "n_records", "n_examples", "trainable_params",
            "total_params")  # fmt: skip
    return {k: m[k] for k in keys if k in m}


def data_md5(records_path: Path, stage: str = STAGE) -> dict[str, str | None]:
    """md5 of the training data: DVC's hash of its folder (dvc.lock) and the file's own md5."""
    folder = records_path.parent.as_posix()
    locked = tracking.dvc_dep_hashes(stage).get(folder)
    return {"path": records_path.as_posix(), "md5": md5_file(records_path), "dvc_lock_md5": locked}


def data_provenance(data, stage: str = STAGE) -> dict[str, Any]:
    """Which data trained: the source, its files' md5 and the md5 of the records as trained on (the
    exact sample under train.max_records, the gold draw)."""
    files = data_md5(data.paths[0], stage) if data.source == "records" else {
        "files": [{"path": p.as_posix(), "md5": md5_file(p)} for p in data.paths]}  # fmt: skip
    trained = hashlib.md5("".join(dumps(r) + "\n" for r in data.records).encode()).hexdigest()
    return {"source": data.source, **files, "n_available": data.n_available, "n_records": len(data.records),
            "records_md5": trained}  # fmt: skip


def build_provenance(params, base_dir: Path, data, result, stage: str = STAGE) -> dict[str, Any]:
    from selfspec.config import to_dict
    from selfspec.training.data import template_text

    base_prov_path = base_dir / "provenance.json"
    base_prov = read_json(base_prov_path) if base_prov_path.is_file() else {}
    return {
        "stage": stage,
        "base_model": {**base_prov, "path": base_dir.as_posix()},
        "data": data_provenance(data, stage),
        "data_stats": result.data_stats,
        "params": {"train": to_dict(params)["train"], "seed": result.seed, "dtype": result.dtype},
        "prompt_template": {"name": params.train.template, "text": template_text(params.train.template)},
    }  # no git commit here: models/train must reproduce byte for byte; it is in the run, version, registry


def write_outputs(result, provenance: dict[str, Any], dest: Destination = TRAIN) -> Path:
    """models/train/{adapter/, provenance.json} and metrics/train.json (or ``dest``'s); returns the
    adapter folder."""
    from selfspec.deploy import write_checksums

    adapter = save_adapter(result, dest.out / "adapter")
    write_json(adapter / "provenance.json", provenance)  # travels with the adapter (pull, export)
    write_checksums(adapter)
    write_json(dest.out / "provenance.json", provenance)
    if dest.metrics is not None:
        write_json(dest.metrics, summary(result))
    return adapter


def save_adapter(result, dest: Path) -> Path:
    """PEFT adapter (safetensors + adapter_config.json) and the tokenizer in ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    result.model.save_pretrained(dest, safe_serialization=True)
    _sort_target_modules(dest / "adapter_config.json")
    result.tokenizer.save_pretrained(dest)
    return dest


def _sort_target_modules(config_path: Path) -> None:
    """peft writes ``target_modules`` from a set, in an order that follows the process's string-hash
    seed: sorted, the same training writes the same file (and models/train the same DVC hash)."""
    config = json.loads(config_path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def log_artifacts(params, records: list[dict[str, Any]], result, adapter: Path) -> None:
    import mlflow

    mlflow.log_artifacts(str(adapter), artifact_path="adapter")
    if Path(params.source).is_file():
        mlflow.log_artifact(params.source)
    with tempfile.TemporaryDirectory() as tmp:
        write_json(Path(tmp) / "data_stats.json", result.data_stats)
        write_json(Path(tmp) / "history.json", result.history)
        sample = random.Random(result.seed).sample(records, min(params.tracking.sample_records, len(records)))
        write_jsonl(Path(tmp) / "train_sample.jsonl", sample)
        mlflow.log_artifacts(tmp, artifact_path="data")


def pip_requirements() -> list[str]:
    """Explicit pins: MLflow's inference of requirements for a PeftModel imports torchvision and fails."""
    reqs = [f"mlflow=={pkg_version('mlflow')}"]
    for name in SERVING_PACKAGES:
        try:
            reqs.append(f"{name}=={pkg_version(name).split('+')[0]}")
        except Exception:  # an optional package that is not installed is simply not required
            continue
    return reqs


def serving_prompt_template(params, tokenizer) -> str:
    """The training prompt with ``{prompt}`` where the request text goes (MLflow's prompt_template)."""
    from selfspec.training.data import render_prompt

    return render_prompt({"instruction": "{prompt}", "input": ""}, params.train.template, tokenizer)


def serving_signature():
    """Text in, text out; generation settings may be overridden per request (``"params"``)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    params = [ParamSpec("max_new_tokens", "long", 128), ParamSpec("do_sample", "boolean", False),
              ParamSpec("temperature", "double", 1.0), ParamSpec("top_p", "double", 1.0)]  # fmt: skip
    return ModelSignature(Schema([ColSpec("string")]), Schema([ColSpec("string")]), ParamSchema(params))


def log_servable_model(params, base_dir: Path, adapter: Path) -> str:
    """Log base (by local path, not copied) + adapter as an mlflow.transformers text-generation model."""
    import mlflow

    from selfspec.loading import load_model, load_tokenizer

    tokenizer = load_tokenizer(adapter)
    model = load_model(base_dir, "float32", "cpu", adapter=adapter, merge=False)
    info = mlflow.transformers.log_model(
        transformers_model={"model": model, "tokenizer": tokenizer},
        name="model",
        task="text-generation",
        base_model_path=str(base_dir.resolve()),
        pip_requirements=pip_requirements(),
        prompt_template=serving_prompt_template(params, tokenizer),
        model_config={"max_new_tokens": 128, "do_sample": False},
        signature=serving_signature(),
    )
    return info.model_uri


def register(
    params,
    run_id: str,
    experiment_id: str,
    base_dir: Path,
    adapter: Path,
    alias: str = tracking.CANDIDATE_ALIAS,
) -> dict[str, Any]:
    """Register the run's model as a new version with ``alias``; the registry/train.json entry."""
    import mlflow
    from mlflow import MlflowClient

    from selfspec.deploy import record_digests

    name = tracking.registered_model_name(params)
    git = tracking.git_info()
    entry = {"tracking_uri": tracking.recorded_uri(tracking.tracking_uri()), "experiment_id": experiment_id,
             "run_id": run_id, "model_name": name, "version": None, "alias": None, **git}  # fmt: skip
    source = log_servable_model(params, base_dir, adapter) if params.tracking.log_model else None
    if not params.tracking.register:
        return entry
    client = MlflowClient()
    if source:
        mv = mlflow.register_model(source, name)
    else:  # no logged model: the version points at the plain adapter folder (pull still works)
        if not client.search_registered_models(f"name='{name}'"):
            client.create_registered_model(name)
        mv = client.create_model_version(name, f"runs:/{run_id}/adapter", run_id=run_id)
    client.set_registered_model_alias(name, alias, mv.version)
    record_digests(client, name, mv.version, adapter)  # what `selfspec pull` verifies, outside the artifact
    prov = json.loads((adapter / "provenance.json").read_text())
    for key, value in {"base_model": prov["base_model"].get("source", ""), "git.commit": git["git.commit"],
                       "adapter_artifact": f"runs:/{run_id}/adapter", "selfspec.round": prov.get("round", 1),
                       }.items():  # fmt: skip
        client.set_model_version_tag(name, mv.version, key, str(value))
    log.info("registered %s version %s as @%s", name, mv.version, alias)
    return {**entry, "version": str(mv.version), "alias": alias}
