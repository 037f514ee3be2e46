"""The shared CLI contract: exit codes, one-line errors, the run log, and the flag types."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ml_project.cli import make_parser, run, utc_moment
from ml_project.config import Config, RunConfig
from ml_project.errors import DataError

from ..conftest import output_overrides


def _run(tmp_path: Path, main, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    argv = [arg for item in output_overrides(tmp_path) for arg in ("--set", item)] + list(extra)
    code = run("demo", make_parser("demo", "demo"), RunConfig(), main, argv)
    return code, capsys.readouterr().err


def test_success_is_exit_0_and_logs_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def main(config: Config, args: argparse.Namespace) -> int:
        import logging

        logging.getLogger("demo").info("hello from the use case")
        return 0

    code, _ = _run(tmp_path, main, capsys)
    assert code == 0
    (log,) = (tmp_path / "logs").glob("demo-*.log")
    assert "hello from the use case" in log.read_text()


def test_a_user_error_is_exit_2_and_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def main(config: Config, args: argparse.Namespace) -> int:
        raise DataError("data error: x.csv has no column 'y'")

    assert _run(tmp_path, main, capsys) == (2, "data error: x.csv has no column 'y'\n")
    assert _run(tmp_path, main, capsys, "--set", "modelling.seed=abc")[0] == 2


def test_a_bug_is_exit_1_with_one_line_and_the_traceback_in_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def main(config: Config, args: argparse.Namespace) -> int:
        raise RuntimeError("the disk is on fire")

    code, err = _run(tmp_path, main, capsys)
    (log,) = (tmp_path / "logs").glob("demo-*.log")
    assert code == 1
    assert err == f"error: RuntimeError: the disk is on fire (traceback in {log})\n"
    assert "Traceback (most recent call last)" in log.read_text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=timezone.utc)),
        ("2026-11-23T12:00:00", datetime(2026, 11, 23, 12, tzinfo=timezone.utc)),
        ("2026-11-23T12:00:00Z", datetime(2026, 11, 23, 12, tzinfo=timezone.utc)),
        ("2026-11-23T14:30:00+02:00", datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc)),
    ],
)
def test_a_window_bound_is_read_as_utc(text: str, expected: datetime) -> None:
    moment = utc_moment(text)
    assert moment == expected and moment.tzinfo == timezone.utc


def test_a_window_bound_that_is_not_iso_8601_is_a_usage_error() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="^'yesterday' is not an ISO 8601 time such as 2026-11-23T12:00:00Z$"):
        utc_moment("yesterday")
