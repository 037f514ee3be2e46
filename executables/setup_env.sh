# Sourced by run.sh and cicd_pipeline.sh: make .venv/ match Pipfile.lock, from nothing but Python.
# Usage: source executables/setup_env.sh default|spark|dev
#   default = [packages]; spark = [packages] + [spark]; dev = [packages] + [dev-packages] + [spark]
# A no-op (well under a second) when the environment already matches the lock.
set -euo pipefail
_categories="${1:-default}"
export PIPENV_VENV_IN_PROJECT=1 PIPENV_VERBOSITY=-1 PIPENV_NOSPIN=1 PIPENV_YES=1
export PIPENV_IGNORE_VIRTUALENVS=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export MLFLOW_DISABLE_TELEMETRY=true
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -m pipenv --version >/dev/null 2>&1; then
  echo "setup: installing pipenv for $("$PYTHON" --version)" >&2
  "$PYTHON" -m pip --version >/dev/null 2>&1 || "$PYTHON" -m ensurepip --user >/dev/null
  "$PYTHON" -m pip install --user --quiet pipenv 2>/dev/null \
    || "$PYTHON" -m pip install --user --quiet --break-system-packages pipenv
fi

_lock_hash="$(sha256sum Pipfile.lock | cut -d' ' -f1)"
_stamp=".venv/.synced-lock"
_synced="$(cat "$_stamp" 2>/dev/null || true)"
_enough="$_lock_hash dev|$_lock_hash $_categories"
[ "$_categories" = default ] && _enough="$_enough|$_lock_hash spark"
if [ ! -x .venv/bin/python ] || ! printf '%s\n' "$_enough" | tr '|' '\n' | grep -qxF "$_synced"; then
  echo "setup: syncing .venv/ from Pipfile.lock ($_categories packages; the first time takes about 2 minutes)" >&2
  if [ "$_categories" = dev ]; then  # the checks need everything: dev tools and the [spark] category
    "$PYTHON" -m pipenv sync --categories "packages dev-packages spark" >&2
  elif [ "$_categories" = spark ]; then
    "$PYTHON" -m pipenv sync --categories "packages spark" >&2
  else
    "$PYTHON" -m pipenv sync >&2
  fi
  echo "$_lock_hash $_categories" > "$_stamp"
fi
unset _categories _lock_hash _stamp _synced _enough
