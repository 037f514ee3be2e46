"""deployment.local_service: the service as a child process, started, awaited and stopped for a use case."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from deployment.local_service import running, serve_command
from ml_project.errors import ServiceUnavailable

from ..conftest import free_port


def test_serve_command_is_run_sh_serve_with_the_callers_flags() -> None:
    command = serve_command("c.yaml", ["service.port=1", "a=b"], "champion", "WARNING")
    assert command == [
        sys.executable, "-m", "deployment.run_service", "--config", "c.yaml", "--log-level", "WARNING",
        "--set", "service.port=1", "--set", "a=b", "--model", "champion",
    ]  # fmt: skip
    assert "--model" not in serve_command("c.yaml", [], None, "INFO")


def test_a_server_that_dies_before_it_is_healthy_is_one_line_naming_its_last_output(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "print('starting'); print('config error: bad port'); raise SystemExit(2)"]
    log = tmp_path / "logs" / "server.log"
    with pytest.raises(ServiceUnavailable) as raised:
        with running(command, f"http://127.0.0.1:{free_port()}", log):
            raise AssertionError("never healthy")
    assert str(raised.value) == "service error: the server exited with 2: config error: bad port"
    assert log.read_text().splitlines() == ["starting", "config error: bad port"]


def test_a_server_that_never_answers_is_stopped_and_named_after_the_timeout(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnavailable, match=rf"^service error: no 200 from {url}/health within 1 s \(see "):
        with running(command, url, tmp_path / "server.log", start_timeout=1.0):
            raise AssertionError("never healthy")
