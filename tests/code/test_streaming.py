"""streaming: records read from a file as the service gets them, the stream's counts and latencies, the HTTP sender."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ml_project.errors import ServiceUnavailable
from ml_project.ingestion import DataError
from ml_project.streaming import HttpSender, Outcome, StreamReport, batches, iter_records, print_report, run_stream
from ml_project.validation import ColumnSchema, InputSchema

from ..conftest import free_port

SCHEMA = InputSchema(
    columns=[
        ColumnSchema(name="size", kind="numerical", minimum=0.0, maximum=10.0),
        ColumnSchema(name="code", kind="categorical", categories=["01", "10"]),
        ColumnSchema(name="seen", kind="datetime"),
    ],
    target="label",
    task="classification",
    id_column="key",
)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "records.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_records_carry_features_and_id_only_with_missing_spellings_as_null(tmp_path: Path) -> None:
    path = _file(tmp_path, "key,size,code,seen,other\nk1,1.5,01,2024-05-01,x\nk2,NA,NA,,y\nk3,null,10,1714567890,z\n")
    records = list(iter_records(path, SCHEMA, chunk_size=2))
    assert records == [
        {"size": 1.5, "code": "01", "seen": "2024-05-01", "key": "k1"},
        {"size": None, "code": None, "seen": None, "key": "k2"},
        {"size": "null", "code": "10", "seen": 1714567890, "key": "k3"},  # not a missing spelling: sent as is
    ]
    assert json.loads(json.dumps(records)) == records
    assert list(iter_records(path, SCHEMA, chunk_size=2, limit=1)) == records[:1]


def test_a_file_without_a_feature_is_refused_before_any_record(tmp_path: Path) -> None:
    path = _file(tmp_path, "key,size,code\nk1,1,01\n")
    with pytest.raises(DataError, match=r"has no column 'seen'"):
        next(iter_records(path, SCHEMA, chunk_size=10))


def test_batches_keep_every_record_in_order() -> None:
    grouped = list(batches(iter([{"a": i} for i in range(5)]), 2))
    assert grouped == [[{"a": 0}, {"a": 1}], [{"a": 2}, {"a": 3}], [{"a": 4}]]


def test_the_report_counts_every_record_once_and_names_the_commonest_refusal() -> None:
    report = StreamReport()
    for outcome in [Outcome(2, 0, 0, 0.010), Outcome(1, 1, 0, 0.020, "field 'x': bad"), Outcome(0, 0, 3, 0.03, "down")]:
        report.add(outcome)
    assert (report.requests, report.records, report.predicted, report.refused, report.failed) == (3, 7, 3, 1, 3)
    assert report.records == report.predicted + report.refused + report.failed
    assert report.percentile(50) == pytest.approx(20.0) and report.percentile(100) == pytest.approx(30.0)
    assert report.lines()[0] == "requests 3, records 7: predicted 3, refused 1, failed 3"
    assert print_report(report) == 1 and print_report(StreamReport()) == 0


def test_run_stream_sends_every_batch_serially_and_concurrently() -> None:
    sent: list[int] = []

    def send(batch: list[dict[str, Any]]) -> Outcome:
        sent.extend(record["a"] for record in batch)
        return Outcome(len(batch), 0, 0, 0.001)

    for concurrency in (1, 3):
        sent.clear()
        report = run_stream(send, batches(iter([{"a": i} for i in range(20)]), 3), concurrency=concurrency)
        assert sorted(sent) == list(range(20)) and report.requests == 7 and report.predicted == 20


def test_no_service_is_one_line_and_a_dead_service_fails_the_batch() -> None:
    sender = HttpSender(f"http://127.0.0.1:{free_port()}", timeout=2.0)
    try:
        with pytest.raises(ServiceUnavailable, match=r"^service error: no service at http://127\.0\.0\.1:\d+"):
            sender.health()
        outcome = sender([{"size": 1}])
        assert (outcome.predicted, outcome.refused, outcome.failed) == (0, 0, 1) and outcome.message
    finally:
        sender.close()


def test_refused_records_are_counted_with_the_first_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        results = [
            {"request_id": "r", "errors": [{"field": "size", "message": "expected a finite number", "value": "x"}]},
            {"request_id": "s", "prediction": "a"},
        ]
        return httpx.Response(200, json={"results": results[: len(body)]})

    sender = HttpSender("http://service")
    monkeypatch.setattr(sender, "_client", lambda: httpx.Client(transport=httpx.MockTransport(answer)))
    outcome = sender([{"size": "x"}, {"size": 1}])
    assert (outcome.predicted, outcome.refused, outcome.failed) == (1, 1, 0)
    assert outcome.message == "field 'size': expected a finite number"
