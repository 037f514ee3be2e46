"""The service as a real uvicorn process on 127.0.0.1: predictions, fuzzing, SIGTERM under load, clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.generation import GenerationMode

from ml_project.prediction import predict_frame
from ml_project.prediction_log import count_predictions, read_predictions

from ..conftest import PENGUINS, Server, output_overrides, run_use_case

pytestmark = pytest.mark.slow
FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex"]


def _sets(*overrides: str) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    running = Server(tmp_path_factory.mktemp("served"), model=trained[1].bundle.path)
    running.wait_healthy()
    yield running
    assert running.stop() == 0


def test_predictions_over_http_equal_batch_scoring(server: Server, trained, penguins: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    frame = penguins[FEATURES].head(20)
    records = [{key: (None if pd.isna(value) else value) for key, value in row.items()} for row in frame.astype(object).to_dict("records")]
    response = httpx.post(f"{server.url}/predict", json=records, timeout=10)
    assert response.status_code == 200
    expected, _ = predict_frame(trained[1].bundle, frame)
    results = response.json()["results"]
    assert [result["prediction"] for result in results] == expected["prediction"].tolist()
    assert [result["probabilities"]["Chinstrap"] for result in results] == expected["proba_Chinstrap"].tolist()


def test_malformed_json_over_a_real_socket_is_a_400(server: Server) -> None:
    response = httpx.post(f"{server.url}/predict", content=b"{", headers={"content-type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("request body is not valid JSON: ")


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzzing_the_openapi_schema_finds_no_server_error(server: Server, mode: str) -> None:
    """Cases generated from /openapi.json: valid records are predicted, invalid ones refused, never a 5xx."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(f"{operation.method.upper()} {operation.path}" for operation in operations) == [
        "GET /dashboard/api",
        *[f"GET /dashboard/api/{panel}" for panel in ("drift", "labels", "model", "predictions", "volume")],
        "GET /health",
        "GET /model",
        "POST /predict",
    ]
    # A list with some schema-violating records is answered 200 by contract (the valid ones are
    # predicted, the others carry their errors; tests/code/test_online_scoring.py pins that), which
    # schemathesis' negative-data-rejection check counts as accepting bad data. Every other check runs.
    # The dashboard refuses since >= until and RFC 3339 leap seconds (422, one line), which OpenAPI cannot
    # express: schema-valid queries may be refused there. Every other check runs on it, no 5xx among them.
    for operation in operations:
        if mode == "negative" and operation.path in ("/health", "/model"):
            continue  # no parameters: nothing can be made invalid
        excluded = [negative_data_rejection] if mode == "negative" else []
        if mode == "positive" and operation.path.startswith("/dashboard/"):
            excluded.append(positive_data_acceptance)

        @given(case=operation.as_strategy(GenerationMode(mode)))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(timeout=10, excluded_checks=excluded)

        check()


