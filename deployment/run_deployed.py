"""What runs where the model is deployed: the one service, started from an assembled folder.

`executables/cloud_setup.sh TARGET` copies this package, `ml_project/`, the model bundle and a
`deployment.json` into a folder; every target starts the service from that folder through this
module, so no target carries prediction code of its own:

- `python -m deployment.run_deployed [--port N] [--host H] [--workers N]`: docker, heroku, app engine
  and sagemaker (their Dockerfile CMD, Procfile, app.yaml entrypoint and `serve` script);
- `lambda_handler()`: the AWS Lambda handler (Mangum around the app);
- `create_deployed_app()`: the ASGI app itself, which the Cloud Function's `main.py` hands its requests to.

Environment variables (all optional; the platform sets PORT), read in one place, `environment_overrides`:
  PORT                            port to listen on (default: 8080 for sagemaker, else service.port)
  HOST                            interface to bind (default 0.0.0.0: every one, as platforms need)
  WEB_CONCURRENCY                 server processes (default: service.workers of the assembled config)
  ML_PROJECT_BUNDLE               another model bundle folder to serve instead of the folder's own
  ML_PROJECT_PREDICTION_LOG_URL   SQLAlchemy URL of the prediction log, or "off"; unset means a
                                  SQLite file in the temp folder, which lives only as long as the instance
  SAGEMAKER_BIND_TO_PORT          sagemaker's port, when SageMaker sets it
  SM_MODEL_DIR                    sagemaker: where SageMaker unpacked model.tar.gz (default /opt/ml/model)
  ML_PROJECT_REPORTS              a folder of monitoring reports for the dashboard's drift panel
  ML_PROJECT_REGISTRY             a model registry folder (<paths.output>/models) for the dashboard's
                                  card of other versions; unset, the card knows the served version only

With several workers, the settings these make reach the worker processes as one JSON variable
(deployment/workers.py). Importing this module starts nothing and imports no mlflow, optuna,
evidently or pandera.
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

from deployment.process import check_health, port_problem
from deployment.workers import WorkerSettings, run_server
from ml_project.artifacts import Bundle, BundleError, load_bundle
from ml_project.config import ServiceConfig
from ml_project.prediction_log import PredictionLog, PredictionLogError

logger = logging.getLogger("deployment")

DEPLOYMENT_FILE = "deployment.json"
ENV_BUNDLE = "ML_PROJECT_BUNDLE"
ENV_LOG_URL = "ML_PROJECT_PREDICTION_LOG_URL"
ENV_REPORTS = "ML_PROJECT_REPORTS"
ENV_REGISTRY = "ML_PROJECT_REGISTRY"
SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")  # where SageMaker unpacks the model.tar.gz of ModelDataUrl
LOG_OFF = ("", "off", "none", "false", "0")
SERVERLESS = ("aws_lambda", "google_cloud_function")


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

    def worker(self) -> WorkerSettings:
        """The app's settings, as run_server hands them to worker processes."""
        return WorkerSettings(
            bundle=self.bundle_path,
            service=self.settings,
            log_url=self.log_url,
            served_as=self.served_as,
            sagemaker=self.sagemaker,
            registry=self.registry,
            reports=self.reports,
        )


@dataclass(frozen=True)
class Overrides:
    """What the documented environment variables change of an assembled folder's settings."""

    bundle: tuple[Path, str] | None  # (folder, served_as) to serve instead of the folder's own
    service: dict[str, Any]  # host, and port and workers when given
    log_url: str | None
    log_is_default: bool
    registry: Path | None
    reports: Path | None


def package_root() -> Path:
    """The folder holding `deployment/` and `ml_project/`: the assembled folder when deployed."""
    return Path(__file__).resolve().parent.parent


def read_deployment_file(file: Path) -> dict[str, Any]:
    """deployment.json as a checked dict; DeploymentError (one line naming the key) otherwise."""
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
    return data


def _service_settings(file: Path, data: dict[str, Any]) -> ServiceConfig:
    try:
        return ServiceConfig.model_validate(data["service"])
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DeploymentError(f"{file}: service.{where}: {first['msg']}") from None


