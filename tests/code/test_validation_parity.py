"""One validator, one verdict: a battery of records gets the same refusals, word for word, on every path.

Batch (the CSV reader and `validate`, one chunk or one row per chunk), the service (JSON through
the Scorer, JSON numbers and nulls, and text/csv bodies) and the stream (`iter_records` into the
Scorer). Spark reads the same file in tests/integration/test_spark.py with this battery. The schema
has every column kind, a datetime among them, since no shipped dataset has one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from deployment.sagemaker_api import csv_records
from ml_project import column_rules as rules
from ml_project.artifacts import Bundle
from ml_project.ingestion import iter_chunks
from ml_project.online_scoring import RecordError, Scorer
from ml_project.streaming import iter_records
from ml_project.validation import ColumnSchema, InputSchema, validate

SCHEMA = InputSchema(
    columns=[
        ColumnSchema(name="länge", kind="numerical", minimum=10.0, maximum=20.0),
        ColumnSchema(name="count", kind="numerical", minimum=0.0, maximum=100.0, nullable=False),
        ColumnSchema(name="colour", kind="categorical", categories=["blue", "green", "grün"]),
        ColumnSchema(name="seen", kind="datetime"),
    ],
    target="label",
    task="classification",
    classes=["a", "b"],
)
BASE = {"länge": "12.5", "count": "3", "colour": "blue", "seen": "2024-05-01T13:00:00Z"}
NUMBER, RANGE = rules.NOT_A_NUMBER, rules.outside_range(10.0, 20.0)
UNKNOWN = rules.unknown_category(["blue", "green", "grün"])
AS_NUMBER, NOT_A_TIME = rules.DATETIME_AS_NUMBER, rules.NOT_A_DATETIME
PANDAS_SPELLINGS = ["NA", "None", "null", "N/A", "nan", "<NA>", "#N/A", "NULL", "-nan", "NaN", "n/a", "#NA", "-NaN"]

# (changed cells, expected refusals as {field: reason}); every cell is CSV text, as a file holds it.
CASES: list[tuple[dict[str, str], dict[str, str]]] = [
    ({}, {}),
    *[({"länge": text}, {"länge": NUMBER}) for text in ["abc", "1,5", "3_9", "inf", "-inf", "1e999", "0x10", "١٢"]],
    *[({"länge": text}, {"länge": NUMBER}) for text in ["True", "12.5.1"]],
    *[({"länge": text}, {}) for text in ["10", "20", "10.0000000000000001", " 12.5 ", "+1.25e1", "", "NA"]],
    ({"länge": "19.999999999999996"}, {}),
    *[({"länge": text}, {"länge": RANGE}) for text in ["9.999999", "20.000001", ".5e2", "-12.5"]],
    *[({"länge": text}, {"länge": NUMBER}) for text in PANDAS_SPELLINGS if text != "NA"],  # not missing: refused
    ({"count": ""}, {"count": rules.MISSING}),
    ({"count": "NA"}, {"count": rules.MISSING}),
    ({"count": "100"}, {}),
    ({"count": "-1"}, {"count": rules.outside_range(0.0, 100.0)}),
    *[({"colour": text}, {"colour": UNKNOWN}) for text in ["red", "Blue", " blue", "1", "grun"]],
    *[({"colour": text}, {}) for text in ["grün", "green", "NA", ""]],
    *[({"colour": text}, {"colour": UNKNOWN}) for text in PANDAS_SPELLINGS if text != "NA"],
    *[({"seen": text}, {"seen": AS_NUMBER}) for text in ["1714567890", "1714567890.5", "-5", " 17 "]],
    *[({"seen": text}, {"seen": NOT_A_TIME}) for text in ["not a time", "2024-13-01", "null", "True", "2262-04-12"]],
    *[({"seen": text}, {}) for text in ["2024-05-01", "2024-05-01T13:00:00+02:00", "NA", "", "May 1 2024"]],
    ({"länge": "abc", "colour": "red", "seen": "1"}, {"länge": NUMBER, "colour": UNKNOWN, "seen": AS_NUMBER}),
]
BATTERY = [{**BASE, **changed} for changed, _ in CASES]
EXPECTED = [dict(sorted(refusals.items())) for _, refusals in CASES]
Verdicts = list[dict[str, str]]


def write_battery(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(BASE))
        writer.writeheader()
        writer.writerows(BATTERY)
    return path


def batch_verdicts(path: Path, chunk_size: int) -> Verdicts:
    """The batch path: CSV read with validation.missing_values, then `validate`; refusals by row."""
    found: Verdicts = [{} for _ in BATTERY]
    for chunk in iter_chunks(path, chunk_size, ["colour"], SCHEMA.missing_values):
        quarantine = validate(chunk, SCHEMA).quarantine
        for row, column, reason in quarantine[["row", "column", "reason"]].itertuples(index=False):
            found[int(row)][str(column)] = str(reason)
    return [dict(sorted(refusals.items())) for refusals in found]


def scorer() -> Scorer:
    """The service's validator for SCHEMA (parse never calls the model, so none is needed)."""
    return Scorer(Bundle(pipeline=None, schema=SCHEMA, model_name="parity", metrics={}, fingerprint={}))


def service_verdicts(records: list[Any]) -> Verdicts:
    service = scorer()
    out: Verdicts = []
    for record in records:
        parsed = service.parse(record)
        errors = parsed if isinstance(parsed, list) else []
        assert all(isinstance(error, RecordError) and error.field for error in errors), errors
        out.append(dict(sorted((str(error.field), error.message) for error in errors)))
    return out


