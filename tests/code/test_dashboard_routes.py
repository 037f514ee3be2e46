"""The dashboard's routes in-process: status codes, one-line errors, redirects and the report folder's edge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deployment.dashboard_api import PLOTLY, PLOTLY_SHA256
from deployment.run_dashboard import create_dashboard_app
from ml_project.artifacts import sha256_file
from ml_project.dashboard import Sources

from .test_dashboard import write_bundle_card, write_summary


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    models = tmp_path / "models"
    write_bundle_card(models, "1")
    (models / "penguins" / "1" / "metrics.json").write_text(json.dumps({"holdout": {"log_loss": float("nan")}}))
    write_summary(tmp_path / "reports", "20261121T000000Z", drift_share=float("nan"), drifted_columns=5)
    (tmp_path / "secret.txt").write_text("not a report")
    (tmp_path / "reports" / "drift-link.html").symlink_to(tmp_path / "secret.txt")
    sources = Sources(
        model_name="penguins", log_url=f"sqlite:///{tmp_path / 'log.db'}", models=models, reports=tmp_path / "reports"
    )
    return TestClient(create_dashboard_app(sources), root_path="/stage")


def test_the_page_and_the_api_answer_on_odd_files_with_nan_as_null(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert '<section class="panel" id="panel-drift" data-state="ok">' in page.text
    assert "(share n/a, threshold 0.50)" in page.text
    assert "<td>log_loss (selection)</td><td>n/a</td>" in page.text
    data = client.get("/dashboard/api").json()
    assert data["panels"]["model"]["holdout_metrics"] == {"log_loss": None}
    assert data["panels"]["drift"]["drift_share"] is None
    assert data["panels"]["volume"]["state"] == "empty"
    assert data["panels"]["volume"]["message"].startswith("no predictions logged yet: no prediction log at sqlite:///")


def test_each_panel_has_its_own_endpoint_and_bad_parameters_are_422(client: TestClient) -> None:
    expected = {"model": "ok", "volume": "empty", "predictions": "empty", "labels": "empty", "drift": "ok"}
    for panel, state in expected.items():
        answer = client.get(f"/dashboard/api/{panel}", params={"window": "7d"})
        assert answer.status_code == 200
        body = answer.json()
        assert (body["panel"], body["selection"]["window"], body["state"]) == (panel, "7d", state)
    bad = client.get("/dashboard/api/model", params={"window": "7d", "colour": "red"})
    assert bad.status_code == 422
    assert bad.json() == {"detail": "query parameter 'colour' is not known; use: window, since, until, version"}
    page = client.get("/dashboard", params={"until": "9999-12-31T23:59:59-01:00"})
    assert page.status_code == 422 and "is not between 1970 and 9999" in page.text
    assert client.get("/dashboard/api/nothing").status_code == 404


def test_redirects_keep_the_path_prefix_and_the_query(client: TestClient) -> None:
    for path in ("/", "/dashboard/"):
        moved = client.get(path, params={"window": "24h"}, follow_redirects=False)
        assert moved.status_code == 307 and moved.headers["location"] == "/stage/dashboard?window=24h"


def test_reports_are_served_by_name_from_the_reports_folder_only(client: TestClient) -> None:
    assert client.get("/dashboard/reports/drift-20261121T000000Z.html").text == "<html>drift</html>"
    for name in ("drift-link.html", "..%2Fsecret.txt", "secret.txt", "drift-missing.html"):
        assert client.get(f"/dashboard/reports/{name}").status_code == 404, name


def test_the_vendored_plotly_is_served_as_committed(client: TestClient) -> None:
    asset = client.get(f"/dashboard/assets/{PLOTLY}")
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
    assert asset.headers["cache-control"] == "public, max-age=86400"
    assert sha256_file(Path(__file__).resolve().parents[2] / "deployment" / "assets" / PLOTLY) == PLOTLY_SHA256
    assert asset.content.startswith(b"/**\n* plotly.js (basic - minified) v4.1.1")


def test_the_service_serves_the_dashboard_unless_switched_off(trained) -> None:  # type: ignore[no-untyped-def]
    from deployment.app import create_app
    from ml_project.config import ServiceConfig

    bundle = trained[1].bundle
    with TestClient(create_app(bundle, ServiceConfig())) as on:
        card = on.get("/dashboard/api/model").json()
        assert (card["state"], card["version"], card["served"], card["champion"]) == ("ok", bundle.version, True, None)
        assert on.get("/dashboard/api/volume").json()["state"] == "off"  # no prediction log given
        assert "/dashboard/api/drift" in on.get("/openapi.json").json()["paths"]
    with TestClient(create_app(bundle, ServiceConfig(dashboard=False))) as off:
        assert off.get("/dashboard").status_code == 404 and off.get("/dashboard/api").status_code == 404
        assert "/dashboard/api/drift" not in off.get("/openapi.json").json()["paths"]


def test_a_regression_model_page_draws_its_histogram_and_two_lines(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    from ml_project.prediction_log import LoggedPrediction, PredictionLog, write_labels

    from .test_dashboard import card

    url = f"sqlite:///{tmp_path / 'log.db'}"
    start = datetime(2026, 11, 20)
    with PredictionLog(url) as log:
        log.write([LoggedPrediction(f"r{i}", "penguins", "2", {"x": i}, 3000.0 + 10 * i, logged_at=start + timedelta(hours=i)) for i in range(48)])
        log.write([LoggedPrediction("c1", "penguins", "1", {"x": 0}, "Adelie", logged_at=start)])
    write_labels(url, [(f"r{i}", 3005.0 + 10 * i) for i in range(0, 48, 2)])
    models = tmp_path / "models"
    write_bundle_card(models, "1")
    (models / "penguins" / "1" / "model.json").write_text(json.dumps({"model_name": "penguins", "version": "1", "task": "classification", "rows": "many"}))
    sources = Sources(model_name="penguins", served=card("2", "regression", "rmse"), log_url=url, models=models)
    client = TestClient(create_dashboard_app(sources))
    page = client.get("/dashboard")
    assert page.status_code == 200 and "<h2>Prediction distribution" in page.text
    figures = json.loads(page.text.split('<script type="application/json" id="figures">')[1].split("</script>")[0])
    assert sum(figures["chart-predictions"]["data"][0]["y"]) == 49 - 1  # the class name of version 1 is not a number
    assert figures["chart-predictions"]["layout"]["title"]["text"] == "predicted values (mean 3235, 1 not numbers)"
    lines = figures["chart-labels"]["data"]
    assert [line["name"] for line in lines] == ["actual (mean)", "predicted (mean)"]
    assert "24 labelled, MAE 5" in figures["chart-labels"]["layout"]["title"]["text"]
    other = client.get("/dashboard", params={"version": "1"})  # a classification version: its class mix, and its odd card
    assert other.status_code == 200 and "<h2>Class mix" in other.text
