"""Domain corpus: source definitions (``spec``), readers (``sources``), passage splitting and dedup."""

from selfspec.corpus.spec import CorpusSpec, SourceSpec, load_spec

__all__ = ["CorpusSpec", "SourceSpec", "load_spec"]
