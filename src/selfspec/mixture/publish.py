"""Everything of the ``mixture`` stage that touches files or MLflow.

``models/mixture/``: ``mixture.json`` (the manifest), ``router/``, ``experts/<name>/`` (each expert's
adapter, as verified), ``merged/`` (with ``mixture.merge``), ``checksums.json``. One MLflow run named
``mixture`` logs the folder as artifact ``mixture/``, the held-out routing decisions and the router's
scores; a servable pyfunc (``pyfunc_model.py``) is registered as a version of ``<domain>-mixture``
with alias ``candidate``. The version's tags name each expert's registered model and version (or its
local path) and digest, and hold the sha256 of every file (``selfspec.sha256.<path>``), as ``train``'s
registration does, so ``selfspec pull`` verifies the whole mixture.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selfspec import tracking
from selfspec.io import write_json, write_jsonl
from selfspec.runtime import data_dir, metrics_path, model_dir

log = logging.getLogger(__name__)

STAGE = "mixture"
OUT = model_dir(STAGE)
HOLDOUT = data_dir(STAGE) / "holdout_routing.jsonl"  # the router's decision on every held-out record
METRICS = metrics_path(STAGE)
REGISTRY = Path("registry") / f"{STAGE}.json"
ROUTER = "router"
MERGED = "merged"
EXPERT_TAG = "selfspec.expert."  # + expert name: its registered model/version, or local:<path>


def registered_name(params) -> str:
    return params.mixture.registered_model or f"{params.base.domain}-mixture"


def write_skipped() -> None:
    """No experts: an empty manifest and zero metrics, so DVC has its outputs and nothing is loaded."""
    reason = "mixture.experts is empty"
    write_json(OUT / "mixture.json", {"experts": [], "skipped": reason})
    write_jsonl(HOLDOUT, [])
    write_json(METRICS, {"n_experts": 0})
    write_json(REGISTRY, {"skipped": reason, "version": None})
    log.info("%s: skipped (%s)", STAGE, reason)


@contextmanager
def mixture_run(params) -> Iterator[str]:
    """An MLflow run named ``mixture`` with the params logged (FAILED/KILLED on error or signal)."""
    import mlflow

    tracking.setup(params)
    with tracking.tracked_run(STAGE, tracking.run_tags(params, STAGE)) as active:
        mlflow.log_params(tracking.loggable_params(params, ("base", "mixture", "tracking")))
        yield active.info.run_id


def manifest(params, experts, result, base_dir: Path, merged: bool) -> dict[str, Any]:
    from selfspec.io import read_json

    prov = base_dir / "provenance.json"
    return {
        "experts": [e.entry for e in experts],
        "router": ROUTER,
        "router_holdout": result.scores,
        "template": params.train.template,
        "base_model": {**(read_json(prov) if prov.is_file() else {}), "path": base_dir.as_posix()},
        "merged": MERGED if merged else None,
        "merge": {
            "method": params.mixture.merge,
            "weights": params.mixture.merge_weights,
            "density": params.mixture.merge_density,
        },  # fmt: skip
    }


def write_outputs(params, experts, result, base_dir: Path) -> dict[str, Any]:
    """Router, optional merge, manifest, checksums, held-out routing and metrics; returns the manifest."""
    from selfspec.deploy import MANIFEST, write_checksums
    from selfspec.mixture.merge import merge_experts

    result.router.save(OUT / ROUTER)
    mp = params.mixture
    if mp.merge != "none":
        merge_experts(base_dir, {e.name: e.folder for e in experts}, mp.merge, OUT / MERGED,
                      mp.merge_weights, mp.merge_density)  # fmt: skip
    entry = manifest(params, experts, result, base_dir, mp.merge != "none")
    write_json(OUT / MANIFEST, entry)
    write_checksums(OUT)
    write_jsonl(HOLDOUT, result.holdout)
    write_json(METRICS, {"n_experts": len(experts), **{f"router/{k}": v for k, v in result.scores.items()}})
    return entry


def publish(params, run_id: str, base_dir: Path, entry: dict[str, Any], scores: dict[str, float]):
    """Log the mixture and register it; the ``registry/mixture.json`` entry."""
    import mlflow

    from selfspec.deploy import MIXTURE_ARTIFACT

    mlflow.log_metrics({f"router/{k}": float(v) for k, v in scores.items()})
    mlflow.log_artifacts(str(OUT), artifact_path=MIXTURE_ARTIFACT)
    mlflow.log_artifact(str(HOLDOUT), artifact_path="routing")
    result = {"tracking_uri": tracking.recorded_uri(tracking.tracking_uri()), "run_id": run_id,
              "model_name": registered_name(params), "version": None, "alias": None}  # fmt: skip
    source = log_pyfunc(base_dir) if params.tracking.log_model else None
    if params.tracking.register:
        result.update(register(params, run_id, source, entry))
    write_json(REGISTRY, result)
    return result


def log_pyfunc(base_dir: Path) -> str:
    """The servable composite: pyfunc_model.py as code (no pickle), the mixture folder as its artifact."""
    import mlflow

    from selfspec.mixture import pyfunc_model  # noqa: F401 - only its path is logged; this checks it imports
    from selfspec.training.publish import pip_requirements

    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(pyfunc_model.__file__)),
        artifacts={"mixture": str(OUT)},
        model_config={"base_dir": str(base_dir.resolve()), "dtype": "float32"},
        pip_requirements=pip_requirements(),
        signature=signature(),
    )
    return info.model_uri


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    params = [ParamSpec("max_new_tokens", "long", 128), ParamSpec("do_sample", "boolean", False),
              ParamSpec("temperature", "double", 1.0), ParamSpec("top_p", "double", 1.0)]  # fmt: skip
    outputs = Schema(
        [ColSpec("string", "expert"), ColSpec("double", "probability"), ColSpec("string", "text")]
    )
    return ModelSignature(Schema([ColSpec("string")]), outputs, ParamSchema(params))


def register(params, run_id: str, source: str | None, entry: dict[str, Any]) -> dict[str, Any]:
    """A new version of the composite with alias ``candidate``, naming each expert's version."""
    import mlflow
    from mlflow import MlflowClient

    from selfspec.deploy import ARTIFACT_TAG, MIXTURE_ARTIFACT, record_digests

    name, client = registered_name(params), MlflowClient()
    if source:
        mv = mlflow.register_model(source, name)
    else:  # no logged pyfunc: the version points at the mixture folder (pull still works)
        if not client.search_registered_models(f"name='{name}'"):
            client.create_registered_model(name)
        mv = client.create_model_version(name, f"runs:/{run_id}/{MIXTURE_ARTIFACT}", run_id=run_id)
    record_digests(client, name, mv.version, OUT)
    for key, value in version_tags(entry).items():
        client.set_model_version_tag(name, mv.version, key, value)
    client.set_model_version_tag(name, mv.version, ARTIFACT_TAG, MIXTURE_ARTIFACT)
    client.update_model_version(name, mv.version, description=description(entry))
    client.set_registered_model_alias(name, tracking.CANDIDATE_ALIAS, mv.version)
    log.info("registered %s version %s as @%s", name, mv.version, tracking.CANDIDATE_ALIAS)
    return {"version": str(mv.version), "alias": tracking.CANDIDATE_ALIAS}


