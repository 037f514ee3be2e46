"""The MLflow UI's server on loopback, over its REST API: the run, its leaderboard and the champion."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import free_port

pytestmark = pytest.mark.slow


def test_the_mlflow_ui_shows_the_run_its_leaderboard_and_the_champion(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, report = trained
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", config.tracking.uri,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    with open(tmp_path / "mlflow-server.out", "wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (tmp_path / "mlflow-server.out").read_text()[-2000:]
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow server did not start within 90 s"
            time.sleep(0.25)

        def api(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
            response = httpx.request(method, f"{base}/api/2.0/mlflow/{path}", timeout=30, **kwargs)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        assert httpx.get(base, timeout=10).status_code == 200  # the UI page itself
        experiment = api("GET", "experiments/get-by-name", params={"experiment_name": config.tracking.experiment})
        runs = api("POST", "runs/search", json={"experiment_ids": [experiment["experiment"]["experiment_id"]]})["runs"]
        (run,) = [run for run in runs if run["info"]["run_id"] == report.run_id]
        params = {item["key"]: item["value"] for item in run["data"]["params"]}
        metrics = {item["key"]: item["value"] for item in run["data"]["metrics"]}
        tags = {item["key"]: item["value"] for item in run["data"]["tags"]}
        assert params["algorithm"] == report.bundle.card["algorithm"]
        assert metrics["holdout_f1_macro"] == pytest.approx(report.bundle.metrics["holdout"]["f1_macro"])
        assert tags["bundle.version"] == report.bundle.version and tags["gate.promoted"] == "True"
        artifacts = {item["path"] for item in api("GET", "artifacts/list", params={"run_id": report.run_id}).get("files", [])}
        assert {"leaderboard.csv", "champion_gate.json", "bundle", "plots"} <= artifacts
        champion = api("GET", "registered-models/alias", params={"name": config.tracking.model_name, "alias": "champion"})
        assert champion["model_version"]["run_id"] == report.run_id
        assert {tag["key"]: tag["value"] for tag in champion["model_version"]["tags"]}["bundle.version"] == report.bundle.version
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
