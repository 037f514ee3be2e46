"""Prediction log: every served or scored prediction, stored off the request path through SQLAlchemy.

`PredictionLog.write` only puts the records on a queue; a background writer thread commits them in
batches (up to `batch_size` rows, or whatever arrived within `flush_interval` seconds), one transaction
and one executemany per batch. `close()` (also run at interpreter exit) writes everything queued, so the
number of predictions handed to `write` equals the number of rows in the table, unless a batch failed
after its retries — which is counted in `PredictionLog.failed` and logged as an ERROR with the count lost.

The default store is a SQLite file in WAL mode (readers never block the writer, and a service and a batch
job may append to the same file at once); any SQLAlchemy URL works, e.g. `postgresql+psycopg://…`.
Open the log in the process that writes to it (after any fork, e.g. in the server's startup hook): the
writer thread does not survive a fork. A process killed by SIGTERM's default action runs no atexit hook:
servers handle SIGTERM (uvicorn does) and close the log in their shutdown hook.

Table `predictions` (request_id is indexed but not unique: a retried request or a re-scored batch must
not make a whole batch of other rows fail; consumers joining labels keep the latest row per request_id):

    id            INTEGER PRIMARY KEY AUTOINCREMENT   (BIGINT identity outside SQLite; ids are never reused)
    logged_at     DATETIME NOT NULL, indexed           (UTC, stored naive; also in an index of model_name,
                                                        logged_at, model_version, prediction for the dashboard)
    request_id    VARCHAR(64) NOT NULL, indexed
    model_name    VARCHAR(128) NOT NULL
    model_version VARCHAR(128) NOT NULL
    source        VARCHAR(16) NOT NULL                 (service | stream)
    features      TEXT NOT NULL                        (JSON object)
    prediction    TEXT NOT NULL                        (JSON scalar: numbers round-trip exactly)
    probabilities TEXT NULL                            (JSON object of class -> probability)

Table `labels`, in the same database, holds the outcomes that arrived later (the monitoring use case
stores the labels file it is given; `write_labels` is the one writer). One row per request_id, the
latest label winning; created by the first write:

    request_id    VARCHAR(64) PRIMARY KEY
    label         TEXT NOT NULL                        (JSON scalar, encoded as `prediction` is)
    received_at   DATETIME NOT NULL                    (UTC, stored naive)
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import queue
import threading
import time as clock
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable

from ml_project.errors import NoPredictionLog, PredictionLogError, json_default, jsonable, naive_utc, one_line

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LoggedPrediction",
    "NoPredictionLog",
    "PredictionLog",
    "PredictionLogError",
    "count_predictions",
    "jsonable",
    "naive_utc",
    "one_line",
    "read_predictions",
    "reading",
    "shown_url",
    "write_labels",
]

logger = logging.getLogger(__name__)

TABLE = "predictions"
SOURCES = ("service", "stream")  # batch scoring writes files, not the log
REQUEST_ID_LENGTH = 64
NAME_LENGTH = 128
# Seconds to wait before each retry of a failed batch; after the last one the batch is counted as lost.
RETRY_DELAYS = (0.05, 0.25, 1.0)
# Seconds a SQLite connection waits for another process's write lock before reporting "database is locked".
SQLITE_BUSY_TIMEOUT = 30.0

metadata = MetaData()
predictions = Table(
    TABLE,
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("logged_at", DateTime(), nullable=False),
    Column("request_id", String(REQUEST_ID_LENGTH), nullable=False),
    Column("model_name", String(NAME_LENGTH), nullable=False),
    Column("model_version", String(NAME_LENGTH), nullable=False),
    Column("source", String(16), nullable=False),
    Column("features", Text(), nullable=False),
    Column("prediction", Text(), nullable=False),
    Column("probabilities", Text(), nullable=True),
    Index("ix_predictions_logged_at", "logged_at"),
    Index("ix_predictions_request_id", "request_id"),
    # Covers the dashboard's counts per time bucket, version and predicted value (ml_project/dashboard.py):
    # they read this index instead of the rows with their features.
    Index("ix_predictions_model_time", "model_name", "logged_at", "model_version", "prediction"),
    sqlite_autoincrement=True,
)
LABELS_TABLE = "labels"
labels = Table(
    LABELS_TABLE,
    metadata,
    Column("request_id", String(REQUEST_ID_LENGTH), primary_key=True),
    Column("label", Text(), nullable=False),
    Column("received_at", DateTime(), nullable=False),
)
FIXED_COLUMNS = [
    "logged_at",
    "request_id",
    "model_name",
    "model_version",
    "source",
    "prediction",
    "probabilities",
    "features",
]


@dataclass(frozen=True)
class LoggedPrediction:
    """One prediction as logged: who asked, which model answered, what it was given and what it said."""

    request_id: str
    model_name: str
    model_version: str
    features: dict[str, Any]
    prediction: Any
    probabilities: dict[str, float] | None = None
    source: str = "service"
    logged_at: datetime | None = None

    def __post_init__(self) -> None:
        """Reject a record the table cannot hold, in the producer's thread where the bug is."""
        if self.source not in SOURCES:
            raise ValueError(f"LoggedPrediction.source = {self.source!r} is not one of: {', '.join(SOURCES)}")
        if not 0 < len(self.request_id) <= REQUEST_ID_LENGTH:
            raise ValueError(f"LoggedPrediction.request_id = {self.request_id!r} must have 1 to 64 characters")


