"""Stage ``evaluate_base``: the base model on the benchmark suite (lm-eval, evals/tasks).

A separate stage from ``evaluate`` so that changing training params never re-runs it. ``run`` is
the core (model in, lm-eval output + flat metrics out); ``main`` loads models/prepare_model in the
compute dtype and writes data/evaluate_base/ (run.json, results/, samples/: per document its
``doc_id``, ``doc_hash`` and every metric's per-doc value, which ``evaluate`` pairs) and
metrics/evaluate_base.json.
"""

from __future__ import annotations

import logging

from selfspec.errors import StageError

log = logging.getLogger(__name__)

STAGE = "evaluate_base"


def run(model, tokenizer, tasks: list[str], task_manager, params, device: str, suite=None):
    """lm-eval ``tasks`` on ``model``: same seeds, shots, batch size and per-task limits as
    ``evaluate`` (``suite``: the loaded tasks, when the caller has them already)."""
    from selfspec.evaluation.harness import evaluate_seeded

    return evaluate_seeded(model, tokenizer, tasks, task_manager, params, device, suite)


def main(params) -> None:
    from selfspec.evaluation import stage
    from selfspec.evaluation.harness import load_model
    from selfspec.io import write_json
    from selfspec.runtime import data_dir, metrics_path, model_dir, resolve_device, resolve_dtype

    stage.passive_openmp()
    base_dir = model_dir("prepare_model")
    if not (base_dir / "config.json").is_file():
        raise StageError(STAGE, f"{base_dir}: no base model; run `dvc repro prepare_model` first")
    tm, plan = stage.plan(params, STAGE)
    device = resolve_device(params.base.device)
    dtype = resolve_dtype(params.base.dtype, device)
    model, tokenizer = load_model(base_dir, dtype, device, trained_as=params.train)
    output = run(model, tokenizer, plan.run, tm, params, device)
    timing = stage.write_outputs(data_dir(STAGE), stage.run_config(params, plan, dtype, device), output)
    write_json(metrics_path(STAGE), {**output.metrics, "skipped": sorted(plan.skipped), "timing": timing})