def test_sigterm_under_load_loses_no_logged_prediction(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = Server(tmp_path, model=trained[1].bundle.path)
    server.wait_healthy()
    record = {"bill_length_mm": 45.0, "bill_depth_mm": 15.0, "flipper_length_mm": 215.0, "body_mass_g": 5000.0, "island": "Biscoe", "sex": "female"}
    answered: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post(f"{server.url}/predict", json=[record, record])
                except httpx.HTTPError:
                    return  # the server has closed: nothing more is answered
                if response.status_code == 200:
                    with lock:
                        answered.append(len(response.json()["results"]))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    while sum(answered) < 400:  # load is on
        threading.Event().wait(0.01)
    assert server.stop() == 0
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    url = f"sqlite:///{tmp_path / 'prediction_log.db'}"
    assert count_predictions(url) == sum(answered)
    assert set(read_predictions(url)["model_version"]) == {trained[1].bundle.version}


def test_cold_start_and_a_taken_port(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = Server(tmp_path, model=trained[1].bundle.path)
    server.wait_healthy()
    taken = run_use_case_serve(tmp_path / "second", f"service.port={server.port}")
    assert server.stop() == 0
    assert taken.returncode == 2
    assert taken.stderr.strip().splitlines()[-1] == (
        f"config error: service.host:service.port = 127.0.0.1:{server.port} cannot be used: Address already in use"
    )


def run_use_case_serve(output: Path, *overrides: str, model: Path | None = None) -> Any:
    import subprocess
    import sys

    from ..conftest import ROOT

    return subprocess.run(
        [sys.executable, "-m", "deployment.run_service", *_sets(*output_overrides(output), *overrides)]
        + (["--model", str(model)] if model else []),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serving_without_a_bundle_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_use_case_serve(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"bundle error: no model bundle at {tmp_path / 'models' / 'penguins'} (train one with ./executables/run.sh)"
    )


def test_deployed_server_client_streams_the_file_and_reports(server: Server) -> None:
    result = run_use_case(
        "predicting_production_data_deployed_server",
        *_sets(*output_overrides(server.output / "client"), f"service.url={server.url}"),
        "--batch-size", "4", "--concurrency", "2", "--limit", "100",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"service {server.url}: model penguins version ")
    assert "requests 25, records 100: predicted 100, refused 0, failed 0" in lines


def test_deployed_server_client_needs_a_url_and_a_live_server(tmp_path: Path) -> None:
    missing = run_use_case("predicting_production_data_deployed_server", *_sets(*output_overrides(tmp_path)))
    assert missing.returncode == 2
    assert missing.stderr.strip() == "config error: service.url is required: the base URL of the running service, e.g. http://host:8000"
    from ..conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    down = run_use_case("predicting_production_data_deployed_server", *_sets(*output_overrides(tmp_path), f"service.url={url}"))
    assert down.returncode == 2
    assert down.stderr.strip().startswith(f"service error: no service at {url}: ")


def test_local_fastapi_use_case_starts_streams_and_stops_the_server(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ..conftest import free_port

    output = tmp_path / "out"
    result = run_use_case(
        "predicting_production_data_local_fastapi",
        *_sets(*output_overrides(output), f"service.port={free_port()}"),
        "--model", str(trained[1].bundle.path), "--limit", "60", "--batch-size", "3",
    )
    assert result.returncode == 0, result.stderr
    assert "requests 20, records 60: predicted 60, refused 0, failed 0" in result.stdout.splitlines()
    assert "server stopped with exit code 0" in result.stdout.splitlines()
    assert count_predictions(f"sqlite:///{output / 'prediction_log.db'}") == 60


def test_local_stream_use_case_predicts_refuses_and_logs_every_record(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = pd.read_csv(PENGUINS).head(30)
    source.loc[5, "island"] = "Atlantis"
    source["body_mass_g"] = source["body_mass_g"].astype(object)
    source.loc[7, "body_mass_g"] = "heavy"
    data = tmp_path / "stream.csv"
    source.to_csv(data, index=False)
    output = tmp_path / "out"
    result = run_use_case(
        "predicting_production_data_local",
        *_sets(*output_overrides(output)),
        "--model", str(trained[1].bundle.path), "--input", str(data), "--batch-size", "5",
    )
    assert result.returncode == 0, result.stderr
    assert "requests 6, records 30: predicted 28, refused 2, failed 0" in result.stdout.splitlines()
    url = f"sqlite:///{output / 'prediction_log.db'}"
    assert count_predictions(url) == 28
    assert set(read_predictions(url)["source"]) == {"stream"}


def test_a_prediction_log_that_cannot_be_opened_stops_serve_with_one_line(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a_file").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'a_file' / 'log.db'}"
    result = run_use_case_serve(tmp_path, f"prediction_log.url={url}", model=trained[1].bundle.path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"prediction log {url}: cannot open: ")


def test_serving_the_champion_says_so(trained) -> None:  # type: ignore[no-untyped-def]
    config, report = trained
    assert report.decision.promoted  # the session's first model is the champion
    server = Server(config.paths.output, model=Path("champion"))
    try:
        server.wait_healthy()
        info = httpx.get(f"{server.url}/model", timeout=10).json()
    finally:
        assert server.stop() == 0
    assert (info["served_as"], info["model_version"]) == ("champion", report.bundle.version)