class _Stop:
    """Queue marker telling the writer thread to finish."""


_STOP = _Stop()
_Item = tuple[tuple[LoggedPrediction, ...], datetime] | threading.Event | _Stop


class PredictionLog:
    """Append predictions to a SQL table from a background thread, in batches, losing none on a clean close."""

    def __init__(self, url: str, *, batch_size: int = 500, flush_interval: float = 0.2) -> None:
        """Open the database, create the table if missing (failing fast) and start the writer thread."""
        if batch_size < 1 or flush_interval <= 0:
            raise ValueError(f"batch_size = {batch_size} and flush_interval = {flush_interval} must be positive")
        self.url = url
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._engine = _open_engine(url, for_writing=True)
        try:
            _ensure_table(self._engine, url)
        except BaseException:
            self._engine.dispose()
            raise
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._written = 0
        self._failed = 0
        # A daemon thread plus an atexit close: a non-daemon thread would be joined before atexit runs,
        # so a forgotten close() would hang the interpreter instead of flushing.
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def written(self) -> int:
        """Rows committed so far by this instance."""
        return self._written

    @property
    def failed(self) -> int:
        """Rows given up on after their batch failed every retry (each loss is also logged as an ERROR)."""
        return self._failed

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    def write(self, records: Sequence[LoggedPrediction]) -> None:
        """Queue records for the writer thread without touching the database; raise if the log is closed."""
        now = datetime.now(timezone.utc)
        with self._lock:
            if self._closed:
                raise PredictionLogError(f"prediction log {shown_url(self.url)}: write after close")
            self._queue.put((tuple(records), now))

    def flush(self, timeout: float | None = None) -> None:
        """Return once everything written before this call is committed (or counted as failed)."""
        done = threading.Event()
        with self._lock:
            if self._closed:
                self._thread.join(timeout)
                return
            self._queue.put(done)
        if not done.wait(timeout):
            raise PredictionLogError(f"prediction log {shown_url(self.url)}: flush not finished within {timeout} s")

    def close(self) -> None:
        """Write everything queued, stop the writer thread and release the engine; calling it again does nothing."""
        with self._lock:
            first = not self._closed
            self._closed = True
            if first:
                self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join()
        if first:
            self._engine.dispose()
            atexit.unregister(self.close)

    def __enter__(self) -> PredictionLog:
        """Use the log as a context manager that closes it on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the log, flushing everything queued."""
        self.close()

    def __repr__(self) -> str:
        """Show the URL and the counters."""
        return f"PredictionLog({shown_url(self.url)!r}, written={self._written}, failed={self._failed})"

    def _run(self) -> None:
        """Writer thread: collect a batch, commit it, release waiting flushes; until told to stop."""
        stop = False
        while not stop:
            batch, waiting, stop = self._collect()
            try:
                for start in range(0, len(batch), self.batch_size):
                    self._commit(batch[start : start + self.batch_size])
            except Exception:  # a bug here must not stop the writer and leave every later flush() hanging
                logger.exception("prediction log %s: writer failed on a batch of %d", shown_url(self.url), len(batch))
            finally:
                for done in waiting:
                    done.set()

    def _collect(self) -> tuple[list[tuple[LoggedPrediction, datetime]], list[threading.Event], bool]:
        """Block for the first item, then take more until batch_size rows, flush_interval, a flush or a stop."""
        batch: list[tuple[LoggedPrediction, datetime]] = []
        waiting: list[threading.Event] = []
        item = self._queue.get()
        deadline = clock.monotonic() + self.flush_interval
        while True:
            if isinstance(item, _Stop):
                return batch, waiting, True
            if isinstance(item, threading.Event):
                waiting.append(item)
                return batch, waiting, False
            records, now = item
            batch.extend((record, now) for record in records)
            remaining = deadline - clock.monotonic()
            if len(batch) >= self.batch_size or remaining <= 0:
                return batch, waiting, False
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                return batch, waiting, False

    def _commit(self, batch: list[tuple[LoggedPrediction, datetime]]) -> None:
        """Insert one batch in one transaction, retrying with backoff; count and log the rows if it never succeeds."""
        rows = list(_encode_all(batch))
        self._failed += len(batch) - len(rows)
        if not rows:
            return
        error: Exception | None = None
        for delay in (0.0, *RETRY_DELAYS):
            clock.sleep(delay)
            try:
                with self._engine.begin() as connection:
                    connection.execute(insert(predictions), rows)
            except Exception as caught:  # the writer thread must survive any database or driver failure
                error = caught
                continue
            self._written += len(rows)
            return
        self._failed += len(rows)
        logger.error(
            "prediction log %s: lost %d predictions after %d attempts: %s",
            shown_url(self.url),
            len(rows),
            len(RETRY_DELAYS) + 1,
            one_line(error),
        )


