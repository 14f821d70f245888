"""Mixture of self-specialized experts (Self-MoE's MiXSE, arXiv 2406.12034): expert adapters over one
frozen base, a learned top-1 router, the composite's layout and serving. docs/mixture.md."""
