"""The prediction log keeps every prediction written to it, on a real SQLite file, and reads it back exactly."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from ml_project.prediction_log import (
    LoggedPrediction,
    PredictionLog,
    PredictionLogError,
    count_predictions,
    read_predictions,
)

from ..conftest import ROOT

T0 = datetime(2024, 3, 1, 12, 0, 0)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def penguin(request_id: str, **changes: object) -> LoggedPrediction:
    """A classification record shaped like the service's, with `changes` applied."""
    fields: dict[str, object] = {
        "request_id": request_id,
        "model_name": "penguins",
        "model_version": "3",
        "features": {"island": "Biscoe", "bill_length_mm": 45.2, "sex": None},
        "prediction": "Gentoo",
        "probabilities": {"Adelie": 0.015, "Chinstrap": 0.005, "Gentoo": 0.98},
    }
    return LoggedPrediction(**{**fields, **changes})  # type: ignore[arg-type]


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with the project importable, as a second process would."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_classification_and_regression_records_round_trip_exactly(database: str) -> None:
    url = database
    classified = penguin(
        "req-1",
        features={
            "island": "Dream",
            "bill_length_mm": np.float64(39.1),
            "flipper_length_mm": np.int64(181),
            "sex": None,
            "body_mass_g": float("nan"),
            "measured_at": datetime(2024, 2, 29, 23, 59, 1),
        },
    )
    regressed = LoggedPrediction(
        request_id="req-2",
        model_name="penguin_mass",
        model_version="7",
        features={"island": "Biscoe", "bill_length_mm": 0.1, "sex": "male", "measured_at": None},
        prediction=0.1 + 0.2,
        source="stream",
        logged_at=T0,
    )
    before = datetime.now(timezone.utc).replace(tzinfo=None)
    with PredictionLog(url) as log:
        log.write([classified, regressed])
    after = datetime.now(timezone.utc).replace(tzinfo=None)

    assert (log.written, log.failed, count_predictions(url)) == (2, 0, 2)
    frame = read_predictions(url).set_index("request_id")
    assert list(frame.index) == ["req-2", "req-1"]  # ordered by logged_at: req-2 was logged in 2024
    assert frame.loc["req-1", "prediction"] == "Gentoo"
    assert frame.loc["req-1", "probabilities"] == {"Adelie": 0.015, "Chinstrap": 0.005, "Gentoo": 0.98}
    assert frame.loc["req-1", "features"] == {
        "island": "Dream",
        "bill_length_mm": 39.1,
        "flipper_length_mm": 181,
        "sex": None,
        "body_mass_g": None,
        "measured_at": "2024-02-29T23:59:01",
    }
    assert (frame.loc["req-1", "model_name"], frame.loc["req-1", "model_version"]) == ("penguins", "3")
    assert frame.loc["req-1", "source"] == "service"
    assert before <= frame.loc["req-1", "logged_at"].to_pydatetime() <= after
    assert frame.loc["req-2", "prediction"] == 0.30000000000000004
    assert frame.loc["req-2", "probabilities"] is None
    assert frame.loc["req-2", "logged_at"] == T0
    assert frame.loc["req-2", "source"] == "stream"
    assert frame.loc["req-2", "measured_at"] is None
    assert frame["island"].tolist() == ["Biscoe", "Dream"]
    assert frame.loc["req-1", "flipper_length_mm"] == 181
    assert str(frame["logged_at"].dtype) == "datetime64[ns]"


def test_count_equals_writes_after_close_across_many_batches(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "log.db")
    with PredictionLog(url, batch_size=7, flush_interval=0.01) as log:
        for start in range(0, 1000, 50):
            log.write([penguin(f"req-{number}") for number in range(start, start + 50)])
        log.write([])
    assert (log.written, count_predictions(url)) == (1000, 1000)
    assert sorted(read_predictions(url)["request_id"]) == sorted(f"req-{number}" for number in range(1000))


def test_flush_commits_everything_written_before_it_without_waiting_for_the_interval(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "log.db")
    with PredictionLog(url, flush_interval=600) as log:
        log.write([penguin("req-1"), penguin("req-2")])
        log.flush(timeout=10)
        assert (log.written, count_predictions(url)) == (2, 2)
        log.write([penguin("req-3")])
        log.flush(timeout=10)
        log.flush(timeout=10)
        assert (log.written, count_predictions(url)) == (3, 3)


