"""The base model in 4-bit NF4 (bitsandbytes) with LoRA adapters (peft).

bitsandbytes 0.50 quantizes on CPU as on CUDA: ``Linear4bit`` layers with packed uint8 weights.
The same code runs unchanged on a GPU; under ``accelerate launch`` each process puts its copy of
the model on its own device (data parallel).
"""

from __future__ import annotations

from pathlib import Path

from selfspec.errors import ConfigError

ALL_LINEAR = "all-linear"


def load_tokenizer(base_dir: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"{base_dir}: the tokenizer has no eos token; the response end cannot be learned")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out of the loss anyway
    return tokenizer


def load_base(base_dir: str | Path, train_params, device: str, compute_dtype):
    """The base model: 4-bit unless ``quantization: none`` (then plain fp32 weights)."""
    from selfspec.loading import MASTER_DTYPE, load_model

    model = load_model(
        base_dir, MASTER_DTYPE, device,
        # fp32 master weights for everything not packed in 4 bits (prepare_model_for_kbit_training
        # upcasts them anyway); bf16 compute comes from the 4-bit config and Trainer autocast
        quantization=train_params.quantization, double_quant=train_params.double_quant,
        compute_dtype=compute_dtype,
    )  # fmt: skip
    model.config.use_cache = False  # the KV cache is useless in training and warns with checkpointing
    return model


def linear_module_names(model) -> set[str]:
    """Leaf names of the linear layers LoRA can adapt (lm_head excluded, as peft's all-linear does)."""
    import torch

    kinds: tuple[type, ...] = (torch.nn.Linear,)
    try:
        import bitsandbytes as bnb

        kinds += (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    except ImportError:
        pass
    names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, kinds)}
    return names - {"lm_head"}


def check_target_modules(model, targets: list[str]) -> None:
    """Unknown target modules fail here, naming what the model has, before any training."""
    if targets == [ALL_LINEAR]:
        return
    if ALL_LINEAR in targets:
        raise ConfigError(
            f"train.target_modules: '{ALL_LINEAR}' cannot be combined with names, got {targets}"
        )
    available = linear_module_names(model)
    unknown = sorted(set(targets) - available)
    if unknown:
        raise ConfigError(
            f"train.target_modules: {unknown} not in the model; its linear modules: {sorted(available)}"
        )


def add_lora(model, train_params):
    """prepare_model_for_kbit_training (4-bit) then wrap with a LoRA adapter."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    check_target_modules(model, list(train_params.target_modules))
    if train_params.quantization != "none":
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=train_params.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif train_params.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    targets = list(train_params.target_modules)
    config = LoraConfig(
        r=train_params.lora_r,
        lora_alpha=train_params.lora_alpha,
        lora_dropout=train_params.lora_dropout,
        target_modules=ALL_LINEAR if targets == [ALL_LINEAR] else targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def count_parameters(model) -> dict[str, int]:
    """Trainable (LoRA) and total parameter counts; 4-bit weights count as stored elements x2."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = 0
    for p in model.parameters():
        # a packed uint8 holds two 4-bit weights
        total += p.numel() * (2 if p.dtype.is_floating_point is False and p.element_size() == 1 else 1)
    return {"trainable_params": trainable, "total_params": total}
