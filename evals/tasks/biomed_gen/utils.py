"""The generative biomedical tasks (group ``biomed_gen``): prompts, answer parsers and metrics.

Prompts: an (instruction, input) pair per document, rendered through the training template by
``selfspec.evaluation.instruct.render``, so the base and the specialized model read identical text,
in the form the adapter was tuned on. Parsers forgive form (case, punctuation, quotes, a leading
"Answer:", list markers and separators, "none") but never guess: an answer that does not start with
a label is wrong, and listed strings count only when they equal a gold mention after
:func:`normalise`. Metric contract (evals/README.md): ``process_results`` returns per-document values
such that the metric's aggregation applied to any resampled list of them is the metric; the
corpus-level aggregations accept tuples or lists (values come back from JSON as lists).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from selfspec.evaluation.instruct import render

# --- normalising and parsing ---------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_ARTICLES = ("the", "a", "an")
# "Answer:", "The answer (to the question) is", "Relation -", "The diseases mentioned are" ... at the
# very start, possibly twice
_LEAD = re.compile(
    r"^\W*(?:(?:the\s+)?(?:final\s+)?(?:answer|response|output|relation(?:ship)?|label|diseases?|"
    r"proteins?|entities)(?:\s+(?:to\s+the\s+question|mentioned))?(?:\s+(?:is|are)\b)?\s*[:=\-]*)\s*",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(r"[,;\n|\u2022]+|(?<!\d)\.\s+")  # not "1. " (numbering)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d{1,2}[.)])\s+")
_NONE = re.compile(r"^(?:none|nil|n/?a|nothing)\b|^no\s+(?:disease|protein|entit|mention|name)", re.I)


def normalise(text: str) -> str:
    """The form mentions are compared in: NFKC, lowercase, every run of characters other than ASCII
    letters and digits becomes one space, and a leading article (the / a / an) is dropped.
    "Breast-Cancer." == "breast cancer"; "IL-2" == "il 2" but != "il2"; plurals stay distinct."""
    words = _NON_ALNUM.sub(" ", unicodedata.normalize("NFKC", text).lower()).split()
    if len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def strip_lead(text: str) -> str:
    for _ in range(2):
        text = _LEAD.sub("", text.strip(), count=1)
    return text


def _leading_label(text: str, label_of: Callable[[str], str]) -> str:
    """The label the answer's first word names, else "". An answer that starts with two different
    labels ("Yes, no, maybe", "activation, inhibition, ...") copies the option list: no answer."""
    words = [w for w in re.findall(r"[a-z]+", strip_lead(text).lower())[:4] if w not in ("or", "and")]
    first = label_of(words[0]) if words else ""
    second = label_of(words[1]) if len(words) > 1 else ""
    return "" if second and second != first else first


YES_NO_MAYBE = ("yes", "no", "maybe")


def parse_yes_no_maybe(text: str) -> str:
    """yes / no / maybe when the answer starts with it, else "" (scored as wrong)."""
    return _leading_label(text, lambda w: w if w in YES_NO_MAYBE else "")


# word stems -> CPR group; "antagonis" comes first: "agonis" would not match it anyway (prefix test)
RELATION_STEMS = (
    ("antagonis", "antagonist"), ("agonis", "agonist"), ("activat", "activation"),
    ("upregulat", "activation"), ("inhibit", "inhibition"), ("downregulat", "inhibition"),
    ("substrat", "substrate"), ("product", "substrate"),
)  # fmt: skip


def _relation_of(word: str) -> str:
    return next((group for stem, group in RELATION_STEMS if word.startswith(stem)), "")


def parse_relation(text: str) -> str:
    """The CPR group the answer's first word names ("Inhibitor." -> inhibition), else ""."""
    return _leading_label(text, _relation_of)


def parse_mentions(text: str) -> set[str]:
    """The normalised mentions of a list answer: split at commas, semicolons, newlines and bars;
    bullets and numbering dropped; "none" (or "no diseases ...") items mean nothing listed."""
    items = set()
    for part in _SEPARATORS.split(strip_lead(text)):
        part = _BULLET.sub("", part).strip()
        if part and not _NONE.match(part) and (norm := normalise(part)):
            items.add(norm)
    return items


# --- aggregations (corpus-level; each takes the per-document values of a sample) ---------------------


def _counts(items: Sequence[Sequence[int]]) -> tuple[int, int, int]:
    tp, fp, fn = (sum(int(item[k]) for item in items) for k in range(3))
    return tp, fp, fn


