from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob

BLACKLIST = [
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
    "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram", "photo", "url",
    "http", "website", "link", "click", "download", "task", "tasks", "wikipedia", "chapter",
]  # fmt: skip
# An instruction is a question (ends with "?") or starts with one of these verbs (or with a word
# that starts a seed instruction); anything else is a statement, not a task.
TASK_VERBS = [
    "answer", "assess", "calculate", "choose", "classify", "compare", "contrast", "convert", "define",
    "describe", "determine", "diagnose", "discuss", "estimate", "evaluate", "explain", "extract",
    "find", "give", "identify", "interpret", "list", "name", "outline", "paraphrase", "predict",
    "propose", "provide", "rank", "read", "recommend", "rewrite", "select", "simplify", "state",
    "suggest", "summarize", "summarise", "translate", "write",
    "analyze", "analyse", "appraise", "assign", "briefly", "categorize", "categorise", "correct", "critique",
    "decide", "differentiate", "distinguish", "draft", "expand", "generate", "label", "match", "pick",
    "review", "tag",
]  # fmt: skip
BAD_STARTS = ["write a program", "write a code", "write a function", "answer:", "output:", "input:"]


@dataclass
class GenInstructionsParams:
    """Self-Instruct brainstorming of new domain instructions (issue: self-generation)."""

    n_instructions: int = knob(200, gt=0, help="instructions to keep")
    seeds_per_prompt: int = knob(3, gt=0, help="seed instructions shown in each prompt")
    temperature: float = knob(0.7, ge=0, help="the paper: 1.0; a 135M model rambles there")
    top_p: float = knob(0.98, gt=0, le=1)
    max_new_tokens: int = knob(96, gt=0, help="per prompt; a prompt yields one or more tasks")
    max_prompts: int = knob(800, gt=0, help="attempt budget: stop after this many prompts")
    rouge_threshold: float = knob(0.7, gt=0, le=1, help="drop if ROUGE-L F1 vs any pooled instruction >")
    min_words: int = knob(4, ge=1)
    max_words: int = knob(60, ge=1)
    blacklist: list[str] = knob(factory=lambda: list(BLACKLIST), help="drop if any word/phrase occurs")
    bad_starts: list[str] = knob(factory=lambda: list(BAD_STARTS), help="drop if the text starts so")
    task_verbs: list[str] = knob(
        factory=lambda: list(TASK_VERBS), help="else a question, or not a task; []: no check"
    )
    seed_first_words: bool = knob(
        False, help="also accept every seed's first word as a verb (before issue 13: 'a', 'in', 'given'...)"
    )
    generated_per_prompt: int = knob(
        2, ge=0, help="kept instructions shown after the seeds in each prompt (Self-Instruct: 2 of 8)"
    )
    charset: str = knob(
        "latin_greek",
        choices=["ascii", "latin_greek"],
        help="ascii: any non-ASCII character drops the task (bad_start); latin_greek: µ, β, ° pass, "
        "other scripts are dropped as foreign_script",
    )
    task_types: bool = knob(
        True, help="label each task with the nearest seed's task_type and is_classification ('' / false)"
    )

    def check(self) -> None:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words: must be <= max_words ({self.max_words}), got {self.min_words}")
        if self.seeds_per_prompt + self.generated_per_prompt > 8:
            raise ValueError(
                f"seeds_per_prompt: with generated_per_prompt at most 8 fit the prompt's list, got "
                f"{self.seeds_per_prompt} + {self.generated_per_prompt}"
            )
