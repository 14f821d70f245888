"""The training loop: transformers' Trainer on pre-tokenized examples, plus a metrics callback.

Metrics go to a plain ``log_fn(metrics, step)`` so the loop knows nothing about MLflow: the
stage's ``main`` passes ``mlflow.log_metrics``; tests pass a list's append.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

LogFn = Callable[[dict[str, float], int], None]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def gpu_peak_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


class MetricsCallback(TrainerCallback):
    """Forwards loss / lr / grad norm with tokens/s and peak memory to ``log_fn`` at each log step."""

    def __init__(self, log_fn: LogFn | None):
        self.log_fn = log_fn
        self.history: list[dict[str, float]] = []
        self._t0 = self._last_t = 0.0
        self._last_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = self._last_t = time.perf_counter()
        self._last_tokens = state.num_input_tokens_seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return  # the final summary log (train_runtime, ...) is reported by the stage itself
        now = time.perf_counter()
        tokens = state.num_input_tokens_seen - self._last_tokens
        row = {
            "train/loss": float(logs["loss"]),
            "train/learning_rate": float(logs.get("learning_rate", 0.0)),
            "train/grad_norm": float(logs.get("grad_norm", float("nan"))),
            "train/epoch": float(state.epoch or 0.0),
            "train/tokens_per_s": tokens / max(now - self._last_t, 1e-9),
            "train/peak_rss_mb": peak_rss_mb(),
        }
        if (gpu := gpu_peak_mb()) is not None:
            row["train/gpu_peak_mb"] = gpu
        self._last_t, self._last_tokens = now, state.num_input_tokens_seen
        self.history.append({**row, "step": state.global_step})
        if self.log_fn is not None and state.is_world_process_zero:
            self.log_fn(row, state.global_step)


class ExampleDataset:
    """A map-style dataset over encoded examples (Trainer only needs len and getitem)."""

    def __init__(self, examples: list[dict[str, list[int]]]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.examples[i]


def planned_steps(train_params, n_examples: int, world_size: int = 1) -> int:
    """Optimizer steps: ``epochs`` over the data, capped by ``max_steps`` (-1: no cap).

    Trainer itself treats ``max_steps`` as an override of the epochs, not a cap: a small data set
    would be seen many more times than ``epochs`` says.
    """
    per_process = math.ceil(n_examples / world_size)
    epoch_steps = max(
        1, math.ceil(per_process / train_params.batch_size) // train_params.gradient_accumulation_steps
    )
    by_epochs = max(1, math.ceil(train_params.epochs * epoch_steps))
    return by_epochs if train_params.max_steps < 0 else min(train_params.max_steps, by_epochs)


def mixed_precision(dtype, device: str) -> dict[str, bool]:
    """Trainer's autocast flags for the compute dtype: bf16 where the device has it (CUDA or a
    bf16-capable CPU, see ``runtime.resolve_dtype``), fp16 with loss scaling on GPUs without bf16
    (V100, T4: ``auto`` resolves to float16 there); fp16 autocast does not exist on CPU."""
    import torch

    return {"bf16": dtype == torch.bfloat16, "fp16": dtype == torch.float16 and device == "cuda"}


def training_arguments(
    train_params, seed: int, output_dir: str, bf16: bool, use_cpu: bool, max_steps: int, fp16: bool = False
):
    """Trainer's arguments; ``max_steps`` comes from ``planned_steps``."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=train_params.batch_size,
        gradient_accumulation_steps=train_params.gradient_accumulation_steps,
        learning_rate=train_params.learning_rate,
        num_train_epochs=train_params.epochs,
        max_steps=max_steps,
        warmup_steps=train_params.warmup_ratio,  # transformers 5: a float < 1 is a fraction of the steps
        weight_decay=train_params.weight_decay,
        lr_scheduler_type=train_params.lr_scheduler,
        logging_steps=train_params.logging_steps,
        logging_first_step=True,
        save_strategy="no",  # the stage saves the adapter itself; no checkpoints inside the DVC output
        report_to=[],  # tracking is done by the stage, into its own run
        seed=seed,
        data_seed=seed,
        bf16=bf16,
        fp16=fp16,
        use_cpu=use_cpu,
        train_sampling_strategy="group_by_length",  # less padding per batch
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def train(
    model,
    tokenizer,
    examples,
    train_params,
    seed: int,
    bf16: bool,
    use_cpu: bool,
    output_dir: str,
    log_fn: LogFn | None = None,
    fp16: bool = False,
) -> dict[str, Any]:
    """Train in place; returns the summary metrics and the logged history."""
    from accelerate.utils import extract_model_from_parallel
    from transformers import Trainer

    from selfspec.training.data import Collator

    callback = MetricsCallback(log_fn)
    trainer = Trainer(
        model=model,
        args=training_arguments(
            train_params,
            seed,
            output_dir,
            bf16,
            use_cpu,
            max_steps=planned_steps(train_params, len(examples), int(os.environ.get("WORLD_SIZE", "1"))),
            fp16=fp16,
        ),
        train_dataset=ExampleDataset(examples),
        data_collator=Collator(tokenizer.pad_token_id),
        callbacks=[callback],
    )
    t0 = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - t0
    # accelerate leaves its bf16 autocast wrapper on model.forward: remove it so that the trained
    # model computes exactly as the saved adapter does when reloaded
    extract_model_from_parallel(model, keep_fp32_wrapper=False)
    tokens = trainer.state.num_input_tokens_seen
    steps = trainer.state.global_step
    return {
        "final_loss": callback.history[-1]["train/loss"] if callback.history else float(output.training_loss),
        "mean_loss": float(output.training_loss),
        "steps": steps,
        "epochs": float(trainer.state.epoch or 0.0),
        "train_seconds": seconds,
        "seconds_per_step": seconds / max(steps, 1),
        "train_tokens": tokens,
        "tokens_per_s": tokens / max(seconds, 1e-9),
        "peak_rss_mb": peak_rss_mb(),
        **({"gpu_peak_mb": g} if (g := gpu_peak_mb()) is not None else {}),
        "history": callback.history,
    }
