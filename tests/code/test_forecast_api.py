"""POST /forecast on a real small forecasting bundle: rows per series, a sent history, refusals, the log rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from deployment.app import create_app
from ml_project.artifacts import Bundle, load_bundle
from ml_project.config import ServiceConfig, build_config
from ml_project.dashboard import MAX_ACTUALS
from ml_project.forecasters import fit
from ml_project.forecasting import forecast_table
from ml_project.prediction_log import PredictionLog, read_predictions
from ml_project.series import ID, TIME, VALUE
from ml_project.training import train

from .test_forecasting import queues, seasonal_config

DAYS = ["2026-04-01", "2026-04-02", "2026-04-03", "2026-04-04", "2026-04-05"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """Two daily series (DEFAULT, LLAP) to 2026-03-31, ridge, horizon 5: trained once for the module."""
    tmp = tmp_path_factory.mktemp("forecast_api")
    report = train(seasonal_config(tmp, queues()), progress=False)
    return load_bundle(report.bundle.path)


@pytest.fixture(scope="module")
def client(bundle: Bundle) -> Any:
    with TestClient(create_app(bundle, ServiceConfig())) as served:
        yield served


def observations(name: str | None, start: str, values: list[float], hours: int = 24) -> list[dict[str, Any]]:
    stamps = pd.date_range(start, periods=len(values), freq=f"{hours}h")
    points = [{"timestamp": stamp.isoformat(), "value": value} for stamp, value in zip(stamps, values)]
    return [{**point, "series": name} for point in points] if name else points


def newer_default(days: int = 30) -> list[float]:
    """DEFAULT's weekly pattern after the training history, 20 higher: a level the stored lags do not know."""
    t = np.arange(90, 90 + days)
    return [float(80 + 8 * np.sin(2 * np.pi * step / 7)) for step in t]


