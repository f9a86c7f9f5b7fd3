#!/usr/bin/env bash
# Set up riskaudit in ./.venv on a fresh machine (idempotent; ~1 minute).
# torch is installed first and pinned. Which build `pip install torch==2.13.0` gets depends on the index: this
# project's machines serve the CPU wheel; on an ordinary Linux machine PyPI serves the CUDA build (GBs). Set
# TORCH_INDEX_URL to choose, e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for the CPU build
# (README, "Quick start").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
"${PIP[@]}" -e ".[dev]"
