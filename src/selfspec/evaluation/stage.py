"""What evaluate_base and evaluate share: the task plan, the run configuration both must agree on,
and the output files (run.json, results/<task>.json, samples/<task>.jsonl)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from selfspec.errors import StageError

PREPARED = Path("data/prepare_evals")
MANIFEST = PREPARED / "manifest.json"


def passive_openmp() -> None:
    """OpenMP threads spinning on a descheduled sibling make torch many times slower on a shared CPU
    (see selfspec.generation); passive waiting costs nothing on an idle one. Before torch loads."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def unavailable_datasets(stage: str) -> set[str]:
    from selfspec.io import read_json

    if not MANIFEST.is_file():
        raise StageError(stage, f"{MANIFEST}: not found; run `dvc repro prepare_evals` first")
    return set(read_json(MANIFEST).get("unavailable", []))


def plan(params, stage: str):
    """(TaskManager, Plan) for ``evaluate.tasks`` under ``evaluate.include_path``."""
    from selfspec.evaluation.tasks import check_limit_keys, plan_tasks, task_manager

    ep = params.evaluate
    tm = task_manager(ep.include_path)
    check_limit_keys(tm.task_index, ep.limit, stage)
    return tm, plan_tasks(tm.task_index, ep.tasks, unavailable_datasets(stage), stage)


def jsonable(samples: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The per-sample log as it reads back from samples/*.jsonl (tuples as lists, numpy as floats):
    both sides of the comparison then see values of the same types."""
    import json

    from lm_eval.utils import handle_non_serializable

    return json.loads(json.dumps(samples, default=handle_non_serializable))


def read_samples(folder: Path, tasks, stage: str) -> dict[str, list[dict[str, Any]]]:
    """``{task: per-sample entries}`` from ``folder/samples/<task>.jsonl``."""
    from selfspec.io import read_jsonl

    out = {}
    for task in tasks:
        path = folder / "samples" / f"{task}.jsonl"
        if not path.is_file():
            raise StageError(stage, f"{path}: not found (per-sample scores); run `dvc repro evaluate_base`")
        out[task] = read_jsonl(path)
    return out


def run_config(params, plan, dtype, device: str) -> dict[str, Any]:
    """Everything that must be identical for base and specialized numbers to be comparable."""
    from selfspec.evaluation.harness import base_weights

    ep = params.evaluate
    return {"tasks": plan.run, "skipped": plan.skipped, "num_fewshot": ep.num_fewshot,
            "batch_size": ep.batch_size, "limit": ep.limit, "seed": params.base.seed,
            "dtype": str(dtype).removeprefix("torch."), "device": device,
            "include_path": list(ep.include_path), "template": params.train.template,
            "base_weights": base_weights(params.train)}  # fmt: skip


def write_outputs(
    out_dir: Path, config: dict[str, Any], output, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """run.json (config, metrics), results/<task>.json, samples/<task>.jsonl; returns the timing.

    Nothing machine- or time-dependent goes into ``out_dir`` (a DVC output): the same params and
    seed give the same hash in dvc.lock. The timing belongs in the stage's metrics file.
    """
    import json
    import shutil

    from lm_eval.utils import handle_non_serializable

    from selfspec.io import atomic_path, write_json

    if out_dir.exists():
        shutil.rmtree(out_dir)
    res = output.results
    for task, task_results in res.get("results", {}).items():
        per_task = {
            "results": task_results,
            "n-samples": res.get("n-samples", {}).get(task),
            "config": res.get("configs", {}).get(task),
            "version": res.get("versions", {}).get(task),
        }
        safe = json.loads(json.dumps(per_task, default=handle_non_serializable))
        write_json(out_dir / "results" / f"{task}.json", safe)
    for task, samples in output.samples.items():
        with atomic_path(out_dir / "samples" / f"{task}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for s in samples:
                f.write(
                    json.dumps(s, default=handle_non_serializable, ensure_ascii=False, sort_keys=True) + "\n"
                )
    timing = {"seconds": round(output.seconds, 2), "examples": output.examples,
              "seconds_per_example": round(output.seconds / max(output.examples, 1), 4)}  # fmt: skip
    write_json(out_dir / "run.json", {"config": config, "metrics": output.metrics, **(extra or {})})
    return timing


def check_same_config(base_run: dict[str, Any], config: dict[str, Any], stage: str) -> None:
    differs = {k: (base_run["config"].get(k), v) for k, v in config.items() if base_run["config"].get(k) != v}
    if differs:
        detail = "; ".join(f"{k}: base {b!r} vs now {n!r}" for k, (b, n) in differs.items())
        raise StageError(stage, f"data/evaluate_base was made with other settings ({detail}); "
                                "run `dvc repro evaluate_base`")  # fmt: skip
