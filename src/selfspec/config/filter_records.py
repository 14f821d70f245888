from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class FilterRecordsParams:
    """Filters on generated records (issue: self-generation)."""

    contamination_ngram: int = knob(
        13,
        gt=0,
        help="n-gram size of the evaluation-overlap check; a shorter evaluation text is matched whole",
    )
    contamination_min_words: int = knob(
        3,
        ge=1,
        help="evaluation texts with fewer words with letters are not checked (a heading matches anything)",
    )
    evals_dir: str = knob(
        "data/prepare_evals", help="*.jsonl (question, options, context); one set per file; missing: no check"
    )
    min_output_words: int = knob(1, ge=1)
    max_output_words: int = knob(300, gt=0, help="longer outputs are dropped as over-long")
    truncated: str = knob(
        "trim",
        choices=["drop", "trim", "keep"],
        help="responses that hit max_new_tokens: drop; trim back to the last full sentence (dropped "
        "when there is none); keep as they are",
    )
    max_repeat_ratio: float = knob(
        0.25, gt=0, le=1, help="degenerate if repeated word 4-grams make up more than this share"
    )
    near_dup_threshold: float = knob(0.8, gt=0, le=1, help="Jaccard of word 3-grams of instruction+input")
    min_support: float = knob(
        0.05, ge=0, le=1, help="drop if under this share of the answer's content words are in input/passages"
    )
    min_agreement: float = knob(
        0.6, ge=0, le=1, help="drop a voted answer (gen_responses.consistency_samples) with less agreement"
    )
    check_labels: bool = knob(True, help="drop a classification answer that gives none of its labels")
    min_judge_score: int = knob(0, ge=0, le=5, help="drop a judged record rated under this; 0: off")
    max_label_share: float = knob(
        1.0, ge=0, le=1, help="cut a task type's most frequent answer label back to this share of its "
        "labelled answers (the model's label bias); 1: off",
    )  # fmt: skip
