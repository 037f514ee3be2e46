#!/usr/bin/env bash
# README command 2: the checks CI runs (.ci/run calls exactly this). Exits non-zero on any failure.
# Sets up .venv/ from Pipfile.lock (with dev packages) first, so a machine with only Python suffices,
# Debian's chromium for the dashboard's browser test (executables/setup_browser.sh) and Debian's
# postgresql for the tests on a real PostgreSQL server (executables/setup_postgres.sh), both with apt-get.
set -euo pipefail
cd "$(dirname "$0")"
source executables/setup_env.sh dev
bash executables/setup_browser.sh
bash executables/setup_postgres.sh
export PYTHONHASHSEED=0
started=$SECONDS

echo "== isort"
.venv/bin/isort --check-only --diff --profile black --line-length 120 \
  -p ml_project -p use_cases -p deployment -p tests ml_project use_cases deployment tests

echo "== mypy"
.venv/bin/mypy --python-version 3.11 --disallow-untyped-defs --ignore-missing-imports \
  --no-error-summary ml_project use_cases deployment

echo "== pytest"
.venv/bin/pytest tests --cov --cov-config=tests/.coveragerc --cov-report=term-missing:skip-covered "$@"

echo "== cicd_pipeline.sh passed in $((SECONDS - started)) s"
