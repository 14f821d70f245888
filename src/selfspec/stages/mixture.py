"""Stage ``mixture``: a mixture of self-specialized experts (Self-MoE's MiXSE) over one frozen base.

``run`` is the core: the experts (adapter folders + their own training records) and params in, the
trained router, its held-out scores and routing decisions out; no files, no tracking. ``main`` brings
the experts in (local folders or registry versions, verified), wraps ``run`` in an MLflow run, writes
``models/mixture/``, ``data/mixture/holdout_routing.jsonl``, ``metrics/mixture.json`` and
``registry/mixture.json``, and registers the composite. With ``mixture.experts`` empty (the default)
it only writes an empty manifest: the default pipeline loads no model here.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STAGE = "mixture"


@dataclass
class MixtureResult:
    router: Any  # selfspec.mixture.router.Router
    scores: dict[str, float] = field(default_factory=dict)
    holdout: list[dict[str, Any]] = field(default_factory=list)


def run(experts, params, base_dir: str | Path) -> MixtureResult:
    """Features of every record from the frozen base, the router fitted on the training share and
    scored on the held-out share (against random routing)."""
    from selfspec.mixture.router import holdout_split, router_text, routing_scores, train_router

    mp = params.mixture
    seed = params.base.seed if mp.seed is None else mp.seed
    names = [e.name for e in experts]
    texts = [router_text(r) for e in experts for r in e.records]
    labels = [i for i, e in enumerate(experts) for _ in e.records]
    train_idx, held_idx = holdout_split([len(e.records) for e in experts], mp.holdout, seed)
    feats = base_features(texts, params, base_dir)
    hp = {
        "epochs": mp.epochs,
        "learning_rate": mp.learning_rate,
        "weight_decay": mp.weight_decay,
        "seed": seed,
    }
    router = train_router(feats[train_idx], [labels[i] for i in train_idx], names, mp.max_length, hp)
    if not held_idx:
        return MixtureResult(router)
    routes = router.route(feats[held_idx])
    truth = [names[labels[i]] for i in held_idx]
    scores = routing_scores([r[0] for r in routes], truth, names, seed)
    log.info(
        "router: held-out accuracy %.3f, random routing %.3f", scores["accuracy"], scores["random_accuracy"]
    )
    holdout = [{"text": texts[i], "expert": t, "chosen": c, "probability": round(p, 6)}
               for i, t, (c, p) in zip(held_idx, truth, routes, strict=True)]  # fmt: skip
    return MixtureResult(router, scores, holdout)


def base_features(texts: list[str], params, base_dir: str | Path):
    """Router features from the plain fp32 base (frozen, no adapter): what serving computes."""
    from selfspec.loading import MASTER_DTYPE, load_model
    from selfspec.mixture.router import features
    from selfspec.mixture.serving import padded_tokenizer
    from selfspec.runtime import resolve_device

    model = load_model(base_dir, MASTER_DTYPE, resolve_device(params.base.device))
    tokenizer = padded_tokenizer(base_dir)
    return features(model, tokenizer, texts, params.mixture.max_length, params.mixture.batch_size)


def main(params) -> None:
    from selfspec.io import ensure_writable
    from selfspec.loading import prepared_dir
    from selfspec.mixture import publish as out
    from selfspec.mixture.experts import check_same_base, collect, read_records
    from selfspec.tracking import tracking_uri

    ensure_writable(out.OUT / "mixture.json", out.HOLDOUT, out.METRICS, out.REGISTRY)
    if out.OUT.exists():
        shutil.rmtree(out.OUT)  # `selfspec mixture` run by hand: DVC would have removed it
    if not params.mixture.experts:
        out.write_skipped()
        return
    base_dir = prepared_dir(stage=STAGE)
    for spec in params.mixture.experts:
        read_records(spec)  # a missing or malformed records file fails before an MLflow run is opened
    with out.mixture_run(params) as run_id:
        experts = collect(params.mixture.experts, out.OUT, tracking_uri())
        check_same_base(experts, base_dir)
        result = run(experts, params, base_dir)
        entry = out.write_outputs(params, experts, result, base_dir)
        out.publish(params, run_id, base_dir, entry, result.scores)
