"""Headless Debian Chromium for the browser test and the screenshot scripts (executables/setup_browser.sh installs it)."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As the environment's probe runs it: no sandbox as root, and no background connections on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
