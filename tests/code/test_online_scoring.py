"""The service in-process (TestClient): contract, per-record errors, 4xx for bad input, parity with batch."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from deployment.app import create_app
from ml_project.artifacts import load_bundle
from ml_project.config import ServiceConfig
from ml_project.online_scoring import MicroBatcher, Scorer, record_model
from ml_project.prediction import predict_frame
from ml_project.prediction_log import PredictionLog, count_predictions, read_predictions
from ml_project.validation import validate

RECORD = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
    "island": "Torgersen",
    "sex": "male",
}
FEATURES = list(RECORD)


@pytest.fixture(scope="module")
def bundle(trained):  # type: ignore[no-untyped-def]
    """The trained bundle as every server loads it: verified, with its compiled fast path."""
    return load_bundle(trained[1].bundle.path)


@pytest.fixture()
def client(bundle) -> Any:  # type: ignore[no-untyped-def]
    with TestClient(create_app(bundle, ServiceConfig(max_batch_records=10, max_body_bytes=4096))) as test_client:
        yield test_client


def _records(penguins: pd.DataFrame, rows: int) -> list[dict[str, Any]]:
    frame = penguins[FEATURES].head(rows).astype(object)
    return [{key: (None if pd.isna(value) else value) for key, value in row.items()} for row in frame.to_dict("records")]


def test_one_record_gets_the_batch_prediction_probabilities_and_version(client: TestClient, bundle) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/predict", json=RECORD, headers={"X-Request-ID": "req-1"})
    assert response.status_code == 200
    body = response.json()
    expected, _ = predict_frame(bundle, pd.DataFrame([RECORD]))
    (result,) = body["results"]
    assert result["request_id"] == "req-1" and response.headers["x-request-id"] == "req-1"
    assert result["prediction"] == expected["prediction"].iloc[0]
    assert result["probabilities"] == {label: expected[f"proba_{label}"].iloc[0] for label in bundle.classes}
    assert result["model_version"] == bundle.version == body["model_version"]


def test_a_list_is_predicted_exactly_as_batch_scoring_does(client: TestClient, bundle, penguins: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    records = _records(penguins, 10)  # row 3 has every measurement missing: imputed, still predicted
    response = client.post("/predict", json=records)
    assert response.status_code == 200
    expected, quarantine = predict_frame(bundle, pd.DataFrame(records))
    assert quarantine.empty
    results = response.json()["results"]
    assert [result["prediction"] for result in results] == expected["prediction"].tolist()
    assert [result["probabilities"]["Gentoo"] for result in results] == expected["proba_Gentoo"].tolist()
    assert len({result["request_id"] for result in results}) == 10


def test_valid_records_are_predicted_and_invalid_ones_carry_their_errors(client: TestClient) -> None:
    records = [RECORD, {**RECORD, "island": "Atlantis", "bill_depth_mm": "deep"}, {**RECORD, "sex": None}]
    response = client.post("/predict", json=records)
    assert response.status_code == 200
    good, bad, missing_sex = response.json()["results"]
    assert good["prediction"] == "Adelie" and missing_sex["prediction"] == "Adelie"
    assert "prediction" not in bad
    assert [error["field"] for error in bad["errors"]] == ["bill_depth_mm", "island"]
    assert bad["errors"][0]["value"] == "deep"
    assert bad["errors"][1]["message"] == "unknown category (known: Biscoe, Dream, Torgersen)"


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b'{"bill_length_mm": 39.1,', 400, "request body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 25 (char 24)"),
        (b"[NaN]", 400, "request body is not valid JSON: NaN is not valid JSON"),
        (b'{"bill_length_mm": 1e400}', 400, "request body is not valid JSON: number 1e400 is too large for a 64-bit float"),
        (b"[" * 100_000, 413, "request body of 100000 bytes exceeds service.max_body_bytes = 4096"),
        (b"[" * 4000, 400, "request body is not valid JSON: nested too deeply"),
        (b"", 422, "request body is empty; send one record (a JSON object) or a list of records"),
        (b"[]", 422, "request body is an empty list; send at least one record"),
        (b'"Adelie"', 422, "request body must be a JSON object (one record) or a list of records, not str"),
        (json.dumps([RECORD] * 11).encode(), 422, "request holds 11 records; service.max_batch_records = 10"),
        (json.dumps({**RECORD, "bill_length_mm": "long"}).encode(), 422, "field 'bill_length_mm': expected a finite number (got 'long')"),
        (json.dumps({**RECORD, "bill_length_mm": 500}).encode(), 422, "field 'bill_length_mm': outside the accepted range [29.35, 62.35] (got 500)"),
        (json.dumps({**RECORD, "island": "Atlantis"}).encode(), 422, "field 'island': unknown category (known: Biscoe, Dream, Torgersen) (got 'Atlantis')"),
        (json.dumps({k: v for k, v in RECORD.items() if k != "sex"}).encode(), 422, "field 'sex': required field is missing"),
        (json.dumps({**RECORD, "beak_colour": "red"}).encode(), 422, "field 'beak_colour': unknown field; this model has no such feature (got 'red')"),
        (json.dumps([RECORD, 7]).encode(), 200, None),
        (json.dumps([7, 8]).encode(), 422, "record 0: record: a record must be a JSON object of feature: value (and 1 more records refused)"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field(client: TestClient, body: bytes, status: int, detail: str | None) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json().get("detail") == detail


def test_a_body_that_is_not_json_is_refused_with_415(client: TestClient) -> None:
    response = client.post("/predict", content=b"a,b\n1,2", headers={"content-type": "text/csv"})
    assert (response.status_code, response.json()["detail"]) == (415, "content-type 'text/csv' is not application/json")


def test_health_model_and_openapi_describe_the_bundle(client: TestClient, bundle) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/health").json() == {"status": "ok", "model_name": bundle.model_name, "model_version": bundle.version}
    info = client.get("/model").json()
    assert info["model_version"] == bundle.version and info["metrics"] == bundle.metrics["holdout"]
    assert info["schema"] == json.loads(bundle.schema.model_dump_json())
    assert info["prediction_path"] == "compiled numpy" and info["served_as"] == "path"
    record = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert sorted(record["required"]) == sorted(FEATURES) and record["additionalProperties"] is False
    island = record["properties"]["island"]["anyOf"]
    assert {"enum": ["Biscoe", "Dream", "Torgersen"], "type": "string"} in island and {"type": "null"} in island
    bill = record["properties"]["bill_length_mm"]["anyOf"][0]
    spec = bundle.schema.column("bill_length_mm")
    assert (bill["minimum"], bill["maximum"]) == (spec.minimum, spec.maximum)


def test_record_checks_agree_with_batch_validation(bundle) -> None:  # type: ignore[no-untyped-def]
    """The service's record model and pandera validation refuse the same fields for the same values."""
    spec = bundle.schema.column("body_mass_g")
    candidates: list[dict[str, Any]] = [
        RECORD,
        {**RECORD, "body_mass_g": spec.maximum},
        {**RECORD, "body_mass_g": spec.maximum + 1},
        {**RECORD, "body_mass_g": spec.minimum - 0.001},
        {**RECORD, "body_mass_g": "4000"},
        {**RECORD, "body_mass_g": "heavy"},
        {**RECORD, "body_mass_g": None},
        {**RECORD, "island": "Dream", "sex": None},
        {**RECORD, "island": "dream"},
        {**RECORD, "sex": 1},
        {**RECORD, "bill_length_mm": float("inf")},
    ]
    scorer = Scorer(bundle)
    for record in candidates:
        parsed = scorer.parse(record)
        service_fields = set() if not isinstance(parsed, list) else {error.field for error in parsed}
        result = validate(pd.DataFrame([record]), bundle.schema)
        assert service_fields == set(result.quarantine["column"]), record


