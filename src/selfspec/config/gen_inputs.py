from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob

# Tasks on a text a corpus passage can be: extraction, classification, yes/no over an abstract,
# summarisation (not clinical notes, lab panels or vignettes, which abstracts are not).
CORPUS_TASK_TYPES = [
    "entity_extraction", "relation_extraction", "document_classification", "yes_no_qa", "summarization",
    "evidence_appraisal",
]  # fmt: skip


@dataclass
class GenInputsParams:
    """An input context for each instruction that needs one (issue: self-generation)."""

    temperature: float = knob(0.7, ge=0)
    top_p: float = knob(0.95, gt=0, le=1)
    max_new_tokens: int = knob(128, gt=0)
    n_demos: int = knob(3, ge=1, help="seed (instruction, input) demonstrations per prompt")
    demo_max_words: int = knob(80, gt=0, help="seed inputs are cut to this many words in prompts")
    min_words: int = knob(3, ge=1, help="a shorter generated input drops the record")
    cut: str = knob(
        "sentences", choices=["sentences", "words"], help="how demo inputs are shortened: whole sentences "
        "(the first and the last that fit) or the first demo_max_words words (before issue 13)",
    )  # fmt: skip
    source: str = knob(
        "corpus",
        choices=["generated", "corpus", "mixed"],
        help="inputs written by the model, real corpus passages retrieved for the instruction, or "
        "passages for the corpus_task_types and written inputs for the rest",
    )
    corpus_task_types: list[str] = knob(
        factory=lambda: list(CORPUS_TASK_TYPES), help="mixed: task types whose input is a corpus passage"
    )
    corpus_top_k: int = knob(
        30, gt=0, help="passages retrieved per instruction; the best usable unused one is taken"
    )
    inputs_per_instruction: int = knob(
        4, ge=1, help="corpus inputs: records per instruction, one per distinct passage (written inputs: one)"
    )
    corpus_min_words: int = knob(
        80,
        ge=1,
        help="shorter passages (ontology definitions) are not the abstracts and texts tasks are about",
    )
    corpus_max_words: int = knob(120, gt=0, help="a corpus input is cut to whole sentences within this")
    classification: str = knob(
        "input_first",
        choices=["input_first", "output_first"],
        help="generated inputs of classification tasks: written for the instruction alone, or for a "
        "label drawn evenly from its label space first (Self-Instruct); the label is the answer",
    )
