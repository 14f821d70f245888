"""Mixture of self-specialized experts: the router, the ``mixture`` stage, the composite in the registry,
pulling it whole, serving it routed (pyfunc), and the merged-adapter baseline.

Two experts over the tiny random Llama: ``clinical`` (the conftest LoRA, a local folder) and
``molecular`` (another random LoRA, registered as ``molecular-expert/1``). Their records
(tests/fixtures/mixture) use disjoint vocabularies, so a linear router on the frozen base's features
can separate them and random routing cannot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selfspec.cli import main as cli
from tests.conftest import REPO, post_when_up

pytestmark = pytest.mark.integration

FIXTURES = REPO / "tests/fixtures/mixture"
CLINICAL = ["Describe the symptoms reported by the patient.", "Recommend a follow-up visit for the clinic."]
MOLECULAR = [
    "Identify the protein encoded by the BRCA1 gene.",
    "Extract the binding partner of the kinase domain.",
]


def random_adapter(base_dir: Path, dest: Path, seed: int, r: int = 4) -> Path:
    """A LoRA adapter with non-zero B matrices (the same modules as conftest's ``lora_adapter``)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj", "down_proj"]),
    )
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(dest)
    return dest


def register_expert(store: Path, adapter: Path, name: str) -> None:
    """An expert as ``train`` registers it: a run with ``adapter/``, a version with digest tags."""
    from mlflow import MlflowClient

    from selfspec.deploy import record_digests

    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    exp = client.create_experiment("experts", artifact_location=(store / "artifacts").as_uri())
    run = client.create_run(exp)
    client.log_artifacts(run.info.run_id, str(adapter), artifact_path="adapter")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{run.info.run_id}/adapter", run_id=run.info.run_id)
    record_digests(client, name, mv.version, adapter)


def write_params(root: Path, experts: list[dict], tracking: dict | None = None, **mixture) -> Path:
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["base"].update(device="cpu", dtype="float32")
    params["tracking"].update(tracking or {})
    params["mixture"].update(experts=experts, **mixture)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root / "params.yaml"


@pytest.fixture(scope="module")
def molecular_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    return random_adapter(tiny_model_dir, tmp_path_factory.mktemp("molecular"), seed=2)


@pytest.fixture(scope="module")
def project(tiny_model_dir, lora_adapter, molecular_adapter, tmp_path_factory):
    """A project with a prepared base, the two experts' records, ``molecular-expert/1`` in the local
    store, and a finished ``selfspec mixture`` (ties merge on)."""
    root = tmp_path_factory.mktemp("mixture-project")
    shutil.copytree(tiny_model_dir, root / "models/prepare_model")
    shutil.copytree(FIXTURES, root / "experts")
    register_expert(root / "mlflow", molecular_adapter, "molecular-expert")
    experts = [
        {"name": "clinical", "adapter": str(lora_adapter), "records": "experts/clinical.jsonl"},
        {"name": "molecular", "adapter": "molecular-expert/1", "records": "experts/molecular.jsonl"},
    ]
    write_params(root, experts, merge="ties")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert cli(["mixture"]) == 0
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def store(project) -> str:
    import mlflow

    uri = f"sqlite:///{project}/mlflow/mlflow.db"
    mlflow.set_tracking_uri(uri)
    return uri


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- the router ----------------------------------------------------------------------------------


