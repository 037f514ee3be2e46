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
source "$(dirname "$0")/apt_install.sh"
apt_install setup_browser "${missing[@]}"
"$browser" --version >&2 || true
