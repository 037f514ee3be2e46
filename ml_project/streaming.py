"""Simulated production traffic: records from a file, sent one by one or in mini-batches, timed.

The three production use cases share this: in-process through `Scorer`, or over HTTP to the local
service or a deployed one. Each request is timed; the report gives counts and latency percentiles.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml_project.errors import ServiceUnavailable
from ml_project.ingestion import iter_chunks, require_columns, table_columns
from ml_project.validation import InputSchema


def _plain(value: Any) -> Any:
    """A cell as JSON would carry it: missing → None, numpy scalars → Python, times → ISO text."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def iter_records(path: Path, schema: InputSchema, chunk_size: int, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The feature (and id) columns of `path` as JSON-ready records; other columns are not sent."""
    columns = schema.feature_names + ([schema.id_column] if schema.id_column else [])
    require_columns(table_columns(path), schema.feature_names, str(path))
    text = [column.name for column in schema.columns if column.kind == "categorical"]
    sent = 0
    for chunk in iter_chunks(path, chunk_size, text, schema.missing_values):  # a cell spelt missing is sent as null
        present = [column for column in columns if column in chunk.columns]
        for row in chunk[present].itertuples(index=False, name=None):
            if limit is not None and sent >= limit:
                return
            yield {name: _plain(value) for name, value in zip(present, row)}
            sent += 1


def batches(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class Outcome:
    """What one request came back with."""

    predicted: int
    refused: int
    failed: int
    seconds: float
    message: str | None = None


@dataclass
class StreamReport:
    """Counts and latencies of a stream; records sent = predicted + refused + failed."""

    requests: int = 0
    records: int = 0
    predicted: int = 0
    refused: int = 0
    failed: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    messages: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.requests += 1
        self.records += outcome.predicted + outcome.refused + outcome.failed
        self.predicted += outcome.predicted
        self.refused += outcome.refused
        self.failed += outcome.failed
        self.latencies.append(outcome.seconds)
        if outcome.message:
            self.messages[outcome.message] = self.messages.get(outcome.message, 0) + 1

    def percentile(self, share: float) -> float:
        """Latency in milliseconds at `share` (0..100), nearest-rank."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, math.ceil(share / 100 * len(ordered)) - 1))
        return ordered[rank] * 1000

    def lines(self) -> list[str]:
        rate = self.requests / self.elapsed if self.elapsed > 0 else float("nan")
        out = [
            f"requests {self.requests}, records {self.records}: predicted {self.predicted}, "
            f"refused {self.refused}, failed {self.failed}",
            f"latency ms: p50 {self.percentile(50):.2f}, p90 {self.percentile(90):.2f}, "
            f"p99 {self.percentile(99):.2f}, max {self.percentile(100):.2f}",
            f"elapsed {self.elapsed:.2f} s, {rate:.1f} requests/s",
        ]
        for message, count in sorted(self.messages.items(), key=lambda item: -item[1])[:5]:
            out.append(f"  {count} × {message}")
        return out


def run_stream(
    send: Callable[[list[dict[str, Any]]], Outcome],
    requests: Iterator[list[dict[str, Any]]],
    rate: float = 0.0,
    concurrency: int = 1,
) -> StreamReport:
    """Send every batch with `send`, at most `rate` requests per second (0: as fast as possible)."""
    report = StreamReport()
    lock = threading.Lock()
    start = time.perf_counter()

    def one(index: int, batch: list[dict[str, Any]]) -> None:
        if rate > 0:
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        outcome = send(batch)
        with lock:
            report.add(outcome)

    if concurrency == 1:
        for index, batch in enumerate(requests):
            one(index, batch)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            window: list[Any] = []
            for index, batch in enumerate(requests):
                window.append(pool.submit(one, index, batch))
                if len(window) >= concurrency * 4:  # bounded: the file is never all in flight
                    window.pop(0).result()
            for future in window:
                future.result()
    report.elapsed = time.perf_counter() - start
    return report


class HttpSender:
    """POST batches to a running service's /predict; one keep-alive connection per thread."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/predict"
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()

    def _client(self) -> Any:
        import httpx

        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=self.timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _get(self, path: str) -> dict[str, Any]:
        import httpx

        try:
            response = self._client().get(f"{self.base_url}{path}")
        except httpx.HTTPError as error:
            raise ServiceUnavailable(f"service error: no service at {self.base_url}: {error}") from None
        if response.status_code != 200:
            raise ServiceUnavailable(f"service error: GET {self.base_url}{path} answered HTTP {response.status_code}")
        body = _json_or_empty(response)
        if not body:
            raise ServiceUnavailable(f"service error: GET {self.base_url}{path} did not answer a JSON object")
        return body

    def health(self) -> dict[str, Any]:
        """GET /health; ServiceUnavailable (one line) when the service is not there or not ready."""
        return self._get("/health")

    def model_info(self) -> dict[str, Any]:
        """GET /model: name, version and the feature schema the service expects."""
        info = self._get("/model")
        if "schema" not in info:
            raise ServiceUnavailable(f"service error: GET {self.base_url}/model has no schema; is it this project's service?")
        return info

    def __call__(self, batch: list[dict[str, Any]]) -> Outcome:
        import httpx

        body: Any = batch[0] if len(batch) == 1 else batch
        began = time.perf_counter()
        try:
            response = self._client().post(self.url, json=body)
        except httpx.HTTPError as error:
            return Outcome(0, 0, len(batch), time.perf_counter() - began, f"{type(error).__name__}: {error}")
        seconds = time.perf_counter() - began
        if response.status_code in (200, 422) and "results" in (payload := _json_or_empty(response)):
            refused = [result for result in payload["results"] if "errors" in result]
            message = _first_error(refused[0]) if refused else None
            return Outcome(len(batch) - len(refused), len(refused), 0, seconds, message)
        detail = _json_or_empty(response).get("detail", response.text[:200])
        if 400 <= response.status_code < 500:
            return Outcome(0, len(batch), 0, seconds, f"HTTP {response.status_code}: {detail}")
        return Outcome(0, 0, len(batch), seconds, f"HTTP {response.status_code}: {detail}")

    def close(self) -> None:
        for client in self._clients:
            client.close()


def stream_to_service(base_url: str, source: Path, chunk_size: int, args: Any) -> StreamReport:
    """Ask the service for its schema (GET /model), then stream `source`'s records to it.

    `args` carries batch_size, rate, limit and concurrency (the use cases' flags).
    """
    sender = HttpSender(base_url)
    try:
        sender.health()
        info = sender.model_info()
        schema = InputSchema.model_validate(info["schema"])
        print(f"service {sender.base_url}: model {info['model_name']} version {info['model_version']}", flush=True)
        print(f"instances from {source}", flush=True)
        records = iter_records(source, schema, chunk_size, args.limit)
        return run_stream(sender, batches(records, args.batch_size), args.rate, args.concurrency)
    finally:
        sender.close()


def print_report(report: StreamReport) -> int:
    """Print the report; the exit code is 1 when any request failed (connection error or 5xx)."""
    for line in report.lines():
        print(line)
    return 1 if report.failed else 0


def _json_or_empty(response: Any) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _first_error(result: dict[str, Any]) -> str:
    error = result["errors"][0]
    where = f"field '{error['field']}'" if error.get("field") else "record"
    return f"{where}: {error['message']}"
