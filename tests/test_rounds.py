"""Iterative self-specialization (stage ``rounds``): round k's responses come from base + round k-1's
adapter, each round is its own versioned folder and MLflow run, unchanged rounds are kept, and the
default (``rounds.n: 1``) does no round work at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from selfspec.io import read_json, read_jsonl, sha256_file
from tests.conftest import REPO
from tests.test_generation_integration import TINY, make_repo

TRAIN = [
    "train.max_steps=4",
    "train.batch_size=2",
    "train.max_length=192",
    "train.logging_steps=1",
    "train.learning_rate=0.01",  # 4 steps that move the tiny model: round 2 must answer differently
    "tracking.sample_records=2",
    "tracking.log_model=false",
]


def load(overrides=()):
    from selfspec.config import load_params

    return load_params("params.yaml", [*TINY, *TRAIN, *overrides])


# --- the default: no round work ------------------------------------------------------------------


def test_the_default_is_one_round_and_a_round_count_below_one_is_refused(tmp_path):
    from selfspec.config import load_params
    from selfspec.errors import ConfigError

    assert yaml.safe_load((REPO / "params.yaml").read_text())["rounds"] == {"n": 1}
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    with pytest.raises(ConfigError, match=r"-S rounds.n=0: rounds.n: must be >= 1"):
        load_params(tmp_path / "params.yaml", ["rounds.n=0"])


def test_one_round_loads_no_model_and_writes_empty_manifests(tmp_path):
    """No models/ at all: with rounds.n=1 the stage must not need one. Rounds left from an earlier
    rounds.n=3 (the outputs persist) are removed."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    for stale in ("data/rounds/round_2/records.jsonl", "models/rounds/round_3/round.json"):
        (tmp_path / stale).parent.mkdir(parents=True)
        (tmp_path / stale).write_text("{}\n")
    code = (
        "import sys; from selfspec.cli import main; rc = main(['rounds'])\n"
        "print('HEAVY', [m for m in ('torch', 'transformers', 'peft', 'mlflow') if m in sys.modules]); "
        "sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert read_json(tmp_path / "metrics/rounds.json") == {"rounds": 1}
    assert read_json(tmp_path / "registry/rounds.json") == {}
    assert read_json(tmp_path / "models/rounds/rounds.json") == {"n": 1, "rounds": {}}
    assert read_json(tmp_path / "data/rounds/rounds.json") == {"n": 1, "records": {}}
    assert (
        not (tmp_path / "data/rounds/round_2").exists() and not (tmp_path / "models/rounds/round_3").exists()
    )


def test_the_rounds_stage_reads_the_round_count_and_keeps_finished_rounds():
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["rounds"]
    assert "rounds" in stage["params"]
    assert {"models/train", "data/gen_inputs", "data/index", "models/prepare_model"} <= set(stage["deps"])
    outs = {next(iter(o)): o[next(iter(o))] for o in stage["outs"] + stage["metrics"]}
    assert set(outs) == {"data/rounds", "models/rounds", "registry/rounds.json", "metrics/rounds.json"}
    assert all(o["persist"] for o in outs.values())


def test_a_resume_key_names_the_merged_model():
    """Round 2's partial file and round 1's differ by the generator's model, base + adapter digest."""
    from selfspec.config import default_params
    from selfspec.generation.resume import partial_store

    class Described:
        def __init__(self, merged):
            self.merged = merged

        def describe(self):
            return {"backend": "fake", "model": "m"} | ({"merged": self.merged} if self.merged else {})

    params = default_params()
    plain = partial_store("gen_responses", params, Described(None), ["responses"], [])
    merged = {"adapter": "models/train/adapter", "adapter_sha256": "ab" * 32}
    a = partial_store("gen_responses", params, Described(merged), ["responses"], [], "rounds-round_2")
    other = Described(merged | {"adapter_sha256": "cd" * 32})
    b = partial_store("gen_responses", params, other, ["responses"], [], "rounds-round_2")
    assert plain.path.name.startswith("gen_responses-") and a.path.name.startswith("rounds-round_2-")
    assert len({plain.path, a.path, b.path}) == 3


# --- three rounds on the tiny model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory, trained_tiny):
    """Round 1 (the generation stages, then train) in-process, then ``rounds.n=3``; a sqlite MLflow store."""
    from selfspec.stages import (
        filter_records,
        gen_inputs,
        gen_instructions,
        gen_responses,
        index,
        rounds,
        train,
    )

    root = make_repo(tmp_path_factory.mktemp("rounds"), trained_tiny)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/store/mlflow.db")
        for stage in (index, gen_instructions, gen_inputs, gen_responses, filter_records, train):
            stage.main(load())
        rounds.main(load(["rounds.n=3"]))
    return root


def client_of(root: Path):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{root}/store/mlflow.db")


def test_round_k_is_generated_by_base_plus_round_k_minus_1s_adapter(project):
    metrics = read_json(project / "metrics/rounds.json")
    assert metrics["rounds"] == 3 and set(metrics) == {"rounds", "round_2", "round_3"}
    for k, previous in ((2, "models/train/adapter"), (3, "models/rounds/round_2/adapter")):
        merged = metrics[f"round_{k}"]["gen_responses"]["generator"]["merged"]
        sha = sha256_file(project / previous / "adapter_model.safetensors")
        assert merged == {"base": "models/prepare_model", "adapter": previous, "adapter_sha256": sha,
                          "dtype": "float32", "round": k - 1}  # fmt: skip
        prov = read_json(project / f"models/rounds/round_{k}/adapter/provenance.json")
        assert prov["round"] == k and prov["stage"] == "rounds"
        assert prov["generated_by"] == {"round": k - 1, "adapter": previous, "adapter_sha256": sha}
        assert prov["data"]["path"] == f"data/rounds/round_{k}/records.jsonl"
    assert not (project / "models/.merged").exists()  # scratch, removed after each round
    assert not list((project / "data/.partial").glob("*"))


def test_each_round_regenerates_the_same_instructions_and_trains_a_new_adapter(project):
    inputs = read_jsonl(project / "data/gen_inputs/inputs.jsonl")
    answers = {1: read_jsonl(project / "data/gen_responses/responses.jsonl")}
    for k in (2, 3):
        answers[k] = read_jsonl(project / f"data/rounds/round_{k}/responses.jsonl")
        kept = read_jsonl(project / f"data/rounds/round_{k}/records.jsonl")
        assert kept and {r["id"] for r in kept} <= {r["id"] for r in answers[k]}
    for k in (1, 2, 3):  # the same instructions and inputs, in the same order
        assert [(r["id"], r["instruction"], r["input"]) for r in answers[k]] == [
            (r["id"], r["instruction"], r["input"]) for r in inputs
        ]
    assert any(r["passages"] for r in answers[2])  # with retrieval
    assert [r["output"] for r in answers[2]] != [r["output"] for r in answers[1]]
    adapters = ("models/train/adapter", "models/rounds/round_2/adapter", "models/rounds/round_3/adapter")
    digests = {sha256_file(project / a / "adapter_model.safetensors") for a in adapters}
    assert len(digests) == 3


def test_each_round_is_an_mlflow_run_tagged_with_its_round_and_its_predecessor(project):
    client = client_of(project)
    registry = read_json(project / "registry/rounds.json")
    train_run = read_json(project / "registry/train.json")["run_id"]
    assert set(registry) == {"round_2", "round_3"}
    assert client.get_run(train_run).data.tags["selfspec.round"] == "1"
    rounds = ((2, train_run, "models/train/adapter"),
              (3, registry["round_2"]["run_id"], "models/rounds/round_2/adapter"))  # fmt: skip
    for k, previous_run, previous in rounds:
        entry = registry[f"round_{k}"]
        run = client.get_run(entry["run_id"])
        assert run.info.run_name == f"rounds/round_{k}" and run.info.status == "FINISHED"
        assert run.data.tags["selfspec.round"] == str(k)
        assert run.data.tags["selfspec.previous_run_id"] == previous_run
        assert run.data.tags["selfspec.previous_adapter_sha256"] == sha256_file(
            project / previous / "adapter_model.safetensors"
        )
        assert (
            run.data.tags["selfspec.round_key"]
            == read_json(project / f"models/rounds/round_{k}/round.json")["key"]
        )
        version = client.get_model_version_by_alias(entry["model_name"], f"round_{k}")
        assert str(version.version) == entry["version"] and version.run_id == entry["run_id"]
        assert version.tags["selfspec.round"] == str(k)
    candidate = client.get_model_version_by_alias("biomedical-expert", "candidate")
    assert candidate.run_id == train_run  # the rounds do not move train's alias


def _runs(root: Path) -> int:
    client = client_of(root)
    return len(client.search_runs([client.get_experiment_by_name("selfspec-biomedical").experiment_id]))


def test_unchanged_rounds_are_kept_and_a_lost_round_is_redone_identically(project):
    """Kill-safety: a round without its round.json (killed before it finished) is redone, from the
    same inputs to the same bytes; the rounds before it are kept, not run again."""
    from selfspec.stages import rounds

    before = {p: (project / p).read_bytes() for p in ("data/rounds/round_3/responses.jsonl",
              "data/rounds/round_3/records.jsonl", "models/rounds/round_3/adapter/adapter_model.safetensors",
              "models/rounds/round_2/adapter/adapter_model.safetensors")}  # fmt: skip
    runs = _runs(project)
    registry = read_json(project / "registry/rounds.json")
    (project / "models/rounds/round_3/round.json").unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project}/store/mlflow.db")
        rounds.main(load(["rounds.n=3"]))
        metrics = read_json(project / "metrics/rounds.json")
        assert metrics["round_2"]["reused"] is True and metrics["round_3"]["reused"] is False
        assert {p: (project / p).read_bytes() for p in before} == before
        assert _runs(project) == runs + 1  # round 3 only
        after = read_json(project / "registry/rounds.json")
        assert after["round_2"] == registry["round_2"] and after["round_3"] != registry["round_3"]

        rounds.main(load(["rounds.n=2"]))  # fewer rounds: round 3 goes, round 2 stays
        assert (
            not (project / "models/rounds/round_3").exists()
            and not (project / "data/rounds/round_3").exists()
        )
        assert set(read_json(project / "registry/rounds.json")) == {"round_2"}
        assert read_json(project / "metrics/rounds.json")["round_2"]["reused"] is True
        assert _runs(project) == runs + 1


