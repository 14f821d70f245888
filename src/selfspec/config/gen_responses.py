from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class GenResponsesParams:
    """Retrieval-grounded responses (issue: self-generation)."""

    retrieval: bool = knob(True, help="ground responses in retrieved passages (the paper ablation)")
    top_k: int = knob(3, gt=0, help="passages per prompt")
    n_demos: int = knob(5, ge=0, help="seed demonstrations per prompt")
    temperature: float = knob(0.0, ge=0, help="0: greedy (as in the paper)")
    top_p: float = knob(1.0, gt=0, le=1)
    repetition_penalty: float = knob(1.1, ge=1, help="transformers/vllm only; 1.0: off")
    max_new_tokens: int = knob(128, gt=0, help="cut answers are trimmed or dropped: filter_records.truncated")
    passage_max_words: int = knob(80, gt=0, help="retrieved passages are cut to this many words")
    demo_max_words: int = knob(40, gt=0, help="seed demonstration inputs/outputs are cut to this")