def test_every_prediction_is_logged_with_version_features_and_outputs(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with TestClient(create_app(bundle, ServiceConfig(), PredictionLog(url))) as test_client:
        answers = [test_client.post("/predict", json=[RECORD, {**RECORD, "island": "Mars"}]) for _ in range(5)]
    assert count_predictions(url) == 5  # written and flushed at shutdown; refused records are not predictions
    logged = read_predictions(url)
    assert sorted(logged["request_id"]) == sorted(answer.json()["results"][0]["request_id"] for answer in answers)
    row = logged.iloc[0]
    assert (row["model_name"], row["model_version"], row["source"], row["prediction"]) == (bundle.model_name, bundle.version, "service", "Adelie")
    assert row["features"] == RECORD
    assert row["probabilities"] == answers[0].json()["results"][0]["probabilities"]


def test_concurrent_requests_share_model_calls_and_get_their_own_answers(bundle, penguins: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(bundle)
    records = [scorer.parse(record) for record in _records(penguins, 40)]
    expected = scorer.predict(records)  # type: ignore[arg-type]

    async def scenario() -> tuple[list[Any], MicroBatcher]:
        batcher = MicroBatcher(scorer.predict, max_records=16, max_wait=0.005)
        await batcher.start()
        answers = await asyncio.gather(*(batcher.submit([record]) for record in records))  # type: ignore[list-item]
        await batcher.stop()
        return answers, batcher

    answers, batcher = asyncio.run(scenario())
    assert [answer[0] for answer in answers] == expected
    assert batcher.records == 40 and 3 <= batcher.batches < 40  # at most 16 records per model call


def test_the_record_model_keeps_odd_column_names_as_keys(bundle) -> None:  # type: ignore[no-untyped-def]
    schema = bundle.schema.model_copy(update={"columns": [bundle.schema.columns[0].model_copy(update={"name": "bill length (mm)"})]})
    model = record_model(schema)
    assert model.model_validate({"bill length (mm)": 40.0}).model_dump(by_alias=True) == {"bill length (mm)": 40.0}


def test_a_client_request_id_is_kept_only_if_the_per_record_ids_fit_the_log(client: TestClient) -> None:
    kept = "a" * 48
    response = client.post("/predict", json=[RECORD, RECORD], headers={"X-Request-ID": kept})
    assert [result["request_id"] for result in response.json()["results"]] == [f"{kept}-0", f"{kept}-1"]
    too_long = "b" * 49
    response = client.post("/predict", json=[RECORD, RECORD], headers={"X-Request-ID": too_long})
    assert response.status_code == 200
    assert response.headers["x-request-id"] != too_long and len(response.headers["x-request-id"]) == 32


def test_the_log_keeps_the_validated_values_not_the_text_sent(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with PredictionLog(url) as log:
        scorer = Scorer(bundle, log, source="stream")
        (outcome,) = scorer.score([{**RECORD, "bill_length_mm": "39.1", "body_mass_g": 3750}])
    assert outcome.prediction == "Adelie"
    assert read_predictions(url)["features"].tolist() == [{**RECORD, "bill_length_mm": 39.1, "body_mass_g": 3750.0}]


def test_datetime_and_number_text_is_read_as_batch_validation_reads_it() -> None:
    """Same schema, same values: the record model accepts exactly what batch validation accepts."""
    from ml_project.validation import ColumnSchema, InputSchema

    schema = InputSchema(
        columns=[ColumnSchema(name="when", kind="datetime"), ColumnSchema(name="x", kind="numerical", minimum=0, maximum=100)],
        target="y",
        task="regression",
    )
    model = record_model(schema)
    stamps = ["2010-05-01T13:00:00Z", "2010-05-01 13:00:00+02:00", "20100501", "05/01/2010", "May 1 2010", "1600-01-01", "2300-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "soon", None]
    numbers = ["39.1", "3_9.1", " 4 ", "1e1", 5, True, None]
    for when in stamps:
        for x in numbers:
            record = {"when": when, "x": x}
            try:
                parsed = model.model_validate(record)
                service = (set(), pd.Timestamp(getattr(parsed, "feature_0")) if when else None)
            except Exception as error:  # ValidationError: which fields failed
                service = ({str(item["loc"][0]) for item in error.errors()}, None)  # type: ignore[attr-defined]
            result = validate(pd.DataFrame([record]), schema)
            batch_fields = set(result.quarantine["column"])
            assert service[0] == batch_fields, record
            if not batch_fields and when is not None:
                assert service[1] == result.valid["when"].iloc[0], record


def test_a_deeply_nested_value_is_described_not_echoed(client: TestClient) -> None:
    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    response = client.post("/predict", json=[RECORD, {**RECORD, "island": deep}])
    assert response.status_code == 200
    assert response.json()["results"][1]["errors"][0]["value"] == "<a list of 1 items>"


def test_the_service_refuses_with_the_words_of_the_batch_quarantine(client: TestClient, bundle) -> None:  # type: ignore[no-untyped-def]
    """Over HTTP with the trained bundle: each field's refusal is the batch quarantine's reason for the same value."""
    records = [
        {**RECORD, "bill_length_mm": "long"},
        {**RECORD, "island": "NA", "sex": ""},  # missing-value spellings: imputed, predicted
        {**RECORD, "island": "null", "sex": "None"},  # not missing spellings: unknown categories
        {**RECORD, "flipper_length_mm": 999, "bill_depth_mm": " 18.7 "},
        {**RECORD, "body_mass_g": True},
    ]
    response = client.post("/predict", json=records)
    assert response.status_code == 200
    results = response.json()["results"]
    service = [{error["field"]: error["message"] for error in result.get("errors", [])} for result in results]
    quarantine = validate(pd.DataFrame(records), bundle.schema).quarantine
    batch: list[dict[str, str]] = [{} for _ in records]
    for row, column, reason in quarantine[["row", "column", "reason"]].itertuples(index=False):
        batch[int(row)][str(column)] = str(reason)
    assert service == batch
    assert service == [
        {"bill_length_mm": "expected a finite number"},
        {},
        {"island": "unknown category (known: Biscoe, Dream, Torgersen)", "sex": "unknown category (known: female, male)"},
        {"flipper_length_mm": "outside the accepted range [166.1, 236.9]"},
        {"body_mass_g": "expected a finite number"},
    ]
