"""Biomedical benchmark: evaluation data sources and converters, lm-eval runs, base-vs-specialized
comparison, promotion gate. Stages: prepare_evals, evaluate_base, evaluate."""
