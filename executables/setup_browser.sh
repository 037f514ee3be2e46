#!/usr/bin/env bash
# Headless Chromium for the dashboard's browser test (tests/integration/test_dashboard.py), which
# playwright drives: Debian's `chromium` package, and `libatomic1` that playwright's bundled node
# driver needs, installed with apt-get when missing (about 30 s and 208 MB on a fresh Debian 12).
# Run by cicd_pipeline.sh; a no-op when both are there. Set CHROMIUM to use another browser binary.
set -euo pipefail
browser="${CHROMIUM:-/usr/bin/chromium}"
missing=()
if [ ! -x "$browser" ]; then
  if [ -n "${CHROMIUM:-}" ]; then
    echo "setup_browser: CHROMIUM=$CHROMIUM is not an executable file" >&2
    exit 2
  fi
  missing+=(chromium)
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libatomic\.so\.1 '; then
  missing+=(libatomic1)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup_browser: ${missing[*]} missing and installing needs root: run 'apt-get install ${missing[*]}' as root" >&2
    exit 2
  fi
  sudo="sudo"
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_browser: ${missing[*]} missing and there is no apt-get here: install Chromium and set CHROMIUM to its path" >&2
  exit 2
fi
echo "setup_browser: installing ${missing[*]} from Debian for the browser test" >&2
began=$SECONDS
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup_browser: ${missing[*]} installed in $((SECONDS - began)) s ($("$browser" --version 2>/dev/null || echo "no $browser"))" >&2
