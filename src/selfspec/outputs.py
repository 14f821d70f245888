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


def main_file(stage: str) -> Path:
    """``data/<stage>/<its main file>``, e.g. ``data/filter_records/records.jsonl``."""
    return data_dir(stage) / MAIN_FILE[stage]


def adapter_dir(stage: str = "train") -> Path:
    return model_dir(stage) / ADAPTER