def test_concurrent_writer_threads_lose_nothing(database: str) -> None:
    url = database
    threads, per_thread = 8, 250

    def serve(log: PredictionLog, worker: int) -> None:
        for number in range(per_thread):
            log.write([penguin(f"w{worker}-{number}")])

    with PredictionLog(url, batch_size=64, flush_interval=0.01) as log:
        workers = [threading.Thread(target=serve, args=(log, worker)) for worker in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    expected = {f"w{worker}-{number}" for worker in range(threads) for number in range(per_thread)}
    assert (log.written, count_predictions(url)) == (threads * per_thread, threads * per_thread)
    assert set(read_predictions(url)["request_id"]) == expected


def test_sqlite_log_is_in_wal_mode_and_its_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "nested" / "log.db"
    PredictionLog(sqlite_url(path)).close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("case", ["folder_is_a_file", "unknown_dialect", "not_a_database"])
def test_url_that_cannot_be_opened_fails_fast_naming_the_url(tmp_path: Path, case: str) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "notes.db").write_bytes(b"these are notes, not a SQLite database " * 10)
    url = {
        "folder_is_a_file": sqlite_url(tmp_path / "a_file" / "log.db"),
        "unknown_dialect": "nosuchdb://x",
        "not_a_database": sqlite_url(tmp_path / "notes.db"),
    }[case]
    with pytest.raises(PredictionLogError) as raised:
        PredictionLog(url)
    message = str(raised.value)
    assert url in message and "cannot open" in message and "\n" not in message


def test_table_of_another_shape_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE predictions (id INTEGER PRIMARY KEY, label TEXT)")
    with pytest.raises(PredictionLogError, match="table 'predictions' has columns") as raised:
        PredictionLog(sqlite_url(path))
    assert sqlite_url(path) in str(raised.value)
    with pytest.raises(PredictionLogError, match="table 'predictions' has columns"):
        read_predictions(sqlite_url(path))
    with sqlite3.connect(path) as connection:
        assert [row[1] for row in connection.execute("PRAGMA table_info(predictions)")] == ["id", "label"]


def test_reading_where_there_is_no_log_names_the_url(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "missing.db")
    with pytest.raises(PredictionLogError, match="no such database file"):
        count_predictions(url)
    assert not (tmp_path / "missing.db").exists()


def test_write_after_close_raises_and_close_is_idempotent(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "log.db")
    log = PredictionLog(url)
    log.write([penguin("req-1")])
    log.close()
    log.close()
    log.flush()
    with pytest.raises(PredictionLogError, match="write after close") as raised:
        log.write([penguin("req-2")])
    assert url in str(raised.value)
    assert (log.closed, log.written, count_predictions(url)) == (True, 1, 1)


def test_read_predictions_keeps_start_inclusive_end_exclusive_and_filters_by_model(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "log.db")
    hours = [T0 + timedelta(hours=hour) for hour in range(3)]
    with PredictionLog(url) as log:
        log.write([penguin(f"req-{hour}", logged_at=moment) for hour, moment in enumerate(hours)])
        log.write([penguin("other", model_name="penguin_mass", prediction=4200.0, logged_at=hours[1])])

    def window(**filters: object) -> list[str]:
        return list(read_predictions(url, **filters)["request_id"])  # type: ignore[arg-type]

    assert window() == ["req-0", "req-1", "other", "req-2"]
    assert window(start=hours[1]) == ["req-1", "other", "req-2"]
    assert window(end=hours[1]) == ["req-0"]
    assert window(start=hours[0], end=hours[2], model_name="penguins") == ["req-0", "req-1"]
    assert window(model_name="penguin_mass") == ["other"]
    paris = timezone(timedelta(hours=1))
    assert window(start=hours[1].replace(hour=14, tzinfo=paris), model_name="penguins") == ["req-1", "req-2"]
    assert window(start=hours[2] + timedelta(microseconds=1)) == []


def test_logged_at_with_a_time_zone_is_stored_in_utc(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "log.db")
    with PredictionLog(url) as log:
        log.write([penguin("req-1", logged_at=datetime(2024, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))])
    assert read_predictions(url)["logged_at"].tolist() == [datetime(2024, 3, 1, 12, 0)]


