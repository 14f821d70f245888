"""``transformers`` backend: batched generation with left padding and a KV cache.

Left padding keeps every prompt's last token at the same position, so one ``generate`` call
continues all of them. Stop strings are checked per sequence on the decoded tail, and a finished
sequence only receives padding afterwards; the batch ends when all are finished.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selfspec.generation import Completion, Sampling, cut_at_stop

log = logging.getLogger(__name__)

# Decoded tail checked for stop strings each step: longer than any stop string in tokens.
STOP_TAIL_TOKENS = 12


class TransformersGenerator:
    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any, device: str, label: str = ""):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.label = label
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.end_ids = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}

    @classmethod
    def from_params(cls, params, model_path: str | Path | None = None) -> TransformersGenerator:
        from selfspec.loading import load_model, load_tokenizer, prepared_dir
        from selfspec.runtime import resolve_device, resolve_dtype

        device = resolve_device(params.base.device)
        dtype = resolve_dtype(params.base.dtype, device)
        folder = prepared_dir(model_path)
        model, tokenizer = load_model(folder, dtype, device), load_tokenizer(folder)
        return cls(model, tokenizer, device, label=str(model_path or "models/prepare_model"))

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.label,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "device": self.device,
        }

    def generate(self, prompts: Sequence[str], sampling: Sampling, seed: int) -> list[Completion]:
        import torch

        batch = self._encode(prompts, sampling.max_new_tokens)
        prompt_len = batch["input_ids"].shape[1]
        torch.manual_seed(seed)  # the batch's seed: sampling depends on this batch alone
        with torch.inference_mode():
            out = self.model.generate(**batch, **self._generate_kwargs(sampling, prompt_len))
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [
            self._completion(row[prompt_len:].tolist(), n, sampling)
            for row, n in zip(out, lengths, strict=True)
        ]

    def _encode(self, prompts: Sequence[str], max_new_tokens: int) -> dict[str, Any]:
        # A prompt longer than the context left after max_new_tokens keeps its end (the part the
        # model must continue); few-shot demonstrations at the start are what gets cut.
        limit = getattr(self.model.config, "max_position_embeddings", None)
        kwargs: dict[str, Any] = {}
        if limit:
            self.tokenizer.truncation_side = "left"
            kwargs = {"truncation": True, "max_length": max(8, limit - max_new_tokens)}
        enc = self.tokenizer(
            list(prompts), return_tensors="pt", padding=True, add_special_tokens=False, **kwargs
        )
        return {k: v.to(self.device) for k, v in enc.items()}

    def _generate_kwargs(self, sampling: Sampling, prompt_len: int) -> dict[str, Any]:
        from transformers import StoppingCriteriaList

        sample = sampling.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "do_sample": sample,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
            "repetition_penalty": sampling.repetition_penalty,
        }
        if sample:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:  # greedy: the model's generation_config may carry sampling defaults; neutralise them
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            stop = StopOnStrings(self.tokenizer, sampling.stop, prompt_len)
            kwargs["stopping_criteria"] = StoppingCriteriaList([stop])
        return kwargs

    def _completion(self, ids: list[int], prompt_tokens: int, sampling: Sampling) -> Completion:
        n = next((i for i, t in enumerate(ids) if t in self.end_ids), None)
        ended = n is not None
        kept = ids if n is None else ids[:n]
        text, stopped = cut_at_stop(self.tokenizer.decode(kept, skip_special_tokens=True), sampling.stop)
        count = len(kept) + (1 if ended and ids[n] == self.tokenizer.eos_token_id else 0)
        done = ended or stopped or len(ids) < sampling.max_new_tokens
        return Completion(text, prompt_tokens, count, "stop" if done else "length")


class StopOnStrings:
    """Per-sequence stopping criterion: True for a row once its generated tail holds a stop string."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_len: int):
        self.tokenizer, self.stop, self.prompt_len = tokenizer, tuple(stop), prompt_len

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        tails = input_ids[:, max(self.prompt_len, input_ids.shape[1] - STOP_TAIL_TOKENS) :]
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        done = [any(s in t for s in self.stop) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
