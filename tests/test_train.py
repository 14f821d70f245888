"""Stage train, fast part: prompt formatting, response-only labels, truncation, param errors."""

from __future__ import annotations

import subprocess

import pytest

from selfspec.config import default_params
from selfspec.errors import ConfigError, DataError, StageError
from selfspec.io import read_jsonl
from selfspec.training.data import (
    IGNORE_INDEX,
    Collator,
    encode_record,
    encode_records,
    render_prompt,
    validate_records,
)
from tests.conftest import REPO

RECORDS = REPO / "tests/fixtures/train/records.jsonl"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from selfspec.training.model import load_tokenizer

    return load_tokenizer(tiny_model_dir)


@pytest.fixture
def records():
    return read_jsonl(RECORDS)


def test_alpaca_prompt_with_and_without_input():
    with_input = render_prompt({"instruction": "List the drugs.", "input": "aspirin and heparin"}, "alpaca")
    assert with_input.endswith(
        "### Instruction:\nList the drugs.\n\n### Input:\naspirin and heparin\n\n### Response:\n"
    )
    assert "paired with an input" in with_input
    without = render_prompt({"instruction": "Define sepsis.", "input": ""}, "alpaca")
    assert "### Input:" not in without and without.endswith(
        "### Instruction:\nDefine sepsis.\n\n### Response:\n"
    )


def test_chat_prompt_uses_the_tokenizers_template(tokenizer):
    prompt = render_prompt({"instruction": "Define sepsis.", "input": "ICU context"}, "chat", tokenizer)
    assert prompt == "<|user|>\nDefine sepsis.\n\nICU context</s>\n<|assistant|>\n"


def test_loss_is_only_on_the_response_and_its_eos(tokenizer, records):
    record = records[1]
    example, cut = encode_record(record, tokenizer, "alpaca", max_length=512)
    assert cut == ""
    labels, ids = example["labels"], example["input_ids"]
    n_prompt = labels.index(next(v for v in labels if v != IGNORE_INDEX))
    assert all(v == IGNORE_INDEX for v in labels[:n_prompt])
    assert labels[n_prompt:] == ids[n_prompt:], "every response position is trained on"
    assert tokenizer.decode(ids[:n_prompt], skip_special_tokens=True) == render_prompt(record, "alpaca")
    assert tokenizer.decode(labels[n_prompt:-1]) == record["output"]
    assert labels[-1] == tokenizer.eos_token_id, "the model learns where the answer stops"


def test_a_long_context_is_shortened_but_the_instruction_and_response_are_kept(tokenizer, records):
    record = {**records[1], "input": records[1]["input"] * 20}
    example, cut = encode_record(record, tokenizer, "alpaca", max_length=256)
    assert cut == "input_shortened" and len(example["input_ids"]) <= 256
    text = tokenizer.decode(example["input_ids"], skip_special_tokens=True)
    assert record["instruction"] in text and text.endswith(record["output"])


def test_a_long_response_is_truncated_and_a_huge_instruction_is_dropped(tokenizer, records):
    long_answer = {**records[0], "output": records[0]["output"] * 20}
    example, cut = encode_record(long_answer, tokenizer, "alpaca", max_length=256)
    assert cut == "response_truncated" and len(example["input_ids"]) == 256
    huge = {**records[0], "instruction": records[0]["instruction"] * 30}
    assert encode_record(huge, tokenizer, "alpaca", max_length=256) == (None, "dropped")
    encoded = encode_records([huge, long_answer], tokenizer, "alpaca", 256)
    assert encoded.stats["dropped"] == 1 and encoded.stats["n_examples"] == 1
    with pytest.raises(StageError, match="instruction alone exceeds train.max_length=256"):
        encode_records([huge], tokenizer, "alpaca", 256)


def test_collator_pads_inputs_and_masks_padding_out_of_the_loss():
    batch = Collator(pad_token_id=3)(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 3, 3]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_empty_dataset_fails_before_any_model_is_loaded(tmp_path):
    from selfspec.stages.train import run

    with pytest.raises(StageError, match=r"\[train\] records: no training records \(empty dataset\)"):
        run([], default_params(), base_dir=tmp_path / "no-such-model")