# --- through DVC -----------------------------------------------------------------------------------


@pytest.mark.integration
def test_dvc_repro_runs_no_round_and_exp_run_with_three_rounds_runs_rounds_2_and_3(tmp_path, trained_tiny):
    """In a git copy of the repository with the tiny model: the default ``dvc repro`` writes only the
    empty manifests; ``dvc exp run -S rounds.n=3`` runs the rounds stage alone (nothing upstream),
    whose two rounds are versioned in dvc.lock; and a repro after it has nothing to do."""
    from tests.fixtures.evals.builders import sources_for_mirror
    from tests.fixtures.mirror import build_mirror
    from tests.test_pipeline import RAN, Project, project_files, set_params
    from tests.test_pipeline import TINY as PIPELINE

    root = tmp_path / "repo"
    for rel in project_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    mirror = build_mirror(tmp_path / "mirror")
    sources_for_mirror(REPO / "evals/sources.yaml", root / "evals/sources.yaml", mirror)
    tiny = {k: v for k, v in PIPELINE.items() if not k.startswith("evaluate.")}
    set_params(
        root / "params.yaml", {**tiny, "prepare_model.source": str(trained_tiny), "train.learning_rate": 0.01}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `selfspec`, `dvc`
    env |= {
        "PATH": path,
        "DVC_NO_ANALYTICS": "1",
        "SELFSPEC_DATA_MIRROR": str(mirror),
        "PYTHONPATH": str(REPO / "src"),
    }
    p = Project(root, env)
    p.git("init", "-q", "-b", "main")
    p.git("add", "-A")
    p.git("commit", "-qm", "tiny copy")

    first = set(RAN.findall(p.dvc("repro", "rounds")))
    assert "rounds" in first and "train" in first and not {"evaluate", "evaluate_base"} & first
    assert read_json(root / "metrics/rounds.json") == {"rounds": 1}
    assert not list((root / "models/rounds").glob("round_*"))
    p.git("add", "-A")
    p.git("commit", "-qm", "round 1")

    assert RAN.findall(p.dvc("exp", "run", "rounds", "-S", "rounds.n=3")) == ["rounds"]
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["rounds"]
    assert lock["params"]["params.yaml"]["rounds"] == {"n": 3}
    outs = {o["path"]: o for o in lock["outs"]}
    assert outs["models/rounds"]["nfiles"] > outs["data/rounds"]["nfiles"] >= 5  # 2 x 2 data files + manifest
    assert sorted(read_json(root / "models/rounds/rounds.json")["rounds"]) == ["round_2", "round_3"]
    assert RAN.findall(p.dvc("repro", "rounds")) == []


# --- the openai backend: the adapter loaded into a vLLM-like server ---------------------------------


class LoraServer(BaseHTTPRequestHandler):
    """vLLM's runtime LoRA API as its server answers it: ``/v1/load_lora_adapter`` (404 unless runtime
    loading is on; 400 for a name loaded before) and completions for the base or a loaded adapter."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))
        if self.path == "/v1/load_lora_adapter":
            if not self.server.runtime_lora:
                return self.reply(404, {"detail": "Not Found"})
            if body["lora_name"] in self.server.loaded:
                message = f"The lora adapter '{body['lora_name']}' has already been loaded."
                return self.reply(400, {"error": {"message": message}})
            self.server.loaded[body["lora_name"]] = body["lora_path"]
            return self.reply(200, "Success")
        if body["model"] not in {"base", *self.server.loaded}:
            return self.reply(404, {"error": {"message": f"model {body['model']!r} does not exist"}})
        choice = {"text": f"answer by {body['model']}", "finish_reason": "stop"}
        self.reply(200, {"choices": [choice], "usage": {"prompt_tokens": 3, "completion_tokens": 3}})

    def do_GET(self):
        self.reply(200, {"data": [{"id": "base"}]})

    def reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def lora_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), LoraServer)
    httpd.requests, httpd.loaded, httpd.runtime_lora = [], {}, True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.integration
def test_with_openai_the_server_loads_and_serves_the_previous_adapter(lora_server, lora_adapter, in_tmp_repo,
                                                                      monkeypatch):  # fmt: skip
    from selfspec.config import default_params
    from selfspec.errors import BackendError
    from selfspec.generation import Sampling
    from selfspec.stages.rounds import open_round_generator

    shutil.copytree(lora_adapter, in_tmp_repo / "models/train/adapter")
    monkeypatch.setenv("SELFSPEC_OPENAI_BASE_URL", f"http://127.0.0.1:{lora_server.server_address[1]}/v1")
    params = default_params(["generation.backend=openai"])
    sha = sha256_file(in_tmp_repo / "models/train/adapter/adapter_model.safetensors")
    name = f"selfspec-{sha[:12]}"

    generator = open_round_generator(2, params)
    assert lora_server.loaded == {name: str(in_tmp_repo / "models/train/adapter")}
    assert generator.describe()["model"] == name
    assert generator.describe()["merged"] == {
        "adapter": "models/train/adapter",
        "adapter_sha256": sha,
        "round": 1,
    }
    assert generator.generate(["Q?"], Sampling(8, 0.0), 1)[0].text == f"answer by {name}"
    assert open_round_generator(2, params).describe()["model"] == name  # a resumed round: loaded already

    lora_server.runtime_lora, lora_server.loaded = False, {}
    with pytest.raises(BackendError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"):
        open_round_generator(2, params)


@pytest.mark.integration
def test_a_round_killed_while_generating_resumes_to_the_same_bytes(project, tmp_path):
    """SIGKILL during round 2's generation, then the stage again: the saved batches are replayed (its
    partial file is keyed by the merged model) and the round's outputs are those of the run that was
    not killed."""
    import signal
    import time

    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True, ignore=shutil.ignore_patterns("store"))
    for folder in ("data/rounds", "models/rounds"):
        shutil.rmtree(copy / folder)
    (copy / "registry/rounds.json").unlink()
    cmd = [sys.executable, "-m", "selfspec.cli", "rounds"]
    cmd += [arg for o in [*TINY, *TRAIN, "rounds.n=2"] for arg in ("-S", o)]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{copy}/store/m.db",
    }
    proc = subprocess.Popen(cmd, cwd=copy, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        files = list((copy / "data/.partial").glob("rounds-round_2-*.jsonl"))
        if files and len(files[0].read_bytes().splitlines()) >= 3:  # the header and 2 batches
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (copy / "models/rounds/round_2/round.json").exists()
    assert (copy / "models/.merged/round_2/merged.json").is_file()  # kept for the resumed run

    subprocess.run(cmd, cwd=copy, env=env, check=True, capture_output=True)
    gen = read_json(copy / "metrics/rounds.json")["round_2"]["gen_responses"]
    uninterrupted = read_json(project / "metrics/rounds.json")["round_2"]["gen_responses"]
    assert gen["resumed_batches"] >= 2 and gen["batches"] == uninterrupted["batches"] > gen["resumed_batches"]
    outputs = [
        "data/rounds/round_2/responses.jsonl",
        "data/rounds/round_2/records.jsonl",
        "models/rounds/round_2/adapter/adapter_model.safetensors",
        "models/rounds/round_2/round.json",
    ]
    for rel in outputs:
        assert (copy / rel).read_bytes() == (project / rel).read_bytes(), rel
    assert not list((copy / "data/.partial").glob("*")) and not (copy / "models/.merged").exists()