def test_empty_log_reads_as_an_empty_frame_with_the_fixed_columns(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "log.db")
    PredictionLog(url).close()
    frame = read_predictions(url)
    assert list(frame.columns) == [
        "logged_at",
        "request_id",
        "model_name",
        "model_version",
        "source",
        "prediction",
        "probabilities",
        "features",
    ]
    assert (len(frame), str(frame["logged_at"].dtype), count_predictions(url)) == (0, "datetime64[ns]", 0)


def test_feature_named_like_a_fixed_column_is_prefixed(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "log.db")
    with PredictionLog(url) as log:
        log.write([penguin("req-1", features={"source": "sensor-4", "island": "Torgersen"})])
    frame = read_predictions(url)
    assert list(frame.columns[8:]) == ["feature_source", "island"]
    assert (frame.loc[0, "source"], frame.loc[0, "feature_source"]) == ("service", "sensor-4")


def test_two_logs_and_a_second_process_append_to_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    url = sqlite_url(path)
    other_process = (
        "import sys\n"
        "from ml_project.prediction_log import LoggedPrediction, PredictionLog\n"
        "with PredictionLog(sys.argv[1], batch_size=50) as log:\n"
        "    for n in range(2000):\n"
        "        log.write([LoggedPrediction(f'job-{n}', 'penguins', '3', {'n': n}, 'Adelie', source='stream')])\n"
    )
    with PredictionLog(url, batch_size=50, flush_interval=0.01) as service, PredictionLog(url) as stream:
        job = subprocess.Popen([sys.executable, "-c", other_process, url], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for number in range(2000):
            service.write([penguin(f"svc-{number}")])
            stream.write([penguin(f"stream-{number}", source="stream")])
        _, stderr = job.communicate(timeout=60)
    assert job.returncode == 0, stderr
    with PredictionLog(url) as later:
        later.write([penguin("later")])
    assert count_predictions(url) == 6001
    assert read_predictions(url)["source"].value_counts().to_dict() == {"stream": 4000, "service": 2001}


def test_failed_batch_is_retried_then_counted_and_logged_and_the_writer_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.db"
    with PredictionLog(sqlite_url(path)) as log:
        with sqlite3.connect(path) as connection:
            connection.execute(
                "CREATE TRIGGER full BEFORE INSERT ON predictions BEGIN SELECT RAISE(ABORT, 'disk is full'); END"
            )
        with caplog.at_level(logging.ERROR, logger="ml_project.prediction_log"):
            log.write([penguin("lost-1"), penguin("lost-2"), penguin("lost-3")])
            log.flush(timeout=30)
        assert (log.written, log.failed) == (0, 3)
        errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
        assert len(errors) == 1 and "lost 3 predictions after 4 attempts: disk is full" in errors[0]
        with sqlite3.connect(path) as connection:
            connection.execute("DROP TRIGGER full")
        log.write([penguin("kept-1"), penguin("kept-2")])
    assert (log.written, log.failed, count_predictions(sqlite_url(path))) == (2, 3, 2)


def test_interpreter_exit_without_close_still_writes_everything(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "log.db")
    forgetful = (
        "import sys\n"
        "from ml_project.prediction_log import LoggedPrediction, PredictionLog\n"
        "log = PredictionLog(sys.argv[1], flush_interval=30)\n"
        "log.write([LoggedPrediction(f'req-{n}', 'penguins', '3', {'n': n}, n) for n in range(1000)])\n"
    )
    result = run_python(forgetful, url)
    assert result.returncode == 0, result.stderr
    assert count_predictions(url) == 1000


def test_importing_the_module_starts_nothing_and_leaves_pandas_unloaded() -> None:
    probe = (
        "import json, sys, threading\n"
        "import ml_project.prediction_log\n"
        "heavy = ('pandas', 'mlflow', 'evidently', 'optuna', 'pandera')\n"
        "print(json.dumps([threading.active_count(), sorted(m for m in sys.modules if m.split('.')[0] in heavy)]))\n"
    )
    result = run_python(probe)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [1, []]


def test_a_record_the_table_cannot_hold_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="source = 'web' is not one of: service, stream$"):
        penguin("req-1", source="web")
    with pytest.raises(ValueError, match="request_id"):
        penguin("x" * 65)
