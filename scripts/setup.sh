#!/usr/bin/env bash
# Set up riskaudit in ./.venv on a fresh machine (idempotent; ~1 minute).
# torch is installed first and pinned. Which build `pip install torch==2.13.0` gets depends on the index: this
# project's machines serve the CPU wheel; on an ordinary Linux machine PyPI serves the CUDA build (GBs). Set
# TORCH_INDEX_URL to choose, e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for the CPU build
# (README, "Quick start").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# pip, quietly. A machine whose pip config lists local file:// indexes (this project's machines do) gets one
# "WARNING: Location 'file://…/<package>/' is ignored: it is neither a file nor a directory" per package and
# index that lacks it: pip looking in every index, not a problem of the install. Only that line is left out;
# every other warning or error of pip and of the build is printed.
pip_install() {
  local err status=0
  err=$(mktemp)
  .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>"$err" || status=$?
  grep -v -E "^WARNING: Location 'file://[^']*' is ignored: it is neither a file nor a directory\.$" "$err" >&2 || true
  rm -f "$err"
  return "$status"
}

[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip_install --upgrade pip
pip_install "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
# EXTRAS=ray (comma-separated optional extras) also installs those, as .ci/run does
pip_install -e ".[dev${EXTRAS:+,$EXTRAS}]"
