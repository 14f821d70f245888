"""The router: a linear gate over the frozen base's mean-pooled last hidden state, top-1.

Self-MoE (arXiv 2406.12034) trains a small gate on base hidden states with the base frozen, on the
experts' own self-generated data. Here the gate is one ``torch.nn.Linear(hidden, n_experts)`` on
standardized features, trained full-batch with cross-entropy (labels: which expert's records a text
came from). The features are computed once, so training costs one forward pass per record.

Saved as ``router.safetensors`` (weight, bias, feature mean and std) + ``router.json`` (expert
names in label order, feature settings): no pickle.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfspec.errors import DataError

WEIGHTS = "router.safetensors"
CONFIG = "router.json"
POOLING = "mean of the last hidden state over non-padding tokens"


def router_text(record: dict[str, Any]) -> str:
    """What the router reads of a record: the instruction and its input (a request's prompt at serving)."""
    context = (record.get("input") or "").strip()
    return f"{record['instruction'].strip()}\n\n{context}" if context else record["instruction"].strip()


def features(model, tokenizer, texts: list[str], max_length: int, batch_size: int):
    """``(len(texts), hidden)`` float32: the mean of the last hidden state over each text's tokens.
    A PeftModel is read with its adapters disabled: the router sees the frozen base only."""
    import contextlib

    import torch

    off = model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
    rows = []
    with torch.no_grad(), off:
        for i in range(0, len(texts), batch_size):
            # right padding: with a causal mask the real tokens never see it, so a text's features
            # do not depend on the batch it is in (left padding would shift its positions)
            enc = tokenizer(texts[i : i + batch_size], return_tensors="pt", padding=True, truncation=True,
                            max_length=max_length, padding_side="right").to(model.device)  # fmt: skip
            hidden = model(**enc, output_hidden_states=True).hidden_states[-1].float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            rows.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))
    return torch.cat(rows).cpu()


@dataclass
class RouterConfig:
    experts: list[str]
    hidden_size: int
    max_length: int
    pooling: str = POOLING
    training: dict[str, Any] = field(default_factory=dict)


@dataclass
class Router:
    config: RouterConfig
    weight: Any  # (n_experts, hidden) torch tensor
    bias: Any
    mean: Any  # feature standardization, from the training split
    std: Any

    def probabilities(self, feats):
        import torch

        return torch.softmax(((feats - self.mean) / self.std) @ self.weight.T + self.bias, dim=-1)

    def route(self, feats) -> list[tuple[str, float]]:
        """Top-1: ``(expert name, its probability)`` per row of ``feats``."""
        probs = self.probabilities(feats)
        best = probs.argmax(dim=-1)
        return [(self.config.experts[int(i)], float(probs[r, i])) for r, i in enumerate(best)]

    def save(self, folder: Path) -> Path:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": self.weight, "bias": self.bias, "mean": self.mean, "std": self.std}
        save_file({k: v.contiguous() for k, v in tensors.items()}, folder / WEIGHTS)
        (folder / CONFIG).write_text(json.dumps(asdict(self.config), indent=2, sort_keys=True) + "\n")
        return folder


def load_router(folder: str | Path) -> Router:
    from safetensors.torch import load_file

    folder = Path(folder)
    config = RouterConfig(**json.loads((folder / CONFIG).read_text()))
    t = load_file(folder / WEIGHTS)
    if tuple(t["weight"].shape) != (len(config.experts), config.hidden_size):
        raise DataError(folder / WEIGHTS, None, f"shape {tuple(t['weight'].shape)} does not match {CONFIG}")
    return Router(config, t["weight"], t["bias"], t["mean"], t["std"])


def train_router(feats, labels: list[int], experts: list[str], max_length: int, hp: dict[str, Any]) -> Router:
    """Fit the gate with cross-entropy, full batch, Adam; ``hp``: epochs, learning_rate, weight_decay, seed.
    Seeded and single-threaded in its update: the same features give the same bytes."""
    import torch

    mean, std = feats.mean(0), feats.std(0, unbiased=False).clamp(min=1e-6)
    x, y = (feats - mean) / std, torch.tensor(labels)
    gen = torch.Generator().manual_seed(hp["seed"])
    layer = torch.nn.Linear(x.shape[1], len(experts))
    with torch.no_grad():  # nn.Linear's own init draws from the global RNG: redo it from ours
        layer.weight.normal_(0.0, 0.01, generator=gen)
        layer.bias.zero_()
    opt = torch.optim.Adam(layer.parameters(), lr=hp["learning_rate"], weight_decay=hp["weight_decay"])
    for _ in range(hp["epochs"]):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(x), y)
        loss.backward()
        opt.step()
    training = {**hp, "final_loss": float(loss.detach())}
    config = RouterConfig(experts, x.shape[1], max_length, training=training)
    return Router(config, layer.weight.detach().clone(), layer.bias.detach().clone(), mean, std)


def holdout_split(n_per_expert: list[int], share: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (into the concatenated records) for training and held out: ``share`` of each expert's,
    at least one each when ``share`` > 0 (stratified, so every expert is scored)."""
    rng = random.Random(seed)
    train, held, start = [], [], 0
    for n in n_per_expert:
        idx = list(range(start, start + n))
        rng.shuffle(idx)
        k = max(1, round(share * n)) if share > 0 else 0
        held += sorted(idx[:k])
        train += sorted(idx[k:])
        start += n
    return train, held


def routing_scores(chosen: list[str], truth: list[str], experts: list[str], seed: int) -> dict[str, float]:
    """Accuracy of the router against the expert each text came from, beside random routing (a seeded
    uniform draw over the same texts), its expectation 1/n, and always picking the largest expert."""
    rng = random.Random(seed)
    drawn = [rng.choice(experts) for _ in truth]
    n = len(truth)
    majority = max(truth.count(e) for e in experts) / n
    scores = {"accuracy": _hits(chosen, truth) / n, "random_accuracy": _hits(drawn, truth) / n,
              "chance": 1 / len(experts), "majority_accuracy": majority, "n_holdout": n}  # fmt: skip
    for e in experts:
        if mine := [i for i, t in enumerate(truth) if t == e]:
            scores[f"accuracy/{e}"] = _hits([chosen[i] for i in mine], [e] * len(mine)) / len(mine)
    return scores


def _hits(a: list[str], b: list[str]) -> int:
    return sum(x == y for x, y in zip(a, b, strict=True))
