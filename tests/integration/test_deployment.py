"""executables/cloud_setup.sh for every target, and each target's entry point started for real on loopback.

Each assembled folder is started FROM that folder with a Python that holds only the packages of
its requirements.txt (tests/runtime_env.py): the folder is self-contained, and nothing of training
(mlflow, evidently, optuna) is needed to serve.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pandas as pd
import pytest
import yaml

from deployment.cloud_setup import FORBIDDEN, TARGETS, runtime_requirements
from ml_project.artifacts import load_bundle
from ml_project.config import ConfigError
from ml_project.forecasters import OUTPUT
from ml_project.prediction import predict_frame
from ml_project.prediction_log import count_predictions

from .. import runtime_env
from ..code.test_cloud_setup import train_forecaster
from ..code.test_online_scoring import RECORD
from ..conftest import ROOT, Server, free_port, output_overrides, run_use_case

pytestmark = pytest.mark.timeout(300)
LOCK = json.loads((ROOT / "Pipfile.lock").read_text())


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def cloud_setup(*args: str) -> subprocess.CompletedProcess[str]:
    """The README's command, as a user runs it from the project root."""
    return subprocess.run(
        ["./executables/cloud_setup.sh", *args], cwd=ROOT, capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def assembled(trained, tmp_path_factory) -> dict[str, tuple[Path, str]]:  # type: ignore[no-untyped-def]
    """Every target assembled once from the session's champion: target -> (folder, printed output)."""
    config, _ = trained
    out = tmp_path_factory.mktemp("deployments")
    result = {}
    for target in TARGETS:
        done = cloud_setup(target, *_sets(*output_overrides(config.paths.output)), "--out", str(out / target))
        assert done.returncode == 0, done.stderr
        result[target] = (out / target, done.stdout)
    return result


@pytest.fixture(scope="module")
def runtime_python(tmp_path_factory) -> Any:  # type: ignore[no-untyped-def]
    """Build (once per distinct requirements set) a Python holding only a folder's runtime packages."""
    built: dict[frozenset[str], Path] = {}

    def get(folder: Path) -> Path:
        names = frozenset(runtime_env.requirement_names(folder / "requirements.txt"))
        if names not in built:
            built[names] = runtime_env.build(folder / "requirements.txt", tmp_path_factory.mktemp("runtime") / "venv")
        return built[names]

    return get


def _expected(trained) -> tuple[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    bundle = load_bundle(trained[1].bundle.path)
    frame, _ = predict_frame(bundle, pd.DataFrame([RECORD]))
    return frame["prediction"].iloc[0], {label: frame[f"proba_{label}"].iloc[0] for label in bundle.classes}


def _check_predicts(url: str, trained) -> None:  # type: ignore[no-untyped-def]
    response = httpx.post(f"{url}/predict", json=RECORD, timeout=10)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["prediction"], result["probabilities"]) == _expected(trained)
    bad = httpx.post(f"{url}/predict", content=b"{oops", headers={"Content-Type": "application/json"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("request body is not valid JSON")


def _start(folder: Path, command: list[str], python: Path, **env: str) -> Server:
    port = free_port()
    environment = runtime_env.environment(python, HOST="127.0.0.1", PORT=str(port), **env)
    server = Server.command(command, cwd=folder, port=port, env=environment, log=folder.parent / f"{folder.name}-{port}.log")
    server.wait_healthy(timeout=90)
    return server


def _hcl(path: Path) -> Any:
    """main.tf as plain Python values (python-hcl2 keeps the quotes of keys and strings)."""
    import hcl2

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {clean(key): clean(item) for key, item in value.items() if key != "__is_block__"}
        if isinstance(value, list):
            return [clean(item) for item in value]
        if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"':
            return value[1:-1]
        return value

    with open(path) as handle:
        return clean(hcl2.load(handle))


def _resources(document: Any) -> dict[str, dict[str, Any]]:
    return {f"{kind}.{name}": body for block in document["resource"] for kind, named in block.items() for name, body in named.items()}


# --- assembling -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_target_assembles_a_self_contained_folder(assembled, trained, target: str) -> None:  # type: ignore[no-untyped-def]
    folder, printed = assembled[target]
    bundle = trained[1].bundle
    deployment = json.loads((folder / "deployment.json").read_text())
    assert (deployment["target"], deployment["model_version"], deployment["served_as"]) == (target, bundle.version, "champion")
    assert load_bundle(folder / "model", serving=True).version == bundle.version  # the copy verifies against its manifest
    shipped = {path.name for path in (folder / "model").iterdir()}
    assert shipped == {
        "manifest.json", "pipeline.joblib", "schema.json", "metrics.json", "model.json", "fingerprint.json", "versions.json",
        "leaderboard.csv",  # the dashboard's card shows it
    }
    shipped = {"__init__.py", "app.py", "prediction_api.py", "sagemaker_api.py", "dashboard_api.py", "dashboard_figures.py"}
    assert shipped | {"workers.py", "run_deployed.py", "process.py"} <= {path.name for path in (folder / "deployment").iterdir()}
    assert (folder / "deployment" / "templates" / "dashboard.html").is_file()
    assert (folder / "deployment" / "assets" / "plotly-basic.min.js").is_file()
    assert (folder / "ml_project" / "features.py").exists()  # the pickled pipeline's own classes
    names = runtime_env.requirement_names(folder / "requirements.txt")
    assert not names & {"mlflow", "mlflow-skinny", "evidently", "optuna", "pytest", "pandera"}
    assert {"fastapi", "scikit-learn", "numpy", "pandas", "uvicorn"} <= names
    verbatim = (folder / "deployment" / "templates", folder / "deployment" / "assets")  # the dashboard's own, copied as they are
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix not in (".joblib", ".parquet", ".png", ".zip", ".gz", ".pyc") and path.parent not in verbatim:
            assert "{{" not in path.read_text(), f"{path} has a placeholder left"
    assert os.access(folder / "deploy.sh", os.X_OK)
    assert printed.splitlines()[0].startswith(f"Assembled {target} (")
    assert f"Next, ship it: cd {folder} && " in printed
    tag = f"{bundle.version.lower()}-{deployment['content_id'][:8]}"
    script = (folder / "deploy.sh").read_text()
    for command in TARGETS[target].commands:  # printed exactly as deploy.sh runs them
        rendered = jinja2.Template(command, undefined=jinja2.StrictUndefined).render({**_values(folder, bundle), "image_tag": tag})
        assert f"  {rendered}\n" in printed and f"\n{rendered}\n" in script
    assert "{{" not in printed and "{image_tag}" not in printed


def _values(folder: Path, bundle) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from deployment.cloud_setup import placeholders

    return placeholders(bundle, json.loads((folder / "deployment.json").read_text())["target"], json.loads((folder / "deployment.json").read_text())["content_id"])


def test_requirements_are_the_locked_versions_with_their_hashes(assembled) -> None:  # type: ignore[no-untyped-def]
    text = (assembled["heroku"][0] / "requirements.txt").read_text()
    pins = re.findall(r"^([a-z0-9-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, flags=re.M)
    assert len(pins) == len(runtime_env.requirement_names(assembled["heroku"][0] / "requirements.txt")) > 20
    for name, version, hashes in pins:
        entry = LOCK["default"][name] if name in LOCK["default"] else LOCK["default"][name.replace("-", "_")]
        assert entry["version"] == f"=={version}"
        assert sorted(re.findall(r"sha256:[0-9a-f]{64}", hashes)) == sorted(entry["hashes"])
    lambda_names = runtime_env.requirement_names(assembled["aws_lambda"][0] / "requirements.txt")
    function_names = runtime_env.requirement_names(assembled["google_cloud_function"][0] / "requirements.txt")
    assert "mangum" in lambda_names and "mangum" not in function_names and "functions-framework" in function_names


@pytest.mark.parametrize(
    ("roots", "message"),
    [
        (["mlflow"], "cloud_setup: mlflow (needed by deployment/docker/requirements.in) must not be in a deployed folder"),
        (["fastapi", "honcho"], "cloud_setup: honcho (needed by deployment/docker/requirements.in) is not in Pipfile.lock's default"),
        (["-r other.in"], "cloud_setup: deployment/docker/requirements.in: '-r other.in' is not a package name: "),
        (["mlflow; sys_platform == 'win32'", "fastapi"], None),  # a root for another platform is left out
    ],
)
def test_a_forbidden_or_unlocked_runtime_package_stops_the_export(monkeypatch, roots: list[str], message: str | None) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("deployment.cloud_setup.read_roots", lambda target: [(root, "deployment/docker/requirements.in") for root in roots])
    if message is None:
        assert "fastapi" in {pin.name for pin in runtime_requirements("docker")}
        assert "mlflow" not in {pin.name for pin in runtime_requirements("docker")}
        return
    with pytest.raises(ConfigError) as error:
        runtime_requirements("docker")
    assert str(error.value).startswith(message)
    assert set(FORBIDDEN) >= {"mlflow", "evidently", "optuna", "pytest"}


def test_unknown_target_and_foreign_out_folder_are_refused_in_one_line(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    unknown = cloud_setup("azure")
    assert unknown.returncode == 2
    assert "invalid choice: 'azure'" in unknown.stderr and all(target in unknown.stderr for target in TARGETS)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    refused = cloud_setup("docker", *_sets(*output_overrides(trained[0].paths.output)), "--out", str(foreign))
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"cloud_setup: --out {foreign} exists and is not a folder cloud_setup assembled; choose another or remove it"
    assert (foreign / "notes.txt").read_text() == "keep me"
    (foreign / "deployment.json").write_text("{}")  # a file of that name is not proof of an assembly
    assert cloud_setup("docker", *_sets(*output_overrides(trained[0].paths.output)), "--out", str(foreign)).returncode == 2
    assert (foreign / "notes.txt").read_text() == "keep me"
    inside = cloud_setup("docker", *_sets(*output_overrides(trained[0].paths.output)), "--out", str(trained[1].bundle.path / "x"))
    assert inside.returncode == 2 and f"overlaps {trained[1].bundle.path.resolve()}; choose a folder outside" in inside.stderr
    no_model = cloud_setup("docker", *_sets(*output_overrides(tmp_path / "empty")))
    assert no_model.returncode == 2 and no_model.stderr.strip() == (
        f"bundle error: no model bundle at {tmp_path / 'empty' / 'models' / 'penguins'} (train one with ./executables/run.sh)"
    )


def test_reassembly_replaces_the_folder_but_keeps_terraform_state_and_git(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "lambda"
    sets = _sets(*output_overrides(trained[0].paths.output))
    assert cloud_setup("aws_lambda", *sets, "--out", str(out)).returncode == 0
    (out / "terraform.tfstate").write_text('{"version": 4}')
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (out / "stale.txt").write_text("from an older assembly")
    again = cloud_setup("aws_lambda", *sets, "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert (out / "terraform.tfstate").read_text() == '{"version": 4}'  # the resources deploy.sh created
    assert (out / ".git" / "HEAD").exists() and not (out / "stale.txt").exists()
    assert ".terraform" in (out / ".dockerignore").read_text().splitlines()  # providers stay out of the image


def test_help_documents_targets_flags_and_the_folder(tmp_path: Path) -> None:
    shown = cloud_setup("--help")
    assert shown.returncode == 0
    for word in ("--model", "--out", "--config", "--set", "requirements.txt", "deploy.sh", *TARGETS):
        assert word in shown.stdout


@pytest.mark.parametrize("target", list(TARGETS))
def test_deploy_script_names_a_missing_variable_or_tool_before_doing_anything(assembled, target: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled[target]
    script = folder / "deploy.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    # A PATH with bash and dirname only: no cloud tool can run, whatever this machine has installed.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        (bin_dir / tool).symlink_to(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip())
    bare = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    spec = TARGETS[target]
    run = subprocess.run([str(script)], env=bare, capture_output=True, text=True, timeout=30)
    if spec.needs:
        name, meaning = spec.needs[0]
        assert (run.returncode, run.stderr) == (2, f"deploy.sh: set {name}: {meaning}\n")
        run = subprocess.run([str(script)], env={**bare, **{name: "value" for name, _ in spec.needs}}, capture_output=True, text=True, timeout=30)
    tool = spec.tools[0]
    assert (run.returncode, run.stderr) == (127, f"deploy.sh: {tool} is not installed; it is needed to ship to {target}\n")


# --- docker ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["docker", "aws_lambda", "sagemaker"])
def test_dockerfiles_pass_hadolint_and_copy_only_what_the_folder_has(assembled, target: str) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled[target]
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), "--no-color", "Dockerfile"], cwd=folder, capture_output=True, text=True
    )
    assert (lint.returncode, lint.stdout) == (0, ""), lint.stdout + lint.stderr
    lines = (folder / "Dockerfile").read_text().splitlines()
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in shlex.split(line)[1:-1]:
                assert (folder / source).exists(), f"{line}: {source} is not in the folder"
    ignored = (folder / ".dockerignore").read_text().splitlines()
    assert "deploy.sh" in ignored


def test_docker_image_is_multi_stage_slim_non_root_with_a_healthcheck(assembled, runtime_python, trained) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled["docker"]
    lines = (folder / "Dockerfile").read_text().splitlines()
    stages = [line for line in lines if line.startswith("FROM ")]
    assert stages == ["FROM python:3.11-slim AS build", "FROM python:3.11-slim"]
    user = next(line for line in reversed(lines) if line.startswith("USER "))
    assert user.split()[1] not in ("root", "0")
    health = next(line for line in lines if line.startswith("HEALTHCHECK "))
    check = json.loads(health.split(" CMD ", 1)[1])
    command = json.loads(next(line for line in lines if line.startswith("CMD ")).split(" ", 1)[1])
    python = runtime_python(folder)
    server = _start(folder, command, python)  # the image's CMD, from the folder, with its packages only
    try:
        _check_predicts(server.url, trained)
        probe = subprocess.run(check, cwd=folder, env=runtime_env.environment(python, PORT=str(server.port)), capture_output=True, text=True)
        assert (probe.returncode, probe.stdout.strip()) == (0, f"http://127.0.0.1:{server.port}/health: 200")
    finally:
        assert server.stop() == 0
    assert "stopped by signal 15 after draining requests" in server.log.read_text()


def test_web_concurrency_starts_worker_processes_that_each_flush_their_log(assembled, runtime_python, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled["docker"]
    log_url = f"sqlite:///{tmp_path / 'workers.db'}"
    server = _start(folder, ["python", "-m", "deployment.run_deployed"], runtime_python(folder), WEB_CONCURRENCY="2", ML_PROJECT_PREDICTION_LOG_URL=log_url)
    try:
        with httpx.Client(timeout=10) as client:
            answers = [client.post(f"{server.url}/predict", json=RECORD).status_code for _ in range(30)]
        assert answers == [200] * 30
    finally:
        assert server.stop() == 0
    output = server.log.read_text()
    assert "; 2 workers" in output
    assert len(re.findall(r"\[worker \d+\] prediction log flushed: \d+ rows written", output)) == 2
    assert count_predictions(log_url) == 30


# --- heroku: the Procfile under honcho, and the deployed-server use case against it ------------


def test_heroku_procfile_serves_and_the_deployed_server_use_case_runs_against_it(assembled, runtime_python, trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled["heroku"]
    procfile = (folder / "Procfile").read_text()
    assert procfile == "web: python -m deployment.run_deployed --port $PORT\n"
    assert (folder / ".python-version").read_text().strip() == LOCK["_meta"]["requires"]["python_version"]
    log_url = f"sqlite:///{tmp_path / 'heroku_log.db'}"
    honcho = str(Path(sys.executable).parent / "honcho")
    port = free_port()
    environment = runtime_env.environment(runtime_python(folder), HOST="127.0.0.1", ML_PROJECT_PREDICTION_LOG_URL=log_url)
    server = Server.command([honcho, "start", "--port", str(port), "web"], cwd=folder, port=port, env=environment, log=tmp_path / "honcho.log")
    try:
        server.wait_healthy(timeout=90)
        _check_predicts(server.url, trained)
        result = run_use_case(
            "predicting_production_data_deployed_server",
            *_sets(*output_overrides(tmp_path / "client"), f"service.url={server.url}"),
            "--batch-size", "5", "--concurrency", "2", "--limit", "60",
        )
        assert result.returncode == 0, result.stderr
        assert "requests 12, records 60: predicted 60, refused 0, failed 0" in result.stdout.splitlines()
        # the dashboard runs from the folder with its runtime packages only (jinja2, the vendored plotly.js)
        page = httpx.get(f"{server.url}/dashboard", timeout=30)
        assert page.status_code == 200 and '<section class="panel" id="panel-volume" data-state="ok">' in page.text
        assert httpx.get(f"{server.url}/dashboard/assets/plotly-basic.min.js", timeout=30).status_code == 200
        panels = httpx.get(f"{server.url}/dashboard/api", timeout=30).json()["panels"]
        assert panels["volume"]["total"] == 61 and panels["model"]["leaderboard"][0]["rank"] == 1
        assert panels["drift"]["state"] == "off"  # no ML_PROJECT_REPORTS here
    finally:
        server.stop()
    output = server.log.read_text()
    assert f"web.1  | listening on http://127.0.0.1:{port}" in output
    assert "prediction log flushed: 61 rows written" in output
    assert count_predictions(log_url) == 61  # 60 streamed + 1 checked; every answer logged, nothing else


# --- google app engine ---------------------------------------------------------------------------


def test_app_engine_entrypoint_from_app_yaml_serves(assembled, runtime_python, trained) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled["google_app_engine"]
    app = yaml.safe_load((folder / "app.yaml").read_text())
    assert app["runtime"] == "python" + LOCK["_meta"]["requires"]["python_version"].replace(".", "")
    assert app["entrypoint"] == "python -m deployment.run_deployed --port $PORT"
    assert app["instance_class"] == "F2" and app["automatic_scaling"]["max_instances"] == 10
    server = _start(folder, ["sh", "-c", f"exec {app['entrypoint']}"], runtime_python(folder), ML_PROJECT_PREDICTION_LOG_URL="off")
    try:
        _check_predicts(server.url, trained)
        assert httpx.get(f"{server.url}/model", timeout=10).json()["served_as"] == "champion"
    finally:
        assert server.stop() == 0
    ignored = (folder / ".gcloudignore").read_text().splitlines()
    assert "deploy.sh" in ignored


# --- google cloud function -----------------------------------------------------------------------


def test_cloud_function_runs_under_functions_framework(assembled, runtime_python, trained) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled["google_cloud_function"]
    python = runtime_python(folder)
    port = free_port()
    command = ["python", "-m", "functions_framework", "--target", "predict", "--host", "127.0.0.1", "--port", str(port)]
    environment = runtime_env.environment(python, ML_PROJECT_PREDICTION_LOG_URL="off")
    server = Server.command(command, cwd=folder, port=port, env=environment, log=folder.parent / "function.log")
    try:
        server.wait_healthy(timeout=90)
        _check_predicts(server.url, trained)
        refused = httpx.post(f"{server.url}/predict", json={**RECORD, "island": "Atlantis"}, timeout=10)
        assert refused.status_code == 422 and refused.json()["detail"].startswith("field 'island': ")
    finally:
        server.stop()


def test_cloud_function_terraform_deploys_the_zip_it_was_built_with(assembled) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled["google_cloud_function"]
    document = _hcl(folder / "main.tf")
    resources = _resources(document)
    source = resources["google_storage_bucket_object.source"]
    assert source["source"] == "${path.module}/function.zip"
    assert 'filemd5("${path.module}/function.zip")' in source["name"]
    function = resources["google_cloudfunctions2_function.predict"]
    build = function["build_config"][0]
    assert build["entry_point"] == "predict" and build["runtime"] == "python311"
    storage = build["source"][0]["storage_source"][0]
    assert storage == {"bucket": "${google_storage_bucket.source.name}", "object": "${google_storage_bucket_object.source.name}"}
    assert {next(iter(variable)) for variable in document["variable"]} >= {"project", "region"}
    with zipfile.ZipFile(folder / "function.zip") as archive:
        names = set(archive.namelist())
        assert {"main.py", "requirements.txt", "deployment.json", "model/manifest.json", "ml_project/__init__.py"} <= names
        assert not names & {"main.tf", "deploy.sh", "function.zip"}
        assert archive.read("main.py") == (folder / "main.py").read_bytes()
        assert "async def predict(request: Request)" in archive.read("main.py").decode()


# --- aws lambda ----------------------------------------------------------------------------------

API_GATEWAY_V1 = {
    "resource": "/{proxy+}",
    "path": "/predict",
    "httpMethod": "POST",
    "headers": {"Content-Type": "application/json", "X-Request-ID": "v1-request", "Host": "abc123.execute-api.eu-west-1.amazonaws.com"},
    "multiValueHeaders": {"Content-Type": ["application/json"], "X-Request-ID": ["v1-request"], "Host": ["abc123.execute-api.eu-west-1.amazonaws.com"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": {"proxy": "predict"},
    "stageVariables": None,
    "requestContext": {
        "resourcePath": "/{proxy+}",
        "httpMethod": "POST",
        "path": "/prod/predict",
        "stage": "prod",
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "accountId": "123456789012",
        "apiId": "abc123",
        "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
    },
    "body": json.dumps(RECORD),
    "isBase64Encoded": False,
}
API_GATEWAY_V2 = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/predict",
    "rawQueryString": "",
    "headers": {"content-type": "application/json", "x-request-id": "v2-request", "host": "abc123.execute-api.eu-west-1.amazonaws.com"},
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "abc123",
        "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
        "domainPrefix": "abc123",
        "http": {"method": "POST", "path": "/predict", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
        "requestId": "JKJaXmPLvHcESHA=",
        "routeKey": "$default",
        "stage": "$default",
        "time": "23/Nov/2026:15:00:00 +0000",
        "timeEpoch": 1795446000000,
    },
    "body": json.dumps([RECORD, {**RECORD, "island": "Atlantis"}]),
    "isBase64Encoded": False,
}


def _v2_get(path: str) -> dict[str, Any]:
    event = json.loads(json.dumps(API_GATEWAY_V2))
    event.update(rawPath=path, body=None)
    event["requestContext"]["http"].update(method="GET", path=path)
    return event


def test_lambda_handler_answers_api_gateway_v1_and_v2_events_in_process(assembled, trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from deployment.run_deployed import lambda_handler

    folder, _ = assembled["aws_lambda"]
    log_url = f"sqlite:///{tmp_path / 'lambda_log.db'}"
    handler = lambda_handler(folder, {"ML_PROJECT_PREDICTION_LOG_URL": log_url})
    prediction, probabilities = _expected(trained)
    v1 = handler(API_GATEWAY_V1, None)
    assert v1["statusCode"] == 200 and v1["headers"]["x-request-id"] == "v1-request"
    (result,) = json.loads(v1["body"])["results"]
    assert (result["request_id"], result["prediction"], result["probabilities"]) == ("v1-request", prediction, probabilities)
    v2 = handler(API_GATEWAY_V2, None)
    assert v2["statusCode"] == 200
    first, refused = json.loads(v2["body"])["results"]
    assert (first["request_id"], first["prediction"]) == ("v2-request-0", prediction)
    assert refused["errors"][0]["field"] == "island"
    assert count_predictions(log_url) == 2  # flushed before each answer: Lambda may freeze right after
    health = handler(_v2_get("/health"), None)
    assert (health["statusCode"], json.loads(health["body"])["status"]) == (200, "ok")
    bad = handler({**API_GATEWAY_V1, "body": "{oops"}, None)
    assert bad["statusCode"] == 400 and json.loads(bad["body"])["detail"].startswith("request body is not valid JSON")


def test_lambda_handler_module_of_the_folder_imports_with_runtime_packages_only(assembled, runtime_python) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled["aws_lambda"]
    script = (
        "import json, sys, lambda_handler\n"
        "event = json.loads(sys.stdin.read())\n"
        "answer = lambda_handler.handler(event, None)\n"
        "print(answer['statusCode'], json.loads(answer['body'])['results'][0]['prediction'])\n"
        "print(sorted(m for m in ('mlflow', 'optuna', 'evidently', 'pandera', 'uvicorn') if m in sys.modules))\n"
    )
    python = runtime_python(folder)
    run = subprocess.run(
        ["python", "-c", script],
        input=json.dumps(API_GATEWAY_V2), cwd=folder, capture_output=True, text=True, timeout=120,
        env=runtime_env.environment(python, ML_PROJECT_PREDICTION_LOG_URL="off"),
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"200 {_expected_label(folder)}", "[]"]


def _expected_label(folder: Path) -> str:
    frame, _ = predict_frame(load_bundle(folder / "model", serving=True), pd.DataFrame([RECORD]))
    return str(frame["prediction"].iloc[0])


def test_lambda_terraform_runs_the_pushed_image_behind_an_http_api(assembled) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled["aws_lambda"]
    resources = _resources(_hcl(folder / "main.tf"))
    function = resources["aws_lambda_function.predict"]
    assert function["package_type"] == "Image"
    assert function["image_uri"] == "${aws_ecr_repository.model.repository_url}:${var.image_tag}"
    assert resources["aws_apigatewayv2_api.http"]["target"] == "${aws_lambda_function.predict.arn}"
    assert resources["aws_lambda_permission.api"]["principal"] == "apigateway.amazonaws.com"
    lines = (folder / "Dockerfile").read_text().splitlines()
    assert [line for line in lines if line.startswith(("FROM ", "ENTRYPOINT ", "CMD "))] == [
        "FROM python:3.11-slim AS build",  # not the Lambda base image: its glibc 2.26 has no numpy 2.4 wheels
        "FROM python:3.11-slim",
        'ENTRYPOINT ["python", "-m", "awslambdaric"]',
        'CMD ["lambda_handler.handler"]',
    ]
    assert {"mangum", "awslambdaric"} <= runtime_env.requirement_names(folder / "requirements.txt")


# --- sagemaker -----------------------------------------------------------------------------------


def test_sagemaker_serve_answers_ping_and_invocations_in_csv_and_json(assembled, runtime_python, trained) -> None:  # type: ignore[no-untyped-def]
    folder, _ = assembled["sagemaker"]
    port = free_port()
    environment = runtime_env.environment(
        runtime_python(folder), HOST="127.0.0.1", SAGEMAKER_BIND_TO_PORT=str(port), ML_PROJECT_PREDICTION_LOG_URL="off"
    )
    server = Server.command(["./serve"], cwd=folder, port=port, env=environment, log=folder.parent / "sagemaker.log")
    prediction, _ = _expected(trained)
    try:
        server.wait_healthy(timeout=90)
        assert httpx.get(f"{server.url}/ping", timeout=10).status_code == 200
        names = load_bundle(folder / "model", serving=True).schema.feature_names
        row = ",".join(str(RECORD[name]) for name in names)
        as_csv = httpx.post(f"{server.url}/invocations", content=f"{row}\n{row}\n", headers={"Content-Type": "text/csv"}, timeout=10)
        assert as_csv.status_code == 200
        assert [result["prediction"] for result in as_csv.json()["results"]] == [prediction, prediction]
        as_json = httpx.post(f"{server.url}/invocations", json=RECORD, headers={"Accept": "text/csv"}, timeout=10)
        assert as_json.status_code == 200 and as_json.text.splitlines()[0].split(",")[1] == prediction
    finally:
        assert server.stop() == 0
    with tarfile.open(folder / "model.tar.gz") as archive:
        members = set(archive.getnames())
    assert {"manifest.json", "pipeline.joblib", "schema.json"} <= members  # unpacked into /opt/ml/model
    assert "model.tar.gz" in (folder / ".dockerignore").read_text().splitlines()


# --- a forecasting bundle: the docker image's CMD and the Lambda handler answer POST /forecast ----


@pytest.fixture(scope="module")
def forecasting(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """The queues forecaster (tests/code/test_forecasting.py) assembled for the targets that ship one."""
    bundle = train_forecaster(tmp_path_factory.mktemp("forecaster"))
    out = tmp_path_factory.mktemp("forecast_deployments")
    for target in ("docker", "aws_lambda"):
        done = cloud_setup(target, "--model", str(bundle.path), "--out", str(out / target))
        assert done.returncode == 0, done.stderr
    return {target: out / target for target in ("docker", "aws_lambda")}


def test_a_forecasting_docker_folder_serves_post_forecast_with_its_runtime_packages_only(forecasting, runtime_python) -> None:  # type: ignore[no-untyped-def]
    folder = forecasting["docker"]
    lines = (folder / "Dockerfile").read_text().splitlines()
    command = json.loads(next(line for line in lines if line.startswith("CMD ")).split(" ", 1)[1])
    check = json.loads(next(line for line in lines if line.startswith("HEALTHCHECK ")).split(" CMD ", 1)[1])
    python = runtime_python(folder)  # mlforecast and statsforecast, no optuna: --no-deps installs exactly this
    assert "optuna" not in runtime_env.requirement_names(folder / "requirements.txt")
    server = _start(folder, command, python, ML_PROJECT_PREDICTION_LOG_URL="off")
    try:
        response = httpx.post(f"{server.url}/forecast", json={"horizon": 3}, timeout=30)
        info = httpx.get(f"{server.url}/model", timeout=10).json()
        missing = httpx.post(f"{server.url}/predict", json=RECORD, timeout=10)
        probe = subprocess.run(check, cwd=folder, env=runtime_env.environment(python, PORT=str(server.port)), capture_output=True, text=True)
    finally:
        assert server.stop() == 0
    assert response.status_code == 200, response.text
    rows = response.json()["forecasts"]
    days = ["2026-04-01T00:00:00", "2026-04-02T00:00:00", "2026-04-03T00:00:00"]
    assert [(row["series"], row["timestamp"]) for row in rows] == [(name, day) for name in ("DEFAULT", "LLAP") for day in days]
    expected = load_bundle(folder / "model", serving=True).pipeline.forecast(3)[OUTPUT].tolist()
    assert [row["forecast"] for row in rows] == pytest.approx(expected, rel=1e-9)
    assert all(row["forecast_lower"] < row["forecast"] < row["forecast_upper"] for row in rows)
    assert (info["task"], info["forecast"]["series"], missing.status_code) == ("forecasting", ["DEFAULT", "LLAP"], 404)
    assert (probe.returncode, probe.stdout.strip()) == (0, f"http://127.0.0.1:{server.port}/health: 200")


def test_a_forecasting_lambda_handler_answers_post_forecast_without_importing_optuna(forecasting, runtime_python) -> None:  # type: ignore[no-untyped-def]
    folder = forecasting["aws_lambda"]
    event = json.loads(json.dumps(API_GATEWAY_V2))
    event.update(rawPath="/forecast", body=json.dumps({"horizon": 2, "series": ["LLAP"]}))
    event["requestContext"]["http"]["path"] = "/forecast"
    script = (
        "import json, sys, lambda_handler\n"
        "answer = lambda_handler.handler(json.loads(sys.stdin.read()), None)\n"
        "print(answer['statusCode'], [(row['series'], row['timestamp']) for row in json.loads(answer['body'])['forecasts']])\n"
        "print(sorted(m for m in ('mlflow', 'optuna', 'evidently', 'pandera', 'matplotlib', 'mlforecast.auto') if m in sys.modules))\n"
    )
    run = subprocess.run(
        ["python", "-c", script],
        input=json.dumps(event), cwd=folder, capture_output=True, text=True, timeout=120,
        env=runtime_env.environment(runtime_python(folder), ML_PROJECT_PREDICTION_LOG_URL="off"),
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "200 [('LLAP', '2026-04-01T00:00:00'), ('LLAP', '2026-04-02T00:00:00')]",
        "[]",
    ]
    assert "RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt" in (folder / "Dockerfile").read_text()


# --- kubernetes ----------------------------------------------------------------------------------


def test_kubernetes_example_scales_the_docker_image_on_cpu() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deployment" / "kubernetes" / "deployment.yaml").read_text()))
    kinds = {document["kind"]: document for document in documents}
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    deployment, service, autoscaler = kinds["Deployment"], kinds["Service"], kinds["HorizontalPodAutoscaler"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {probe["httpGet"]["path"] for key, probe in container.items() if key.endswith("Probe")} == {"/health"}
    port = container["ports"][0]
    assert port["containerPort"] == 8000 and {"name": "PORT", "value": "8000"} in container["env"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert container["resources"]["requests"]["cpu"]  # CPU utilisation is measured against the request
    assert autoscaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 30  # > the drain timeout