def read_predictions(
    url: str, start: datetime | None = None, end: datetime | None = None, model_name: str | None = None
) -> pd.DataFrame:
    """Read logged predictions with start <= logged_at < end (naive means UTC), one column per feature too."""
    import pandas as pd

    query = select(predictions).order_by(predictions.c.logged_at, predictions.c.id)
    if start is not None:
        query = query.where(predictions.c.logged_at >= naive_utc(start))
    if end is not None:
        query = query.where(predictions.c.logged_at < naive_utc(end))
    if model_name is not None:
        query = query.where(predictions.c.model_name == model_name)
    with reading(url) as engine, engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(
        {
            "logged_at": pd.Series([row.logged_at for row in rows], dtype="datetime64[ns]"),
            "request_id": [row.request_id for row in rows],
            "model_name": [row.model_name for row in rows],
            "model_version": [row.model_version for row in rows],
            "source": [row.source for row in rows],
            "prediction": [json.loads(row.prediction) for row in rows],
            "probabilities": [None if row.probabilities is None else json.loads(row.probabilities) for row in rows],
            "features": [json.loads(row.features) for row in rows],
        },
        columns=FIXED_COLUMNS,
    )
    if not rows:
        return frame.astype({name: object for name in FIXED_COLUMNS[1:]})
    expanded = pd.DataFrame(list(frame["features"]), index=frame.index)
    expanded.columns = [f"feature_{name}" if name in FIXED_COLUMNS else name for name in expanded.columns]
    return pd.concat([frame, expanded], axis=1)


def count_predictions(url: str) -> int:
    """Number of rows in the prediction log at `url`."""
    with reading(url) as engine, engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())


def write_labels(url: str, pairs: Sequence[tuple[str, Any]], received_at: datetime | None = None) -> int:
    """Store (request_id, label) pairs in the labels table, replacing earlier labels of the same ids; return the count.

    A later pair of the same id wins, as in a labels file. Labels are JSON-encoded as predictions are, so a
    class label compares equal to the logged prediction of that class in SQL. A pair no prediction can have
    (an id of 0 or over 64 characters) or without a label (None, NaN) is skipped, and the skips are logged.
    """
    latest: dict[str, Any] = {}
    skipped = 0
    for request_id, label in pairs:
        key = str(request_id)
        missing = label is None or (isinstance(label, float) and not math.isfinite(label))
        if missing or not 0 < len(key) <= REQUEST_ID_LENGTH:
            skipped += 1
            continue
        latest[key] = label
    if skipped:
        logger.warning("labels: %d pairs skipped: no label, or a request id no prediction has (1 to 64 characters)", skipped)
    moment = naive_utc(received_at or datetime.now(timezone.utc))
    rows = [{"request_id": key, "label": _dumps(value), "received_at": moment} for key, value in latest.items()]
    engine = _open_engine(url, for_writing=True)
    try:
        with engine.begin() as connection:
            connection.execute(CreateTable(labels, if_not_exists=True))
            ids = list(latest)
            for start in range(0, len(ids), 500):  # bounded IN lists: SQLite allows at most 32766 parameters
                connection.execute(labels.delete().where(labels.c.request_id.in_(ids[start : start + 500])))
            if rows:
                connection.execute(insert(labels), rows)
    except PredictionLogError:
        raise
    except Exception as error:  # cannot connect, read-only file, a labels table of another shape
        raise PredictionLogError(f"prediction log {shown_url(url)}: cannot store labels: {one_line(error)}") from error
    finally:
        engine.dispose()
    return len(rows)


def has_labels_table(engine: Engine) -> bool:
    """Whether labels were ever stored in this database."""
    with engine.connect() as connection:
        return bool(inspect(connection).has_table(LABELS_TABLE))


