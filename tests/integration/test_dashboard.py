"""The dashboard in a real browser: headless Debian chromium (driven by playwright) against real servers on 127.0.0.1.

Set DASHBOARD_SCREENSHOT=documentation/images/dashboard.png to refresh the documentation's screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from ml_project.artifacts import load_bundle

from ..browser import CHROMIUM, CHROMIUM_ARGS
from ..conftest import ROOT, Server, free_port, output_overrides, run_use_case

pytestmark = pytest.mark.slow

PANELS = ("model", "volume", "predictions", "labels", "drift")
RECORDS = 40  # answered by the service during the test
HISTORY = 168  # logged over the week before, one an hour
TOTAL = RECORDS + HISTORY


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no chromium at {CHROMIUM}: run executables/setup_browser.sh (cicd_pipeline.sh does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        yield launched
        launched.close()


class Page:
    """A browser tab that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.set_default_timeout(20_000)
        self.errors: list[str] = []
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, url: str) -> Any:
        response = self.page.goto(url, wait_until="load")
        return response

    def state(self, panel: str) -> str:
        return str(self.page.get_attribute(f"#panel-{panel}", "data-state"))

    def text(self, selector: str) -> str:
        return " ".join(self.page.inner_text(selector).split())

    def charts_drawn(self, *ids: str) -> None:
        """Wait until plotly.js drew an SVG into each chart element."""
        for chart in ids:
            self.page.wait_for_selector(f"#{chart} .main-svg", state="attached")

    def close(self) -> None:
        self.page.close()


