"""``vllm`` backend: in-process vLLM on a GPU (optional extra: ``pip install 'selfspec[vllm]'``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selfspec.errors import missing_extra
from selfspec.generation import Completion, Sampling, cut_at_stop


def _import_vllm():
    try:
        import vllm
    except ImportError:
        raise missing_extra("vllm", "vllm") from None
    return vllm


class VLLMGenerator:
    name = "vllm"

    def __init__(self, llm: Any, label: str):
        self.llm, self.label = llm, label

    @classmethod
    def from_params(cls, params, model_path: str | Path | None = None) -> VLLMGenerator:
        vllm = _import_vllm()
        path = str(model_path or "models/prepare_model")
        dtype = "auto" if params.base.dtype == "auto" else params.base.dtype
        return cls(vllm.LLM(model=path, dtype=dtype, seed=params.base.seed), path)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.label}

    def generate(self, prompts: Sequence[str], sampling: Sampling, seed: int) -> list[Completion]:
        vllm = _import_vllm()
        # one SamplingParams per prompt: each gets its own seed, so a prompt's sample does not
        # depend on its neighbours in the batch
        per_prompt = [
            vllm.SamplingParams(
                max_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                stop=list(sampling.stop),
                repetition_penalty=sampling.repetition_penalty,
                seed=seed + i,
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(list(prompts), per_prompt, use_tqdm=False)
        return [self._completion(o, sampling) for o in outputs]

    @staticmethod
    def _completion(output: Any, sampling: Sampling) -> Completion:
        choice = output.outputs[0]
        text, _ = cut_at_stop(choice.text, sampling.stop)
        reason = "length" if choice.finish_reason == "length" else "stop"
        return Completion(text, len(output.prompt_token_ids), len(choice.token_ids), reason)
