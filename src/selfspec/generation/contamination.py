"""Evaluation-set overlap ("contamination"): does a generated record share a word n-gram with an
evaluation item?

Each evaluation text is checked with ``n = min(ngram, its length)`` words, so a question shorter
than ``ngram`` words (many MedMCQA stems) is matched whole instead of never. An item gives up to three
texts: its question; the question followed by its answer options (as the model reads it, so a copy of
the stem with its options is caught, and a long option on its own); and its context (PubMedQA's
abstract). They are kept apart so that no n-gram spans the question and its context. Options are not
checked on their own: a one-word option ("Aspirin") would drop every record that names it.

Why not ``lm_eval.decontamination``: its ``decontaminate`` scans Pile-style 13-gram bucket files on
disk and pickles lookups under ``./data/<task>``; its ``Janitor`` uses one fixed n (a text shorter than
n registers nothing: the bug fixed here), cuts contaminated spans out of a training text instead of
dropping the record, and cannot say which evaluation set matched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from selfspec.generation.text import ngrams, words


def item_texts(item: Mapping[str, Any]) -> list[str]:
    """The texts of one evaluation item (a ``prepare_evals`` jsonl record) that are checked."""
    question = item.get("question") if isinstance(item.get("question"), str) else ""
    options = item.get("options", item.get("choices"))
    options = [o for o in options if isinstance(o, str)] if isinstance(options, list) else []
    texts = [question, " ".join([question, *options]) if options else ""]
    for field in ("context", "long_answer"):  # PubMedQA's abstract; the conclusion pubmedqa_long scores
        if isinstance(item.get(field), str):
            texts.append(item[field])
    return [t for t in texts if t.strip()]


class EvalOverlap:
    """Word n-grams of every evaluation text, each mapped to the evaluation sets it comes from."""

    def __init__(self, sets: Mapping[str, Iterable[str]], ngram: int = 13, min_words: int = 1):
        self.ngram, self.min_words = ngram, min_words
        self.grams: dict[int, dict[tuple[str, ...], set[str]]] = {}
        self.texts: Counter[str] = Counter({name: 0 for name in sets})
        # texts with fewer than min_words words with letters ("RESULTS.", "9 and 8.": NCBI-disease splits
        # abstracts into such "sentences") say nothing about contamination and would match every record
        self.too_short: Counter[str] = Counter({name: 0 for name in sets})
        for name, texts in sets.items():
            for text in texts:
                self.add(name, text)

    def add(self, name: str, text: str) -> None:
        tokens = words(text)
        if not tokens:
            return
        if sum(any(c.isalpha() for c in t) for t in tokens) < self.min_words:
            self.too_short[name] += 1
            return
        table = self.grams.setdefault(min(self.ngram, len(tokens)), {})
        for gram in ngrams(tokens, min(self.ngram, len(tokens))):
            table.setdefault(gram, set()).add(name)
        self.texts[name] += 1

    def match(self, text: str) -> set[str]:
        """The evaluation sets that share an n-gram with ``text`` (empty: clean)."""
        tokens = words(text)
        found: set[str] = set()
        for size, table in self.grams.items():
            for gram in ngrams(tokens, size):
                found |= table.get(gram, set())
        return found

    def __bool__(self) -> bool:
        return bool(self.grams)