def as_json(record: dict[str, str]) -> dict[str, Any]:
    """The record as a JSON client would type it: numbers as numbers, an empty cell as null."""
    typed: dict[str, Any] = {}
    for name, cell in record.items():
        kind = SCHEMA.column(name).kind
        if cell == "":
            typed[name] = None
        elif kind in ("numerical", "datetime") and rules.is_number_text(cell) and cell == cell.strip():
            number = float(cell)
            typed[name] = int(number) if number.is_integer() and "e" not in cell.lower() else number
            if not (abs(number) < float("inf")):
                typed[name] = cell  # JSON has no infinity: the text stands
        else:
            typed[name] = cell
    return typed


def test_the_battery_is_big_and_covers_every_kind_and_every_reason() -> None:
    assert len(BATTERY) >= 40
    reasons = {reason for refusals in EXPECTED for reason in refusals.values()}
    assert reasons == {NUMBER, RANGE, UNKNOWN, AS_NUMBER, NOT_A_TIME, rules.MISSING, rules.outside_range(0.0, 100.0)}
    assert sum(1 for refusals in EXPECTED if not refusals) >= 15


def test_batch_gives_the_expected_verdicts_whatever_the_chunk_size(tmp_path: Path) -> None:
    path = write_battery(tmp_path / "battery.csv")
    assert batch_verdicts(path, len(BATTERY)) == EXPECTED
    assert batch_verdicts(path, 1) == EXPECTED  # one row per chunk: pandas infers other column types


def test_the_service_gives_the_batch_verdicts_for_text_json_and_csv_bodies(tmp_path: Path) -> None:
    path = write_battery(tmp_path / "battery.csv")
    batch = batch_verdicts(path, len(BATTERY))
    assert service_verdicts(BATTERY) == batch
    assert service_verdicts([as_json(record) for record in BATTERY]) == batch
    body = path.read_bytes()
    assert service_verdicts(csv_records(body, list(BASE), set(BASE), len(BATTERY))) == batch


@pytest.mark.parametrize("chunk_size", [1, 1000])
def test_the_stream_gives_the_batch_verdicts(tmp_path: Path, chunk_size: int) -> None:
    path = write_battery(tmp_path / "battery.csv")
    records = list(iter_records(path, SCHEMA, chunk_size))
    assert len(records) == len(BATTERY)
    assert service_verdicts(records) == batch_verdicts(path, chunk_size) == EXPECTED


def test_a_few_verdicts_and_the_full_refusal_line_are_pinned() -> None:
    (refused,) = service_verdicts([{**BASE, "seen": 1714567890}])
    assert refused == {"seen": "expected a date/time as text, e.g. 2024-05-01T13:00:00Z"}
    assert service_verdicts([{**BASE, "länge": "null"}, {**BASE, "colour": None}]) == [
        {"länge": "expected a finite number"},
        {},
    ]
    errors = scorer().parse({**BASE, "länge": "500"})
    assert isinstance(errors, list)
    assert [str(error) for error in errors] == ["field 'länge': outside the accepted range [10, 20] (got '500')"]


def test_json_only_values_get_the_rule_of_their_kind() -> None:
    """Values a CSV cannot hold: a bool for a number or a time, an object for a category, NaN."""
    records = [
        {**BASE, "länge": True},
        {**BASE, "seen": False},
        {**BASE, "colour": {"a": 1}},
        {**BASE, "colour": True},
        {**BASE, "länge": float("nan")},
        {**BASE, "count": float("nan")},
        {**BASE, "länge": 10**400},
    ]
    assert service_verdicts(records) == [
        {"länge": NUMBER},
        {"seen": NOT_A_TIME},
        {"colour": rules.NOT_TEXT},
        {"colour": UNKNOWN},
        {},
        {"count": rules.MISSING},
        {"länge": NUMBER},
    ]
    assert json.loads(json.dumps(BATTERY[0])) == BASE


def test_a_configured_missing_list_is_what_every_path_reads_so_a_real_na_category_survives(tmp_path: Path) -> None:
    """With validation.missing_values = [""] a category spelt NA is a category, and "null" could be made missing."""
    columns = [ColumnSchema(name="code", kind="categorical", categories=["NA", "US"]), SCHEMA.columns[0]]
    schema = SCHEMA.model_copy(update={"columns": columns, "missing_values": ["", "null"]})
    path = tmp_path / "codes.csv"
    path.write_text("code,länge\nNA,12\nnull,null\n,NA\n", encoding="utf-8")
    (chunk,) = iter_chunks(path, 10, ["code"], schema.missing_values)
    quarantine = validate(chunk, schema).quarantine
    batch: Verdicts = [{}, {}, {}]
    for row, column, reason in quarantine[["row", "column", "reason"]].itertuples(index=False):
        batch[int(row)][str(column)] = str(reason)
    expected = [{}, {}, {"länge": NUMBER}]  # NA is now text like any other, and no number
    assert batch == expected
    service = Scorer(Bundle(pipeline=None, schema=schema, model_name="codes", metrics={}, fingerprint={}))
    typed = [{"code": "NA", "länge": 12}, {"code": "null", "länge": None}, {"code": None, "länge": "NA"}]
    for records in (list(iter_records(path, schema, 10)), typed):
        outcomes = [service.parse(record) for record in records]
        assert [{str(e.field): e.message for e in o} if isinstance(o, list) else {} for o in outcomes] == expected
    accepted = service.parse(typed[0])
    assert not isinstance(accepted, list) and accepted.values == ("NA", 12.0)