@pytest.fixture(scope="module")
def live(trained, penguins: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A service with a week of logged history (one prediction an hour) that answered 40 predictions,
    whose labels then all arrived through a monitoring run."""
    from ml_project.prediction import predict_frame
    from ml_project.prediction_log import LoggedPrediction, PredictionLog

    output = tmp_path_factory.mktemp("dashboard")
    trained_bundle = trained[1].bundle
    registry = output / "models" / trained_bundle.model_name  # this output's registry: the trained bundle as champion
    shutil.copytree(trained_bundle.path, registry / trained_bundle.version)
    (registry / "champion").symlink_to(trained_bundle.version)
    bundle = load_bundle(registry / "champion")
    features = bundle.schema.feature_names
    complete = penguins.dropna().reset_index(drop=True)

    past = complete.sample(HISTORY, replace=True, random_state=4).reset_index(drop=True)
    scored, _ = predict_frame(bundle, past)
    now = datetime.now(timezone.utc)
    with PredictionLog(f"sqlite:///{output / 'prediction_log.db'}") as log:
        log.write(
            [
                LoggedPrediction(f"past-{i}", bundle.model_name, bundle.version, record, scored["prediction"][i],
                                 logged_at=now - timedelta(hours=HISTORY - i), source="stream")
                for i, record in enumerate(past[features].to_dict("records"))
            ]
        )
    server = Server(output, model=Path("champion"))
    server.wait_healthy()
    rows = complete.sample(RECORDS, random_state=3).reset_index(drop=True)
    results = httpx.post(f"{server.url}/predict", json=rows[features].to_dict("records"), timeout=30).json()["results"]
    assert [result.get("errors") for result in results] == [None] * RECORDS
    ids = [f"past-{i}" for i in range(HISTORY)] + [result["request_id"] for result in results]
    truth = pd.concat([past["species"], rows["species"]], ignore_index=True)
    # five labels disagree with the model, so the accuracy shown is not 100% by construction
    wrong = {"Adelie": "Gentoo", "Gentoo": "Chinstrap", "Chinstrap": "Adelie"}
    predicted = list(scored["prediction"]) + [result["prediction"] for result in results]
    for i in range(0, 50, 10):
        truth[i] = wrong[predicted[i]]
    pd.DataFrame({"request_id": ids, "species": truth}).to_csv(output / "labels.csv", index=False)
    sets = [*output_overrides(output)]
    monitored = run_use_case(
        "monitoring_production_data_local",
        "--model", "champion", "--labels", str(output / "labels.csv"), *[arg for item in sets for arg in ("--set", item)],
    )
    assert monitored.returncode in (0, 3), monitored.stderr
    (summary_file,) = (output / "reports").glob("monitoring-2*.json")
    summary = json.loads(summary_file.read_text())
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / TOTAL
    yield {"server": server, "bundle": bundle, "output": output, "summary": summary, "accuracy": accuracy, "predicted": predicted}
    server.stop()


def test_the_dashboard_shows_every_panel_of_a_served_model_without_console_errors(
    live: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    server, bundle, summary = live["server"], live["bundle"], live["summary"]
    tab = Page(browser)
    response = tab.open(f"{server.url}/dashboard")
    assert response.status == 200
    tab.charts_drawn("chart-leaderboard", "chart-volume", "chart-predictions", "chart-labels")
    assert {panel: tab.state(panel) for panel in PANELS} == {panel: "ok" for panel in PANELS}

    assert tab.text("#card-version") == f"{bundle.version} (served)"
    assert tab.text("#card-champion") == "champion"
    holdout = bundle.metrics["holdout"]
    assert f"accuracy {holdout['accuracy']:.4f} " in tab.text("#card-metrics")
    points = tab.page.evaluate("document.getElementById('chart-leaderboard').data[0].x")
    assert points == list(bundle.leaderboard[f"mean_{bundle.card['metric']}"].head(10))
    assert f"{TOTAL} predictions from " in tab.text("#panel-volume")
    assert f"{TOTAL} predictions, per 3 hours" in tab.text("#chart-volume")
    mix = pd.Series(live["predicted"]).value_counts()
    bars = tab.page.evaluate("document.getElementById('chart-predictions').data[0].y")
    assert sorted(bars, reverse=True) == list(mix.values)
    assert f"{TOTAL} of {TOTAL} predictions in the window have a label" in tab.text("#panel-labels")
    assert live["accuracy"] <= 1 - 5 / TOTAL  # the five wrong labels count
    assert f"({TOTAL} labelled: {live['accuracy']:.1%})" in tab.text("#chart-labels")
    verdict = "drift" if summary["drift"]["drift_detected"] else "no drift"
    assert tab.text("#drift-verdict").startswith(verdict)
    assert f"monitoring run {summary['created_at']} over {TOTAL} predictions" in tab.text("#panel-drift")
    links = tab.page.eval_on_selector_all("#drift-reports a", "anchors => anchors.map(a => a.href)")
    assert sorted(Path(link).name.split("-")[0] for link in links) == ["drift", "quality"]
    for link in links:
        report = httpx.get(link, timeout=10)
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    for panel in PANELS:  # each panel's JSON link answers that panel's data
        href = tab.page.get_attribute(f"#panel-{panel} h2 a", "href")
        assert httpx.get(f"{server.url}/{href}", timeout=10).json()["state"] == "ok"
    assert tab.errors == []

    shot = tmp_path / "dashboard.png"
    tab.page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copyfile(shot, ROOT / os.environ["DASHBOARD_SCREENSHOT"])
    tab.close()


def test_the_selection_form_and_a_bad_parameter(live: dict[str, Any], browser: Any) -> None:
    server, bundle = live["server"], live["bundle"]
    tab = Page(browser)
    tab.open(f"{server.url}/dashboard")
    tab.page.select_option("select[name=window]", "1h")
    tab.page.select_option("select[name=version]", bundle.version)
    with tab.page.expect_navigation():
        tab.page.click("#selection button")
    assert tab.page.url == f"{server.url}/dashboard?window=1h&since=&until=&version={bundle.version}"
    tab.charts_drawn("chart-volume")
    assert f"{RECORDS} predictions from " in tab.text("#panel-volume")  # the last hour: the served ones only
    older = tab.open(f"{server.url}/dashboard?until=2020-01-01T00:00:00Z")
    assert older.status == 200 and tab.state("volume") == "empty"
    assert tab.text("#panel-volume") == "Prediction volume JSON no predictions logged from the start until 2020-01-01T00:00:00Z"
    assert tab.errors == []
    bad = tab.open(f"{server.url}/dashboard?window=2w")
    assert bad.status == 422
    assert tab.text("#selection-error") == "query parameter window = '2w' is not one of: 1h, 6h, 24h, 7d, 30d, 90d, all"
    assert len(tab.errors) == 1 and "422" in tab.errors[0]  # the browser's own line for a 4xx page
    api = httpx.get(f"{server.url}/dashboard/api/volume", params={"since": "soon"}, timeout=10)
    assert api.status_code == 422
    assert api.json() == {"detail": "query parameter since = 'soon' is not an ISO 8601 time such as 2026-11-23T12:00:00Z"}
    assert httpx.get(f"{server.url}/dashboard/reports/..%2Fprediction_log.db", timeout=10).status_code == 404
    tab.close()


def _insert(path: Path, count: int, version: str, start: datetime) -> None:
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO predictions (logged_at, request_id, model_name, model_version, source, features, prediction, probabilities)"
            " VALUES (?, ?, ?, ?, 'stream', '{}', ?, NULL)",
            [(str(start + timedelta(seconds=6 * i)), f"r{i}", "penguins", version, json.dumps(["Adelie", "Gentoo"][i % 2])) for i in range(count)],
        )


def test_an_empty_log_then_one_hundred_thousand_predictions(trained, browser: Any, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle = trained[1].bundle
    server = Server(tmp_path, model=bundle.path)
    try:
        server.wait_healthy()
        tab = Page(browser)
        assert tab.open(f"{server.url}/dashboard").status == 200
        tab.charts_drawn("chart-leaderboard")
        states = {panel: tab.state(panel) for panel in PANELS}
        assert states == {"model": "ok", "volume": "empty", "predictions": "empty", "labels": "empty", "drift": "empty"}
        assert tab.text("#panel-volume").endswith("no predictions logged yet")
        assert tab.text("#panel-drift").startswith("Drift JSON no monitoring run yet: run ./executables/run.sh monitoring_production_data_local")
        assert tab.page.locator("#chart-volume").count() == 0

        _insert(tmp_path / "prediction_log.db", 100_000, bundle.version, datetime(2026, 11, 1))
        assert tab.open(f"{server.url}/dashboard").status == 200
        tab.charts_drawn("chart-volume", "chart-predictions")
        assert "100000 predictions from 2026-11-01T00:00:00Z to 2026-11-07T22:39:54Z" in tab.text("#panel-volume")
        assert tab.page.evaluate("document.getElementById('chart-predictions').data[0].y") == [50_000, 50_000]
        assert tab.state("labels") == "empty" and tab.text("#panel-labels").endswith("no labels yet: run monitoring_production_data_local with --labels to store them")
        assert tab.errors == []
        tab.close()
    finally:
        server.stop()


def test_the_standalone_dashboard_reads_the_registry_log_and_reports_of_the_config(
    live: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    output, bundle = live["output"], live["bundle"]
    port = free_port()
    sets = output_overrides(output)  # its registry (the champion is the card's default), log and reports
    command = [sys.executable, "-m", "deployment.run_dashboard", "--port", str(port)]
    standalone = Server.command(
        command + [arg for item in sets for arg in ("--set", item)], cwd=ROOT, port=port, env=dict(os.environ), log=tmp_path / "dashboard.out"
    )
    try:
        standalone.wait_healthy()
        data = httpx.get(f"{standalone.url}/dashboard/api", timeout=10).json()
        assert (data["panels"]["model"]["version"], data["panels"]["model"]["champion"]) == (bundle.version, True)
        assert data["panels"]["drift"]["created_at"] == live["summary"]["created_at"]
        assert data["panels"]["volume"]["total"] == TOTAL
        assert data["panels"]["labels"]["labelled_total"] == TOTAL
        tab = Page(browser)
        assert tab.open(f"{standalone.url}/").status == 200  # / redirects to the page
        tab.charts_drawn("chart-volume", "chart-labels")
        assert tab.errors == []
        tab.close()
    finally:
        assert standalone.stop() == 0

    refused = subprocess.run(
        [sys.executable, "-m", "deployment.run_dashboard", "--port", "70000"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1].endswith("argument --port: '70000' is not a port number 1..65535")


def test_a_served_forecasting_model_draws_actual_vs_forecast_per_series(browser: Any, tmp_path: Path) -> None:
    from ml_project.training import train

    from ..code.test_forecasting import queues, seasonal_config

    (tmp_path / "training").mkdir()
    bundle = train(seasonal_config(tmp_path / "training", queues()), progress=False).bundle
    server = Server(tmp_path / "served", model=bundle.path)
    tab = Page(browser)
    try:
        server.wait_healthy()
        answered = httpx.post(f"{server.url}/forecast", json={"horizon": 4}, timeout=10).json()["forecasts"]
        # the log is written by a background thread: wait until the panel reads all eight points
        for _ in range(50):
            if httpx.get(f"{server.url}/dashboard/api/forecast", timeout=10).json()["message"] == "8 logged forecast points":
                break
            time.sleep(0.1)
        response = tab.open(f"{server.url}/dashboard")
        assert response.status == 200
        tab.charts_drawn("chart-forecast-0", "chart-forecast-1", "chart-volume")
        assert tab.state("forecast") == "ok"
        assert tab.page.query_selector("#panel-predictions") is None
        assert tab.text("#card-forecast") == "every 1D, horizon 5, 0.8 interval, 2 series"
        lines = tab.page.evaluate("document.getElementById('chart-forecast-1').data.map(trace => [trace.name, trace.x, trace.y])")
    finally:
        tab.close()
        assert server.stop() == 0
    llap = [row for row in answered if row["series"] == "LLAP"]
    names = [name for name, _, _ in lines]
    assert names == ["forecast upper", "interval", "forecast", "actual"]
    _, times, values = lines[2]
    assert (times, values) == ([row["timestamp"] for row in llap], [row["forecast"] for row in llap])
    assert lines[1][2] == [row["forecast_lower"] for row in llap]
    assert lines[3][1][-1] == "2026-03-31T00:00:00"  # the actuals end where the stored history ends
    assert tab.errors == []
