#!/usr/bin/env bash
# README command 1. Sets up the environment from Pipfile.lock if needed, then runs:
#   ./executables/run.sh [--flags]            the default job: modelling_historic_data_local
#   ./executables/run.sh <use_case> [args]    any use case in use_cases/ (see --help of each)
#   ./executables/run.sh serve [args]         the prediction service in the foreground (deployment/run_service.py)
#   ./executables/run.sh dashboard [args]     the dashboard alone, on port 8050 (deployment/run_dashboard.py)
#   ./executables/run.sh <command> [args]     a command of the environment, e.g. mlflow ui
set -euo pipefail
cd "$(dirname "$0")/.."
name=modelling_historic_data_local
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  name="$1"
  shift
fi
# The Spark use case brings its own packages (Pipfile category [spark]); the others need only [packages].
if [ "$name" = predicting_historic_data_spark ]; then
  source executables/setup_env.sh spark
else
  source executables/setup_env.sh default
fi
case "$name" in
  serve) exec .venv/bin/python -m deployment.run_service "$@" ;;
  dashboard) exec .venv/bin/python -m deployment.run_dashboard "$@" ;;
esac
if [ -f "use_cases/$name.py" ]; then
  exec .venv/bin/python -m "use_cases.$name" "$@"
fi
if [ -x ".venv/bin/$name" ]; then
  exec ".venv/bin/$name" "$@"
fi
{
  echo "run.sh: '$name' is not a use case nor a command of the environment; use cases:"
  for file in use_cases/*.py; do
    base="$(basename "$file" .py)"
    [ "$base" != __init__ ] && echo "  $base"
  done
  echo "  serve  (the prediction service)"
  echo "  dashboard  (the dashboard alone)"
} >&2
exit 2
