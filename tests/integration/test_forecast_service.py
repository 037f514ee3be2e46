"""A forecasting bundle served by the real serve command on 127.0.0.1: POST /forecast over a socket, logged."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ml_project.prediction_log import read_predictions
from ml_project.training import train

from ..code.test_forecasting import queues, seasonal_config
from ..conftest import Server

pytestmark = pytest.mark.slow


def test_the_serve_command_forecasts_and_logs_each_point(tmp_path: Path) -> None:
    (tmp_path / "training").mkdir()
    bundle = train(seasonal_config(tmp_path / "training", queues()), progress=False).bundle
    server = Server(tmp_path / "served", model=bundle.path)
    try:
        server.wait_healthy()
        response = httpx.post(f"{server.url}/forecast", json={"horizon": 3, "series": ["LLAP"]}, timeout=10)
        info = httpx.get(f"{server.url}/model", timeout=10).json()
        missing = httpx.post(f"{server.url}/predict", json={}, timeout=10)
    finally:
        assert server.stop() == 0  # SIGTERM: the log is flushed before the exit
    assert response.status_code == 200, response.text
    rows = response.json()["forecasts"]
    assert [(row["series"], row["timestamp"]) for row in rows] == [
        ("LLAP", "2026-04-01T00:00:00"), ("LLAP", "2026-04-02T00:00:00"), ("LLAP", "2026-04-03T00:00:00")
    ]
    assert (info["task"], info["forecast"]["series"], missing.status_code) == ("forecasting", ["DEFAULT", "LLAP"], 404)
    logged = read_predictions(f"sqlite:///{tmp_path / 'served' / 'prediction_log.db'}")
    assert logged["request_id"].tolist() == [response.headers["X-Request-ID"]] * 3
    assert logged["step"].tolist() == [1, 2, 3]
