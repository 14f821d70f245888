"""Shared fixtures. Everything here is built locally: no network, no hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a hub, even by accident.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama folder (hidden 64, 2 layers, 512-token BPE), built once per session."""
    from tests.fixtures.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny Llama trained for a few seconds to write words and ``Task N:`` lines (the generation
    filters drop the untrained model's byte soup), built once per session."""
    from tests.fixtures.generation.trained_tiny import train_tiny

    return train_tiny(tiny_model_dir, tmp_path_factory.mktemp("trained-tiny"))


@pytest.fixture(scope="session")
def lora_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny model whose B matrices are non-zero, so outputs differ from the base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]),
    )
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    return out


@pytest.fixture
def in_tmp_repo(tmp_path, monkeypatch) -> Path:
    """Run the test inside an empty folder (stages write data/, models/, metrics/ relative to cwd)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")


@pytest.fixture(autouse=True)
def _isolated_mlflow_state():
    """MLflow keeps the tracking URI and active experiment in module globals *and* os.environ
    (``set_tracking_uri``/``set_experiment`` write both): without a reset, a test's client talks to
    the store an earlier test set, and subprocesses (``dvc repro``) inherit a stale experiment id."""
    saved = {var: os.environ.pop(var, None) for var in _MLFLOW_ENV}
    yield
    import sys

    if "mlflow" in sys.modules:
        import mlflow
        import mlflow.tracking.fluent as fluent

        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        fluent._active_experiment_id = None
    for var, value in saved.items():
        os.environ.pop(var, None)
        if value is not None:
            os.environ[var] = value


def post_when_up(url: str, body: dict, server, log: Path, tries: int, timeout: float):
    """POST ``body`` to a server that is still starting (``mlflow models serve``): retried every
    0.5 s while the connection is refused, up to ``tries`` times; fails with the server's log when
    it exits first. Returns the reply, or None if it never came up."""
    import time

    import httpx

    for _ in range(tries):
        try:
            return httpx.post(url, json=body, timeout=timeout)
        except httpx.TransportError:
            assert server.poll() is None, f"mlflow models serve exited:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
    return None
