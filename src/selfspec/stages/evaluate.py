"""Stage ``evaluate``: base + trained adapter (merged) on the same suite as ``evaluate_base``; the
comparison, its chart, MLflow logging into the training run and the promotion gate.

``run`` is the core (model, the base run and its per-sample scores in; lm-eval output, the paired
comparison and the gate decision out). ``main`` checks that data/evaluate_base used the same
settings, evaluates, writes data/evaluate/ (run.json, results/, samples/, comparison.png,
comparison.json) and metrics/evaluate.json, logs to MLflow and sets alias ``champion`` when the
interval's lower bound on the primary task or group reaches the margin.
"""

from __future__ import annotations

import logging
import time
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


def run(model, tokenizer, tasks, task_manager, params, device: str, base_run, base_samples, suite=None):
    """Evaluate the specialized model, pair its per-sample scores with the base model's, gate."""
    from selfspec.evaluation.compare import add_stderrs, check_reproduces, compare, gate
    from selfspec.evaluation.harness import evaluate_seeded, load_suite
    from selfspec.evaluation.stage import jsonable

    ep = params.evaluate
    suite = suite or load_suite(task_manager, tasks, params, tokenizer)
    output = evaluate_seeded(model, tokenizer, tasks, task_manager, params, device, suite)
    start = time.perf_counter()
    comparison = compare(base_samples, jsonable(output.samples), suite, seed=params.base.seed,
                         n_boot=ep.n_boot, confidence=ep.confidence)  # fmt: skip
    check_reproduces(comparison, base_run["metrics"], output.metrics)
    add_stderrs(comparison, base_run["metrics"], output.metrics)
    decision = gate(comparison, ep.primary_task, ep.primary_metric, ep.margin, ep.confidence)
    # 2 x n_boot calls of each metric's aggregation (means are vectorized); the default suite: ~15 s
    log.info(
        "paired comparison (%d bootstrap replicates) took %.1f s", ep.n_boot, time.perf_counter() - start
    )
    return EvaluateResult(output, comparison, decision)


def check_primary(ep, suite, skipped: dict[str, str]) -> None:
    """The gate's task is evaluated (or skipped for missing data, which the decision then says):
    a name outside the suite would only fail after the whole evaluation."""
    known = set(suite.tasks) | set(suite.groups) | set(skipped)
    if ep.primary_task not in known:
        raise StageError(STAGE, f"evaluate.primary_task {ep.primary_task!r} is not in evaluate.tasks "
                         f"nor a member of one (known: {sorted(known)})")  # fmt: skip


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
    from selfspec.evaluation.harness import load_model, load_suite
    from selfspec.evaluation.publish import log_to_training_run
    from selfspec.io import read_json, write_json
    from selfspec.runtime import data_dir, metrics_path, model_dir, resolve_device, resolve_dtype

    stage.passive_openmp()
    base_dir = model_dir("prepare_model")
    check_inputs(base_dir)
    registry = tracking.read_registry(REGISTRY)
    tracking.check_store()  # an unreachable or moved store fails now, not after the evaluation
    tm, plan = stage.plan(params, STAGE)
    device = resolve_device(params.base.device)
    dtype = resolve_dtype(params.base.dtype, device)
    config = stage.run_config(params, plan, dtype, device)
    base_run = read_json(BASE_RUN)
    stage.check_same_config(base_run, config, STAGE)  # before the (slow) evaluation
    model, tokenizer = load_model(base_dir, dtype, device, adapter_dir=ADAPTER, trained_as=params.train)
    suite = load_suite(tm, plan.run, params, tokenizer)
    check_primary(params.evaluate, suite, plan.skipped)  # before the (slow) evaluation
    base_samples = stage.read_samples(BASE_RUN.parent, suite.tasks, STAGE)
    result = run(model, tokenizer, plan.run, tm, params, device, base_run, base_samples, suite)
    out = data_dir(STAGE)
    timing = stage.write_outputs(out, config, result.output, {"comparison": result.comparison})
    # no version in the title: data/evaluate depends only on params + seed (the version is in MLflow)
    title = f"{registry['model_name']}: specialized - base, {params.evaluate.confidence:.0%} paired bootstrap"
    png = chart(
        result.comparison, out / "comparison.png", title, result.decision["primary"], params.evaluate.margin
    )
    write_json(out / "comparison.json", {**result.comparison, "gate": result.decision})
    tags = {"eval.tasks": ",".join(plan.run), "eval.skipped": ",".join(sorted(plan.skipped)) or "-",
            "eval.limit": params.evaluate.limit, "eval.num_fewshot": params.evaluate.num_fewshot,
            "eval.dtype": config["dtype"]}  # fmt: skip
    decision = log_to_training_run(
        registry, result.comparison, result.decision, [png, out / "comparison.json"], tags
    )
    metrics = {**result.comparison, "gate": decision, "skipped": sorted(plan.skipped), "timing": timing}
    write_json(metrics_path(STAGE), metrics)
