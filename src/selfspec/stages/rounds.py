"""Stage ``rounds``: iterative self-specialization (Kang et al., paper v2), rounds 2 .. ``rounds.n``.

Round 1 is ``gen_responses`` -> ``filter_records`` -> ``train``. Round k >= 2 runs the same three
stages' code on the same instructions and inputs (``data/gen_inputs``), with retrieval, the same
prompts and filters, but the model that answers is the specialized one: the base with round k-1's
adapter merged in (``selfspec.loading.save_merged``). A new adapter (a fresh LoRA on the base, as
in round 1) is trained on round k's kept records and registered in MLflow, one run per round.

Outputs, by the naming rule of ``selfspec.outputs``: ``data/rounds/round_<k>/`` (responses.jsonl,
records.jsonl), ``models/rounds/round_<k>/`` (adapter/, provenance.json, round.json),
``registry/rounds.json`` (each round's MLflow run and model version, apart so that models/rounds
reproduces byte for byte) and ``metrics/rounds.json``. With ``rounds.n: 1`` the stage only writes
the (empty) manifests: no model is loaded.

Why one stage with a loop and not a ``foreach`` of stages: DVC's templating has no arithmetic or
ranges, so a foreach cannot be built from a round count (``-S rounds.n=3``): its items would have
to be written out, each naming its previous round. Each round is still a versioned output of its
own (a folder of content-addressed files in the cache); its ``round.json`` holds a key over
everything the round depends on (params, code, inputs, the previous adapter's digests). The outputs
persist, so a round whose key is unchanged is kept, not redone: raising ``rounds.n`` from 3 to 4
runs round 4 only, and a run killed in round 3 resumes there (generation itself resumes batch by
batch, as in gen_responses: its partial files are keyed by the merged model too).

The merged model is a scratch folder (``models/.merged/round_<k>``, removed after the round): it is
rebuilt from two versioned outputs, and a full copy of the base per round would be the largest
thing in the cache. With ``generation.backend: openai`` the server must be a vLLM server started
with runtime LoRA loading (docs/rounds.md): the stage loads round k-1's adapter into it by path.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from selfspec.errors import StageError
from selfspec.outputs import (
    ROUND_FILES,
    ROUNDS,
    round_adapter_dir,
    round_data_dir,
    round_model_dir,
    round_name,
)

log = logging.getLogger(__name__)

STAGE = ROUNDS
MANIFEST = "rounds.json"  # data/rounds/ and models/rounds/: which rounds the folders hold
ROUND_FILE = "round.json"  # models/rounds/round_<k>/: the round's key; written last (the round is done)
REGISTRY = Path("registry/rounds.json")
MERGED_DIR = Path("models/.merged")
KEY_SECTIONS = ("base", "generation", "gen_responses", "filter_records", "train")
FORMAT = 1  # of round.json's key: bump when what a key covers changes


def files_digest(files: list[Path]) -> dict[str, str]:
    from selfspec.io import sha256_file

    return {f.as_posix(): sha256_file(f) for f in sorted(files) if f.is_file()}


def code_digest() -> str:
    """sha256 of the selfspec package's files: a round reuses nothing across a code change."""
    import selfspec

    root = Path(selfspec.__file__).parent
    digest = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f.relative_to(root).as_posix().encode() + b"\n" + f.read_bytes())
    return digest.hexdigest()[:16]


def round_inputs(k: int, params) -> list[Path]:
    """The files round k reads: instructions and inputs, seeds, the base's identity, the index, the
    evaluation sets of the contamination check, and round k-1's adapter."""
    from selfspec.generation.resume import index_files, model_files
    from selfspec.outputs import main_file
    from selfspec.retrieval import INDEX_DIR
    from selfspec.seeds import seeds_path

    evals = sorted(Path(params.filter_records.evals_dir).glob("*.jsonl"))
    index = index_files(INDEX_DIR) if params.gen_responses.retrieval else []
    previous = sorted(p for p in round_adapter_dir(k - 1).rglob("*") if p.is_file())
    return [main_file("gen_inputs"), seeds_path(params), *model_files(), *index, *evals, *previous]


def round_key(k: int, params, code: str) -> str:
    """What round k's outputs depend on, hashed: equal keys, equal outputs (the stages are seeded)."""
    import dataclasses

    from selfspec.io import dumps

    parts = {
        "round": k,
        "params": {s: dataclasses.asdict(getattr(params, s)) for s in KEY_SECTIONS},
        "code": code,
        "inputs": files_digest(round_inputs(k, params)),
        "format": FORMAT,
    }
    return hashlib.sha256(dumps(parts).encode()).hexdigest()[:16]


