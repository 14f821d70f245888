"""End to end through real ``dvc repro``: every stage of dvc.yaml on the tiny model, the fixture
mirror and a real MLflow store, in a copy of this repository that is its own git repo.

One module-scoped pipeline run is shared by the tests, in order: what the first repro leaves,
that a second one does nothing, which stages a params change re-runs, that ``-f`` reproduces
the same data hashes, DVC remote push/clone/pull (only the mirror is read again), and an experiment
sweep tracked in MLflow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.integration

STAGES = {
    "prepare_model",
    "build_corpus",
    "index",
    "prepare_evals",
    "gen_instructions",
    "gen_inputs",
    "gen_responses",
    "filter_records",
    "train",
    "evaluate_base",
    "evaluate",
    "mixture",  # no experts by default: an empty manifest
    "rounds",  # rounds.n: 1, the default: only its empty manifests (tests/test_rounds.py)
}
# Tiny everything: these runs test the pipeline's mechanics (the default run is measured apart).
TINY = {
    "base.device": "cpu",
    "base.dtype": "float32",
    "prepare_model.sha256": None,
    "prepare_evals.datasets": ["pubmedqa", "medmcqa"],  # medmcqa is not in the mirror: skipped
    "generation.batch_size": 4,
    "gen_instructions.n_instructions": 8,
    "gen_instructions.max_new_tokens": 24,
    "gen_instructions.max_prompts": 40,
    "gen_instructions.task_verbs": [],
    "gen_instructions.min_words": 1,
    "gen_inputs.max_new_tokens": 24,
    "gen_inputs.min_words": 1,
    "gen_responses.max_new_tokens": 24,
    "gen_responses.n_demos": 2,
    "gen_responses.passage_max_words": 20,
    "gen_responses.demo_max_words": 20,
    "filter_records.truncated": "keep",
    "filter_records.max_repeat_ratio": 1.0,
    "filter_records.min_support": 0.0,  # the tiny model's words are noise: no grounding filter
    "filter_records.check_labels": False,
    "train.max_steps": 3,
    "train.batch_size": 2,
    "train.max_length": 256,
    "train.logging_steps": 1,
    "tracking.sample_records": 2,
    "evaluate.tasks": ["pubmedqa"],
    "evaluate.primary_task": "pubmedqa",
    "evaluate.primary_metric": "acc_norm",
    "evaluate.limit": 4,
    "evaluate.batch_size": 4,
    "evaluate.margin": -1.0,  # trivially met (promotes); gate-margin below sets one no result can meet
}
SECRET = "sk-e2e-not-a-real-key-5f3a"  # in the environment of every stage: must never be logged
RAN = re.compile(r"Running stage '(\w+)'")


def set_params(path: Path, values: dict) -> None:
    doc = yaml.safe_load(path.read_text())
    for dotted, value in values.items():
        section, key = dotted.split(".")
        doc[section][key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def lock_md5(repo: Path) -> dict[str, str]:
    """Every out's md5 in dvc.lock, by path."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for s in lock.values() for o in s.get("outs", [])}


# What a checkout holds besides the project's files (used when the source tree is not a git repo).
NOT_PROJECT = {
    ".git",
    ".venv",
    "data",
    "models",
    "mlflow",
    "mlruns",
    "metrics",
    "registry",
    "reports",
    "plots",
    "tmp",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "cache",
}