def precision(items: Sequence[Sequence[int]]) -> float:
    """Micro precision over (tp, fp, fn) per document."""
    tp, fp, _ = _counts(items)
    return tp / (tp + fp) if tp + fp else 0.0


def recall(items: Sequence[Sequence[int]]) -> float:
    tp, _, fn = _counts(items)
    return tp / (tp + fn) if tp + fn else 0.0


def f1(items: Sequence[Sequence[int]]) -> float:
    """Micro F1 = 2 tp / (2 tp + fp + fn); 0 when nothing was listed and nothing was to be found."""
    tp, fp, fn = _counts(items)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def macro_f1(items: Sequence[Sequence[str]]) -> float:
    """Mean per-class F1 over (gold, pred) pairs. Classes: the labels that occur as gold or as a
    prediction; an unparseable prediction ("") is no class, only a miss of its gold class."""
    classes = sorted({g for g, _ in items} | {p for _, p in items if p})
    scores = []
    for c in classes:
        tp = sum(g == c and p == c for g, p in items)
        fp = sum(g != c and p == c for g, p in items)
        fn = sum(g == c and p != c for g, p in items)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


# --- per-document scoring --------------------------------------------------------------------------


def score_mentions(gold: Sequence[str], answer: str) -> dict[str, list[int]]:
    """Entity-level counts on normalised, de-duplicated strings: [tp, fp, fn] for each of P/R/F1."""
    wanted = {n for g in gold if (n := normalise(g))}
    listed = parse_mentions(answer)
    counts = [len(wanted & listed), len(listed - wanted), len(wanted - listed)]
    return {"precision": counts, "recall": counts, "f1": counts}


def score_label(gold: str, pred: str) -> dict[str, Any]:
    return {"acc": float(pred == gold), "macro_f1": [gold, pred]}


@cache
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(reference: str, answer: str) -> float:
    """ROUGE-L F-measure (rouge-score, Porter stemming: the package's standard setting)."""
    return _rouge().score(reference, answer)["rougeL"].fmeasure


# --- the tasks -------------------------------------------------------------------------------------

PUBMEDQA_INPUT = "Abstract: {context}\n\nQuestion: {question}"
PUBMEDQA_GEN = "Read the abstract and answer the question with one word: yes, no or maybe."
PUBMEDQA_LONG = "Read the abstract and write its conclusion: one or two sentences that answer the question."
NER = (
    "List every {what} mentioned in the sentence, copied as written and separated by commas. "
    'If it mentions none, write "none".'
)
DISEASE, PROTEIN = "disease", "protein (including protein families, complexes and subunits)"
CHEMPROT = (
    "The sentence marks a chemical and a gene or protein, one with << >> and the other with [[ ]]. "
    "How does the chemical act on the gene or protein? "
    "Answer with one word: activation, inhibition, agonist, antagonist or substrate."
)


def _pubmedqa_input(doc: dict[str, Any]) -> str:
    return PUBMEDQA_INPUT.format(context=doc["context"], question=doc["question"])


def pubmedqa_gen_prompt(doc: dict[str, Any]) -> str:
    return render(PUBMEDQA_GEN, _pubmedqa_input(doc))


def pubmedqa_gen_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return score_label(doc["answer"], parse_yes_no_maybe(results[0]))


def pubmedqa_long_prompt(doc: dict[str, Any]) -> str:
    return render(PUBMEDQA_LONG, _pubmedqa_input(doc))


def pubmedqa_long_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    return {"rougeL": rouge_l(doc["long_answer"], results[0])}


def ner_task(entity_type: str, what: str) -> tuple[Callable, Callable, Callable]:
    """doc_to_text, doc_to_target and process_results of a list-the-mentions task for one type of
    the prepared records' ``entities`` (JNLPBA's DNA, RNA, cell_line, cell_type: one line each)."""

    def prompt(doc: dict[str, Any]) -> str:
        return render(NER.format(what=what), doc["question"])

    def target(doc: dict[str, Any]) -> str:
        return ", ".join(doc["entities"][entity_type]) or "none"

    def results(doc: dict[str, Any], results: list[str]) -> dict[str, list[int]]:
        return score_mentions(doc["entities"][entity_type], results[0])

    return prompt, target, results


ncbi_prompt, ncbi_target, ncbi_results = ner_task("Disease", DISEASE)
jnlpba_prompt, jnlpba_target, jnlpba_results = ner_task("protein", PROTEIN)


def chemprot_prompt(doc: dict[str, Any]) -> str:
    return render(CHEMPROT, doc["question"])


def chemprot_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return score_label(doc["answer"], parse_relation(results[0]))
