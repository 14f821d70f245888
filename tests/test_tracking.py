"""MLflow helpers: where the store goes, experiment/model names, run tags from git and DVC."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from selfspec import tracking
from selfspec.config import default_params
from selfspec.errors import BackendError, Interrupted, SelfspecError

DVC_YAML = """stages:
  filter_records:
    cmd: selfspec filter_records
    outs: [data/filter_records]
  train:
    cmd: selfspec train
    deps: [src/selfspec/stages/train.py, models/prepare_model, data/filter_records]
"""
DVC_LOCK = """schema: '2.0'
stages:
  prepare_model:
    cmd: selfspec prepare_model
    outs:
    - path: models/prepare_model
      md5: 2222bbbb.dir
  filter_records:
    cmd: selfspec filter_records
    outs:
    - path: data/filter_records
      md5: 1111aaaa.dir
  train:
    cmd: selfspec train
    deps:
    - path: data/filter_records
      md5: 0000stale.dir
    - path: src/selfspec/stages/train.py
      md5: 3333stale
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for var in ("MLFLOW_TRACKING_URI", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def params(tmp_path):
    return default_params()


def test_default_store_is_sqlite_inside_the_repo_root_even_from_a_subfolder(project):
    assert tracking.tracking_uri() == f"sqlite:///{project}/mlflow/mlflow.db"
    assert tracking.artifact_location(tracking.tracking_uri()) == (project / "mlflow/artifacts").as_uri()


def test_env_uri_wins_and_servers_choose_their_own_artifact_root(project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert tracking.tracking_uri() == "http://mlflow.internal:5000"
    assert tracking.artifact_location("http://mlflow.internal:5000") is None
    assert tracking.artifact_location("sqlite:///rel/x.db") == (project / "sub/rel/artifacts").as_uri()


def test_queued_dvc_experiments_track_into_the_real_repo(tmp_path):
    inner = tmp_path / "repo/.dvc/tmp/exps/tmpabc123/src"
    assert tracking.repo_root(inner) == tmp_path / "repo"


def test_credentials_are_removed_from_a_uri():
    assert (
        tracking.redact_uri("https://bob:s3cret@mlflow.example.org:8443/x")
        == "https://mlflow.example.org:8443/x"
    )
    assert tracking.redact_uri("sqlite:////a/b.db") == "sqlite:////a/b.db"


def test_experiment_and_model_names_default_to_the_domain(tmp_path):
    params = default_params(["base.domain=cardiology"])
    assert tracking.experiment_name(params) == "selfspec-cardiology"
    assert tracking.registered_model_name(params) == "cardiology-expert"
    named = default_params(["tracking.experiment=sweep", "tracking.registered_model=cardio"])
    assert (tracking.experiment_name(named), tracking.registered_model_name(named)) == ("sweep", "cardio")


def test_dep_hashes_prefer_the_upstream_stages_current_outs(project):
    (project / "dvc.lock").write_text(DVC_LOCK)
    assert tracking.dvc_dep_hashes("train", project) == {
        "data/filter_records": "1111aaaa.dir",  # filter_records' out, not train's stale dep entry
        "models/prepare_model": "2222bbbb.dir",
    }, "code deps (train's own, previous-run entry) are left to the git tags"
    assert tracking.dvc_dep_hashes("evaluate", project) == {}


def test_run_tags_carry_git_state_dvc_experiment_and_data_hashes(project, params, monkeypatch):
    (project / "dvc.lock").write_text(DVC_LOCK)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "dvc.yaml"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=project, check=True)
    monkeypatch.setenv("DVC_EXP_NAME", "lively-lora")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "abc123")
    tags = tracking.run_tags(params)
    assert len(tags["git.commit"]) == 40 and tags["git.dirty"] == "false"
    assert tags["dvc.exp_name"] == "lively-lora" and tags["dvc.baseline_rev"] == "abc123"
    assert tags["dvc.md5.data/filter_records"] == "1111aaaa.dir" and tags["selfspec.stage"] == "train"
    (project / "dvc.yaml").write_text(DVC_YAML + "\n")
    assert tracking.run_tags(params)["git.dirty"] == "true"


def test_outside_git_the_commit_is_unknown(project, params):
    assert tracking.run_tags(params)["git.commit"] == "unknown"


def test_logged_params_are_flat_and_limited_to_the_stage_sections(params):
    logged = tracking.loggable_params(params)
    assert logged["train.lora_r"] == "8" and logged["train.target_modules"] == "['all-linear']"
    assert {key.split(".")[0] for key in logged} == {"base", "train", "tracking"}


