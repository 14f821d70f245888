#!/usr/bin/env bash
# Idempotent set-up: .venv at the repo root, torch pinned first, then the project.
# Quick when already done: the install is skipped unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.selfspec-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first: any other torch spec pulls a multi-GB CUDA build on CPU-only machines.
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[test]"
    echo "$want" > "$stamp"
fi
# The report test renders in a real headless browser (Debian's chromium).
if [ "${1:-}" = "--with-browser" ] && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
            || echo "note: apt-get install chromium failed; the browser-rendering test will be skipped" >&2
    else
        echo "note: chromium not found; the browser-rendering test will be skipped (apt-get install chromium)" >&2
    fi
fi
