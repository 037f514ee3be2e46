"""The app as deployment targets run it, in-process: SageMaker routes, serverless mode, deployment.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from deployment.app import create_app
from deployment.run_deployed import DeploymentError, create_deployed_app, main, read_deployment
from ml_project.artifacts import load_bundle
from ml_project.config import ServiceConfig
from ml_project.prediction import predict_frame
from ml_project.prediction_log import PredictionLog, count_predictions

from .test_online_scoring import FEATURES, RECORD


@pytest.fixture(scope="module")
def bundle(trained):  # type: ignore[no-untyped-def]
    return load_bundle(trained[1].bundle.path)


@pytest.fixture()
def sagemaker(bundle) -> Any:  # type: ignore[no-untyped-def]
    with TestClient(create_app(bundle, ServiceConfig(max_batch_records=5), sagemaker=True)) as client:
        yield client


def _expected(bundle, frame: pd.DataFrame) -> list[str]:  # type: ignore[no-untyped-def]
    predictions, _ = predict_frame(bundle, frame)
    return list(predictions["prediction"])


def test_ping_answers_like_health(sagemaker: TestClient) -> None:
    assert sagemaker.get("/ping").json() == sagemaker.get("/health").json()
    assert sagemaker.get("/ping").status_code == 200


def test_invocations_take_csv_rows_in_feature_order_or_under_a_header(sagemaker: TestClient, bundle) -> None:  # type: ignore[no-untyped-def]
    names = bundle.schema.feature_names
    other = {**RECORD, "island": "Biscoe", "bill_length_mm": 48.0, "flipper_length_mm": 222.0, "body_mass_g": 5200.0}
    expected = _expected(bundle, pd.DataFrame([RECORD, other])[FEATURES])
    plain = "\n".join(",".join(str(record[name]) for name in names) for record in (RECORD, other)) + "\n"
    response = sagemaker.post("/invocations", content=plain, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert [result["prediction"] for result in response.json()["results"]] == expected
    header = list(reversed(names))  # any order, when a header row names the columns
    with_header = ",".join(header) + "\n" + ",".join(str(other[name]) for name in header) + "\n"
    response = sagemaker.post("/invocations", content=with_header, headers={"Content-Type": "text/csv; charset=utf-8"})
    assert [result["prediction"] for result in response.json()["results"]] == expected[1:]


def test_invocations_answer_csv_when_asked_and_take_the_predict_json(sagemaker: TestClient, bundle) -> None:  # type: ignore[no-untyped-def]
    as_json = sagemaker.post("/invocations", json=[RECORD, {**RECORD, "island": "Atlantis"}], headers={"X-Request-ID": "r"})
    assert as_json.status_code == 200
    assert [result.get("errors", [{}])[0].get("field") for result in as_json.json()["results"]] == [None, "island"]
    as_csv = sagemaker.post(
        "/invocations", json=[RECORD, {**RECORD, "island": "Atlantis"}], headers={"Accept": "text/csv", "X-Request-ID": "r"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.text.splitlines()  # no header: Batch Transform joins answer lines to input lines
    classes = bundle.classes
    first = as_json.json()["results"][0]
    assert len(lines) == 2 and lines[0].split(",")[:2] == ["r-0", first["prediction"]]
    assert [float(value) for value in lines[0].split(",")[2:-1]] == [first["probabilities"][name] for name in classes]
    assert lines[0].endswith(",") and lines[1].startswith("r-1,," + "," * len(classes)) and "island" in lines[1]
    for accept, csv_answer in (("text/csv;q=0, application/json", False), ("application/json;q=0.5, text/csv", True), ("*/*", False)):
        answer = sagemaker.post("/invocations", json=RECORD, headers={"Accept": accept})
        assert answer.headers["content-type"].startswith("text/csv" if csv_answer else "application/json"), accept


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        ("1,2\n", "text/csv", 422, "CSV row 1 has 2 values; expected 6: "),
        ("", "text/csv", 422, "request body holds no CSV rows; send one line of feature values per record"),
        ("\n".join(["39,18,181,3750,Torgersen,male"] * 6), "text/csv", 422, "request holds 6 records; service.max_batch_records = 5"),
        (b"\xff\xfe", "text/csv", 400, "request body is not utf-8 text"),
        ("a", "text/plain", 415, "content-type 'text/plain' is not text/csv or application/json"),
        ("island,sex,sex\nDream,male,female\n", "text/csv", 422, "CSV header names column 'sex' more than once"),
        ("a", "text/csv; charset=klingon", 415, "charset 'klingon' is not known; send UTF-8"),
    ],
)
def test_invocations_refuse_bad_bodies_with_one_line(  # type: ignore[no-untyped-def]
    sagemaker: TestClient, body, content_type: str, status: int, detail: str
) -> None:
    response = sagemaker.post("/invocations", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)


def test_csv_cells_are_checked_like_json_values(sagemaker: TestClient) -> None:
    row = "39.1,18.7,181,3750,Torgersen,male"
    names = "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,island,sex"
    bad = sagemaker.post("/invocations", content=f"{names}\n{row.replace('3750', 'heavy')}\n", headers={"Content-Type": "text/csv"})
    assert bad.status_code == 422
    assert bad.json()["results"][0]["errors"][0]["field"] == "body_mass_g"
    missing = sagemaker.post("/invocations", content=f"{names}\n{row.replace('male', '')}\n", headers={"Content-Type": "text/csv"})
    assert missing.status_code == 200  # an empty cell is a missing value, which sex may be
    latin = f"{names}\n{row.replace('Torgersen', 'Dréam')}\n".encode("latin-1")  # é is one byte, 0xE9
    decoded = sagemaker.post("/invocations", content=latin, headers={"Content-Type": "text/csv; charset=latin-1"})
    assert decoded.json()["results"][0]["errors"][0]["value"] == "Dréam"
    as_utf8 = sagemaker.post("/invocations", content=latin, headers={"Content-Type": "text/csv"})
    assert (as_utf8.status_code, as_utf8.json()["detail"]) == (400, "request body is not utf-8 text")


def test_predict_is_not_opened_to_csv_and_sagemaker_routes_are_off_by_default(bundle) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(bundle, ServiceConfig())) as client:
        assert client.post("/invocations", content="1", headers={"Content-Type": "text/csv"}).status_code == 404
        assert client.get("/ping").status_code == 404
        refused = client.post("/predict", content="1", headers={"Content-Type": "text/csv"})
        assert refused.json()["detail"] == "content-type 'text/csv' is not application/json"


def test_serverless_app_predicts_without_startup_and_flushes_the_log_before_answering(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(url)
    app = create_app(bundle, ServiceConfig(), log, serverless=True)
    client = TestClient(app)  # not entered: the lifespan (startup) never runs, as under Lambda
    for expected_rows in (1, 3):
        response = client.post("/predict", json=[RECORD] * (expected_rows if expected_rows == 1 else 2))
        assert response.status_code == 200
        assert count_predictions(url) == expected_rows  # committed before the answer came back
    log.close()


def test_a_stuck_log_database_costs_a_warning_not_the_answer(bundle, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(url)
    blocker = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the log's commit now waits on the lock, past the flush bound
    try:
        response = TestClient(create_app(bundle, ServiceConfig(), log, serverless=True)).post("/predict", json=RECORD)
        assert response.status_code == 200 and response.json()["results"][0]["prediction"]
        assert "prediction log not flushed before answering" in caplog.text
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    log.close()
    assert count_predictions(url) == 1  # written once the database was free again


def test_a_serving_copy_loads_without_training_files_but_nothing_it_reads_may_change(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from ml_project.artifacts import BundleError, not_served

    copy = tmp_path / "serving"
    shutil.copytree(bundle.path, copy, ignore=lambda folder, names: {name for name in names if not_served(name)})
    assert not (copy / "reference.parquet").exists() and not (copy / "config.yaml").exists()
    with pytest.raises(BundleError, match="is missing config.yaml, listed in manifest.json"):
        load_bundle(copy)  # a full load still wants every file
    served = load_bundle(copy, serving=True)
    assert (served.version, served.config) == (bundle.version, {})
    (copy / "schema.json").write_text((copy / "schema.json").read_text().replace("Biscoe", "Biscay"))
    with pytest.raises(BundleError, match="schema.json does not match its SHA-256"):
        load_bundle(copy, serving=True)
    (copy / "schema.json").unlink()
    with pytest.raises(BundleError, match="is missing schema.json, listed in manifest.json"):
        load_bundle(copy, serving=True)


def _folder(tmp_path: Path, bundle, target: str, **service: Any) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / target
    folder.mkdir()
    (folder / "model").symlink_to(bundle.path)
    deployment = {"target": target, "model": "model", "served_as": "champion", "service": service, "prediction_log": {"enabled": True}}
    (folder / "deployment.json").write_text(json.dumps(deployment))
    return folder


def test_deployment_file_and_environment_decide_port_host_workers_and_log(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    heroku = _folder(tmp_path, bundle, "heroku", port=8123, workers=2)
    plain = read_deployment(heroku, {})
    assert (plain.settings.host, plain.settings.port, plain.settings.workers) == ("0.0.0.0", 8123, 2)
    assert plain.log_is_default and plain.log_url and plain.log_url.endswith("/ml_project_prediction_log.db")
    assert (plain.served_as, plain.serverless, plain.sagemaker) == ("champion", False, False)
    given = read_deployment(heroku, {"PORT": "5001", "HOST": "127.0.0.1", "WEB_CONCURRENCY": "3", "ML_PROJECT_PREDICTION_LOG_URL": "off"})
    assert (given.settings.host, given.settings.port, given.settings.workers, given.log_url) == ("127.0.0.1", 5001, 3, None)
    sagemaker = _folder(tmp_path, bundle, "sagemaker")
    assert read_deployment(sagemaker, {}).settings.port == 8080
    assert read_deployment(sagemaker, {"SAGEMAKER_BIND_TO_PORT": "9090"}).settings.port == 9090
    unpacked = read_deployment(sagemaker, {"SM_MODEL_DIR": str(bundle.path)})
    assert (unpacked.bundle_path, unpacked.served_as) == (bundle.path, "path")
    assert read_deployment(_folder(tmp_path, bundle, "aws_lambda"), {}).serverless


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PORT": "http"}, "PORT = 'http' is not a whole number"),
        ({"PORT": "70000"}, "PORT = 70000 is outside 1..65535"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY = 0 is outside 1..64"),
    ],
)
def test_bad_environment_is_one_line_naming_the_variable(bundle, tmp_path: Path, environ: dict[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DeploymentError) as error:
        read_deployment(_folder(tmp_path, bundle, "docker"), environ)
    assert str(error.value) == message


def test_a_folder_without_deployment_json_or_with_a_broken_bundle_does_not_start(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DeploymentError, match=r"deployment.json is missing: start the service from a folder assembled by"):
        read_deployment(tmp_path, {})
    folder = _folder(tmp_path, bundle, "docker")
    (folder / "deployment.json").write_text("{}")
    with pytest.raises(DeploymentError, match=r"deployment.json: key 'target' is missing$"):
        read_deployment(folder, {})
    (folder / "deployment.json").write_text(json.dumps({"target": "docker", "model": "model", "service": {"port": "x"}}))
    with pytest.raises(DeploymentError, match=r"deployment.json: service.port: Input should be a valid integer"):
        read_deployment(folder, {})
    (folder / "deployment.json").write_text(json.dumps({"target": "docker", "model": "nowhere", "service": {}}))
    with pytest.raises(DeploymentError, match="nowhere"):
        create_deployed_app(folder, {})


def test_runtime_main_refuses_a_taken_port_in_one_line(bundle, tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import socket

    folder = _folder(tmp_path, bundle, "docker")
    monkeypatch.setattr("deployment.run_deployed.package_root", lambda: folder)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--host", "127.0.0.1", "--port", str(port)]) == 2
    assert capsys.readouterr().err.strip() == f"deployment error: 127.0.0.1:{port} cannot be used (PORT/HOST): Address already in use"
    assert main(["--check", "--port", str(port)]) == 1  # nothing listens there any more


def test_worker_processes_get_their_settings_from_one_json_variable(bundle, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With several workers, run_server leaves one variable, ML_PROJECT_WORKER, and each worker's app is the same app."""
    import uvicorn

    from deployment.workers import ENV_WORKER, WorkerSettings, app_from_environment, read_worker_settings, run_server

    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    monkeypatch.setattr("deployment.workers.exit_0_on_sigterm", lambda: None)
    monkeypatch.delenv(ENV_WORKER, raising=False)
    before = {name for name in os.environ if name.startswith("ML_PROJECT_")}
    url = f"sqlite:///{tmp_path / 'log.db'}"
    folder = _folder(tmp_path, bundle, "sagemaker", workers=2)
    deployed = read_deployment(folder, {"ML_PROJECT_PREDICTION_LOG_URL": url, "ML_PROJECT_REPORTS": str(tmp_path)})
    assert run_server(load_bundle(deployed.bundle_path, serving=True), PredictionLog(url), deployed.worker()) == 0
    assert (started["app"], started["factory"], started["workers"]) == ("deployment.workers:app_from_environment", True, 2)
    assert {name for name in os.environ if name.startswith("ML_PROJECT_")} - before == {ENV_WORKER}
    settings = read_worker_settings()
    assert settings == WorkerSettings(
        bundle=bundle.path, service=deployed.settings, log_url=url, served_as="champion", sagemaker=True, reports=tmp_path
    )
    with TestClient(app_from_environment()) as client:
        assert client.get("/model").json()["served_as"] == "champion"
        assert client.get("/ping").status_code == 200
        assert client.post("/invocations", json=RECORD).status_code == 200
    assert count_predictions(url) == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, 'ML_PROJECT_WORKER is not set: it must hold the worker settings as JSON, {"bundle": "<folder>"}'),
        ('{"service": {}}', "ML_PROJECT_WORKER: bundle: Field required"),
        ('{"bundle": "b", "port": 1}', "ML_PROJECT_WORKER: port: Extra inputs are not permitted"),
        ('{"bundle": "b", "service": {"workers": 0}}', "ML_PROJECT_WORKER: service.workers: Input should be greater than or equal to 1"),
    ],
)
def test_a_missing_or_wrong_worker_variable_is_one_line(value: str | None, message: str) -> None:
    from deployment.workers import read_worker_settings

    with pytest.raises(RuntimeError) as error:
        read_worker_settings({} if value is None else {"ML_PROJECT_WORKER": value})
    assert str(error.value) == message
