"""The prediction service as a child process on this machine: started, awaited until healthy, stopped cleanly.

`running(command, base_url, log_path)` starts `command` (usually `serve_command(...)`, i.e.
`./executables/run.sh serve` with the caller's --config, --set and --model), waits for the first 200 on
/health, yields a `LocalService`, and stops it with SIGTERM on the way out, which flushes its prediction
log (a kill after 60 s if it does not stop). A server that dies or stalls before it is healthy is a one-line
`ServiceUnavailable` naming its last output line. Importing this module starts nothing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ml_project.config import PROJECT_ROOT
from ml_project.errors import ServiceUnavailable
from ml_project.streaming import HttpSender

START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


@dataclass
class LocalService:
    """A running service process: where it answers, where its output goes, how long it took to be healthy."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    started_s: float = 0.0

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


def serve_command(config: Path | str, overrides: Sequence[str], model: Path | str | None, log_level: str) -> list[str]:
    """`python -m deployment.run_service` (what `./executables/run.sh serve` runs) with these flags."""
    command = [sys.executable, "-m", "deployment.run_service", "--config", str(config), "--log-level", log_level]
    for override in overrides:
        command += ["--set", override]
    if model:
        command += ["--model", str(model)]
    return command


def wait_until_healthy(service: LocalService, timeout: float = START_TIMEOUT) -> float:
    """Seconds from now to the first 200 on /health; ServiceUnavailable if the server dies or stalls."""
    began = time.perf_counter()
    probe = HttpSender(service.base_url, timeout=2.0)
    try:
        while time.perf_counter() - began < timeout:
            if service.process.poll() is not None:
                lines = service.log_path.read_text(errors="replace").strip().splitlines()
                last = lines[-1] if lines else "no output"
                raise ServiceUnavailable(f"service error: the server exited with {service.returncode}: {last}")
            try:
                probe.health()
                return time.perf_counter() - began
            except ServiceUnavailable:
                time.sleep(0.05)
    finally:
        probe.close()
    raise ServiceUnavailable(
        f"service error: no 200 from {service.base_url}/health within {timeout:.0f} s (see {service.log_path})"
    )


def stop(service: LocalService, timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM (the service drains and flushes its log), then a kill if it has not exited within `timeout`."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
    try:
        return service.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        service.process.kill()
        return service.process.wait()


@contextmanager
def running(
    command: list[str], base_url: str, log_path: Path, start_timeout: float = START_TIMEOUT
) -> Iterator[LocalService]:
    """The service started from the project root, healthy, and stopped however the block ends."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as output:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT)
    service = LocalService(process, base_url, log_path)
    try:
        service.started_s = wait_until_healthy(service, start_timeout)
        yield service
    finally:
        stop(service)