def test_every_series_gets_horizon_rows_after_the_stored_history(client: TestClient, bundle: Bundle) -> None:
    response = client.post("/forecast", json={}, headers={"X-Request-ID": "plan-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["model_version"], body["request_id"]) == ("queues", bundle.version, "plan-1")
    assert response.headers["X-Request-ID"] == "plan-1"
    rows = body["forecasts"]
    assert [row["series"] for row in rows] == ["DEFAULT"] * 5 + ["LLAP"] * 5
    assert [row["timestamp"] for row in rows] == [f"{day}T00:00:00" for day in DAYS] * 2
    expected = forecast_table(bundle)  # the batch path's numbers, exactly
    assert [row["forecast"] for row in rows] == expected["forecast"].tolist()
    assert all(row["forecast_lower"] < row["forecast"] < row["forecast_upper"] for row in rows)


def test_horizon_and_series_choose_what_is_answered(client: TestClient) -> None:
    rows = client.post("/forecast", json={"horizon": 12, "series": ["LLAP"]}).json()["forecasts"]
    assert [row["series"] for row in rows] == ["LLAP"] * 12
    assert [row["timestamp"][:10] for row in rows] == [str(day.date()) for day in pd.date_range("2026-04-01", periods=12)]
    both = client.post("/forecast", json={"horizon": 2, "series": ["LLAP", "DEFAULT", "LLAP"]}).json()["forecasts"]
    assert [row["series"] for row in both] == ["LLAP", "LLAP", "DEFAULT", "DEFAULT"]  # the asked order, once each


def test_a_sent_history_shifts_the_start_and_the_forecast(client: TestClient, bundle: Bundle) -> None:
    stored = {row["timestamp"]: row["forecast"] for row in client.post("/forecast", json={}).json()["forecasts"]}
    history = observations("DEFAULT", "2026-04-01", newer_default())  # 30 days to 2026-04-30
    rows = client.post("/forecast", json={"history": history}).json()["forecasts"]
    default = [row for row in rows if row["series"] == "DEFAULT"]
    assert [row["timestamp"][:10] for row in default] == ["2026-05-01", "2026-05-02", "2026-05-03", "2026-05-04", "2026-05-05"]
    assert min(row["forecast"] for row in default) > max(stored.values())  # the lags are the newer, higher ones
    sent = pd.DataFrame({ID: "DEFAULT", TIME: pd.date_range("2026-04-01", periods=30), VALUE: newer_default()})
    assert [row["forecast"] for row in default] == forecast_table(bundle, 5, history=sent)["forecast"].tolist()[:5]
    llap = [row for row in rows if row["series"] == "LLAP"]  # a series the history does not name keeps its own
    assert [row["timestamp"][:10] for row in llap] == DAYS


def test_a_sent_history_is_put_on_the_model_grid(client: TestClient) -> None:
    """Twice a day at the mean of a day is the same history as once a day: `forecast.aggregation` is mean."""
    daily = newer_default()
    twice = [value + offset for value in daily for offset in (-1.0, 1.0)]
    once = client.post("/forecast", json={"series": ["DEFAULT"], "history": observations("DEFAULT", "2026-04-01", daily)})
    halves = client.post("/forecast", json={"series": ["DEFAULT"], "history": observations("DEFAULT", "2026-04-01", twice, 12)})
    assert halves.json()["forecasts"] == once.json()["forecasts"]


def test_a_new_series_is_forecast_from_its_history(client: TestClient) -> None:
    history = observations("TEZ", "2026-04-01", newer_default(20))
    rows = client.post("/forecast", json={"series": ["TEZ"], "horizon": 3, "history": history}).json()["forecasts"]
    assert [(row["series"], row["timestamp"][:10]) for row in rows] == [("TEZ", "2026-04-21"), ("TEZ", "2026-04-22"), ("TEZ", "2026-04-23")]


def _history_with(index: int, **changed: Any) -> dict[str, Any]:
    history = observations("DEFAULT", "2026-04-01", newer_default())
    history[index] = {**history[index], **changed}
    return {"history": history}


@pytest.mark.parametrize(
    ("body", "status", "field", "detail"),
    [
        ({"horizon": 0}, 422, "horizon", "horizon: must be between 1 and 1000 (max(10 x the model's horizon of 5, 1000))"),
        ({"horizon": 1001}, 422, "horizon", "horizon: must be between 1 and 1000 (max(10 x the model's horizon of 5, 1000))"),
        ({"horizon": "5"}, 422, "horizon", "horizon: Input should be a valid integer"),
        ({"series": ["DEFAULT", "TEZ"]}, 422, "series[1]", "series[1]: series 'TEZ' is neither in the model (DEFAULT, LLAP) nor in the sent history"),
        ({"series": []}, 422, "series", "series: List should have at least 1 item after validation, not 0"),
        ({"horizon": 5, "steps": 5}, 422, "steps", "steps: unknown field"),
        (_history_with(3, timestamp="01/04/2026"), 422, "history[3].timestamp", "history[3].timestamp: expected an ISO 8601 date/time, e.g. 2026-01-01T00:00:00"),
        (_history_with(3, value="1.5"), 422, "history[3].value", "history[3].value: Input should be a valid number"),
        (_history_with(3, value=None), 422, "history[3].value", "history[3].value: Input should be a valid number"),
        (_history_with(4, series=None), 422, "history[4].series", "history[4].series: required: this model forecasts several series (DEFAULT, LLAP)"),
        (_history_with(4, weight=1), 422, "history[4].weight", "history[4].weight: unknown field"),
        ({"history": observations("DEFAULT", "2026-04-01", [1.0] * 15)}, 422, "history", "history: series DEFAULT has 15 observations; the model's lags need at least 16"),
        ([{"horizon": 5}], 422, None, "request body must be a JSON object"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client: TestClient, body: Any, status: int, field: str | None, detail: str) -> None:
    response = client.post("/forecast", json=body)
    assert response.status_code == status
    answer = response.json()
    assert answer["detail"] == detail
    assert answer["errors"][0]["field"] == field
    assert answer["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "detail"),
    [
        (b'{"history": [{"timestamp": "2026-04-01", "series": "DEFAULT", "value": NaN}]}', "application/json", 422, "history[0].value: Input should be a finite number"),
        (b'{"history": [{"timestamp": "2026-04-01", "series": "DEFAULT", "value": 1e999}]}', "application/json", 422, "history[0].value: Input should be a finite number"),
        (b'{"horizon": 5', "application/json", 400, "request body is not valid JSON: Expecting ',' delimiter: line 1 column 14 (char 13)"),
        (b"horizon=5", "application/x-www-form-urlencoded", 415, "content-type 'application/x-www-form-urlencoded' is not application/json"),
    ],
)
def test_a_body_that_is_not_finite_json_is_refused(client: TestClient, content: bytes, content_type: str, status: int, detail: str) -> None:
    response = client.post("/forecast", content=content, headers={"Content-Type": content_type})
    assert (response.status_code, response.json()["detail"]) == (status, detail)


def test_a_history_centuries_long_is_refused_before_it_is_resampled(client: TestClient) -> None:
    history = [{"timestamp": "1700-01-01", "series": "DEFAULT", "value": 1.0}, {"timestamp": "2200-01-01", "series": "DEFAULT", "value": 1.0}]
    response = client.post("/forecast", json={"history": history})
    assert response.status_code == 422
    assert response.json()["detail"] == "history: series DEFAULT: 2 observations over 182622 periods of 1D; most periods would have no observation"


def test_every_forecast_point_is_logged_with_the_period_it_is_for(bundle: Bundle, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with TestClient(create_app(bundle, ServiceConfig(), PredictionLog(url))) as served:
        answered = served.post("/forecast", json={"horizon": 3}, headers={"X-Request-ID": "plan-7"}).json()["forecasts"]
        served.post("/forecast", json={"horizon": 0})  # refused: nothing logged
    logged = read_predictions(url)
    assert len(logged) == 6
    assert set(logged["request_id"]) == {"plan-7"} and set(logged["model_version"]) == {bundle.version}
    assert logged["prediction"].tolist() == [row["forecast"] for row in answered]
    assert logged["features"].tolist() == [
        {"series": row["series"], "timestamp": row["timestamp"], "step": step, "forecast_lower": row["forecast_lower"], "forecast_upper": row["forecast_upper"]}
        for row, step in zip(answered, [1, 2, 3, 1, 2, 3])
    ]
    assert logged["timestamp"].tolist() == [f"{day}T00:00:00" for day in DAYS[:3]] * 2  # the features, one column each


def test_the_service_says_what_it_forecasts_and_serves_no_tabular_route(bundle: Bundle) -> None:
    with TestClient(create_app(bundle, ServiceConfig(dashboard=True), sagemaker=True)) as served:
        assert served.get("/health").json() == {"status": "ok", "model_name": "queues", "model_version": bundle.version}
        info = served.get("/model").json()
        assert (info["task"], info["target"], info["algorithm"]) == ("forecasting", "used", "ridge")
        assert info["forecast"]["frequency"] == "1D" and info["forecast"]["horizon"] == 5
        assert info["forecast"]["series"] == ["DEFAULT", "LLAP"] and info["forecast"]["max_horizon"] == 1000
        for method, path in (("post", "/predict"), ("get", "/ping"), ("post", "/invocations")):
            assert getattr(served, method)(path).status_code == 404, path
        document = served.get("/openapi.json").json()
    dashboard = ["/dashboard/api", "/dashboard/api/forecast", "/dashboard/api/model", "/dashboard/api/volume"]
    assert sorted(path for path in document["paths"] if "{" not in path) == sorted(["/forecast", "/health", "/model", *dashboard])
    request = document["components"]["schemas"]["ForecastRequest"]
    assert request["properties"]["horizon"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert "Observation" in document["components"]["schemas"]


def test_the_dashboard_plots_logged_forecasts_by_the_period_they_are_for(bundle: Bundle, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(url)
    with TestClient(create_app(bundle, ServiceConfig(dashboard=True), log)) as served:
        answered = served.post("/forecast", json={"horizon": 3, "series": ["LLAP"]}).json()["forecasts"]
        log.flush(timeout=10)
        page = served.get("/dashboard")
        forecast = served.get("/dashboard/api/forecast").json()
        every = served.get("/dashboard/api").json()["panels"]
        tabular = served.get("/dashboard/api/labels").json()
    assert page.status_code == 200
    assert 'id="panel-forecast" data-state="ok"' in page.text and 'id="chart-forecast-1"' in page.text
    assert 'id="panel-labels"' not in page.text  # a tabular panel is not drawn for a forecasting model
    assert sorted(every) == ["forecast", "model", "volume"]
    assert tabular["state"] == "off"
    assert forecast["message"] == "3 logged forecast points"
    llap, default = forecast["series"][0], forecast["series"][1]  # forecast series first, then actuals only
    assert llap["timestamps"] == [row["timestamp"] for row in answered]
    assert (llap["forecast"], llap["forecast_lower"]) == ([row["forecast"] for row in answered], [row["forecast_lower"] for row in answered])
    stored = bundle.pipeline.history
    newest = stored[stored[ID] == "LLAP"].sort_values(TIME).tail(MAX_ACTUALS)
    assert llap["actual"] == newest[VALUE].tolist()
    assert llap["actual_timestamps"][-1] == "2026-03-31T00:00:00"
    assert (default["series"], default["timestamps"], len(default["actual"])) == ("DEFAULT", [], len(llap["actual"]))


def test_a_model_with_exogenous_columns_says_which_it_needs(client: TestClient, bundle: Bundle) -> None:
    with_price = replace(bundle, pipeline=replace(bundle.pipeline, exogenous=("price", "promo")))
    with TestClient(create_app(with_price, ServiceConfig())) as served:
        response = served.post("/forecast", json={})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("this model uses exogenous columns (price, promo), which POST /forecast does not take")


def test_a_statistical_model_refuses_a_history_shorter_than_its_season(bundle: Bundle) -> None:
    """SeasonalNaive cannot forecast from fewer than a season of observations: a 422 naming the series."""
    forecaster = bundle.pipeline
    naive = fit("seasonal_naive", {}, 0, forecaster.setting, forecaster.history[[ID, TIME, VALUE]])
    with TestClient(create_app(replace(bundle, pipeline=naive), ServiceConfig())) as served:
        short = served.post("/forecast", json={"history": observations("DEFAULT", "2026-04-01", [1.0, 2.0, 3.0])})
        week = served.post("/forecast", json={"horizon": 2, "history": observations("DEFAULT", "2026-04-01", [1.0] * 7)})
    assert short.status_code == 422
    assert short.json()["detail"] == (
        "history: series DEFAULT has 3 observations; the model needs a full season: at least 7"
    )
    assert [row["forecast"] for row in week.json()["forecasts"][:2]] == [1.0, 1.0]


def test_a_single_series_model_names_its_series_after_the_target(tmp_path: Path) -> None:
    frame = queues()
    frame = frame[frame[ID] == "LLAP"].drop(columns=ID).rename(columns={TIME: "day", VALUE: "used"})
    frame.to_csv(tmp_path / "used.csv", index=False)
    config = seasonal_config(tmp_path, queues())
    data = {**config.data.model_dump(), "path": str(tmp_path / "used.csv"), "series_column": None}
    single = load_bundle(train(build_config({**config.model_dump(mode="json"), "data": data}), progress=False).bundle.path)
    with TestClient(create_app(single, ServiceConfig())) as served:
        stored = served.post("/forecast", json={"horizon": 2}).json()["forecasts"]
        sent = served.post("/forecast", json={"horizon": 2, "history": observations(None, "2026-04-01", newer_default(20))})
    assert [(row["series"], row["timestamp"][:10]) for row in stored] == [("used", "2026-04-01"), ("used", "2026-04-02")]
    assert [row["timestamp"][:10] for row in sent.json()["forecasts"]] == ["2026-04-21", "2026-04-22"]
