"""The one way in to a model: the prepared base (``models/prepare_model``), plain or 4-bit, with or
without a LoRA adapter (merged or kept), for a device and a dtype.

``plan_load`` turns the request into a ``LoadPlan`` (pure, no torch: its rules are tested for CUDA on
any machine); ``load_model`` carries it out. The rules:

* Every load is placed by a device_map: the whole model on ``device`` (CUDA: this process's
  ``LOCAL_RANK``, so each data-parallel worker loads onto its own GPU).
* A plain base loads in ``dtype`` (None: as saved).
* A 4-bit base (``quantization`` nf4/fp4) is quantized by bitsandbytes from fp32 master weights, as
  training loads it; ``compute_dtype`` (default ``dtype``) is what its matmuls run in.
* ``dequantize`` turns the 4-bit weights back into plain fp32: the values training computed with.
* An adapter is merged in fp32 and the result cast to ``dtype`` afterwards: merging into bf16 weights
  rounds part of the LoRA update away, and merging into packed 4-bit weights re-quantizes it to NF4
  (refused). ``merge=False`` keeps the PEFT wrapper (the exact LoRA path, slower).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfspec.errors import ConfigError, StageError

PREPARED = "prepare_model"
QUANTIZATIONS = ("none", "nf4", "fp4")
MASTER_DTYPE = "float32"  # full-precision weights: 4-bit quantization source, merges


@dataclass(frozen=True)
class LoadPlan:
    load_dtype: str | None  # from_pretrained's dtype (None: as saved)
    quantization: str  # none | nf4 | fp4 (bitsandbytes 4-bit)
    double_quant: bool
    compute_dtype: str | None  # bitsandbytes compute dtype (4-bit only)
    device_map: dict[str, int | str]
    dequantize: bool  # 4-bit weights back to plain fp32 after loading
    adapter: str | None
    merge: bool
    final_dtype: str | None  # cast after loading/merging; None: leave as loaded


def dtype_name(dtype: Any) -> str | None:
    """``torch.bfloat16`` or ``"bfloat16"`` -> ``"bfloat16"``; None stays None."""
    return None if dtype is None else str(dtype).removeprefix("torch.")


def device_map(device: str) -> dict[str, int | str]:
    """Whole model on one device: this process's GPU under accelerate/torchrun, else ``device``."""
    if device == "cuda":
        return {"": int(os.environ.get("LOCAL_RANK", 0))}
    return {"": device}


def plan_load(
    dtype: Any, device: str, *, quantization: str = "none", double_quant: bool = False,
    dequantize: bool = False, adapter: str | os.PathLike | None = None, merge: bool = True,
    compute_dtype: Any = None,
) -> LoadPlan:  # fmt: skip
    """The load for ``dtype`` on ``device``; a contradictory request is a ConfigError."""
    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"quantization: {quantization!r} is not one of {list(QUANTIZATIONS)}")
    four_bit = quantization != "none"
    if dequantize and not four_bit:
        raise ConfigError("dequantize: needs a 4-bit quantization (nf4 or fp4), got 'none'")
    if four_bit and adapter and merge and not dequantize:
        raise ConfigError("merging an adapter into packed 4-bit weights re-quantizes it: dequantize first")
    name = dtype_name(dtype)
    load_dtype = MASTER_DTYPE if four_bit or (adapter and merge) else name
    kept_4bit = four_bit and not dequantize
    return LoadPlan(
        load_dtype=load_dtype,
        quantization=quantization,
        double_quant=double_quant and four_bit,
        compute_dtype=(dtype_name(compute_dtype) or name or MASTER_DTYPE) if four_bit else None,
        device_map=device_map(device),
        dequantize=dequantize,
        adapter=None if adapter is None else str(adapter),
        merge=bool(adapter) and merge,
        final_dtype=None if kept_4bit or name == load_dtype else name,
    )


def prepared_dir(path: str | os.PathLike | None = None, stage: str = PREPARED) -> Path:
    """The prepared model folder (default ``models/prepare_model``); missing is an error for ``stage``."""
    from selfspec.runtime import model_dir

    folder = Path(path) if path is not None else model_dir(PREPARED)
    if not (folder / "config.json").is_file():
        raise StageError(stage, f"{folder}: no prepared model; run `dvc repro prepare_model` first")
    return folder


