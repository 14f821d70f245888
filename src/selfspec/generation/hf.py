"""``transformers`` backend: batched generation with left padding and a KV cache.

Left padding keeps every prompt's last token at the same position, so one ``generate`` call
continues all of them. Stop strings are transformers' own ``StopStringCriteria`` (what
``generate(stop_strings=..., tokenizer=...)`` builds; here built once per stop list): per
sequence, whatever number of tokens a stop string spans; a finished sequence only receives
padding afterwards and the batch ends when all are finished. The repetition penalty counts
generated tokens only unless ``penalize_prompt``: the demos and passages in a prompt are there to
be copied from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selfspec.generation import Completion, Sampling, cut_at_stop, prompt_token_ids

log = logging.getLogger(__name__)

# How prompts become ids (see ``prompt_token_ids``); in describe(), so it enters the resume keys.
PROMPT_ENCODING = "tokenizer-special-tokens"


class TransformersGenerator:
    name = "transformers"

    def __init__(
        self, model: Any, tokenizer: Any, device: str, label: str = "", penalize_prompt: bool = False
    ):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.label, self.penalize_prompt = label, penalize_prompt
        self.merged: dict[str, Any] | None = None  # base + adapter of a merged folder (loading.save_merged)
        self._stops: dict[tuple[str, ...], Any] = {}
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.end_ids = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}

    @classmethod
    def from_params(cls, params, model_path: str | Path | None = None) -> TransformersGenerator:
        from selfspec.loading import load_model, load_tokenizer, merged_identity, prepared_dir
        from selfspec.runtime import resolve_device, resolve_dtype

        device = resolve_device(params.base.device)
        dtype = resolve_dtype(params.base.dtype, device)
        folder = prepared_dir(model_path)
        model, tokenizer = load_model(folder, dtype, device), load_tokenizer(folder)
        label = str(model_path or "models/prepare_model")
        generator = cls(model, tokenizer, device, label, params.generation.penalize_prompt)
        generator.merged = merged_identity(folder)
        return generator

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.label,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "device": self.device,
            "prompt_encoding": PROMPT_ENCODING,
        } | ({"merged": self.merged} if self.merged else {})

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
        # the context left after max_new_tokens; a longer prompt keeps its end and its BOS
        limit = getattr(self.model.config, "max_position_embeddings", None)
        ids = prompt_token_ids(self.tokenizer, prompts, max(8, limit - max_new_tokens) if limit else None)
        enc = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def _generate_kwargs(self, sampling: Sampling, prompt_len: int) -> dict[str, Any]:
        sample = sampling.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "do_sample": sample,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
            **self._penalty_kwargs(sampling.repetition_penalty, prompt_len),
        }
        if sample:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:  # greedy: the model's generation_config may carry sampling defaults; neutralise them
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs["stopping_criteria"] = self._stop_criteria(tuple(sampling.stop))
        return kwargs

    def _stop_criteria(self, stop: tuple[str, ...]) -> Any:
        """transformers' ``StopStringCriteria`` (what ``generate(stop_strings=...)`` builds), built
        once per stop list: building it scans the whole vocabulary (0.75 s for SmolLM2's 49K tokens,
        measured), and it keeps no state between calls."""
        if stop not in self._stops:
            from transformers import StoppingCriteriaList, StopStringCriteria

            self._stops[stop] = StoppingCriteriaList([StopStringCriteria(self.tokenizer, list(stop))])
        return self._stops[stop]

    def _penalty_kwargs(self, penalty: float, prompt_len: int) -> dict[str, Any]:
        """``generate`` penalises every token of the (padded) input; a processor of the same type
        passed in takes the built-in one's place in the chain, here told to skip the prompt."""
        if penalty == 1.0 or self.penalize_prompt:
            return {"repetition_penalty": penalty}
        from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor

        generated_only = RepetitionPenaltyLogitsProcessor(float(penalty), prompt_ignore_length=prompt_len)
        return {"repetition_penalty": penalty, "logits_processor": LogitsProcessorList([generated_only])}

    def _completion(self, ids: list[int], prompt_tokens: int, sampling: Sampling) -> Completion:
        n = next((i for i, t in enumerate(ids) if t in self.end_ids), None)
        ended = n is not None
        kept = ids if n is None else ids[:n]
        text, stopped = cut_at_stop(self.tokenizer.decode(kept, skip_special_tokens=True), sampling.stop)
        count = len(kept) + (1 if ended and ids[n] == self.tokenizer.eos_token_id else 0)
        done = ended or stopped or len(ids) < sampling.max_new_tokens
        return Completion(text, prompt_tokens, count, "stop" if done else "length")
