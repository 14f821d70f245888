"""Support score: how much of an answer its input and passages back up.

The share of the answer's content words (stemmed, stop words and the instruction's own words left
out) that occur in its input or retrieved passages. A fact the model made up ("3 billion people")
has words found in neither; an answer copied from a passage scores 1. An answer with no content
words of its own ("yes", a label, the instruction's words) has no score (None): there is nothing to
check, so the threshold does not apply to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

# English function words and answer boilerplate: not evidence of anything.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each either etc few for from
    further had has have having he her here hers him his how i if in into is it its itself just may
    me might more most much must my neither no nor not now of off often on once only or other our out
    over own per same she should so some such than that the their them then there these they this
    those through thus to too under until up upon us usually very via was we were what when where
    whether which while who whom why will with within without would yes you your answer answers""".split()
)


@cache
def _tokenizer():
    from rouge_score import tokenizers

    return tokenizers.DefaultTokenizer(use_stemmer=True)  # Porter stems: "fractures" = "fracture"


@cache
def content_words(text: str) -> frozenset[str]:
    tokens = _tokenizer().tokenize(text)
    return frozenset(t for t in tokens if t not in STOPWORDS and (len(t) > 1 or t.isdigit()))


def support_score(answer: str, instruction: str, sources: Iterable[str]) -> float | None:
    """Share of ``answer``'s content words (not in ``instruction``) found in ``sources``."""
    claimed = content_words(answer) - content_words(instruction)
    if not claimed:
        return None
    evidence: set[str] = set()
    for source in sources:
        evidence |= content_words(source)
    return round(len(claimed & evidence) / len(claimed), 4)