def clusters(seed: int, n: int = 40, hidden: int = 16):
    """Two Gaussian clusters in ``hidden`` dimensions, separated along the first axis."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * n, hidden, generator=gen)
    x[n:, 0] += 6.0
    return x, [0] * n + [1] * n


def test_router_training_is_seeded_and_its_saved_form_routes_the_same(tmp_path):
    from selfspec.mixture.router import load_router, train_router

    feats, labels = clusters(0)
    hp = {"epochs": 100, "learning_rate": 0.05, "weight_decay": 0.0, "seed": 3}
    a = train_router(feats, labels, ["x", "y"], 64, hp)
    b = train_router(feats, labels, ["x", "y"], 64, hp)
    c = train_router(feats, labels, ["x", "y"], 64, {**hp, "seed": 4})
    assert a.weight.equal(b.weight) and a.bias.equal(b.bias), "same features and seed: same router"
    assert not a.weight.equal(c.weight), "the seed draws the initial weights"
    assert [name for name, _ in a.route(feats)] == ["x"] * 40 + ["y"] * 40
    folder = a.save(tmp_path / "router")
    assert sorted(p.name for p in folder.iterdir()) == ["router.json", "router.safetensors"], "no pickle"
    assert load_router(folder).route(feats) == a.route(feats)
    assert json.loads((folder / "router.json").read_text())["experts"] == ["x", "y"]


def test_held_out_split_takes_the_share_of_every_expert():
    from selfspec.mixture.router import holdout_split

    train, held = holdout_split([10, 4], 0.2, seed=1)
    assert sorted(train + held) == list(range(14))
    assert len([i for i in held if i < 10]) == 2 and len([i for i in held if i >= 10]) == 1
    assert holdout_split([10, 4], 0.2, seed=1) == (train, held)
    assert holdout_split([10, 4], 0.0, seed=1) == (list(range(14)), [])


def test_routing_scores_compare_the_router_with_random_routing():
    from selfspec.mixture.router import routing_scores

    truth = ["a"] * 6 + ["b"] * 2
    chosen = ["a"] * 6 + ["a", "b"]
    s = routing_scores(chosen, truth, ["a", "b"], seed=0)
    assert s["accuracy"] == 7 / 8 and s["accuracy/a"] == 1.0 and s["accuracy/b"] == 0.5
    assert s["chance"] == 0.5 and s["majority_accuracy"] == 6 / 8 and s["n_holdout"] == 8
    assert s == routing_scores(chosen, truth, ["a", "b"], seed=0), "the random draw is seeded"


def test_the_stage_router_beats_random_routing_on_separable_experts(project):
    metrics = json.loads((project / "metrics/mixture.json").read_text())
    assert metrics["n_experts"] == 2 and metrics["router/n_holdout"] == 10  # 20% of 24 records, each
    assert metrics["router/accuracy"] == 1.0
    assert metrics["router/random_accuracy"] <= 0.7 and metrics["router/chance"] == 0.5
    rows = read_jsonl(project / "data/mixture/holdout_routing.jsonl")
    assert len(rows) == 10 and {r["expert"] for r in rows} == {"clinical", "molecular"}
    assert all(r["chosen"] == r["expert"] and r["probability"] > 0.5 for r in rows), "each decision logged"


def test_the_stage_writes_router_experts_merge_and_a_manifest_naming_their_origin(project, lora_adapter):
    from selfspec.deploy import folder_digests, verify_mixture

    out = project / "models/mixture"
    manifest = json.loads((out / "mixture.json").read_text())
    clinical, molecular = manifest["experts"]
    assert (clinical["name"], clinical["source"], clinical["path"]) == (
        "clinical", "local", lora_adapter.resolve().as_posix()
    )  # fmt: skip
    assert (molecular["source"], molecular["registered_model"], molecular["version"]) == (
        "molecular-expert/1", "molecular-expert", "1"
    )  # fmt: skip
    assert clinical["sha256"] == folder_digests(lora_adapter)
    assert clinical["records"]["n"] == 24 and manifest["template"] == "alpaca"
    assert manifest["merged"] == "merged" and (out / "merged/adapter_model.safetensors").is_file()
    verify_mixture(out)  # its own checksums.json covers every file


# --- registry, pull -----------------------------------------------------------------------------


def test_the_composite_version_names_each_experts_version_and_digest(project, store, lora_adapter):
    from mlflow import MlflowClient

    from selfspec.deploy import folder_digests, registry_digests

    client = MlflowClient(store)
    mv = client.get_model_version_by_alias("biomedical-mixture", "candidate")
    entry = json.loads((project / "registry/mixture.json").read_text())
    assert (entry["model_name"], entry["version"], str(mv.version)) == ("biomedical-mixture", "1", "1")
    tags = mv.tags
    expert_sha = folder_digests(lora_adapter)["adapter_model.safetensors"]
    assert tags["selfspec.expert.molecular"] == "molecular-expert/1"
    assert tags["selfspec.expert.clinical"] == f"local:{lora_adapter.resolve().as_posix()}"
    assert tags["selfspec.expert.clinical.sha256"] == expert_sha
    assert tags["selfspec.artifact"] == "mixture" and tags["selfspec.experts"] == "clinical,molecular"
    assert "molecular: molecular-expert/1" in mv.description and expert_sha in mv.description
    assert registry_digests(mv) == folder_digests(project / "models/mixture")
    assert client.get_run(mv.run_id).info.run_name == "mixture"


def test_pull_brings_the_whole_mixture_verified(project, store, tmp_path, capsys):
    from selfspec.deploy import folder_digests

    dest = tmp_path / "deploy"
    assert cli(["pull", "biomedical-mixture@candidate", "--dest", str(dest), "--tracking-uri", store]) == 0
    assert folder_digests(dest) == folder_digests(project / "models/mixture")
    out = capsys.readouterr().out
    assert "expert    molecular        molecular-expert/1  -> experts/molecular" in out
    assert "router/accuracy" in out and "router and experts" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("experts/clinical/adapter_model.safetensors", "experts/clinical/adapter_model.safetensors: sha256"),
        ("router/router.pt", r"refusing non-safetensors weights \['router/router.pt'\]"),
        ("experts/molecular/payload.py", r"refusing files not listed in the registry's digests"),
        ("-experts/molecular/adapter_config.json", "experts/molecular/adapter_config.json is listed in"),
    ],
)
def test_a_tampered_mixture_is_refused_and_nothing_is_written(store, tmp_path, change, message):
    from mlflow import MlflowClient

    from selfspec.deploy import IntegrityError, parse_ref, pull

    mv = MlflowClient(store).get_model_version("biomedical-mixture", "1")
    stored = Path(store.removeprefix("sqlite:///")).parent / "artifacts" / mv.run_id / "artifacts/mixture"
    target = stored / change.lstrip("-")
    saved = target.read_bytes() if target.is_file() else None
    try:
        if change.startswith("-"):
            target.unlink()
        else:
            target.write_bytes((saved or b"") + b"\x80\x04tampered")
        with pytest.raises(IntegrityError, match=message):
            pull(parse_ref("biomedical-mixture/1"), tmp_path / "dest", store)
    finally:
        target.unlink(missing_ok=True)
        if saved is not None:
            target.write_bytes(saved)
    assert not (tmp_path / "dest").exists() and not list(tmp_path.glob(".dest*")), "nothing half-written"


def test_without_a_logged_model_the_version_points_at_the_mixture_folder_and_pulls(
    in_tmp_repo, tiny_model_dir, lora_adapter, molecular_adapter
):
    from mlflow import MlflowClient

    from selfspec.deploy import folder_digests, parse_ref, pull

    shutil.copytree(tiny_model_dir, in_tmp_repo / "models/prepare_model")
    shutil.copytree(FIXTURES, in_tmp_repo / "experts")
    experts = [
        {"name": "clinical", "adapter": str(lora_adapter), "records": "experts/clinical.jsonl"},
        {"name": "molecular", "adapter": str(molecular_adapter), "records": "experts/molecular.jsonl"},
    ]
    write_params(in_tmp_repo, experts, tracking={"log_model": False}, holdout=0.0)
    assert cli(["mixture"]) == 0
    assert json.loads((in_tmp_repo / "metrics/mixture.json").read_text()) == {"n_experts": 2}, (
        "nothing held out"
    )
    uri = f"sqlite:///{in_tmp_repo}/mlflow/mlflow.db"
    mv = MlflowClient(uri).get_model_version("biomedical-mixture", "1")
    assert mv.source == f"runs:/{mv.run_id}/mixture" and "accuracy" not in mv.description
    assert mv.tags["selfspec.expert.molecular"] == f"local:{molecular_adapter.resolve().as_posix()}"
    pulled = pull(parse_ref("biomedical-mixture@candidate"), in_tmp_repo / "deploy", uri)
    assert pulled.kind == "mixture"
    assert [e["name"] for e in pulled.provenance["experts"]] == ["clinical", "molecular"]
    first = folder_digests(in_tmp_repo / "models/mixture")
    assert folder_digests(pulled.dest) == first
    assert cli(["mixture"]) == 0
    assert folder_digests(in_tmp_repo / "models/mixture") == first, "the stage reproduces byte for byte"


# --- serving ----------------------------------------------------------------------------------------


def test_the_pyfunc_routes_each_input_and_answers_with_the_chosen_expert(project, store, caplog):
    import logging

    import mlflow

    from selfspec.mixture.serving import MixtureServer

    model = mlflow.pyfunc.load_model("models:/biomedical-mixture@candidate")
    prompts = [CLINICAL[0], MOLECULAR[0], CLINICAL[1], MOLECULAR[1]]
    with caplog.at_level(logging.INFO, logger="selfspec.mixture.serving"):
        out = model.predict(prompts, params={"max_new_tokens": 6})
    assert list(out["expert"]) == ["clinical", "molecular", "clinical", "molecular"]
    assert "routed input 1 to expert molecular" in caplog.text
    server = MixtureServer(project / "models/mixture", project / "models/prepare_model")
    settings = {"max_new_tokens": 6, "do_sample": False, "temperature": 1.0, "top_p": 1.0}
    answers = {}
    for expert in ("clinical", "molecular"):
        server.model.set_adapter(expert)
        answers[expert] = server.generate(prompts, settings)
    assert answers["clinical"] != answers["molecular"], "the experts answer differently"
    assert list(out["text"]) == [answers[e][i] for i, e in enumerate(out["expert"])]


def test_mlflow_models_serve_answers_with_the_chosen_expert(project, store):
    import signal
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin), "models", "serve", "-m", "models:/biomedical-mixture@candidate",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    path = f"{mlflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"  # mlflow execs uvicorn by name
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PATH": path, "PYTHONPATH": str(REPO / "src")}
    log = project / "serve.log"
    server = subprocess.Popen(cmd, cwd=project, env=env, start_new_session=True,
                              stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
    try:
        body = {"inputs": [MOLECULAR[0], CLINICAL[0]], "params": {"max_new_tokens": 4}}
        reply = post_when_up(f"http://127.0.0.1:{port}/invocations", body, server, log, 240, 60)
        assert reply is not None and reply.status_code == 200, reply and reply.text
        predictions = reply.json()["predictions"]
        assert [p["expert"] for p in predictions] == ["molecular", "clinical"]
        assert all(isinstance(p["text"], str) and 0.5 < p["probability"] <= 1 for p in predictions)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server's workers share its process group
            server.wait(timeout=30)


def test_the_routing_front_names_the_vllm_lora_module_of_each_request(project):
    from selfspec.mixture.serving import MixtureServer, RoutingFront

    folder = project / "models/mixture"
    front = RoutingFront(folder, project / "models/prepare_model")
    assert front.lora_modules() == [
        f"clinical={(folder / 'experts/clinical').resolve()}",
        f"molecular={(folder / 'experts/molecular').resolve()}",
    ]
    bodies = front.requests([CLINICAL[0], MOLECULAR[0]], max_tokens=32)
    assert [b["model"] for b in bodies] == ["clinical", "molecular"]
    assert bodies[0]["prompt"].startswith("Below is an instruction") and CLINICAL[0] in bodies[0]["prompt"]
    # the plain base and the multi-adapter model with its adapters disabled give the router the same features
    served = MixtureServer(folder, project / "models/prepare_model").route(CLINICAL + MOLECULAR)
    alone = front.route(CLINICAL + MOLECULAR)
    assert [e for e, _ in served] == [e for e, _ in alone] == ["clinical"] * 2 + ["molecular"] * 2
    assert [p for _, p in served] == pytest.approx([p for _, p in alone], abs=1e-5)


def test_a_multi_adapter_model_serves_each_expert_exactly_as_alone(
    tiny_model_dir, lora_adapter, molecular_adapter
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from selfspec.loading import load_experts

    ids = torch.tensor([[5, 17, 42, 99, 7]])
    both = load_experts(tiny_model_dir, {"clinical": lora_adapter, "molecular": molecular_adapter}, "float32")
    for name, path in (("clinical", lora_adapter), ("molecular", molecular_adapter)):
        alone = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), path).eval()
        both.set_adapter(name)
        with torch.no_grad():
            torch.testing.assert_close(both(ids).logits, alone(ids).logits)


# --- merged baselines ---------------------------------------------------------------------------


def logits(base_dir: Path, adapter: Path | None = None):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    model = PeftModel.from_pretrained(model, adapter).eval() if adapter else model.eval()
    with torch.no_grad():
        return model(torch.tensor([[5, 17, 42, 99, 7]])).logits


def test_a_linear_merge_with_one_hot_weights_is_that_expert(
    tiny_model_dir, lora_adapter, molecular_adapter, tmp_path
):
    import torch

    from selfspec.mixture.merge import merge_experts

    adapters = {"clinical": lora_adapter, "molecular": molecular_adapter}
    one_hot = merge_experts(tiny_model_dir, adapters, "linear", tmp_path / "m1", weights=[1.0, 0.0])
    torch.testing.assert_close(logits(tiny_model_dir, one_hot), logits(tiny_model_dir, lora_adapter))
    half = merge_experts(tiny_model_dir, adapters, "linear", tmp_path / "m2")
    assert not torch.allclose(logits(tiny_model_dir, half), logits(tiny_model_dir, lora_adapter), atol=1e-3)
    assert sorted(p.name for p in half.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_a_ties_merge_is_a_loadable_adapter_unlike_base_and_experts(project):
    import torch

    base = project / "models/prepare_model"
    merged = logits(base, project / "models/mixture/merged")
    config = json.loads((project / "models/mixture/merged/adapter_config.json").read_text())
    assert config["r"] == 4 and config["target_modules"] == ["down_proj", "q_proj", "v_proj"]
    for other in (logits(base), logits(base, project / "models/mixture/experts/clinical")):
        assert not torch.allclose(merged, other, atol=1e-3)


def test_a_merge_of_different_ranks_names_them(tiny_model_dir, lora_adapter, tmp_path):
    from selfspec.errors import ConfigError
    from selfspec.mixture.merge import merge_experts

    wide = random_adapter(tiny_model_dir, tmp_path / "wide", seed=3, r=8)
    with pytest.raises(ConfigError, match=r"ties needs one LoRA rank .* \{'a': 4, 'b': 8\}"):
        merge_experts(tiny_model_dir, {"a": lora_adapter, "b": wide}, "ties", tmp_path / "m")


# --- the default and bad input ----------------------------------------------------------------------


def test_without_experts_the_stage_writes_an_empty_manifest_and_loads_nothing(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    code = (
        "import sys; from selfspec.cli import main\n"
        "rc = main(['mixture'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'mlflow') if m in sys.modules]\n"
        "print('RC', rc, 'HEAVY', heavy)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "RC 0 HEAVY []" in out.stdout, out.stderr
    assert json.loads((tmp_path / "models/mixture/mixture.json").read_text()) == {
        "experts": [], "skipped": "mixture.experts is empty"
    }  # fmt: skip
    assert json.loads((tmp_path / "metrics/mixture.json").read_text()) == {"n_experts": 0}
    assert not (tmp_path / "models/prepare_model").exists() and not (tmp_path / "mlflow").exists()


@pytest.mark.parametrize(
    ("names", "mixture", "message"),
    [
        (["a"], {}, "mixture.experts: a mixture needs at least 2 experts"),
        (["a", "a"], {}, "mixture.experts: names must be unique, repeated: ['a']"),
        (["a", "b c"], {}, "mixture.experts: item 1: name: 'b c': use letters, digits"),
        (["a", "b"], {"merge_weights": [1.0]}, "mixture.merge_weights: 1 weights for 2 experts"),
        (["a", "b"], {"merge_weights": [1.0, -1.0]}, "mixture.merge_weights: must be >= 0"),
        (["a", "b"], {"merge": "svd"}, "mixture.merge: must be one of ['none', 'linear', 'ties']"),
    ],
)
def test_bad_mixture_params_are_named_before_any_work(tmp_path, capsys, names, mixture, message):
    experts = [{"name": n, "adapter": "x", "records": "r.jsonl"} for n in names]
    params = write_params(tmp_path, experts, **mixture)
    assert cli(["mixture", "--params", str(params)]) == 1
    assert message in capsys.readouterr().err


def test_a_bad_record_names_its_file_and_line(in_tmp_repo, tiny_model_dir, lora_adapter, capsys):
    shutil.copytree(tiny_model_dir, in_tmp_repo / "models/prepare_model")
    (in_tmp_repo / "a.jsonl").write_text(
        '{"instruction": "x", "output": "y"}\n{"instruction": "z", "output": ""}\n'
    )
    experts = [{"name": n, "adapter": str(lora_adapter), "records": "a.jsonl"} for n in ("a", "b")]
    write_params(in_tmp_repo, experts)
    assert cli(["mixture"]) == 1
    assert "a.jsonl:2: output: missing or empty" in capsys.readouterr().err
    assert not (in_tmp_repo / "mlflow").exists(), "records are checked before an MLflow run is opened"


@pytest.mark.parametrize(
    ("adapter", "message"),
    [
        ("no/such/folder", "adapter 'no/such/folder': no such folder, and not a registry reference"),
        (
            "ghost-expert/1",
            "adapter 'ghost-expert/1': no registered model 'ghost-expert'; registered models: none",
        ),
    ],
)
def test_an_expert_that_is_neither_a_folder_nor_registered_is_named(
    in_tmp_repo, tiny_model_dir, lora_adapter, capsys, adapter, message
):
    shutil.copytree(tiny_model_dir, in_tmp_repo / "models/prepare_model")
    shutil.copytree(FIXTURES, in_tmp_repo / "experts")
    experts = [
        {"name": "clinical", "adapter": str(lora_adapter), "records": "experts/clinical.jsonl"},
        {"name": "molecular", "adapter": adapter, "records": "experts/molecular.jsonl"},
    ]
    write_params(in_tmp_repo, experts)
    assert cli(["mixture"]) == 1
    err = capsys.readouterr().err
    assert f"selfspec mixture: error: [mixture] mixture.experts 'molecular': {message}" in err


def test_a_local_expert_with_pickle_weights_is_refused(in_tmp_repo, tiny_model_dir, lora_adapter, capsys):
    shutil.copytree(tiny_model_dir, in_tmp_repo / "models/prepare_model")
    shutil.copytree(FIXTURES, in_tmp_repo / "experts")
    bad = shutil.copytree(lora_adapter, in_tmp_repo / "bad")
    (bad / "adapter_model.bin").write_bytes(b"\x80\x04pickle")
    experts = [
        {"name": "clinical", "adapter": str(lora_adapter), "records": "experts/clinical.jsonl"},
        {"name": "molecular", "adapter": str(bad), "records": "experts/molecular.jsonl"},
    ]
    write_params(in_tmp_repo, experts)
    assert cli(["mixture"]) == 1
    err = capsys.readouterr().err
    assert (
        "mixture.experts 'molecular'" in err
        and "refusing non-safetensors weights ['adapter_model.bin']" in err
    )
