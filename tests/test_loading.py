"""selfspec.loading: the one model loader. Its dtype / device / adapter rules, once.

The plan rows run anywhere (CUDA rows test the resolution, not a GPU); the load rows run the
tiny random Llama on the CPU, 4-bit included (bitsandbytes quantizes on CPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from selfspec.errors import ConfigError, StageError
from selfspec.loading import LoadPlan, plan_load, prepared_dir

F32, BF16 = "float32", "bfloat16"


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        # a plain base: loaded in the asked dtype, never cast twice; None keeps the saved dtype
        ((None, "cpu"), {}, LoadPlan(None, "none", False, None, {"": "cpu"}, False, None, False, None)),
        ((BF16, "cpu"), {}, LoadPlan(BF16, "none", False, None, {"": "cpu"}, False, None, False, None)),
        # CUDA: the whole model on this process's GPU (LOCAL_RANK 0 when not launched)
        ((BF16, "cuda"), {}, LoadPlan(BF16, "none", False, None, {"": 0}, False, None, False, None)),
        # an adapter is merged in fp32, then the merged model is cast to the compute dtype
        ((BF16, "cuda"), {"adapter": "a"},
         LoadPlan(F32, "none", False, None, {"": 0}, False, "a", True, BF16)),
        ((F32, "cpu"), {"adapter": "a"},
         LoadPlan(F32, "none", False, None, {"": "cpu"}, False, "a", True, None)),
        # kept unmerged (serving): loaded directly in the dtype, the adapter on top
        ((F32, "cpu"), {"adapter": "a", "merge": False},
         LoadPlan(F32, "none", False, None, {"": "cpu"}, False, "a", False, None)),
        # training: 4-bit from fp32 master weights, compute in bf16, left packed (no cast)
        ((F32, "cuda"), {"quantization": "nf4", "double_quant": True, "compute_dtype": BF16},
         LoadPlan(F32, "nf4", True, BF16, {"": 0}, False, None, False, None)),
        # evaluation as trained: NF4 weights dequantized to fp32, adapter merged there, then cast
        ((BF16, "cuda"), {"quantization": "nf4", "dequantize": True, "adapter": "a"},
         LoadPlan(F32, "nf4", False, BF16, {"": 0}, True, "a", True, BF16)),
        ((F32, "cpu"), {"quantization": "fp4", "dequantize": True},
         LoadPlan(F32, "fp4", False, F32, {"": "cpu"}, True, None, False, None)),
        # double_quant means nothing without 4 bits
        ((F32, "cpu"), {"double_quant": True},
         LoadPlan(F32, "none", False, None, {"": "cpu"}, False, None, False, None)),
    ],
)  # fmt: skip
def test_load_plan_rules(args, kwargs, expected):
    assert plan_load(*args, **kwargs) == expected


def test_cuda_worker_loads_onto_its_own_gpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert plan_load(BF16, "cuda", quantization="nf4").device_map == {"": 3}
    assert plan_load(BF16, "cpu").device_map == {"": "cpu"}


def test_torch_dtypes_are_accepted_as_names():
    import torch

    assert plan_load(torch.bfloat16, "cpu", adapter="a").final_dtype == BF16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantization": "int3"}, r"quantization: 'int3' is not one of \['none', 'nf4', 'fp4'\]"),
        ({"dequantize": True}, "dequantize: needs a 4-bit quantization"),
        ({"quantization": "nf4", "adapter": "a"}, "re-quantizes it: dequantize first"),
    ],
)
def test_contradictory_requests_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        plan_load(F32, "cpu", **kwargs)


def test_a_missing_prepared_folder_names_the_stage_to_run(tmp_path):
    with pytest.raises(StageError, match=rf"\[train\] {tmp_path}/nothing: no prepared model; run `dvc repro"):
        prepared_dir(tmp_path / "nothing", stage="train")


@pytest.fixture
def adapter(lora_adapter) -> Path:
    return lora_adapter


IDS = [[5, 17, 42, 99, 7, 3]]


def _logits(model):
    import torch

    with torch.no_grad():
        return model(torch.tensor(IDS)).logits.float()


def test_plain_load_is_in_the_asked_dtype_in_eval_mode(tiny_model_dir):
    import torch

    from selfspec.loading import load_model

    model = load_model(tiny_model_dir, BF16, "cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not model.training and model.device.type == "cpu"


def test_merged_adapter_matches_the_unmerged_fp32_path_then_casts(tiny_model_dir, adapter):
    import torch

    from selfspec.loading import load_model

    kept = load_model(tiny_model_dir, F32, "cpu", adapter=adapter, merge=False)
    merged = load_model(tiny_model_dir, F32, "cpu", adapter=adapter)
    assert type(kept).__name__ == "PeftModel" and type(merged).__name__ == "LlamaForCausalLM"
    torch.testing.assert_close(_logits(merged), _logits(kept), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(_logits(merged), _logits(load_model(tiny_model_dir, F32, "cpu")), atol=1e-3)
    in_bf16 = load_model(tiny_model_dir, BF16, "cpu", adapter=adapter)
    assert {p.dtype for p in in_bf16.parameters()} == {torch.bfloat16}


def test_four_bit_training_load_keeps_packed_weights(tiny_model_dir):
    import bitsandbytes as bnb
    import torch

    from selfspec.loading import load_model

    model = load_model(tiny_model_dir, F32, "cpu", quantization="nf4", compute_dtype=BF16)
    linears = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(linears) == 2 * 7  # q k v o gate up down per layer; lm_head stays plain
    assert {m.weight.dtype for m in linears} == {torch.uint8}
    assert {m.compute_dtype for m in linears} == {torch.bfloat16}


def test_dequantized_base_holds_exactly_the_nf4_weights_training_saw(tiny_model_dir):
    import bitsandbytes as bnb
    import torch

    from selfspec.loading import load_model

    packed = load_model(tiny_model_dir, F32, "cpu", quantization="nf4", double_quant=True)
    plain = load_model(tiny_model_dir, F32, "cpu", quantization="nf4", double_quant=True, dequantize=True)
    full = load_model(tiny_model_dir, F32, "cpu")
    q = packed.model.layers[0].self_attn.q_proj
    seen = bnb.functional.dequantize_4bit(q.weight.data, q.weight.quant_state)
    got = plain.model.layers[0].self_attn.q_proj
    assert type(got) is torch.nn.Linear and got.weight.dtype == torch.float32
    assert torch.equal(got.weight, seen)
    assert not torch.equal(got.weight, full.model.layers[0].self_attn.q_proj.weight), "NF4 rounds the weights"
    # the packed forward (bitsandbytes' CPU kernel, bf16 dequant) agrees with the plain one to rounding,
    # far closer than the full-precision base does: the NF4 error is in, the rounding noise is not
    to_packed = (_logits(plain) - _logits(packed)).abs().max()
    to_full = (_logits(plain) - _logits(full)).abs().max()
    assert to_packed < 5e-3 and to_full > 10 * to_packed, (to_packed, to_full)


# --- evaluation loads what was trained (issue 11 §6) -------------------------------------------


class Trained:
    def __init__(self, quantization="nf4", double_quant=True):
        self.quantization, self.double_quant = quantization, double_quant


@pytest.mark.parametrize(
    ("dtype", "adapter", "trained", "expected"),
    [
        # QLoRA-trained: base and specialized both on the NF4 weights, dequantized
        (F32, None, Trained(), {"quantization": "nf4", "double_quant": True, "dequantize": True}),
        # fp32 compute: the adapter is merged (exact, fastest)
        (F32, "a", Trained(), {"quantization": "nf4", "double_quant": True, "dequantize": True,
                               "adapter": "a", "merge": True}),
        # bf16 compute: kept unmerged, so the LoRA update is applied as trained, not rounded into W
        (BF16, "a", Trained("fp4", False), {"quantization": "fp4", "double_quant": False, "dequantize": True,
                                            "adapter": "a", "merge": False}),
        # plain LoRA (quantization none): the full-precision base, as trained
        (F32, "a", Trained("none"), {"adapter": "a", "merge": True}),
        (BF16, None, None, {}),
    ],
)  # fmt: skip
def test_evaluation_loads_the_weights_training_saw(dtype, adapter, trained, expected):
    from selfspec.evaluation.harness import eval_load_request

    assert eval_load_request(dtype, adapter, trained) == expected


def test_the_base_weights_label_tells_base_and_specialized_runs_apart():
    from selfspec.evaluation.harness import base_weights

    assert base_weights(Trained()) == "nf4+double-quant-dequantized"
    assert base_weights(Trained("fp4", False)) == "fp4-dequantized"
    assert base_weights(Trained("none")) == "full-precision"


def test_the_paired_delta_is_the_adapters_alone(tiny_model_dir, adapter):
    """Specialized minus base, weight by weight, is exactly the LoRA update: the NF4 rounding of the
    base is in both models, and nothing else differs."""
    import torch
    from safetensors.torch import load_file

    from selfspec.evaluation.harness import load_model

    base, _ = load_model(tiny_model_dir, F32, "cpu", trained_as=Trained())
    special, _ = load_model(tiny_model_dir, F32, "cpu", adapter_dir=adapter, trained_as=Trained())
    lora = load_file(adapter / "adapter_model.safetensors")
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    update = lora[f"{prefix}.lora_B.weight"] @ lora[f"{prefix}.lora_A.weight"] * (8 / 4)  # alpha / r
    got = special.model.layers[0].self_attn.q_proj.weight - base.model.layers[0].self_attn.q_proj.weight
    torch.testing.assert_close(got, update, atol=1e-6, rtol=1e-5)
    untouched = special.model.layers[0].self_attn.k_proj.weight  # not a LoRA target
    assert torch.equal(untouched, base.model.layers[0].self_attn.k_proj.weight)


def test_in_bf16_the_update_is_not_rounded_into_the_weights(tiny_model_dir, adapter):
    """bf16 evaluation keeps the adapter beside the weights: its logits follow the fp32 specialized
    model, while a merged-then-cast model loses much of the update."""
    import torch

    from selfspec.evaluation.harness import load_model

    exact, _ = load_model(tiny_model_dir, F32, "cpu", adapter_dir=adapter, trained_as=Trained())
    kept, _ = load_model(tiny_model_dir, BF16, "cpu", adapter_dir=adapter, trained_as=Trained())
    assert type(kept).__name__ == "PeftModel"
    assert {p.dtype for p in kept.parameters()} == {torch.bfloat16}
    base, _ = load_model(tiny_model_dir, F32, "cpu", trained_as=Trained())
    effect = (_logits(exact) - _logits(base)).abs().max()
    assert (_logits(kept) - _logits(exact)).abs().max() < 0.1 * effect