def finished(k: int, key: str, registry: dict[str, Any]) -> bool:
    """Round k's outputs are complete and were made from the same inputs (``key``)."""
    from selfspec.io import read_json

    marker = round_model_dir(k) / ROUND_FILE
    data = [round_data_dir(k) / f for f in ROUND_FILES.values()]
    if not marker.is_file() or not all(f.is_file() for f in data) or round_name(k) not in registry:
        return False
    return read_json(marker).get("key") == key


def prune(n: int) -> None:
    """Remove the rounds above ``n`` (the outputs persist between runs), and their scratch merges (a
    killed round's merge is kept for its resumed run)."""
    for folder in (Path("data") / STAGE, Path("models") / STAGE, MERGED_DIR):
        for sub in sorted(folder.glob("round_*")) if folder.is_dir() else []:
            if not sub.name.removeprefix("round_").isdigit() or int(sub.name.removeprefix("round_")) > n:
                shutil.rmtree(sub)


def previous_run(k: int, registry: dict[str, Any]) -> str:
    """The MLflow run id of round k-1 (train's for round 2), or "unknown"."""
    from selfspec.io import read_json
    from selfspec.tracking import REGISTRY_FILE

    if k > 2:
        return (registry.get(round_name(k - 1)) or {}).get("run_id", "unknown")
    path = Path(REGISTRY_FILE)
    return read_json(path).get("run_id", "unknown") if path.is_file() else "unknown"


def open_round_generator(k: int, params):
    """The generator of round k: base + round k-1's adapter. In process (transformers, vLLM): the
    merged folder; ``openai``: the adapter loaded into the (vLLM) server under its own name."""
    from selfspec.generation import open_generator
    from selfspec.io import sha256_file
    from selfspec.loading import dtype_name, merged_identity, prepared_dir, save_merged
    from selfspec.runtime import resolve_device, resolve_dtype

    adapter = round_adapter_dir(k - 1)
    if not (adapter / "adapter_model.safetensors").is_file():
        stage = "train" if k == 2 else STAGE
        raise StageError(STAGE, f"{adapter}: round {k - 1}'s adapter is missing; run `dvc repro {stage}`")
    identity = {"round": k - 1}
    if params.generation.backend == "openai":
        return open_generator(params).with_adapter(adapter, identity)
    dest = MERGED_DIR / round_name(k)
    sha = sha256_file(adapter / "adapter_model.safetensors")
    dtype = resolve_dtype(params.base.dtype, resolve_device(params.base.device))
    made = merged_identity(dest) or {}
    if (made.get("adapter_sha256"), made.get("dtype")) != (
        sha,
        dtype_name(dtype),
    ):  # a resumed round's is kept
        save_merged(prepared_dir(stage=STAGE), adapter, dest, dtype, identity)
    return open_generator(params, dest)


