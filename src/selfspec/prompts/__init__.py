"""Prompt templates as data: ``<name>.yaml`` holds the Jinja template, its stop strings and the
settings its parser reads; ``<name>.py`` beside it parses what the model wrote.

Templates are raw few-shot text, never a chat template: small instruct models continue a
pattern of examples far more reliably than they follow a request to invent tasks. Rendering
uses ``StrictUndefined``, so a missing variable is an error, not an empty string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from selfspec.errors import ConfigError

PROMPTS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Prompt:
    name: str
    source: str  # the template text (hashed into resume keys)
    stop: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def render(self, **values: Any) -> str:
        import jinja2

        try:
            return _compile(self.source).render(**values)
        except jinja2.UndefinedError as e:
            raise ConfigError(f"prompt {self.name!r}: {e.message}") from None


@cache
def _compile(source: str):
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(source)


@cache
def load_prompt(name: str) -> Prompt:
    """``prompts/<name>.yaml``: ``template`` (Jinja), ``stop`` (list) and optional ``settings``."""
    import yaml

    path = PROMPTS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no such prompt")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("template", "stop"):
        if key not in data:
            raise ConfigError(f"{path}: {key}: missing")
    return Prompt(name, data["template"], tuple(data["stop"]), dict(data.get("settings") or {}))
