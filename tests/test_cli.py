"""The CLI lists every dvc.yaml stage, answers --help without importing heavy libraries."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import yaml

from selfspec.cli import STAGES, main
from selfspec.config import Params
from tests.conftest import REPO

# evaluate_base runs the same benchmark settings as evaluate, so both read the one `evaluate` section.
SHARED_SECTION = {"evaluate_base": "evaluate"}


def test_every_dvc_stage_is_a_cli_subcommand_and_a_params_section():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    sections = yaml.safe_load((REPO / "params.yaml").read_text())
    schema = {f.name for f in dataclasses.fields(Params)}
    assert list(stages) == list(STAGES)
    for name, stage in stages.items():
        assert stage["cmd"].split()[:2] == ["selfspec", name]
        assert f"src/selfspec/stages/{name}.py" in stage["deps"]
        section = SHARED_SECTION.get(name, name)
        assert section in sections and section in schema, f"{name}: no params section {section!r}"
        used = {str(key).split(".")[0] for key in stage["params"]}
        assert section in used, f"{name}: dvc.yaml does not make the stage depend on params {section!r}"
        outs = {out if isinstance(out, str) else next(iter(out)) for out in stage["outs"]}
        assert {f"data/{name}", f"models/{name}"} & outs, f"{name}: output folder"


def test_help_lists_stages_and_imports_nothing_heavy():
    code = (
        "import sys; from selfspec.cli import main\n"
        "try: main(['--help'])\nexcept SystemExit: pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'mlflow', 'peft', 'omegaconf') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for name in STAGES:
        assert name in out
    assert "HEAVY []" in out


def test_bad_params_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  lora_r: 0\n")
    assert main(["train", "--params", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "train.lora_r: must be > 0" in err and "Traceback" not in err
