"""lm-eval on model objects: the base (or base + adapter) as trained, in the compute dtype, an ``HFLM``
wrapped around it, ``simple_evaluate`` with every seed fixed, and flat metrics from its results."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class EvalOutput:
    results: dict[str, Any]  # lm-eval's results dict (results, groups, n-samples, configs, ...)
    samples: dict[str, list[dict[str, Any]]]
    metrics: dict[str, dict[str, float]]
    seconds: float
    examples: int


def load_model(
    base_dir: str | Path, dtype, device: str, adapter_dir: str | Path | None = None, trained_as=None
):
    """The model for evaluation, as it was trained (docs/models.md, "Evaluating what was trained").

    ``trained_as`` is the ``train`` params section. With a 4-bit ``quantization`` the base weights are
    the NF4 weights dequantized (what training computed with), for the base model as well, so that a
    paired delta is the adapter's alone. The adapter is merged (in fp32) only for fp32 compute; in
    bf16/fp16 it stays unmerged, because casting a merged model rounds most of a LoRA update away.
    """
    from selfspec import loading

    model = loading.load_model(base_dir, dtype, device, **eval_load_request(dtype, adapter_dir, trained_as))
    return model, loading.load_tokenizer(base_dir)


def eval_load_request(dtype, adapter_dir: str | Path | None, trained_as) -> dict[str, Any]:
    """``selfspec.loading`` arguments of the evaluation rule above."""
    from selfspec.loading import dtype_name

    request: dict[str, Any] = {}
    quantization = getattr(trained_as, "quantization", "none")
    if quantization != "none":
        request.update(quantization=quantization, double_quant=trained_as.double_quant, dequantize=True)
    if adapter_dir is not None:
        request.update(adapter=adapter_dir, merge=dtype_name(dtype) == "float32")
    return request


def base_weights(trained_as) -> str:
    """How the base weights were evaluated (recorded in run.json; base and specialized must agree)."""
    quantization = getattr(trained_as, "quantization", "none")
    double = "+double-quant" if quantization != "none" and trained_as.double_quant else ""
    return "full-precision" if quantization == "none" else f"{quantization}{double}-dequantized"


def evaluate(
    model,
    tokenizer,
    tasks,
    task_manager,
    ep,
    seed: int,
    device: str,
    template: str | None = None,
    doc_indices=None,
) -> EvalOutput:
    """``doc_indices``: {task: document indices} (per-task limits; tasks not in it run in full).
    ``template``: ``train.template``, through which the instruction-style (generative) tasks render
    their prompts (selfspec.evaluation.instruct); without it those tasks fail, never render another way."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from selfspec.evaluation.instruct import rendering

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=ep.batch_size, device=device)
    start = time.perf_counter()
    with rendering(template, tokenizer):
        out = simple_evaluate(
            model=lm, tasks=tasks, task_manager=task_manager, num_fewshot=ep.num_fewshot,
            samples=doc_indices, limit=None if doc_indices is not None else ep.limit,
            log_samples=True,  # the paired statistics read them
            random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
            bootstrap_iters=1000,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    samples = out.pop("samples", None) or {}
    examples = sum(n.get("effective", 0) for n in out.get("n-samples", {}).values())
    log.info(
        "evaluated %d examples in %.1f s (%.3f s/example)", examples, seconds, seconds / max(examples, 1)
    )
    return EvalOutput(out, samples, flat_metrics(out), seconds, examples)


def load_suite(task_manager, tasks: list[str], params, tokenizer):
    """The lm-eval Task objects of ``tasks`` (aggregation functions, primary metrics, split sizes).
    lm-eval renders a first prompt when it builds a task, so this runs with the same prompt settings
    (``params``, ``tokenizer``) as the evaluation itself."""
    from selfspec.evaluation.instruct import rendering
    from selfspec.evaluation.tasks import load_suite as load

    with rendering(params.train.template, tokenizer):
        return load(task_manager, tasks)


def evaluate_seeded(
    model, tokenizer, tasks: list[str], task_manager, params, device: str, suite=None
) -> EvalOutput:
    """``tasks`` on ``model`` with the seeds, shots, batch size, per-task limits and prompt template of
    ``params``: one call for the base (evaluate_base) and the specialized model (evaluate), so both are
    scored alike (``suite``: the loaded lm-eval tasks, when the caller has them already)."""
    from selfspec.evaluation.tasks import sample_indices
    from selfspec.runtime import set_seed

    suite = suite or load_suite(task_manager, tasks, params, tokenizer)
    samples = sample_indices(params.evaluate.limit, suite)
    set_seed(params.base.seed)
    ep, seed, template = params.evaluate, params.base.seed, params.train.template
    return evaluate(model, tokenizer, tasks, task_manager, ep, seed, device, template, doc_indices=samples)


def metric_name(key: str) -> tuple[str, bool]:
    """lm-eval's ``"acc,none"`` -> ``("acc", False)``; ``"acc_stderr,none"`` -> ``("acc", True)``.
    A filter other than ``none`` becomes a suffix (``exact_match-strict``): MLflow keys allow no commas."""
    metric, _, filt = key.partition(",")
    is_stderr = metric.endswith("_stderr")
    metric = metric.removesuffix("_stderr")
    return (metric if filt in ("", "none") else f"{metric}-{filt}"), is_stderr


def flat_metrics(out: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{task: {metric: value, metric_stderr: value, n: examples}}`` for tasks and groups."""
    flat: dict[str, dict[str, float]] = {}
    for task, res in out.get("results", {}).items():
        row: dict[str, float] = {}
        for key, value in res.items():
            if "," not in key or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue  # alias, name, sample_len; "N/A" stderrs
            metric, is_stderr = metric_name(key)
            row[f"{metric}_stderr" if is_stderr else metric] = float(value)
        n = out.get("n-samples", {}).get(task, {}).get("effective")
        if n is None:  # a group: the sum over its members
            n = sum(
                out["n-samples"].get(t, {}).get("effective", 0)
                for t in out.get("group_subtasks", {}).get(task, [])
            )
        flat[task] = {**row, "n": int(n)}
    return flat
