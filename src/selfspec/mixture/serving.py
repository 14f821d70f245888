"""Serving a mixture: one base in memory with every expert adapter loaded beside it (PEFT
``load_adapter``), the router reading the base with adapters disabled, then ``set_adapter`` to the
chosen expert for generation. Each request's chosen expert is logged and returned with its answer.

Used by the MLflow pyfunc (``pyfunc_model.py``) and directly:
``MixtureServer("deploy/mixture", "models/prepare_model").predict(["..."])``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GENERATION_DEFAULTS = {"max_new_tokens": 128, "do_sample": False, "temperature": 1.0, "top_p": 1.0}


class MixtureServer:
    def __init__(self, folder: str | Path, base_dir: str | Path, dtype: str = "float32", device: str = "cpu"):
        from selfspec.deploy import MANIFEST
        from selfspec.io import read_json
        from selfspec.loading import load_experts, load_tokenizer
        from selfspec.mixture.router import load_router

        folder = Path(folder)
        self.manifest = read_json(folder / MANIFEST)
        self.router = load_router(folder / self.manifest["router"])
        adapters = {e["name"]: folder / e["adapter"] for e in self.manifest["experts"]}
        if list(adapters) != self.router.config.experts:
            raise ValueError(
                f"{folder}: router experts {self.router.config.experts} != manifest {list(adapters)}"
            )
        self.model = load_experts(base_dir, adapters, dtype, device)
        self.tokenizer = load_tokenizer(base_dir)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def route(self, prompts: list[str]) -> list[tuple[str, float]]:
        """Top-1 expert and its router probability per prompt (the prompt is what the router reads)."""
        from selfspec.mixture.router import features

        cfg = self.router.config
        return self.router.route(features(self.model, self.tokenizer, prompts, cfg.max_length, 16))

    def predict(self, prompts: list[str], **generation: Any) -> list[dict[str, Any]]:
        """``{"expert", "probability", "text"}`` per prompt, in order; prompts are grouped by expert so
        each adapter is switched to once per call."""
        settings = {**GENERATION_DEFAULTS, **{k: v for k, v in generation.items() if v is not None}}
        routes = self.route(prompts)
        texts: dict[int, str] = {}
        for expert in dict.fromkeys(name for name, _ in routes):
            idx = [i for i, (name, _) in enumerate(routes) if name == expert]
            self.model.set_adapter(expert)
            for i, text in zip(idx, self.generate([prompts[i] for i in idx], settings), strict=True):
                texts[i] = text
        rows = []
        for i, (expert, p) in enumerate(routes):
            log.info("routed input %d to expert %s (p=%.3f)", i, expert, p)
            rows.append({"expert": expert, "probability": p, "text": texts[i]})
        return rows

    def generate(self, prompts: list[str], settings: dict[str, Any]) -> list[str]:
        """The active adapter's answers, prompts rendered with the template the experts were trained on."""
        import torch

        from selfspec.training.data import render_prompt

        template = self.manifest.get("template", "alpaca")
        rendered = [render_prompt({"instruction": p, "input": ""}, template, self.tokenizer) for p in prompts]
        enc = self.tokenizer(
            rendered,
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=template == "alpaca",
        ).to(self.model.device)  # as training does
        sampling = (
            {"temperature": settings["temperature"], "top_p": settings["top_p"]}
            if settings["do_sample"]
            else {}
        )
        with torch.no_grad():
            out = self.model.generate(
                **enc, max_new_tokens=int(settings["max_new_tokens"]), do_sample=bool(settings["do_sample"]),
                pad_token_id=self.tokenizer.pad_token_id, **sampling,
            )  # fmt: skip
        new = out[:, enc["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
