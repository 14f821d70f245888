"""``vllm`` backend: in-process vLLM on a GPU (optional extra: ``pip install 'selfspec[vllm]'``).

Prompts go in as token ids built by ``prompt_token_ids`` — the same ids the transformers backend
feeds its model — and are cut to ``max_model_len - max_new_tokens`` the same way. The KV cache is
sized by ``generation.vllm_max_model_len`` and ``vllm_gpu_memory_utilization``: a 7B model with a
128K context would otherwise ask for more KV memory than a 24-48 GB card has and fail at start.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selfspec.errors import ConfigError, missing_extra
from selfspec.generation import Completion, Sampling, cut_at_stop, prompt_token_ids
from selfspec.generation.hf import PROMPT_ENCODING


def _import_vllm():
    try:
        import vllm
    except ImportError:
        raise missing_extra("vllm", "vllm") from None
    return vllm


class VLLMGenerator:
    name = "vllm"

    def __init__(self, llm: Any, label: str, dtype: str = "auto", penalize_prompt: bool = False):
        self.llm, self.label, self.penalize_prompt = llm, label, penalize_prompt
        self.merged: dict[str, Any] | None = None
        config = llm.llm_engine.model_config
        self.max_model_len = int(config.max_model_len)
        self.dtype = str(getattr(config, "dtype", dtype)).removeprefix("torch.")

    @classmethod
    def from_params(cls, params, model_path: str | Path | None = None) -> VLLMGenerator:
        vllm, gp = _import_vllm(), params.generation
        path = str(model_path or "models/prepare_model")
        llm = vllm.LLM(
            model=path,
            dtype=params.base.dtype,  # "auto" is vLLM's own word for the checkpoint's dtype
            seed=params.base.seed,
            max_model_len=gp.vllm_max_model_len or None,
            gpu_memory_utilization=gp.vllm_gpu_memory_utilization,
        )
        from selfspec.loading import merged_identity

        generator = cls(llm, path, params.base.dtype, gp.penalize_prompt)
        generator.merged = merged_identity(path)  # base + adapter of a round's merged folder, or None
        return generator

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.label,
            "dtype": self.dtype,
            "max_model_len": self.max_model_len,
            "prompt_encoding": PROMPT_ENCODING,
        } | ({"merged": self.merged} if self.merged else {})

    def generate(self, prompts: Sequence[str], sampling: Sampling, seed: int) -> list[Completion]:
        if sampling.repetition_penalty != 1.0 and not self.penalize_prompt:
            # vLLM's repetition_penalty always counts the prompt's tokens too
            raise ConfigError(
                "vllm penalises prompt tokens too: set generation.penalize_prompt=true "
                "or the stage's repetition_penalty to 1.0"
            )
        limit = max(8, self.max_model_len - sampling.max_new_tokens)
        ids = prompt_token_ids(self.llm.get_tokenizer(), prompts, limit)
        outputs = self.llm.generate(
            [{"prompt_token_ids": row} for row in ids], self._sampling_params(sampling, seed, len(ids)),
            use_tqdm=False,
        )  # fmt: skip
        return [self._completion(o, sampling) for o in outputs]

    @staticmethod
    def _sampling_params(sampling: Sampling, seed: int, n: int) -> list[Any]:
        """One SamplingParams per prompt: each gets its own seed, so a prompt's sample does not
        depend on its neighbours in the batch."""
        vllm = _import_vllm()
        return [
            vllm.SamplingParams(
                max_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                stop=list(sampling.stop),
                repetition_penalty=sampling.repetition_penalty,
                seed=seed + i,
            )
            for i in range(n)
        ]

    @staticmethod
    def _completion(output: Any, sampling: Sampling) -> Completion:
        choice = output.outputs[0]
        text, _ = cut_at_stop(choice.text, sampling.stop)
        reason = "length" if choice.finish_reason == "length" else "stop"
        return Completion(text, len(output.prompt_token_ids), len(choice.token_ids), reason)
