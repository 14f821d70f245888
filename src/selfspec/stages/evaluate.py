"""Stage ``evaluate``: base + trained adapter (merged) on the same suite as ``evaluate_base``; the
comparison, its chart, MLflow logging into the training run and the promotion gate.

``run`` is the core (model and base metrics in; lm-eval output, comparison and gate decision out).
``main`` checks that data/evaluate_base used the same settings, evaluates, writes data/evaluate/
(run.json, results/, samples/, comparison.png) and metrics/evaluate.json, logs to MLflow and sets
alias ``champion`` when the gate passes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfspec.errors import StageError
from selfspec.outputs import adapter_dir, main_file
from selfspec.tracking import REGISTRY_FILE

log = logging.getLogger(__name__)

STAGE = "evaluate"
BASE_RUN = main_file("evaluate_base")
ADAPTER = adapter_dir("train")
REGISTRY = Path(REGISTRY_FILE)


@dataclass
class EvaluateResult:
    output: Any  # harness.EvalOutput of the specialized model
    comparison: dict[str, Any]
    decision: dict[str, Any]


def run(model, tokenizer, tasks, task_manager, params, device: str, base_metrics) -> EvaluateResult:
    from selfspec.evaluation.compare import compare, gate
    from selfspec.evaluation.harness import evaluate_seeded

    output = evaluate_seeded(model, tokenizer, tasks, task_manager, params, device)
    comparison = compare(base_metrics, output.metrics)
    ep = params.evaluate
    return EvaluateResult(output, comparison, gate(comparison, ep.primary_task, ep.primary_metric, ep.margin))


def check_inputs(base_dir: Path) -> None:
    needed = {base_dir / "config.json": "prepare_model", ADAPTER / "adapter_config.json": "train",
              REGISTRY: "train", BASE_RUN: "evaluate_base"}  # fmt: skip
    for path, stage in needed.items():
        if not path.is_file():
            raise StageError(STAGE, f"{path}: not found; run `dvc repro {stage}` first")


def main(params) -> None:
    from selfspec import tracking
    from selfspec.evaluation import stage
    from selfspec.evaluation.compare import chart
    from selfspec.evaluation.harness import load_model
    from selfspec.evaluation.publish import log_to_training_run
    from selfspec.io import read_json, write_json
    from selfspec.runtime import data_dir, metrics_path, model_dir, resolve_device, resolve_dtype

    stage.passive_openmp()
    base_dir = model_dir("prepare_model")
    check_inputs(base_dir)
    registry = tracking.read_registry(REGISTRY)
    tm, plan = stage.plan(params, STAGE)
    device = resolve_device(params.base.device)
    dtype = resolve_dtype(params.base.dtype, device)
    config = stage.run_config(params, plan, dtype, device)
    base_run = read_json(BASE_RUN)
    stage.check_same_config(base_run, config, STAGE)  # before the (slow) evaluation
    model, tokenizer = load_model(base_dir, dtype, device, adapter_dir=ADAPTER, trained_as=params.train)
    result = run(model, tokenizer, plan.run, tm, params, device, base_run["metrics"])
    out = data_dir(STAGE)
    timing = stage.write_outputs(out, config, result.output, {"comparison": result.comparison})
    # no version in the title: data/evaluate depends only on params + seed (the version is in MLflow)
    png = chart(result.comparison, out / "comparison.png", registry["model_name"])
    write_json(out / "comparison.json", {**result.comparison, "gate": result.decision})
    tags = {"eval.tasks": ",".join(plan.run), "eval.skipped": ",".join(sorted(plan.skipped)) or "-",
            "eval.limit": params.evaluate.limit, "eval.num_fewshot": params.evaluate.num_fewshot,
            "eval.dtype": config["dtype"]}  # fmt: skip
    decision = log_to_training_run(
        registry, result.comparison, result.decision, [png, out / "comparison.json"], tags
    )
    metrics = {**result.comparison, "gate": decision, "skipped": sorted(plan.skipped), "timing": timing}
    write_json(metrics_path(STAGE), metrics)
