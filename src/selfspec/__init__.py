"""selfspec: self-specialization of language models (Kang et al., arXiv 2310.00160)."""

__version__ = "0.1.0"
