"""Stage train end to end (``main``) on the tiny Llama with a real sqlite MLflow store: outputs under
models/train/, the run's params/metrics/artifacts/tags, the registered version with alias
``candidate``, loading it by ``models:/NAME@candidate`` and serving it with ``mlflow models serve``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfspec.io import md5_file, read_json
from tests.conftest import REPO, post_when_up

pytestmark = pytest.mark.integration

OVERRIDES = [
    "train.max_steps=4",
    "train.logging_steps=1",
    "train.max_length=192",
    "tracking.sample_records=5",
]


def make_project(root: Path, tiny_model_dir: Path) -> Path:
    """A prepared base, the fixture records and params.yaml: what `selfspec train` needs."""
    shutil.copytree(tiny_model_dir, root / "models/prepare_model")
    prov = {"source": "test:tiny-llama", "revision": None, "sha256": "ab" * 32}
    (root / "models/prepare_model/provenance.json").write_text(json.dumps(prov))
    (root / "data/filter_records").mkdir(parents=True)
    shutil.copy(REPO / "tests/fixtures/train/records.jsonl", root / "data/filter_records/records.jsonl")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


@pytest.fixture(scope="module")
def repo(tiny_model_dir, tmp_path_factory):
    """A project folder with a prepared base, fixture records, and a finished `train` stage."""
    from selfspec.config import load_params
    from selfspec.stages import train

    root = make_project(tmp_path_factory.mktemp("repo"), tiny_model_dir)
    uri = f"sqlite:///{root}/store/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("DVC_EXP_NAME", "exp-tiny")
        train.main(load_params("params.yaml", OVERRIDES))
    return root, uri


@pytest.fixture(scope="module")
def run(repo):
    from mlflow import MlflowClient

    root, uri = repo
    registry = read_json(root / "registry/train.json")
    client = MlflowClient(uri)
    return client, client.get_run(registry["run_id"]), registry


def test_adapter_provenance_and_metrics_are_written(repo):
    from selfspec.deploy import verify_adapter

    root, _ = repo
    adapter = root / "models/train/adapter"
    sums = verify_adapter(adapter)  # safetensors only, checksums match
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "provenance.json"} <= set(
        sums
    )
    prov = read_json(root / "models/train/provenance.json")
    assert prov["base_model"]["source"] == "test:tiny-llama" and prov["base_model"]["sha256"] == "ab" * 32
    assert prov["data"]["md5"] == md5_file(root / "data/filter_records/records.jsonl")
    assert prov["params"]["train"]["lora_r"] == 8 and prov["prompt_template"]["name"] == "alpaca"
    assert "### Response:" in prov["prompt_template"]["text"]
    # the commit varies with every commit, so it lives beside the adapter folder, not in it
    assert "git.commit" not in prov and "git.commit" in read_json(root / "registry/train.json")
    metrics = read_json(root / "metrics/train.json")
    assert metrics["steps"] == 4 and metrics["n_records"] == 12 and metrics["trainable_params"] > 0
    assert metrics["tokens_per_s"] > 0 and metrics["peak_rss_mb"] > 0 and metrics["final_loss"] > 0
    assert not (root / "mlruns").exists(), "the store goes where the URI says, never ./mlruns"


def test_run_has_params_step_metrics_artifacts_and_tags(run):
    client, r, registry = run
    assert r.info.status == "FINISHED" and r.info.run_name == "train"
    assert r.data.params["train.lora_r"] == "8" and r.data.params["train.max_steps"] == "4"
    assert r.data.params["base.domain"] == "biomedical" and r.data.params["resolved.seed"] == "42"
    losses = client.get_metric_history(r.info.run_id, "train/loss")
    assert [m.step for m in losses] == [1, 2, 3, 4]
    for name in ("train/learning_rate", "train/tokens_per_s", "train/peak_rss_mb"):
        assert len(client.get_metric_history(r.info.run_id, name)) == 4
    assert r.data.metrics["final/steps"] == 4
    tags = r.data.tags
    assert tags["selfspec.stage"] == "train" and tags["dvc.exp_name"] == "exp-tiny" and "git.commit" in tags
    top = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert {"adapter", "data", "params.yaml"} <= top
    data = {a.path for a in client.list_artifacts(r.info.run_id, "data")}
    assert {"data/data_stats.json", "data/train_sample.jsonl", "data/history.json"} <= data
    adapter = {a.path for a in client.list_artifacts(r.info.run_id, "adapter")}
    assert {
        "adapter/adapter_model.safetensors",
        "adapter/checksums.json",
        "adapter/provenance.json",
    } <= adapter


def test_registered_version_has_alias_candidate_and_loads_by_alias(run, repo):
    import mlflow

    client, r, registry = run
    _, uri = repo
    assert registry["model_name"] == "biomedical-expert" and registry["alias"] == "candidate"
    assert registry["tracking_uri"] == uri and registry["experiment_id"] == r.info.experiment_id
    mv = client.get_model_version_by_alias("biomedical-expert", "candidate")
    assert str(mv.version) == registry["version"] and mv.run_id == r.info.run_id
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/biomedical-expert@candidate")
    out = model.predict(["Is metformin first-line for type 2 diabetes?"], params={"max_new_tokens": 4})
    assert isinstance(out, list) and len(out) == 1 and isinstance(out[0], str)


def test_registered_version_holds_the_digest_of_every_adapter_file(run, repo):
    from selfspec.deploy import DIGEST_TAG, folder_digests

    client, r, registry = run
    root, _ = repo
    tags = client.get_model_version(registry["model_name"], registry["version"]).tags
    recorded = {k.removeprefix(DIGEST_TAG): v for k, v in tags.items() if k.startswith(DIGEST_TAG)}
    assert recorded == folder_digests(root / "models/train/adapter")
    assert {"adapter_model.safetensors", "adapter_config.json", "checksums.json"} <= set(recorded)


def test_sigterm_during_training_ends_the_run_killed(tiny_model_dir, tmp_path):
    """A real `selfspec train` is sent SIGTERM mid-training: its MLflow run ends KILLED, not RUNNING."""
    from mlflow import MlflowClient

    root = make_project(tmp_path / "repo", tiny_model_dir)
    uri = f"sqlite:///{root}/store/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "selfspec.cli", "train", "-S", "train.max_steps=100000", "-S",
           "train.logging_steps=1"]  # fmt: skip
    log = root / "train.log"  # a file, not a pipe: a full pipe would block the child
    # create the store's tables first: the polling client and the child would otherwise both run
    # MLflow's schema migrations on a new sqlite file at once, and the loser fails (seen under load)
    (root / "store").mkdir(exist_ok=True)
    client, run_id = MlflowClient(uri), None
    client.search_experiments()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and run_id is None:
            time.sleep(1)
            run_id = next((r.info.run_id for r in _runs(client) if "train/loss" in r.data.metrics), None)
        assert run_id, f"training never logged a step:\n{log.read_text()[-3000:]}"
        assert client.get_run(run_id).info.status == "RUNNING"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in log.read_text()
    assert client.get_run(run_id).info.status == "KILLED"
    assert not (root / "registry/train.json").exists(), "nothing registered for a killed run"


def _runs(client):
    from mlflow.exceptions import MlflowException

    try:
        exp = client.get_experiment_by_name("selfspec-biomedical")
        return client.search_runs([exp.experiment_id]) if exp else []
    except MlflowException:  # the child is still creating the store's tables
        return []


def test_deployment_pull_gets_the_same_adapter(repo, tmp_path):
    from selfspec.deploy import parse_ref, pull

    root, uri = repo
    pulled = pull(parse_ref("biomedical-expert@candidate"), tmp_path / "a", uri)
    src = root / "models/train/adapter/adapter_model.safetensors"
    assert (pulled.dest / "adapter_model.safetensors").read_bytes() == src.read_bytes()
    assert pulled.provenance["base_model"]["source"] == "test:tiny-llama"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_offline(repo):

    root, uri = repo
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin), "models", "serve", "-m", "models:/biomedical-expert@candidate",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    # mlflow execs `uvicorn` through the shell: the venv's bin must be on PATH even when not activated
    path = f"{mlflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": path}
    log = root / "serve.log"
    server = subprocess.Popen(cmd, cwd=root, env=env, start_new_session=True,
                              stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
    try:
        body = {"inputs": ["What does aspirin inhibit?"], "params": {"max_new_tokens": 5}}
        reply = post_when_up(f"http://127.0.0.1:{port}/invocations", body, server, log, 120, 30)
        assert reply is not None and reply.status_code == 200, reply and reply.text
        predictions = reply.json()["predictions"]
        assert len(predictions) == 1 and isinstance(predictions[0], str)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server's workers share its process group
            server.wait(timeout=30)
