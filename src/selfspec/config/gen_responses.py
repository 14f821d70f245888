from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class GenResponsesParams:
    """Retrieval-grounded responses (issue: self-generation)."""

    retrieval: bool = knob(True, help="ground responses in retrieved passages (the paper ablation)")
    top_k: int = knob(2, gt=0, help="passages per prompt")
    n_demos: int = knob(3, ge=0, help="seed demonstrations per prompt")
    temperature: float = knob(0.0, ge=0, help="0: greedy (as in the paper)")
    top_p: float = knob(1.0, gt=0, le=1)
    repetition_penalty: float = knob(1.1, ge=1, help="transformers/vllm only; 1.0: off")
    max_new_tokens: int = knob(128, gt=0, help="cut answers are trimmed or dropped: filter_records.truncated")
    budget_by_type: bool = knob(
        True, help="a task type's answers get at most 2 tokens a word of its longest seed answer (+8), "
        "batched together; false: max_new_tokens for every answer",
    )  # fmt: skip
    passage_max_words: int = knob(60, gt=0, help="retrieved passages are cut to this many words")
    demo_max_words: int = knob(40, gt=0, help="seed demonstration inputs/outputs are cut to this")
    cut: str = knob(
        "sentences", choices=["sentences", "words"], help="how demos and passages are shortened: whole "
        "sentences or the first N words (before issue 13)",
    )  # fmt: skip
    demo_candidates: int = knob(
        8, ge=0, help="draw n_demos of this many nearest seeds per record; <= n_demos: the nearest only"
    )
    demo_match_type: bool = knob(True, help="rank seeds of the record's task_type first")
    consistency_samples: int = knob(
        0, ge=0, help="self-consistency: extra sampled answers for short and classification answers; 0: off"
    )
    consistency_temperature: float = knob(0.7, gt=0, help="temperature of the self-consistency samples")
    consistency_max_words: int = knob(12, gt=0, help="answers up to this long (or with labels) are voted on")
    judge: bool = knob(False, help="the model rates every record 1-5 against prompts/judge.yaml's rubric")