def expert_source(expert: dict[str, Any]) -> str:
    """``clinical-expert/3`` for a registered expert, ``local:<path>`` for a folder."""
    return expert["source"] if expert["source"] != "local" else f"local:{expert['path']}"


def version_tags(entry: dict[str, Any]) -> dict[str, str]:
    tags = {"selfspec.kind": "mixture", "selfspec.experts": ",".join(e["name"] for e in entry["experts"]),
            "git.commit": tracking.git_info()["git.commit"],
            "base_model": str(entry["base_model"].get("source", ""))}  # fmt: skip
    for e in entry["experts"]:
        tags[EXPERT_TAG + e["name"]] = expert_source(e)
        tags[f"{EXPERT_TAG}{e['name']}.sha256"] = e["sha256"]["adapter_model.safetensors"]
    for key in ("accuracy", "random_accuracy"):
        if key in entry["router_holdout"]:
            tags[f"router.{key}"] = f"{entry['router_holdout'][key]:.4f}"
    return tags


def description(entry: dict[str, Any]) -> str:
    lines = [f"Mixture of {len(entry['experts'])} self-specialized experts, routed top-1 by a linear router "
             "on the frozen base's mean-pooled last hidden state."]  # fmt: skip
    for e in entry["experts"]:
        sha = e["sha256"]["adapter_model.safetensors"]
        lines.append(f"- {e['name']}: {expert_source(e)} (adapter_model.safetensors sha256 {sha})")
    scores = entry["router_holdout"]
    if "accuracy" in scores:
        lines.append(
            f"Held-out routing accuracy {scores['accuracy']:.3f} vs random {scores['random_accuracy']:.3f}"
        )
    return "\n".join(lines)
