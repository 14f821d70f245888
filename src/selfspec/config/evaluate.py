from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob

DEFAULT_TASKS = [
    "pubmedqa", "medmcqa", "medmcqa_cloze", "medqa_4options", "medqa_4options_cloze",
    "mmlu_medical", "mmlu_medical_cloze",
]  # fmt: skip


@dataclass
class EvaluateParams:
    """lm-eval settings shared by evaluate_base and evaluate (issue: benchmark), and the promotion gate."""

    include_path: list[str] = knob(factory=lambda: ["evals/tasks"], help="folders of lm-eval task YAMLs")
    tasks: list[str] = knob(factory=lambda: list(DEFAULT_TASKS), help="lm-eval task or group names")
    num_fewshot: int = knob(0, ge=0)
    batch_size: int = knob(8, gt=0)
    # 0.4 s per PubMedQA question in bf16, ~1.1 s in fp32 (2 free cores): 150 keep both stages at
    # ~2 min (bf16) to ~6 min (fp32) together (evals/README.md)
    limit: int | None = knob(150, gt=0, help="first N examples per task; null: all")
    log_samples: bool = knob(True, help="write per-example log-likelihoods under data/<stage>/samples/")
    primary_task: str = knob("pubmedqa", help="the gate compares base and specialized on this task ...")
    primary_metric: str = knob("acc_norm", help="... and metric")
    # specialized - base >= margin promotes; negative: non-inferiority (at most |margin| worse)
    margin: float = knob(0.01, ge=-1.0, le=1.0, help="promote (alias champion) when delta >= margin")

    def check(self) -> None:
        if not self.tasks:
            raise ValueError("tasks: empty; name at least one lm-eval task")
        if not self.include_path:
            raise ValueError("include_path: empty; evals/tasks holds the suite's task YAMLs")
