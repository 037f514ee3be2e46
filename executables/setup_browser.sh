#!/usr/bin/env bash
# Headless Chromium for the dashboard's browser test (tests/integration/test_dashboard.py), which
# playwright drives: Debian's `chromium` package, installed with apt-get when it is missing.
# Run by cicd_pipeline.sh; a no-op when chromium is there. Set CHROMIUM to use another binary.
set -euo pipefail
browser="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$browser" ]; then
  exit 0
fi
if [ -n "${CHROMIUM:-}" ]; then
  echo "setup_browser: CHROMIUM=$CHROMIUM is not an executable file" >&2
  exit 2
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup_browser: chromium is missing and installing it needs root: run 'apt-get install chromium' as root" >&2
    exit 2
  fi
  sudo="sudo"
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_browser: chromium is missing and there is no apt-get here: install Chromium and set CHROMIUM to its path" >&2
  exit 2
fi
echo "setup_browser: installing Debian's chromium for the browser test (about a minute)" >&2
began=$SECONDS
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "setup_browser: $("$browser" --version 2>/dev/null || echo chromium) installed in $((SECONDS - began)) s" >&2
