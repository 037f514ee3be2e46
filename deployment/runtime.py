"""What runs where the model is deployed: the one service, started from an assembled folder or a worker.

`executables/cloud_setup.sh TARGET` copies this package, `ml_project/`, the model bundle and a
`deployment.json` into a folder; every target starts the service from that folder through this
module, so no target carries prediction code of its own:

- `python -m deployment.runtime [--port N] [--host H] [--workers N]`: docker, heroku, app engine and
  sagemaker (their Dockerfile CMD, Procfile, app.yaml entrypoint and `serve` script);
- `lambda_handler()`: the AWS Lambda handler (Mangum around the app);
- `create_deployed_app()`: the ASGI app itself, which the Cloud Function's `main.py` hands its requests to.

Environment variables (all optional; the platform sets PORT):
  PORT                            port to listen on (default: 8080 for sagemaker, else service.port)
  HOST                            interface to bind (default 0.0.0.0: every one, as platforms need)
  WEB_CONCURRENCY                 server processes (default: service.workers of the assembled config)
  ML_PROJECT_BUNDLE               another model bundle folder to serve instead of the folder's own
  ML_PROJECT_PREDICTION_LOG_URL   SQLAlchemy URL of the prediction log, or "off"; unset means a
                                  SQLite file in the temp folder, which lives only as long as the instance
  SAGEMAKER_BIND_TO_PORT          sagemaker's port, when SageMaker sets it
  ML_PROJECT_REPORTS              a folder of monitoring reports for the dashboard's drift panel
  ML_PROJECT_REGISTRY             a model registry folder (<paths.output>/models) for the dashboard's
                                  card of other versions; unset, the card knows the served version only

Importing this module starts nothing and imports no mlflow, optuna, evidently or pandera.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from deployment.process import check_health, exit_0_on_sigterm, port_problem
from ml_project.artifacts import Bundle, BundleError, load_bundle
from ml_project.config import ServiceConfig
from ml_project.prediction_log import PredictionLog, PredictionLogError

logger = logging.getLogger("deployment")

DEPLOYMENT_FILE = "deployment.json"
# How a worker process (and a deployed folder) is told what to serve.
ENV_BUNDLE = "ML_PROJECT_BUNDLE"
ENV_SERVICE = "ML_PROJECT_SERVICE"
ENV_LOG_URL = "ML_PROJECT_PREDICTION_LOG_URL"
ENV_SERVED_AS = "ML_PROJECT_SERVED_AS"
ENV_SAGEMAKER = "ML_PROJECT_SAGEMAKER"
ENV_REPORTS = "ML_PROJECT_REPORTS"
ENV_REGISTRY = "ML_PROJECT_REGISTRY"
SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")  # where SageMaker unpacks the model.tar.gz of ModelDataUrl
LOG_OFF = ("", "off", "none", "false", "0")


class DeploymentError(Exception):
    """A deployed folder that cannot start: the message is one line naming the file or variable."""


@dataclass(frozen=True)
class Deployed:
    """What `deployment.json` and the environment say to serve."""

    root: Path
    target: str
    bundle_path: Path
    served_as: str
    settings: ServiceConfig
    log_url: str | None
    log_is_default: bool  # no ML_PROJECT_PREDICTION_LOG_URL: a SQLite file in the temp folder
    serverless: bool
    sagemaker: bool
    registry: Path | None = None
    reports: Path | None = None


def package_root() -> Path:
    """The folder holding `deployment/` and `ml_project/`: the assembled folder when deployed."""
    return Path(__file__).resolve().parent.parent


def read_deployment(root: Path | None = None, environ: Mapping[str, str] | None = None) -> Deployed:
    """Read `<root>/deployment.json` and apply the documented environment variables."""
    env = os.environ if environ is None else environ
    root = root or package_root()
    file = root / DEPLOYMENT_FILE
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise DeploymentError(
            f"{file} is missing: start the service from a folder assembled by ./executables/cloud_setup.sh"
        ) from None
    except ValueError as error:
        raise DeploymentError(f"{file} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise DeploymentError(f"{file} must hold a JSON object, not {type(data).__name__}")
    for key, kind in (("target", str), ("model", str), ("service", dict), ("prediction_log", dict)):
        if key not in data and key != "prediction_log":
            raise DeploymentError(f"{file}: key '{key}' is missing")
        if key in data and not isinstance(data[key], kind):
            raise DeploymentError(f"{file}: '{key}' must be a JSON {'text' if kind is str else 'object'}")
    try:
        settings = ServiceConfig.model_validate(data["service"])
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DeploymentError(f"{file}: service.{where}: {first['msg']}") from None
    target = data["target"]
    bundle_path = root / data["model"]
    served_as = str(data.get("served_as", "path"))
    log_enabled = bool(data.get("prediction_log", {}).get("enabled", True))
    sagemaker = target == "sagemaker"
    if env.get(ENV_BUNDLE):
        bundle_path, served_as = Path(env[ENV_BUNDLE]), "path"
    elif sagemaker and (Path(env.get("SM_MODEL_DIR", SAGEMAKER_MODEL_DIR)) / "manifest.json").exists():
        bundle_path, served_as = Path(env.get("SM_MODEL_DIR", SAGEMAKER_MODEL_DIR)), "path"
    updates: dict[str, Any] = {"host": env.get("HOST") or "0.0.0.0"}
    port = env.get("PORT") or (env.get("SAGEMAKER_BIND_TO_PORT") or "8080" if sagemaker else None)
    if port is not None:
        updates["port"] = _whole(port, "PORT" if env.get("PORT") else "SAGEMAKER_BIND_TO_PORT", 1, 65535)
    if env.get("WEB_CONCURRENCY"):
        updates["workers"] = _whole(env["WEB_CONCURRENCY"], "WEB_CONCURRENCY", 1, 64)
    log_url: str | None
    if ENV_LOG_URL in env:
        log_url = None if env[ENV_LOG_URL].strip().lower() in LOG_OFF else env[ENV_LOG_URL]
    elif log_enabled:
        log_url = f"sqlite:///{Path(tempfile.gettempdir()) / 'ml_project_prediction_log.db'}"
    else:
        log_url = None
    return Deployed(
        root=root,
        target=target,
        bundle_path=bundle_path,
        served_as=served_as,
        settings=settings.model_copy(update=updates),
        log_url=log_url,
        log_is_default=ENV_LOG_URL not in env and log_url is not None,
        serverless=target in ("aws_lambda", "google_cloud_function"),
        sagemaker=sagemaker,
        registry=_folder(env, ENV_REGISTRY),
        reports=_folder(env, ENV_REPORTS),
    )


def _folder(env: Mapping[str, str], name: str) -> Path | None:
    """The folder an environment variable names (None when unset or empty)."""
    return Path(env[name]) if env.get(name) else None


def _whole(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise DeploymentError(f"{name} = '{text}' is not a whole number") from None
    if not low <= value <= high:
        raise DeploymentError(f"{name} = {value} is outside {low}..{high}")
    return value


def load_deployed(deployed: Deployed) -> Bundle:
    """The verified bundle, or a one-line DeploymentError naming its folder."""
    try:
        return load_bundle(deployed.bundle_path, serving=True)
    except BundleError as error:
        raise DeploymentError(str(error)) from None


def _open_log(url: str | None) -> PredictionLog | None:
    if url is None:
        return None
    try:
        return PredictionLog(url)
    except PredictionLogError as error:
        raise DeploymentError(f"{ENV_LOG_URL}: {error}") from None


def _warn_if_ephemeral(deployed: Deployed) -> None:
    if deployed.log_is_default:
        logger.warning(
            "prediction log %s lives only as long as this instance; set %s to a database URL to keep it",
            deployed.log_url,
            ENV_LOG_URL,
        )


def create_deployed_app(root: Path | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """The ASGI app of an assembled folder (Cloud Function, Lambda): bundle verified, log opened."""
    from deployment.service import create_app

    deployed = read_deployment(root, environ)
    bundle = load_deployed(deployed)
    _warn_if_ephemeral(deployed)
    return create_app(
        bundle,
        deployed.settings,
        _open_log(deployed.log_url),
        deployed.served_as,
        serverless=deployed.serverless,
        sagemaker=deployed.sagemaker,
        registry=deployed.registry,
        reports=deployed.reports,
    )


def lambda_handler(root: Path | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """AWS Lambda handler for API Gateway (REST v1 and HTTP v2 events) and function URLs.

    Lifespan is off: Lambda freezes the process between invocations, so the app runs without the
    background batcher and flushes the prediction log before each answer (`serverless`).
    """
    from mangum import Mangum

    return Mangum(create_deployed_app(root, environ), lifespan="off")


def app_from_environment() -> Any:
    """App factory for worker processes: bundle, settings and log URL from the ENV_* variables."""
    from deployment.service import create_app

    if not logging.getLogger().handlers:  # a worker process: its messages go to stderr like the parent's
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [worker %(process)d] %(message)s")
    bundle_path = os.environ.get(ENV_BUNDLE)
    if not bundle_path:
        raise RuntimeError(f"{ENV_BUNDLE} is not set: it must name the model bundle folder to serve")
    settings = ServiceConfig.model_validate(json.loads(os.environ.get(ENV_SERVICE) or "{}"))
    log_url = os.environ.get(ENV_LOG_URL)
    log = PredictionLog(log_url) if log_url else None
    return create_app(
        load_bundle(Path(bundle_path), serving=True),
        settings,
        log,
        os.environ.get(ENV_SERVED_AS, "path"),
        sagemaker=os.environ.get(ENV_SAGEMAKER) == "1",
        registry=_folder(os.environ, ENV_REGISTRY),
        reports=_folder(os.environ, ENV_REPORTS),
    )


def run_server(
    bundle: Bundle,
    settings: ServiceConfig,
    log: PredictionLog | None,
    served_as: str,
    *,
    sagemaker: bool = False,
    registry: Path | None = None,
    reports: Path | None = None,
) -> int:
    """Serve `bundle` on settings.host:port with settings.workers processes until SIGTERM or Ctrl-C (exit 0).

    SIGTERM stops taking connections, answers the requests in flight, flushes the log, then returns.
    """
    import uvicorn

    from deployment.service import create_app

    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 30,
    }
    exit_0_on_sigterm()
    listening = f"listening on http://{settings.host}:{settings.port} (docs at /docs); stop with Ctrl-C or SIGTERM"
    if settings.workers == 1:
        app = create_app(bundle, settings, log, served_as, sagemaker=sagemaker, registry=registry, reports=reports)
        print(listening, flush=True)
        uvicorn.run(app, **common)
        return 0
    if log is not None:
        log.close()  # each worker opens its own: the writer thread would not survive the fork
        os.environ[ENV_LOG_URL] = log.url
    else:
        os.environ.pop(ENV_LOG_URL, None)
    os.environ[ENV_BUNDLE] = str(bundle.path)
    os.environ[ENV_SERVED_AS] = served_as
    os.environ[ENV_SERVICE] = settings.model_dump_json()
    os.environ[ENV_SAGEMAKER] = "1" if sagemaker else "0"
    for name, folder in ((ENV_REGISTRY, registry), (ENV_REPORTS, reports)):
        if folder is not None:
            os.environ[name] = str(folder)
        else:
            os.environ.pop(name, None)
    print(f"{listening}; {settings.workers} workers", flush=True)
    uvicorn.run("deployment.runtime:app_from_environment", factory=True, workers=settings.workers, **common)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m deployment.runtime`: serve the assembled folder this package sits in."""
    parser = argparse.ArgumentParser(
        prog="python -m deployment.runtime",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, help="port (default: $PORT, else 8080 for sagemaker, else service.port)")
    parser.add_argument("--host", help="interface to bind (default: $HOST, else 0.0.0.0)")
    parser.add_argument("--workers", type=int, help="server processes (default: $WEB_CONCURRENCY, else service.workers)")
    parser.add_argument(
        "--check", action="store_true", help="ask the running service's /health on 127.0.0.1 instead (exit 0 if ok)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        environ = dict(os.environ)
        for flag, name in ((args.port, "PORT"), (args.host, "HOST"), (args.workers, "WEB_CONCURRENCY")):
            if flag is not None:
                environ[name] = str(flag)
        deployed = read_deployment(environ=environ)
        settings = deployed.settings
        if args.check:
            return check_health(settings.port)
        problem = port_problem(settings.host, settings.port)
        if problem:
            raise DeploymentError(f"{settings.host}:{settings.port} cannot be used (PORT/HOST): {problem}")
        bundle = load_deployed(deployed)
        log = _open_log(deployed.log_url)
    except DeploymentError as error:
        print(f"deployment error: {error}", file=sys.stderr)
        return 2
    _warn_if_ephemeral(deployed)
    print(
        f"serving model {bundle.model_name} version {bundle.version} ({deployed.served_as}, "
        f"target {deployed.target}) from {bundle.path}",
        flush=True,
    )
    print(f"prediction log: {deployed.log_url or 'off'}", flush=True)
    return run_server(
        bundle,
        settings,
        log,
        deployed.served_as,
        sagemaker=deployed.sagemaker,
        registry=deployed.registry,
        reports=deployed.reports,
    )


if __name__ == "__main__":
    sys.exit(main())
