"""Stage train with real libraries on the tiny Llama: 4-bit base, LoRA-only updates, adapter reload,
the bad-params errors that must come before training."""

from __future__ import annotations

import json

import pytest

from selfspec.config import default_params
from selfspec.errors import ConfigError
from selfspec.io import read_jsonl
from tests.conftest import REPO

pytestmark = pytest.mark.integration

RECORDS = REPO / "tests/fixtures/train/records.jsonl"
OVERRIDES = [
    "train.max_steps=12",
    "train.epochs=4",
    "train.logging_steps=3",
    "train.learning_rate=0.005",
    "train.batch_size=4",
]


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    return default_params(OVERRIDES)


@pytest.fixture(scope="module")
def trained(tiny_model_dir, params):
    """Build the 4-bit + LoRA model, snapshot every weight, train it, and keep both."""
    import tempfile

    import torch

    from selfspec.runtime import resolve_dtype, set_seed
    from selfspec.training.data import encode_records
    from selfspec.training.loop import train
    from selfspec.training.model import add_lora, load_base, load_tokenizer

    dtype = resolve_dtype(params.base.dtype, "cpu")
    tokenizer = load_tokenizer(tiny_model_dir)
    examples = encode_records(read_jsonl(RECORDS), tokenizer, "alpaca", params.train.max_length).examples
    set_seed(0)
    model = add_lora(load_base(tiny_model_dir, params.train, "cpu", dtype), params.train)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        metrics = train(model, tokenizer, examples, params.train, 0, dtype == torch.bfloat16, True, tmp)
    return {
        "model": model.eval(),
        "tokenizer": tokenizer,
        "before": before,
        "metrics": metrics,
        "dtype": dtype,
    }


def test_base_layers_really_are_4bit_nf4(trained):
    import bitsandbytes as bnb
    import torch

    layers = {n: m for n, m in trained["model"].named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    # 2 decoder layers x (q, k, v, o, gate, up, down)
    assert len(layers) == 14
    for layer in layers.values():
        assert layer.weight.dtype == torch.uint8
        assert layer.weight.quant_state.quant_type == "nf4"
        assert layer.weight.numel() * 2 == layer.in_features * layer.out_features, (
            "two 4-bit weights per byte"
        )


def test_only_lora_weights_change_and_the_loss_falls(trained):
    import torch

    after = trained["model"].state_dict()
    changed = sorted(k for k, v in trained["before"].items() if not torch.equal(v, after[k]))
    assert changed and all(".lora_A." in k or ".lora_B." in k for k in changed)
    assert any(".lora_B." in k for k in changed), "B starts at zero: training must move it"
    losses = [row["train/loss"] for row in trained["metrics"]["history"]]
    assert len(losses) >= 4 and losses[-1] < losses[0]


def test_step_metrics_have_loss_lr_tokens_per_s_and_peak_rss(trained):
    row = trained["metrics"]["history"][-1]
    assert row["train/learning_rate"] > 0 and row["train/tokens_per_s"] > 0 and row["train/peak_rss_mb"] > 100
    assert trained["metrics"]["steps"] == 12 and trained["metrics"]["train_tokens"] > 0


def test_saved_adapter_reloads_onto_the_base_and_reproduces_the_logits(
    trained, tiny_model_dir, params, tmp_path
):
    import torch
    from peft import PeftModel

    from selfspec.training.model import load_base

    trained["model"].save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter/adapter_model.safetensors").is_file()
    ids = trained["tokenizer"]("Metformin lowers hepatic glucose production.", return_tensors="pt")[
        "input_ids"
    ]
    reloaded = PeftModel.from_pretrained(
        load_base(tiny_model_dir, params.train, "cpu", trained["dtype"]), tmp_path / "adapter"
    )
    with torch.no_grad():
        expected = trained["model"](ids).logits
        actual = reloaded.eval()(ids).logits
        base_only = reloaded.get_base_model()
        with reloaded.disable_adapter():
            without = base_only(ids).logits
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(without, expected, atol=1e-3), "the adapter changes the outputs"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "train.target_modules=[q_proj,qkv_proj]",
            r"\['qkv_proj'\] not in the model; its linear modules: \['down_proj'",
        ),
        ("train.template=chat", None),  # valid: the tiny tokenizer has a chat template
    ],
)
def test_a_bad_target_module_fails_before_training_and_a_valid_config_gets_there(
    tiny_model_dir, tmp_path, monkeypatch, override, message
):
    from selfspec.stages import train as stage
    from selfspec.training import loop

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(loop, "train", no_training)  # proves the error comes first
    params = default_params([override])
    if message is None:
        with pytest.raises(AssertionError, match="training started"):
            stage.run(read_jsonl(RECORDS), params, tiny_model_dir)
        return
    with pytest.raises(ConfigError, match=message):
        stage.run(read_jsonl(RECORDS), params, tiny_model_dir)


def test_the_saved_adapter_config_does_not_depend_on_the_hash_seed(tiny_model_dir, tmp_path):
    """peft keeps all-linear targets in a set; two processes with other PYTHONHASHSEEDs must still
    write byte-identical adapter_config.json files (models/train reproduces under `dvc repro -f`)."""
    import os
    import subprocess
    import sys

    script = (
        "import sys; from pathlib import Path; from types import SimpleNamespace as N\n"
        "from peft import LoraConfig, get_peft_model\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "from selfspec.training.publish import save_adapter\n"
        "m = get_peft_model(AutoModelForCausalLM.from_pretrained(sys.argv[1]), "
        "LoraConfig(r=2, target_modules='all-linear'))\n"
        "save_adapter(N(model=m, tokenizer=AutoTokenizer.from_pretrained(sys.argv[1])), Path(sys.argv[2]))\n"
    )
    written = []
    for seed in ("1", "2", "3"):
        dest = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(tiny_model_dir), str(dest)], env=env, check=True)
        written.append((dest / "adapter_config.json").read_text())
    assert written[0] == written[1] == written[2]
    targets = json.loads(written[0])["target_modules"]
    assert len(targets) == 2 * 7 and targets == sorted(targets)  # 7 projections in each of 2 layers
