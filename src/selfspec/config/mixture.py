from __future__ import annotations

import re
from dataclasses import dataclass, field

from selfspec.config._fields import knob

# An expert's name is a folder name (models/mixture/experts/<name>), an MLflow tag key part and a vLLM
# LoRA module name: letters, digits, '_' and '-' only.
EXPERT_NAME = re.compile(r"[A-Za-z0-9_-]+")
MERGES = ("none", "linear", "ties")


@dataclass
class ExpertSpec:
    """One expert: its adapter and the records it was trained on (the router learns from those)."""

    name: str = ""
    adapter: str = ""  # a local PEFT adapter folder, or a registry reference NAME@ALIAS | NAME/VERSION
    records: str = ""  # JSONL of the expert's own training records (its filter_records output)


@dataclass
class MixtureParams:
    """Mixture of self-specialized experts (Self-MoE's MiXSE, arXiv 2406.12034; issue 16 section 3).

    A linear router over the frozen base's mean-pooled last hidden state picks one expert adapter per
    input (top-1). It is trained with cross-entropy on the experts' own records, labelled by expert.
    No experts (the default): the stage writes an empty manifest and loads nothing.
    """

    experts: list[ExpertSpec] = field(default_factory=list, metadata={"help": "the experts; empty: skipped"})
    registered_model: str = knob("", help="registry name of the composite; empty: <domain>-mixture")
    holdout: float = knob(0.2, ge=0, lt=1, help="share of each expert's records held out to score the router")
    max_length: int = knob(256, gt=8, help="tokens of a record's text the router reads")
    batch_size: int = knob(16, gt=0, help="texts per forward pass when computing router features")
    epochs: int = knob(300, gt=0, help="full-batch optimizer steps of the router")
    learning_rate: float = knob(0.01, gt=0)
    weight_decay: float = knob(0.0001, ge=0)
    seed: int | None = knob(
        None, ge=0, help="router seed (init, held-out split, random baseline); null: base.seed"
    )
    merge: str = knob(
        "none", choices=list(MERGES), help="also write a merged adapter (PEFT add_weighted_adapter)"
    )
    merge_weights: list[float] | None = knob(None, help="one weight per expert; null: 1/n each")
    merge_density: float = knob(0.5, gt=0, le=1, help="ties: share of each delta's largest values kept")

    def check(self) -> None:
        names = [e.name for e in self.experts]
        for i, expert in enumerate(self.experts):
            for key in ("name", "adapter", "records"):
                if not getattr(expert, key).strip():
                    raise ValueError(f"experts: item {i}: {key}: missing or empty")
            if not EXPERT_NAME.fullmatch(expert.name):
                raise ValueError(
                    f"experts: item {i}: name: {expert.name!r}: use letters, digits, '_' and '-'"
                )
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"experts: names must be unique, repeated: {dupes}")
        if len(self.experts) == 1:
            raise ValueError("experts: a mixture needs at least 2 experts (or none: the stage is skipped)")
        if self.merge_weights is not None and any(w < 0 for w in self.merge_weights):
            # PEFT's linear and TIES scale each expert's A and B by sqrt(weight)
            raise ValueError(f"merge_weights: must be >= 0, got {list(self.merge_weights)}")
        if self.merge_weights is not None and len(self.merge_weights) != len(self.experts):
            raise ValueError(
                f"merge_weights: {len(self.merge_weights)} weights for {len(self.experts)} experts"
            )