def environment_overrides(env: Mapping[str, str], sagemaker: bool, log_enabled: bool) -> Overrides:
    """The one reader of the documented variables (see the module's docstring)."""
    bundle: tuple[Path, str] | None = None
    model_dir = Path(env.get("SM_MODEL_DIR", SAGEMAKER_MODEL_DIR))
    if env.get(ENV_BUNDLE):
        bundle = (Path(env[ENV_BUNDLE]), "path")
    elif sagemaker and (model_dir / "manifest.json").exists():
        bundle = (model_dir, "path")
    service: dict[str, Any] = {"host": env.get("HOST") or "0.0.0.0"}
    port = env.get("PORT") or (env.get("SAGEMAKER_BIND_TO_PORT") or "8080" if sagemaker else None)
    if port is not None:
        service["port"] = _whole(port, "PORT" if env.get("PORT") else "SAGEMAKER_BIND_TO_PORT", 1, 65535)
    if env.get("WEB_CONCURRENCY"):
        service["workers"] = _whole(env["WEB_CONCURRENCY"], "WEB_CONCURRENCY", 1, 64)
    log_url: str | None = None
    if ENV_LOG_URL in env:
        log_url = None if env[ENV_LOG_URL].strip().lower() in LOG_OFF else env[ENV_LOG_URL]
    elif log_enabled:
        log_url = f"sqlite:///{Path(tempfile.gettempdir()) / 'ml_project_prediction_log.db'}"
    return Overrides(
        bundle=bundle,
        service=service,
        log_url=log_url,
        log_is_default=ENV_LOG_URL not in env and log_url is not None,
        registry=_folder(env, ENV_REGISTRY),
        reports=_folder(env, ENV_REPORTS),
    )


def read_deployment(root: Path | None = None, environ: Mapping[str, str] | None = None) -> Deployed:
    """Read `<root>/deployment.json` and apply the documented environment variables."""
    root = root or package_root()
    file = root / DEPLOYMENT_FILE
    data = read_deployment_file(file)
    settings = _service_settings(file, data)
    target = data["target"]
    log_enabled = bool(data.get("prediction_log", {}).get("enabled", True))
    overrides = environment_overrides(os.environ if environ is None else environ, target == "sagemaker", log_enabled)
    bundle_path, served_as = overrides.bundle or (root / data["model"], str(data.get("served_as", "path")))
    return Deployed(
        root=root,
        target=target,
        bundle_path=bundle_path,
        served_as=served_as,
        settings=settings.model_copy(update=overrides.service),
        log_url=overrides.log_url,
        log_is_default=overrides.log_is_default,
        serverless=target in SERVERLESS,
        sagemaker=target == "sagemaker",
        registry=overrides.registry,
        reports=overrides.reports,
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
    from deployment.app import create_app

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


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="python -m deployment.run_deployed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    result.add_argument("--port", type=int, help="port (default: $PORT, else 8080 for sagemaker, else service.port)")
    result.add_argument("--host", help="interface to bind (default: $HOST, else 0.0.0.0)")
    result.add_argument("--workers", type=int, help="server processes (default: $WEB_CONCURRENCY, else service.workers)")
    result.add_argument(
        "--check", action="store_true", help="ask the running service's /health on 127.0.0.1 instead (exit 0 if ok)"
    )
    return result


def _with_flags(args: argparse.Namespace) -> dict[str, str]:
    """The environment with --port, --host and --workers in place of PORT, HOST and WEB_CONCURRENCY."""
    environ = dict(os.environ)
    for flag, name in ((args.port, "PORT"), (args.host, "HOST"), (args.workers, "WEB_CONCURRENCY")):
        if flag is not None:
            environ[name] = str(flag)
    return environ


def main(argv: list[str] | None = None) -> int:
    """`python -m deployment.run_deployed`: serve the assembled folder this package sits in."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        deployed = read_deployment(environ=_with_flags(args))
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
    return run_server(bundle, log, deployed.worker())


if __name__ == "__main__":
    sys.exit(main())
