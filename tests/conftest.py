"""Shared fixtures: a small real training run (real MLflow sqlite store) reused by many tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ml_project.config import Config, RunConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
PENGUINS = ROOT / "data" / "penguins.csv"
CONFIGS = ROOT / "use_cases" / "configs"
# Tiny but real HPO budget: every algorithm is tried once with its defaults, then TPE.
FAST = ["modelling.n_trials=5", "modelling.n_folds=3", "monitoring.holdout_report=false"]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def output_overrides(output: Path) -> list[str]:
    return [f"paths.output={output}", f"tracking.uri=sqlite:///{output / 'mlflow.db'}"]


def make_config(output: Path, *overrides: str, config: Path | None = None) -> Config:
    return load_config(config, [*FAST, *output_overrides(output), *overrides], run=RunConfig())


def run_use_case(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m use_cases.<name>` as a user would, from the project root."""
    return subprocess.run(
        [sys.executable, "-m", f"use_cases.{name}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    return pd.read_csv(PENGUINS)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The default penguins classification run, trained once for the session."""
    from ml_project.training import train

    output = tmp_path_factory.mktemp("trained")
    config = make_config(output)
    report = train(config, progress=False)
    return config, report


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session (tests/postgres.py): its SQLAlchemy URL."""
    from .postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once of each kind: a SQLite file, and a new database on the session's real
    PostgreSQL server (`postgres_url`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    import sqlalchemy as sa

    server: str = request.getfixturevalue("postgres_url")
    name = f"test_{abs(hash(request.node.nodeid))}"
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return f"{server.rsplit('/', 1)[0]}/{name}"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`./executables/run.sh serve` as a real process on a free loopback port."""

    def __init__(self, output: Path, *overrides: str, model: Path | None = None) -> None:
        port = free_port()
        self.output = output
        sets = [*output_overrides(output), f"service.port={port}", *overrides]
        command = [sys.executable, "-m", "deployment.run_service", *[arg for item in sets for arg in ("--set", item)]]
        if model is not None:
            command += ["--model", str(model)]
        output.mkdir(parents=True, exist_ok=True)
        self._start(command, ROOT, None, port, output / f"server-{port}.out")

    @classmethod
    def command(cls, command: list[str], *, cwd: Path, port: int, env: dict[str, str], log: Path) -> Server:
        """Any command that serves on 127.0.0.1:`port` (a deployed folder's entry point, say)."""
        server = cls.__new__(cls)
        server.output = log.parent
        server._start(command, cwd, env, port, log)
        return server

    def _start(self, command: list[str], cwd: Path, env: dict[str, str] | None, port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "wb") as sink:
            self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Seconds until /health answered 200; fails with the server's output if it died."""
        import time

        import httpx

        began = time.perf_counter()
        while time.perf_counter() - began < timeout:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return time.perf_counter() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"no 200 on /health within {timeout} s: {self.log.read_text()}")

    def stop(self, timeout: float = 60.0) -> int:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
