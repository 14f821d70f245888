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


@pytest.fixture
def in_tmp_repo(tmp_path, monkeypatch) -> Path:
    """Run the test inside an empty folder (stages write data/, models/, metrics/ relative to cwd)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
