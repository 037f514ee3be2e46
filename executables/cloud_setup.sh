#!/usr/bin/env bash
# Assemble a ready-to-ship folder for one deployment target (documentation/deployment.md):
#   ./executables/cloud_setup.sh TARGET [--model champion|latest|BUNDLE] [--out DIR] [--config FILE] [--set k=v ...]
# TARGET: docker heroku google_app_engine google_cloud_function aws_lambda sagemaker (--help for all flags).
# Relative paths are taken from the project root, as in every use case.
set -euo pipefail
cd "$(dirname "$0")/.."
source executables/setup_env.sh default
exec .venv/bin/python -m deployment.cloud_setup "$@"
