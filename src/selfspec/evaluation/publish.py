"""The comparison into the training run in MLflow, and the promotion gate on the registered version.

Metrics are ``eval/<task>/<metric>/{base,specialized,delta,ci_low,ci_high,p_value,n,base_stderr,
specialized_stderr}`` (tasks and groups) and ``eval/gate/{promoted,delta,ci_low,ci_high}`` on the
run named in ``registry/train.json``, so the MLflow UI compares training runs by their
benchmark; the chart and metrics JSON are artifacts under ``evaluate/``. When the gate passes the
version gets alias ``champion``; when it fails and this version held ``champion``, the alias goes.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from selfspec import tracking
from selfspec.errors import BackendError

log = logging.getLogger(__name__)

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")
SIDES = (
    "base",
    "specialized",
    "delta",
    "ci_low",
    "ci_high",
    "p_value",
    "n",
    "base_stderr",
    "specialized_stderr",
)
GATE_NUMBERS = ("delta", "ci_low", "ci_high")


def metric_key(*parts: str) -> str:
    """An MLflow-valid key (letters, digits, ``_ - . /`` and spaces)."""
    return "/".join(_KEY_UNSAFE.sub("_", p) for p in parts)


def mlflow_metrics(comparison: dict[str, Any], decision: dict[str, Any]) -> dict[str, float]:
    out = {
        metric_key("eval", task, metric, side): float(row[side])
        for task, metrics in comparison.items()
        for metric, row in metrics.items()
        for side in SIDES
        if row.get(side) is not None
    }
    out["eval/gate/promoted"] = float(bool(decision["promoted"]))
    out.update({f"eval/gate/{k}": float(decision[k]) for k in GATE_NUMBERS if k in decision})
    return out


def log_to_training_run(registry: dict[str, Any], comparison, decision, artifacts: list[Path], tags) -> dict:
    """Log metrics, artifacts and tags to the training run, apply the gate; returns the decision
    with what was done to the registry (``alias``, ``version``)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking.tracking_uri())
    run_id = registry["run_id"]
    try:
        client.get_run(run_id)
    except MlflowException as e:
        raise BackendError(f"training run {run_id} not found at {tracking.tracking_uri()}: {e}") from None
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in sorted(mlflow_metrics(comparison, decision).items())]
    client.log_batch(run_id, metrics=metrics)
    for path in artifacts:
        client.log_artifact(run_id, str(path), artifact_path="evaluate")
    for key, value in {**tags, "eval.gate": decision["reason"]}.items():
        client.set_tag(run_id, key, str(value))
    return apply_gate(client, registry, decision)


def apply_gate(client, registry: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    name, version = registry.get("model_name"), registry.get("version")
    decision = {**decision, "model": name, "version": version, "alias": None}
    if not version:
        decision["reason"] += "; no registered version (tracking.register is false): no alias set"
        return decision
    alias = tracking.CHAMPION_ALIAS
    if decision["promoted"]:
        client.set_registered_model_alias(name, alias, str(version))
        decision["alias"] = alias
        log.info("gate passed (%s): %s version %s is @%s", decision["reason"], name, version, alias)
    else:
        if _alias_version(client, name, alias) == str(version):  # an earlier pass of this same version
            client.delete_registered_model_alias(name, alias)
        log.info("gate not passed (%s): %s version %s keeps its aliases", decision["reason"], name, version)
    for key in ("promoted", "primary", *GATE_NUMBERS):
        if key in decision:
            client.set_model_version_tag(name, str(version), f"gate.{key}", str(decision[key]))
    return decision


def _alias_version(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