def project_files() -> list[str]:
    """The files a clone of this repository has: git's list, or the tree without run outputs."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [
            str(p.relative_to(REPO))
            for p in REPO.rglob("*")
            if not NOT_PROJECT & set(p.relative_to(REPO).parts)
            and not p.name.endswith(".egg-info")
            and ".egg-info" not in str(p)
        ]
    return [f for f in files if (REPO / f).is_file()]


class Project:
    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env = root, env

    def run(self, *cmd: str, cwd: Path | None = None, check: bool = True) -> str:
        out = subprocess.run(
            cmd, cwd=cwd or self.root, env=self.env, capture_output=True, text=True, timeout=900
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
            )
        return out.stdout + out.stderr

    def dvc(self, *args: str, cwd: Path | None = None) -> str:
        return self.run(sys.executable, "-m", "dvc", *args, cwd=cwd)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return self.run("git", "-c", "user.name=t", "-c", "user.email=t@t", *args, cwd=cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory, trained_tiny) -> Project:
    """A copy of the repository (what git would clone), tiny params, the fixture mirror."""
    from tests.fixtures.evals.builders import sources_for_mirror
    from tests.fixtures.mirror import build_mirror

    tmp = tmp_path_factory.mktemp("e2e")
    root = tmp / "repo"
    for rel in project_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    mirror = build_mirror(tmp / "mirror")
    sources_for_mirror(REPO / "evals/sources.yaml", root / "evals/sources.yaml", mirror)
    set_params(root / "params.yaml", {**TINY, "prepare_model.source": str(trained_tiny)})

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # `selfspec`
            "SELFSPEC_DATA_MIRROR": str(mirror),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OPENAI_API_KEY": SECRET,
            "ELASTICSEARCH_API_KEY": SECRET,
            "HF_TOKEN": SECRET,
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        }
    )
    p = Project(root, env)
    p.git("init", "-q", "-b", "main")
    p.git("add", "-A")
    p.git("commit", "-qm", "clone of selfspec with tiny params")
    p.first_repro = p.dvc("repro")
    p.git("add", "-A")  # dvc.lock; outputs are git-ignored by DVC
    p.git("commit", "-qm", "dvc repro")
    return p


def mlflow_client(project: Project):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{project.root / 'mlflow/mlflow.db'}")


def test_first_repro_runs_every_stage_and_tracks_the_run(project):
    assert set(RAN.findall(project.first_repro)) == STAGES
    root = project.root
    for out in lock_md5(root):
        assert (root / out).exists(), out
    records = [
        json.loads(line) for line in (root / "data/filter_records/records.jsonl").read_text().splitlines()
    ]
    assert records and all(r["instruction"] and r["output"] for r in records)
    assert any(r["passages"] for r in records), "responses are grounded in retrieved passages"

    evaluation = json.loads((root / "metrics/evaluate.json").read_text())
    assert set(evaluation["pubmedqa"]["acc"]) >= {"base", "specialized", "delta"}
    assert evaluation["gate"]["promoted"] is True and evaluation["gate"]["margin"] == -1.0

    registry = json.loads((root / "registry/train.json").read_text())
    client = mlflow_client(project)
    run = client.get_run(registry["run_id"])
    commit = project.git("rev-parse", "HEAD~1").strip()  # the repro ran on the first commit
    assert run.data.tags["git.commit"] == commit
    assert run.data.tags["dvc.md5.data/filter_records"] == lock_md5(root)["data/filter_records"]
    assert run.data.params["train.max_steps"] == "3"
    logged = [*run.data.params.values(), *run.data.tags.values()]
    assert not any(SECRET in v for v in logged), "secrets from the environment never reach MLflow"
    assert "train/loss" in run.data.metrics
    mv = client.get_model_version_by_alias(registry["model_name"], "champion")
    assert str(mv.version) == str(registry["version"])
    assert (root / "models/train/adapter/adapter_model.safetensors").is_file()
    assert not list((root / "models/train/adapter").glob("*.bin"))


def test_report_on_the_real_outputs(project):
    out = project.run("selfspec", "report")
    assert "report.html" in out
    md = (project.root / "reports/report.md").read_text()
    assert "| pubmedqa | acc |" in md and "champion" in md
    html = (project.root / "reports/report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2, "training curve and comparison chart inlined"
    registry = json.loads((project.root / "registry/train.json").read_text())
    artifacts = [a.path for a in mlflow_client(project).list_artifacts(registry["run_id"], "report")]
    assert artifacts == ["report/report.html", "report/report.md"]


def test_second_repro_does_nothing(project):
    out = project.dvc("repro")
    assert RAN.findall(out) == [] and "up to date" in out
    assert "changed" not in project.dvc("status")


@pytest.mark.parametrize(
    "change, expected, promoted",
    [
        (
            {"gen_responses.max_new_tokens": 16},
            {"gen_responses", "filter_records", "train", "evaluate", "rounds"},
            True,
        ),
        # the gate only (the base model is not evaluated again); an accuracy gain never exceeds 1.0
        ({"evaluate.margin": 1.0}, {"evaluate"}, False),
    ],
    ids=["gen_responses", "gate-margin"],
)
def test_a_params_change_reruns_only_what_depends_on_it(project, change, expected, promoted):
    """(A ``train.*`` change runs train + evaluate: see the experiment sweep below.) The gate
    promotes under the trivially met margin and refuses, removing ``champion``, under one never met."""
    set_params(project.root / "params.yaml", change)
    try:
        assert set(RAN.findall(project.dvc("repro"))) == expected
        gate = json.loads((project.root / "metrics/evaluate.json").read_text())["gate"]
        assert gate["promoted"] is promoted and gate["margin"] == change.get("evaluate.margin", -1.0)
        registry = json.loads((project.root / "registry/train.json").read_text())
        aliases = (
            mlflow_client(project).get_model_version(registry["model_name"], registry["version"]).aliases
        )
        assert ("champion" in aliases) is promoted
    finally:  # back to the committed params and outputs (from the DVC cache)
        project.git("checkout", "params.yaml", "dvc.lock")
        project.dvc("checkout")
    assert "up to date" in project.dvc("status")


def test_forced_repro_gives_the_same_data_hashes(project):
    before = lock_md5(project.root)
    out = project.dvc("repro", "-f")
    assert set(RAN.findall(out)) == STAGES
    after = lock_md5(project.root)
    # every output reproduces byte for byte, the adapter folder included; only the pointer to the new
    # MLflow run (registry/train.json, its own output) is new by design
    outputs = [p for p in before if p != "registry/train.json" and not p.startswith("metrics/")]  # timings
    assert {"models/prepare_model", "models/train"} <= set(outputs) and len(outputs) >= 11
    assert {p: after[p] for p in outputs} == {p: before[p] for p in outputs}
    assert after["registry/train.json"] != before["registry/train.json"]
    project.git("checkout", "dvc.lock")
    project.dvc("checkout")


def test_remote_push_then_clone_pull_only_rereads_the_mirror(project, tmp_path):
    """data/external/<stage> (links to the files read from the mirror, not cached: corpora/README.md)
    is not pulled; the two stages that read the mirror read this clone's copy once, and as their
    outputs hash the same, nothing below them runs."""
    remote = tmp_path / "remote"
    project.dvc("remote", "add", "-d", "local", str(remote))
    project.git("commit", "-qam", "dvc remote")
    project.dvc("push")
    clone = tmp_path / "clone"
    project.git("clone", "-q", str(project.root), str(clone))
    project.dvc("pull", cwd=clone)
    for out in lock_md5(clone):
        assert (clone / out).exists() != out.startswith("data/external/"), out
    out = project.dvc("repro", cwd=clone)
    assert set(RAN.findall(out)) == {"build_corpus", "prepare_evals"}
    data = [p for p in lock_md5(project.root) if p.startswith("data/")]
    assert {p: lock_md5(clone)[p] for p in data} == {p: lock_md5(project.root)[p] for p in data}
    assert "up to date" in project.dvc("status", cwd=clone)


def test_experiment_sweep_is_tracked_side_by_side(project):
    names = {"lr-low": "0.0001", "lr-high": "0.001"}
    for name, lr in names.items():
        out = project.dvc("exp", "run", "-n", name, "-S", f"train.learning_rate={lr}")
        assert set(RAN.findall(out)) == {"train", "evaluate", "rounds"}
    shown = json.loads(project.dvc("exp", "show", "--json"))
    exp_names = {e["name"] for rev in shown for e in (rev.get("experiments") or []) for e in e["revs"]}
    assert set(names) <= exp_names

    client = mlflow_client(project)
    exp = client.get_experiment_by_name("selfspec-biomedical")
    for name, lr in names.items():
        runs = client.search_runs([exp.experiment_id], f"tags.`dvc.exp_name` = '{name}'")
        stages = sorted(r.data.tags["selfspec.stage"] for r in runs)
        assert "train" in stages, (name, stages)
        train_run = next(r for r in runs if r.data.tags["selfspec.stage"] == "train")
        assert train_run.data.params["train.learning_rate"] == lr
        assert len(train_run.data.tags["git.commit"]) == 40
