"""Grounding and fidelity checks for self-generated data (issue 13), shared by the gen_* stages and
``filter_records``: sentence-boundary cuts, task checks and task types, label spaces and votes, the
support score, demonstration choice. Pure functions on text and seeds; no model, no files."""