def _open_engine(url: str, *, for_writing: bool) -> Engine:
    """Create an engine for `url`: SQLite gets its folder, WAL, synchronous=NORMAL and a busy timeout."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_pre_ping=True)
        database = parsed.database or ""
        if _in_memory(parsed):
            # One shared connection, or every thread would see its own empty in-memory database.
            kwargs: dict[str, Any] = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
            return create_engine(parsed, **kwargs)
        if for_writing:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        elif not Path(database).is_file():
            raise NoPredictionLog(f"prediction log {shown_url(url)}: no such database file {database}")
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
    except PredictionLogError:
        raise
    except Exception as error:  # unknown dialect, missing driver, malformed URL, folder that is a file
        raise PredictionLogError(f"prediction log {shown_url(url)}: cannot open: {one_line(error)}") from error
    if for_writing:
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Put a new SQLite connection in WAL mode with synchronous=NORMAL (durable across crashes of the process)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _ensure_table(engine: Engine, url: str) -> None:
    """Create the predictions table and its indexes if missing, then check the table has our columns."""
    try:
        with engine.begin() as connection:
            connection.execute(CreateTable(predictions, if_not_exists=True))
    except Exception as error:  # a concurrent creator may have won the race; the check decides
        _check_table(engine, url, cause=error)
    else:
        _check_table(engine, url)
    for index in sorted(predictions.indexes, key=lambda index: str(index.name)):
        try:  # each in its own transaction: one a database cannot build does not cost the others
            with engine.begin() as connection:
                connection.execute(CreateIndex(index, if_not_exists=True))
        except Exception as error:  # e.g. MySQL indexes no TEXT column without a prefix length
            logger.warning("prediction log %s: index %s not created: %s", shown_url(url), index.name, one_line(error))


def _check_table(engine: Engine, url: str, cause: Exception | None = None) -> None:
    """Raise PredictionLogError unless the database at `url` opens and has a predictions table of our shape."""
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            columns = [column["name"] for column in inspector.get_columns(TABLE)] if inspector.has_table(TABLE) else []
    except Exception as error:  # cannot connect, not a database
        raise PredictionLogError(f"prediction log {shown_url(url)}: cannot open: {one_line(cause or error)}") from error
    if not columns:
        reason = f"cannot create table {TABLE!r}: {one_line(cause)}" if cause else f"no table {TABLE!r}"
        kind = PredictionLogError if cause else NoPredictionLog
        raise kind(f"prediction log {shown_url(url)}: {reason}") from cause
    expected = [column.name for column in predictions.columns]
    if sorted(columns) != sorted(expected):
        raise PredictionLogError(
            f"prediction log {shown_url(url)}: table {TABLE!r} has columns {columns}, expected {expected}"
        )


@contextmanager
def reading(url: str) -> Iterator[Engine]:
    """A read engine for `url`, failing with PredictionLogError if there is no prediction log there."""
    engine = _open_engine(url, for_writing=False)
    try:
        _check_table(engine, url)
        yield engine
    finally:
        engine.dispose()


def _encode_all(batch: list[tuple[LoggedPrediction, datetime]]) -> Iterator[dict[str, Any]]:
    """Turn records into table rows, logging and skipping any record that cannot be stored."""
    for record, now in batch:
        try:
            yield _encode(record, now)
        except Exception as error:  # e.g. a name longer than the column; one bad record must not sink the batch
            logger.error("prediction log: lost prediction %r: %s", record.request_id, one_line(error))


def _encode(record: LoggedPrediction, now: datetime) -> dict[str, Any]:
    """One table row for a record: UTC-naive timestamp and JSON text for features, prediction and probabilities."""
    for name in ("model_name", "model_version"):
        if len(getattr(record, name)) > NAME_LENGTH:
            raise ValueError(f"{name} is longer than {NAME_LENGTH} characters")
    probabilities = record.probabilities
    return {
        "logged_at": naive_utc(record.logged_at or now),
        "request_id": record.request_id,
        "model_name": record.model_name,
        "model_version": record.model_version,
        "source": record.source,
        "features": _dumps(record.features),
        "prediction": _dumps(record.prediction),
        "probabilities": None if probabilities is None else _dumps(probabilities),
    }


def _dumps(value: Any) -> str:
    """Strict JSON for `value`; only a value holding NaN, infinity or odd keys takes the slower cleaning path."""
    try:
        return _ENCODER.encode(value)
    except (ValueError, TypeError):
        return _ENCODER.encode(jsonable(value))


# Built once: json.dumps with options builds a new encoder per call, which doubles the cost of a row.
_ENCODER = json.JSONEncoder(allow_nan=False, default=json_default)


def _in_memory(url: URL) -> bool:
    """Whether a SQLite URL names an in-memory database."""
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def shown_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL is shown as given; it cannot be parsed to find a password
        return url
