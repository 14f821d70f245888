# The two commands of the README. Both set up .venv/ first (idempotent).
.PHONY: repro test setup
SHELL := /bin/bash

setup:
	@bash scripts/setup.sh

repro: setup
	source .venv/bin/activate && dvc repro

test:
	@bash scripts/setup.sh --with-browser
	source .venv/bin/activate && pytest -m "integration or not integration"
