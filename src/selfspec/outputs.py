"""Where each stage writes, by one rule: stage name = output folder (``data/<stage>/``,
``models/<stage>/``, ``metrics/<stage>.json``; ``selfspec.runtime``), plus the one file in it that a
later stage reads. Stages find each other's outputs here instead of importing each other: an import
would make one stage's code a dependency of the next (and of its dvc.yaml deps).
"""

from __future__ import annotations

from pathlib import Path

from selfspec.runtime import data_dir, model_dir

# The file a downstream stage reads, by producing stage (tests check each stage module agrees).
MAIN_FILE = {
    "build_corpus": "passages.jsonl",
    "gen_instructions": "instructions.jsonl",
    "gen_inputs": "inputs.jsonl",
    "gen_responses": "responses.jsonl",
    "filter_records": "records.jsonl",
    "evaluate_base": "run.json",
}
ADAPTER = "adapter"  # models/train/adapter: the PEFT adapter folder
# Iterative self-specialization: the stage ``rounds`` writes round k (k >= 2) into a folder of its
# own outputs, ``data/rounds/round_<k>/`` and ``models/rounds/round_<k>/``; round 1 is ``train``.
ROUNDS = "rounds"
ROUND_FILES = {"responses": "responses.jsonl", "records": "records.jsonl"}  # in data/rounds/round_<k>/


def main_file(stage: str) -> Path:
    """``data/<stage>/<its main file>``, e.g. ``data/filter_records/records.jsonl``."""
    return data_dir(stage) / MAIN_FILE[stage]


def adapter_dir(stage: str = "train") -> Path:
    return model_dir(stage) / ADAPTER


def round_name(k: int) -> str:
    return f"round_{k}"


def round_data_dir(k: int) -> Path:
    """``data/rounds/round_<k>/``: round k's responses and filtered records."""
    return data_dir(ROUNDS) / round_name(k)


def round_model_dir(k: int) -> Path:
    """``models/rounds/round_<k>/``: round k's adapter and provenance."""
    return model_dir(ROUNDS) / round_name(k)


def round_adapter_dir(k: int) -> Path:
    """Round k's adapter: ``models/train/adapter`` for round 1, else ``models/rounds/round_<k>/adapter``."""
    return adapter_dir() if k == 1 else round_model_dir(k) / ADAPTER