def test_setup_creates_the_experiment_with_an_explicit_artifact_root(project, params):
    exp_id = tracking.setup(params)
    from mlflow import MlflowClient

    exp = MlflowClient(tracking.tracking_uri()).get_experiment(exp_id)
    assert (
        exp.name == "selfspec-biomedical" and exp.artifact_location == (project / "mlflow/artifacts").as_uri()
    )
    assert tracking.setup(params) == exp_id, "idempotent"
    assert not (project / "sub/mlruns").exists() and not (project / "mlruns").exists()


def test_the_experiment_opens_as_model_training_in_the_ui(project, params):
    from mlflow import MlflowClient

    client = MlflowClient(tracking.tracking_uri())
    exp_id = tracking.setup(params)
    assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == "custom_model_development"
    client.delete_experiment_tag(exp_id, "mlflow.experimentKind")  # a store made before the tag existed
    tracking.setup(params)
    assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_read_registry_says_what_is_missing(tmp_path):
    with pytest.raises(SelfspecError, match="not found; run the train stage first"):
        tracking.read_registry(tmp_path / "registry.json")
    (tmp_path / "registry.json").write_text(json.dumps({"run_id": "r", "model_name": "m"}))
    with pytest.raises(SelfspecError, match=r"missing keys \['experiment_id', 'tracking_uri', 'version'\]"):
        tracking.read_registry(tmp_path / "registry.json")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on return: nothing listens there


def test_an_unreachable_server_fails_at_once_naming_the_redacted_uri(project, params, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://bob:s3cret@127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(BackendError) as e:
        tracking.setup(params)
    assert time.monotonic() - started < 10, "one short probe, not MLflow's minutes of retries"
    assert f"MLflow tracking server http://127.0.0.1:{port} is unreachable" in str(e.value)
    assert "s3cret" not in str(e.value)


def test_a_server_that_is_not_mlflow_is_a_clear_error_not_a_traceback(project, params, monkeypatch):
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            self.send_error(404)

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://bob:s3cret@127.0.0.1:{port}")
        with pytest.raises(BackendError) as e:
            tracking.setup(params)
    finally:
        server.shutdown()
    assert str(e.value).startswith(f"MLflow store http://127.0.0.1:{port} refused the experiment set-up: ")
    assert "failed with error code 404" in str(e.value) and "s3cret" not in str(e.value)
    assert len(str(e.value).splitlines()) == 1


def test_a_sqlite_store_that_cannot_be_created_is_a_clear_error(project, params, monkeypatch):
    (project / "blocker").write_text("a file where the store's folder should go")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project}/blocker/mlflow.db")
    with pytest.raises(BackendError, match=rf"MLflow store .*: {project}/blocker: is a file"):
        tracking.setup(params)


def test_a_copied_store_is_refused_instead_of_writing_into_the_original(
    project, params, tmp_path_factory, monkeypatch
):
    tracking.setup(params)  # creates mlflow/mlflow.db with artifacts in <project>/mlflow/artifacts
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # mlflow.set_tracking_uri exports it; a new process has none
    copy = tmp_path_factory.mktemp("copy") / "checkout"
    shutil.copytree(project, copy)
    monkeypatch.chdir(copy / "sub")
    with pytest.raises(BackendError) as e:
        tracking.setup(params)
    message = str(e.value)
    assert f"MLflow store {copy}/mlflow/mlflow.db was copied or moved from another checkout" in message
    assert (project / "mlflow/artifacts").as_uri() in message and "MLFLOW_TRACKING_URI" in message
    monkeypatch.chdir(project)
    assert tracking.setup(params), "the original store is still fine"


def test_registry_json_names_the_default_store_relative_to_the_checkout(project, monkeypatch, tmp_path):
    assert tracking.recorded_uri(tracking.tracking_uri()) == "sqlite:///mlflow/mlflow.db"
    assert tracking.recorded_uri("https://bob:pw@mlflow.example.org") == "https://mlflow.example.org"
    entry = {"tracking_uri": "sqlite:///mlflow/mlflow.db", "experiment_id": "1", "run_id": "r",
             "model_name": "m", "version": "1"}  # fmt: skip
    (tmp_path / "registry.json").write_text(json.dumps(entry))
    assert tracking.read_registry(tmp_path / "registry.json")["tracking_uri"] == tracking.tracking_uri()


def test_a_tracked_run_ends_killed_on_sigterm_failed_on_error_finished_otherwise(project, params):
    from mlflow import MlflowClient

    tracking.setup(params)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as e:
        with tracking.tracked_run("train", {}) as killed:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # never reached: the handler raises at once
    assert e.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before, "the previous handler is back"
    with pytest.raises(ValueError):
        with tracking.tracked_run("train", {}) as failed:
            raise ValueError("boom")
    with tracking.tracked_run("train", {}) as finished:
        pass
    client = MlflowClient(tracking.tracking_uri())
    statuses = [client.get_run(r.info.run_id).info.status for r in (killed, failed, finished)]
    assert statuses == ["KILLED", "FAILED", "FINISHED"]
