from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class GenerationParams:
    """The generation backend shared by the gen_* stages (issue: self-generation).

    ``openai`` reads its server from the environment only: SELFSPEC_OPENAI_BASE_URL (e.g.
    http://host:8000/v1) and OPENAI_API_KEY.
    """

    backend: str = knob("transformers", choices=["transformers", "openai", "vllm"])
    batch_size: int = knob(8, gt=0, help="prompts per batch (transformers) or concurrent requests (openai)")
    openai_model: str = knob("", help="model name sent to the server; empty: the server's first model")
    max_retries: int = knob(5, ge=0, help="openai: retries of a failed request (429, 5xx, connection)")
    request_timeout: float = knob(120.0, gt=0, help="openai: seconds per request")
    penalize_prompt: bool = knob(
        False, help="repetition penalty also on prompt tokens (demos, passages); false: generated tokens only"
    )
    vllm_max_model_len: int = knob(0, ge=0, help="vllm: context to allocate KV cache for; 0: the model's")
    vllm_gpu_memory_utilization: float = knob(0.9, gt=0, le=1, help="vllm: share of GPU memory it may take")
