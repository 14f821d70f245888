from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class TrainParams:
    """QLoRA specialization (issue: specialization).

    LoRA defaults follow the authors' follow-up (r=8, alpha=16, lr 3e-4, 3 epochs); batch size,
    sequence length and the step cap are scaled so ``dvc repro train`` on ~100-300 records
    finishes in about ten minutes on 2 CPU cores with SmolLM2-135M.
    """

    lora_r: int = knob(8, gt=0, help="LoRA rank")
    lora_alpha: int = knob(16, gt=0, help="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = knob(0.05, ge=0, lt=1)
    target_modules: list[str] = knob(
        factory=lambda: ["all-linear"],
        help="module names to adapt (e.g. [q_proj, v_proj]); [all-linear]: every linear projection",
    )
    learning_rate: float = knob(3e-4, gt=0)
    epochs: float = knob(3.0, gt=0)
    max_steps: int = knob(100, help="cap on optimizer steps; -1: no cap (epochs decide)")
    batch_size: int = knob(4, gt=0, help="sequences per device per micro-batch")
    gradient_accumulation_steps: int = knob(1, gt=0)
    max_length: int = knob(256, gt=8, help="tokens per sequence (prompt + response), longer ones truncated")
    warmup_ratio: float = knob(0.05, ge=0, lt=1)
    weight_decay: float = knob(0.0, ge=0)
    lr_scheduler: str = knob("cosine", choices=["linear", "cosine", "constant", "constant_with_warmup"])
    template: str = knob(
        "alpaca", choices=["alpaca", "chat"], help="prompt format; chat: tokenizer's template"
    )
    seed: int | None = knob(None, ge=0, help="training seed; null: base.seed")
    quantization: str = knob("nf4", choices=["nf4", "fp4", "none"], help="4-bit base (QLoRA) or none")
    double_quant: bool = knob(True, help="quantize the 4-bit quantization constants too")
    gradient_checkpointing: bool = knob(False, help="trade compute for activation memory")
    logging_steps: int = knob(5, gt=0, help="optimizer steps between logged metrics")
    num_processes: int = knob(
        1,
        gt=0,
        help="data-parallel processes (one per GPU); >1: the stage runs itself under `accelerate launch`",
    )
    accelerate_config: str = knob(
        "configs/accelerate/multi_gpu.yaml", help="accelerate config file used when num_processes > 1"
    )
    # what to train on (issue 13's study rows): the pipeline's records, or the brackets around them
    source: str = knob(
        "records",
        choices=["records", "seeds", "gold", "seeds+records"],
        help="records: data/filter_records; seeds: the domain's seed instances alone; gold: real "
        "labelled examples of the gated suite's tasks, disjoint from the evaluated documents",
    )
    max_records: int | None = knob(
        None, gt=0, help="train on a seeded sample of N of the source's records (nested in N); null: all"
    )
    gold_per_task: int = knob(100, gt=0, help="source gold: examples per task (seeded sample)")

    def check(self) -> None:
        if not self.target_modules:
            raise ValueError("target_modules: empty; use [all-linear] or name the projections")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps: must be -1 (no cap) or > 0, got {self.max_steps}")