def quantization_config(quantization: str, double_quant: bool, compute_dtype: Any):
    """``BitsAndBytesConfig`` for a 4-bit base, or None for plain weights."""
    if quantization == "none":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quantization,
        bnb_4bit_compute_dtype=getattr(torch, dtype_name(compute_dtype) or MASTER_DTYPE),
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_quant_storage="uint8",  # two 4-bit weights per byte
    )


def load_model(base_dir: str | os.PathLike | None, dtype: Any = None, device: str = "cpu", **request):
    """The model for ``plan_load(dtype, device, **request)``, in eval mode (callers that train switch)."""
    plan = plan_load(dtype, device, **request)
    model = _load_base(prepared_dir(base_dir), plan)
    if plan.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, plan.adapter)
        model = model.merge_and_unload() if plan.merge else model
    if plan.final_dtype is not None:
        import torch

        model = model.to(getattr(torch, plan.final_dtype))
    return model.eval()


def load_experts(
    base_dir: str | os.PathLike | None, adapters: dict[str, Any], dtype: Any = None, device: str = "cpu"
):
    """One plain base with several LoRA adapters kept apart (never merged), each under its name: a
    PeftModel on which ``set_adapter(name)`` picks the expert and ``disable_adapter()`` gives the base."""
    from peft import PeftModel

    if not adapters:
        raise ConfigError("load_experts: no adapters given")
    (first, path), *rest = adapters.items()
    model = PeftModel.from_pretrained(load_model(base_dir, dtype, device), path, adapter_name=first)
    for name, path in rest:
        model.load_adapter(path, adapter_name=name)
    return model.eval()


def _load_base(folder: Path, plan: LoadPlan):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"device_map": plan.device_map}
    if plan.load_dtype is not None:
        kwargs["dtype"] = getattr(torch, plan.load_dtype)
    if plan.quantization != "none":
        kwargs["quantization_config"] = quantization_config(
            plan.quantization, plan.double_quant, plan.compute_dtype
        )
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    if plan.dequantize:
        model = model.dequantize(dtype=torch.float32)
    return model


def load_tokenizer(folder: str | os.PathLike):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


MERGED_MANIFEST = "merged.json"  # in a merged folder: which base and which adapter (by digest) it holds


def save_merged(
    base_dir: str | os.PathLike, adapter: str | os.PathLike, dest: str | os.PathLike,
    dtype: Any = MASTER_DTYPE, identity: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
    """Base + ``adapter`` merged (in fp32, see above), saved as a plain model folder in ``dest`` with the
    tokenizer and ``merged.json``: what any backend (transformers, vLLM) loads like a prepared base.
    Written beside ``dest`` and renamed into place, so a killed export leaves no half folder."""
    import shutil
    import tempfile

    from selfspec.io import sha256_file, write_json

    base, adapter, dest = prepared_dir(base_dir), Path(adapter), Path(dest)
    model = load_model(base, dtype, "cpu", adapter=adapter)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    model.save_pretrained(tmp, safe_serialization=True)
    load_tokenizer(adapter if (adapter / "tokenizer_config.json").is_file() else base).save_pretrained(tmp)
    for name in ("provenance.json",):  # the base's own identity (source, revision, sha256) travels with it
        if (base / name).is_file():
            shutil.copy2(base / name, tmp / name)
    sha = sha256_file(adapter / "adapter_model.safetensors")
    manifest = {"base": base.as_posix(), "adapter": adapter.as_posix(), "adapter_sha256": sha,
                "dtype": dtype_name(dtype)} | (identity or {})  # fmt: skip
    write_json(tmp / MERGED_MANIFEST, manifest)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def merged_identity(folder: str | os.PathLike) -> dict[str, Any] | None:
    """``merged.json`` of a folder made by ``save_merged`` (None for a plain base): backends put it in
    their ``describe()``, so metrics and resume keys name the base + adapter that generated."""
    import json

    path = Path(folder) / MERGED_MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None
