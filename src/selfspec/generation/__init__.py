"""Text generation backends behind one small protocol, chosen by ``generation.backend``.

* ``transformers`` (default): batched, left-padded ``generate`` with a KV cache, in-process.
* ``openai``: any OpenAI-compatible ``/v1/completions`` server (vLLM, TGI, llama.cpp server...).
* ``vllm``: in-process vLLM (optional extra, GPU).

Every backend takes raw prompts (no chat template: the stages write few-shot text) and a seed per
call, so a batch's output depends only on its prompts and its seed — not on what ran before it.
That is what makes the stages deterministic and resumable batch by batch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    repetition_penalty: float = 1.0  # transformers / vllm only; 1.0: off


@dataclass(frozen=True)
class Completion:
    text: str  # cut before the first stop string
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or stop string) | "length" (hit max_new_tokens)


class Generator(Protocol):
    name: str

    def generate(self, prompts: Sequence[str], sampling: Sampling, seed: int) -> list[Completion]:
        """One completion per prompt, in order; the same prompts, sampling and seed give the same texts."""
        ...

    def describe(self) -> dict[str, Any]:
        """Backend, model identity and compute settings: recorded in metrics, hashed into resume keys."""
        ...


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string, and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def prompt_token_ids(
    tokenizer: Any, prompts: Sequence[str], max_length: int | None = None
) -> list[list[int]]:
    """The token ids every backend feeds the model for raw ``prompts``.

    Special tokens are the tokenizer's own (``add_special_tokens=True``): BOS for Llama, Mistral and
    Gemma, nothing for GPT-2-style BPE such as SmolLM2. That is what vLLM and OpenAI-compatible
    servers do with a text prompt, so all backends see the same ids. A prompt longer than
    ``max_length`` keeps its end (the part the model continues) and its BOS: the tokenizer
    truncates the text, then adds the special tokens.
    """
    kwargs: dict[str, Any] = {}
    if max_length:
        tokenizer.truncation_side = "left"
        kwargs = {"truncation": True, "max_length": max_length}
    return tokenizer(list(prompts), add_special_tokens=True, **kwargs)["input_ids"]


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any parts (base seed, stage, batch index): stable across runs and Python
    versions, unlike ``hash()``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def open_generator(params, model_path: str | Path | None = None) -> Generator:
    """The configured backend. ``model_path`` defaults to ``models/prepare_model``."""
    # OpenMP threads that spin while waiting for a descheduled sibling make torch ~10x slower on
    # a CPU shared with other work (measured here: 2 threads, 4.8 s vs 0.24 s per decode step).
    # Passive waiting costs nothing on an idle machine. Read when torch loads, so set it first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    backend = params.generation.backend
    if backend == "transformers":
        from selfspec.generation.hf import TransformersGenerator

        return TransformersGenerator.from_params(params, model_path)
    if backend == "openai":
        from selfspec.generation.openai_api import OpenAIGenerator

        return OpenAIGenerator.from_env(params.generation)
    from selfspec.generation.vllm_backend import VLLMGenerator

    return VLLMGenerator.from_params(params, model_path)


__all__ = [
    "Sampling",
    "Completion",
    "Generator",
    "open_generator",
    "cut_at_stop",
    "derive_seed",
    "prompt_token_ids",
]
