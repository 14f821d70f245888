"""Text analysis shared by every backend, so that they index and query the same terms.

Tokens are made here, in Python, once: lowercase, accents folded (NFKD, combining marks dropped),
runs of letters/digits (``\\w+``), optionally minus Lucene's English stop words. The embedded index
gets them through tantivy's ``whitespace`` tokenizer and Elasticsearch through a ``whitespace``
analyzer, so both see identical terms and identical document lengths — the two inputs of BM25.
"""

from __future__ import annotations

import re
import unicodedata

# Bump when the token stream changes: it is part of the index identity (manifest, ES index name).
ANALYZER_VERSION = "1"

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (also Elasticsearch's `_english_` stop list).
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)

_WORD = re.compile(r"\w+")
MAX_TOKEN_CHARS = 40  # longer "words" are sequences, hashes or URLs: noise for BM25


def fold(text: str) -> str:
    """Lowercase and strip accents: 'Ménière' -> 'meniere'."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def analyze(text: str, stopwords: bool = True) -> list[str]:
    """The index/query terms of ``text``, in order (duplicates kept: term frequency matters)."""
    tokens = [t for t in _WORD.findall(fold(text)) if len(t) <= MAX_TOKEN_CHARS]
    if stopwords:
        tokens = [t for t in tokens if t not in STOPWORDS]
    return tokens


def query_terms(query: str, stopwords: bool = True) -> list[str]:
    """Unique terms of a query, first occurrence first: each term counts once in the score."""
    return list(dict.fromkeys(analyze(query, stopwords)))


def contents(title: str, text: str, include_title: bool) -> str:
    """The one searched field: title and text scored together as one BM25 document."""
    return f"{title}\n{text}" if include_title and title else text


def analyzer_id(stopwords: bool, include_title: bool) -> str:
    return f"v{ANALYZER_VERSION}-stop{int(stopwords)}-title{int(include_title)}"
