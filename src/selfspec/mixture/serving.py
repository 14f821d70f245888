"""Serving a mixture: one base in memory with every expert adapter loaded beside it (PEFT
``load_adapter``), the router reading the base with adapters disabled, then ``set_adapter`` to the
chosen expert for generation. Each request's chosen expert is logged and returned with its answer.

Used by the MLflow pyfunc (``pyfunc_model.py``) and directly:
``MixtureServer("deploy/mixture", "models/prepare_model").predict(["..."])``. ``RoutingFront`` is the
router alone, for a multi-LoRA server (vLLM) that holds the experts: it names the expert per request.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GENERATION_DEFAULTS = {"max_new_tokens": 128, "do_sample": False, "temperature": 1.0, "top_p": 1.0}


def padded_tokenizer(base_dir: str | Path):
    """The base's tokenizer, with eos as the pad token when it has none (batches are padded)."""
    from selfspec.loading import load_tokenizer

    tokenizer = load_tokenizer(base_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def open_mixture(folder: Path) -> tuple[dict[str, Any], Any, dict[str, Path]]:
    """A mixture folder's manifest, router and expert adapter folders (name -> path, router order)."""
    from selfspec.deploy import MANIFEST
    from selfspec.io import read_json
    from selfspec.mixture.router import load_router

    manifest = read_json(folder / MANIFEST)
    router = load_router(folder / manifest["router"])
    adapters = {e["name"]: folder / e["adapter"] for e in manifest["experts"]}
    if list(adapters) != router.config.experts:
        raise ValueError(f"{folder}: router experts {router.config.experts} != manifest {list(adapters)}")
    return manifest, router, adapters


def _route(router, model, tokenizer, prompts: list[str]) -> list[tuple[str, float]]:
    from selfspec.mixture.router import features

    return router.route(features(model, tokenizer, prompts, router.config.max_length, 16))


def render(prompts: list[str], template: str, tokenizer) -> list[str]:
    """Requests as the experts were trained to read them (the training template, ``{prompt}`` as the
    instruction): what to send to a server that applies no template, such as vLLM's completions."""
    from selfspec.training.data import render_prompt

    return [render_prompt({"instruction": p, "input": ""}, template, tokenizer) for p in prompts]


class RoutingFront:
    """The router alone (with the plain base for its features), in front of a server that holds the
    experts, e.g. vLLM with ``--enable-lora --lora-modules`` (docs/mixture.md)."""

    def __init__(self, folder: str | Path, base_dir: str | Path, dtype: str = "float32", device: str = "cpu"):
        from selfspec.loading import load_model

        self.folder = Path(folder)
        self.manifest, self.router, self.adapters = open_mixture(self.folder)
        self.model = load_model(base_dir, dtype, device)
        self.tokenizer = padded_tokenizer(base_dir)

    def route(self, prompts: list[str]) -> list[tuple[str, float]]:
        return _route(self.router, self.model, self.tokenizer, prompts)

    def lora_modules(self) -> list[str]:
        """``NAME=PATH`` per expert: the arguments of ``vllm serve --lora-modules``."""
        return [f"{name}={path.resolve()}" for name, path in self.adapters.items()]

    def requests(self, prompts: list[str], max_tokens: int = 128) -> list[dict[str, Any]]:
        """One OpenAI-compatible completion body per prompt, its ``model`` the chosen expert's name."""
        routes = self.route(prompts)
        texts = render(prompts, self.manifest.get("template", "alpaca"), self.tokenizer)
        for i, (expert, p) in enumerate(routes):
            log.info("routed input %d to expert %s (p=%.3f)", i, expert, p)
        return [{"model": e, "prompt": t, "max_tokens": max_tokens, "temperature": 0.0}
                for (e, _), t in zip(routes, texts, strict=True)]  # fmt: skip


class MixtureServer:
    """Router and experts in one process: the base once, every adapter loaded beside it."""

    def __init__(self, folder: str | Path, base_dir: str | Path, dtype: str = "float32", device: str = "cpu"):
        from selfspec.loading import load_experts

        self.manifest, self.router, adapters = open_mixture(Path(folder))
        self.model = load_experts(base_dir, adapters, dtype, device)
        self.tokenizer = padded_tokenizer(base_dir)

    def route(self, prompts: list[str]) -> list[tuple[str, float]]:
        """Top-1 expert and its router probability per prompt (the prompt is what the router reads);
        the features come from the base with every adapter disabled."""
        return _route(self.router, self.model, self.tokenizer, prompts)

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

        template = self.manifest.get("template", "alpaca")
        rendered = render(prompts, template, self.tokenizer)
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