def free_memory() -> None:
    """Give back the memory of a dropped generator (GPU memory for the training that follows; vLLM
    frees what it can in process)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def generate(k: int, params) -> tuple[list[dict], dict[str, Any], tuple]:
    """gen_responses' code with round k's generator: responses, metrics and the partial stores."""
    from selfspec.stages.gen_responses import generate as generate_responses

    out = round_data_dir(k)
    generator = open_round_generator(k, params)
    previous = sorted(p for p in round_adapter_dir(k - 1).rglob("*") if p.is_file())
    targets = [out / f for f in ROUND_FILES.values()]
    try:
        return generate_responses(params, generator, f"{STAGE}-{round_name(k)}", targets, previous)
    finally:
        del generator  # the last reference: its weights go before the round's training loads the base
        free_memory()


def filter_round(k: int, responses: list[dict], params) -> tuple[list[dict], dict[str, Any]]:
    from selfspec.stages.filter_records import read_eval_questions
    from selfspec.stages.filter_records import run as filter_run

    p = params.filter_records
    kept, metrics = filter_run(responses, p, read_eval_questions(Path(p.evals_dir)))
    if not kept:
        dropped = metrics["dropped"]
        raise StageError(STAGE, f"round {k}: every record was dropped ({dropped}); nothing to train on")
    return kept, metrics


def train_round(k: int, records: list[dict], params, key: str, registry: dict[str, Any]):
    """train's code on round k's records, tracked as one MLflow run tagged with the round."""
    from selfspec.io import sha256_file
    from selfspec.loading import prepared_dir
    from selfspec.stages.train import run as train_run
    from selfspec.training.publish import Destination, publish, summary, training_run
    from selfspec.training.sources import TrainingData

    if params.train.num_processes > 1:
        log.warning("%s: round %d trains in this one process (train.num_processes is for `train`)", STAGE, k)
    previous = round_adapter_dir(k - 1)
    sha = sha256_file(previous / "adapter_model.safetensors")
    generated_by = {"round": k - 1, "adapter": previous.as_posix(), "adapter_sha256": sha}
    tags = {"selfspec.round": str(k), "selfspec.previous_run_id": previous_run(k, registry),
            "selfspec.previous_adapter_sha256": sha, "selfspec.round_key": key}  # fmt: skip
    dest = Destination(
        STAGE, round_model_dir(k), metrics=None, registry=None, alias=round_name(k),
        run_name=f"{STAGE}/{round_name(k)}", tags=tags, provenance={"round": k, "generated_by": generated_by},
    )  # fmt: skip
    base_dir = prepared_dir(stage=STAGE)
    records_path = round_data_dir(k) / ROUND_FILES["records"]
    with training_run(params, dest) as tracked:
        result = train_run(records, params, base_dir, log_fn=tracked.log_fn)
        data = TrainingData(records, "records", [records_path], len(records))
        entry = publish(params, data, base_dir, result, tracked, dest)
    return entry, summary(result), generated_by


def run_round(k: int, params, key: str, registry: dict[str, Any]) -> tuple[dict, dict]:
    """Round k from scratch (its folders are cleared first): its registry entry and metrics."""
    from selfspec.io import write_json, write_jsonl

    started = time.perf_counter()
    for folder in (round_data_dir(k), round_model_dir(k)):
        shutil.rmtree(folder, ignore_errors=True)
    responses, gen_metrics, stores = generate(k, params)
    write_jsonl(round_data_dir(k) / ROUND_FILES["responses"], responses)
    kept, filter_metrics = filter_round(k, responses, params)
    write_jsonl(round_data_dir(k) / ROUND_FILES["records"], kept)
    entry, train_metrics, generated_by = train_round(k, kept, params, key, registry)
    write_json(round_model_dir(k) / ROUND_FILE, {"round": k, "key": key, "generated_by": generated_by})
    for store in stores:  # only once the round is safely in place
        store.remove()
    shutil.rmtree(MERGED_DIR / round_name(k), ignore_errors=True)
    metrics = {"gen_responses": gen_metrics, "filter_records": filter_metrics, "train": train_metrics}
    return entry, metrics | {"reused": False, "seconds": round(time.perf_counter() - started, 2)}


def manifests(n: int) -> None:
    """data/rounds/rounds.json and models/rounds/rounds.json: the rounds each folder holds."""
    from selfspec.io import read_json, read_jsonl, write_json
    from selfspec.runtime import data_dir, model_dir

    names = [round_name(k) for k in range(2, n + 1)]
    rounds = {name: read_json(model_dir(STAGE) / name / ROUND_FILE) for name in names}
    write_json(model_dir(STAGE) / MANIFEST, {"n": n, "rounds": rounds})
    counts = {name: len(read_jsonl(data_dir(STAGE) / name / ROUND_FILES["records"])) for name in names}
    write_json(data_dir(STAGE) / MANIFEST, {"n": n, "records": counts})


def one_round(k: int, params, code: str, registry: dict[str, Any], old: dict[str, Any]) -> tuple[dict, dict]:
    """Round k's registry entry and metrics: kept when it finished with the same key, else run."""
    key, name = round_key(k, params, code), round_name(k)
    if finished(k, key, registry):
        log.info("%s: %s is unchanged (key %s): kept", STAGE, name, key)
        return registry[name], {**old.get(name, {}), "reused": True}
    log.info("%s: %s: base + round %d's adapter regenerates the responses", STAGE, name, k - 1)
    return run_round(k, params, key, registry)


def main(params) -> None:
    from selfspec.io import ensure_writable, read_json, write_json
    from selfspec.runtime import metrics_path

    n = params.rounds.n
    ensure_writable(REGISTRY, metrics_path(STAGE))
    prune(n)
    names = {round_name(k) for k in range(2, n + 1)}
    registry = {k: v for k, v in (read_json(REGISTRY) if REGISTRY.is_file() else {}).items() if k in names}
    old = read_json(metrics_path(STAGE)) if metrics_path(STAGE).is_file() else {}
    code, metrics = code_digest() if n > 1 else "", {"rounds": n}
    for k in range(2, n + 1):
        registry[round_name(k)], metrics[round_name(k)] = one_round(k, params, code, registry, old)
        write_json(REGISTRY, registry)  # a later round that is killed leaves this one's entry
    write_json(REGISTRY, registry)
    manifests(n)
    shutil.rmtree(MERGED_DIR, ignore_errors=True)
    write_json(metrics_path(STAGE), metrics)