def test_a_record_without_output_names_its_line_and_field(records):
    records[3] = {**records[3], "output": "  "}
    with pytest.raises(DataError, match=r"^records.jsonl:4: output: missing or empty$"):
        validate_records(records, "records.jsonl")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lora_r=0", "train.lora_r: must be > 0"),
        ("train.target_modules=[]", "train.target_modules: empty"),
        ("train.max_steps=0", "train.max_steps: must be -1 (no cap) or > 0"),
        ("train.template=vicuna", "train.template: must be one of ['alpaca', 'chat']"),
        ("train.quantization=int3", "train.quantization: must be one of"),
        ("train.lora_dropout=1.0", "train.lora_dropout: must be < 1"),
    ],
)
def test_bad_train_params_fail_at_load_time(tmp_path, override, message):
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        default_params([override])


def test_unknown_target_module_lists_the_models_linear_layers():
    import torch

    from selfspec.training.model import check_target_modules

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.v_proj, self.lm_head = (torch.nn.Linear(4, 4) for _ in range(3))

    check_target_modules(Block(), ["q_proj"])
    check_target_modules(Block(), ["all-linear"])
    with pytest.raises(
        ConfigError, match=r"\['qkv'\] not in the model; its linear modules: \['q_proj', 'v_proj'\]"
    ):
        check_target_modules(Block(), ["q_proj", "qkv"])
    with pytest.raises(ConfigError, match="cannot be combined"):
        check_target_modules(Block(), ["all-linear", "q_proj"])


def test_more_than_one_process_relaunches_the_stage_under_accelerate(tmp_path, monkeypatch):
    from selfspec.config import default_params
    from selfspec.errors import StageError
    from selfspec.stages.train import launch_command

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launch_command(default_params(), ["train"]) is None
    config = REPO / "configs/accelerate/multi_gpu.yaml"
    params = default_params(["train.num_processes=4", f"train.accelerate_config={config}"])
    cmd = launch_command(params, ["train", "-S", "train.lora_r=4"])
    assert cmd[1:4] == ["-m", "accelerate.commands.launch", "--config_file"]
    assert cmd[cmd.index("--num_processes") + 1] == "4"
    assert cmd[-5:] == ["-m", "selfspec.cli", "train", "-S", "train.lora_r=4"]
    monkeypatch.setenv("WORLD_SIZE", "4")  # inside a launched worker: train, do not launch again
    assert launch_command(params, ["train"]) is None
    monkeypatch.delenv("WORLD_SIZE")
    missing = default_params(["train.num_processes=2", "train.accelerate_config=nope.yaml"])
    with pytest.raises(StageError, match="accelerate_config: nope.yaml not found"):
        launch_command(missing, ["train"])
    help_text = subprocess.run([*cmd[:3], "--help"], capture_output=True, text=True, check=True).stdout
    assert "--num_processes" in help_text, "the launcher module runs as given"


@pytest.mark.parametrize(
    "overrides, n, world, steps",
    [
        ([], 81, 1, 63),  # 3 epochs of ceil(81 / 4) = 21 steps, under the cap of 100
        (["train.max_steps=50"], 81, 1, 50),  # the cap
        (["train.max_steps=-1", "train.epochs=1"], 81, 1, 21),
        (["train.gradient_accumulation_steps=2"], 81, 1, 30),  # 21 batches -> 10 steps per epoch
        ([], 81, 4, 18),  # 4 processes: 21 examples each -> 6 steps per epoch
        (["train.epochs=0.5"], 3, 1, 1),  # at least one step
    ],
)
def test_max_steps_caps_the_epochs_instead_of_replacing_them(tmp_path, overrides, n, world, steps):
    from selfspec.training.loop import planned_steps

    assert planned_steps(default_params(overrides).train, n, world) == steps


def test_mixed_precision_is_bf16_where_available_fp16_only_on_gpus_without_it():
    import torch

    from selfspec.training.loop import mixed_precision, training_arguments

    assert mixed_precision(torch.bfloat16, "cpu") == {"bf16": True, "fp16": False}
    assert mixed_precision(torch.bfloat16, "cuda") == {"bf16": True, "fp16": False}
    assert mixed_precision(torch.float16, "cuda") == {"bf16": False, "fp16": True}  # V100/T4: auto -> fp16
    assert mixed_precision(torch.float16, "cpu") == {"bf16": False, "fp16": False}  # no fp16 autocast on CPU
    assert mixed_precision(torch.float32, "cpu") == {"bf16": False, "fp16": False}
    args = training_arguments(default_params().train, 0, "out", use_cpu=True, max_steps=1, bf16=False)
    assert (args.bf16, args.fp16) == (False, False)
