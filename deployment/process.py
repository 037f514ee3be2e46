"""The server process's own chores, shared by the service and the standalone dashboard.

A port checked before the model loads, the container health check, and SIGTERM as a clean exit 0
after uvicorn drains. It imports nothing of the app, so either server can use it without an import
cycle (the app factory imports the dashboard routes; the dashboard's launcher imports this).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from typing import Any

logger = logging.getLogger("deployment")


def port_problem(host: str, port: int) -> str | None:
    """Why host:port cannot be bound (checked before the model loads, not after), or None."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return str(error.strerror)
    return None


def check_health(port: int, timeout: float = 3.0) -> int:
    """The container HEALTHCHECK: 0 when GET /health on this machine answers 200, else 1 (one line why)."""
    from urllib.error import URLError
    from urllib.request import urlopen

    url = f"http://127.0.0.1:{port}/health"
    try:
        with urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except (URLError, OSError) as error:
        print(f"unhealthy: {url}: {getattr(error, 'reason', error)}", file=sys.stderr)
        return 1
    print(f"{url}: {status}")
    return 0 if status == 200 else 1


def exit_0_on_sigterm() -> None:
    """uvicorn drains connections on SIGTERM, then re-raises the signal to the handler it found; a
    handler of ours (instead of the default, which kills) turns that clean stop into exit 0."""
    signal.signal(signal.SIGTERM, _stopped)


def _stopped(signum: int, frame: Any) -> None:
    logger.info("stopped by signal %d after draining requests", signum)
