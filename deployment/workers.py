"""Serve the app with uvicorn in one process or several, and the one way settings reach worker processes.

`run_server(bundle, log, settings)` serves in this process when service.workers is 1. With more, uvicorn
starts worker processes that each build their own app (each with its own copy of the model and its own
prediction log writer, which would not survive a fork). They learn what to serve from ONE environment
variable, `ML_PROJECT_WORKER`: a `WorkerSettings` serialised as JSON, which `run_server` writes and
`read_worker_settings` (the only reader) parses in the worker. For example, uvicorn can run the factory
directly:

    ML_PROJECT_WORKER='{"bundle": "output/models/penguins/latest", "service": {"max_batch_records": 100}}' \\
      .venv/bin/uvicorn --factory deployment.workers:app_from_environment --port 8767

This variable is internal plumbing between a parent and its workers; what a user sets on a deployed folder
(PORT, ML_PROJECT_BUNDLE, ...) is read by deployment/run_deployed.py. Importing this module starts
nothing and imports no mlflow, optuna, evidently or pandera.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from deployment.process import exit_0_on_sigterm
from ml_project.artifacts import Bundle, load_bundle
from ml_project.config import ServiceConfig
from ml_project.prediction_log import PredictionLog

ENV_WORKER = "ML_PROJECT_WORKER"


class WorkerSettings(BaseModel):
    """Everything an app is built from besides the loaded bundle: what `ML_PROJECT_WORKER` holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bundle: Path  # the bundle folder to serve (a relative one is relative to the current directory)
    service: ServiceConfig = ServiceConfig()
    log_url: str | None = None  # the prediction log's SQLAlchemy URL; None: no log
    served_as: str = "path"  # champion, latest or path: how the bundle was chosen (GET /model says)
    sagemaker: bool = False  # serve GET /ping and POST /invocations too
    registry: Path | None = None  # <paths.output>/models, for the dashboard's card of other versions
    reports: Path | None = None  # the monitoring reports folder, for the dashboard's drift panel

    def app(self, bundle: Bundle, log: PredictionLog | None) -> Any:
        """The service app over `bundle` (already loaded from `self.bundle`) and `log` (opened on `self.log_url`)."""
        from deployment.app import create_app

        return create_app(
            bundle,
            self.service,
            log,
            self.served_as,
            sagemaker=self.sagemaker,
            registry=self.registry,
            reports=self.reports,
        )


def read_worker_settings(environ: Mapping[str, str] | None = None) -> WorkerSettings:
    """The settings `run_server` left in ML_PROJECT_WORKER; RuntimeError (one line) when unset or wrong."""
    text = (os.environ if environ is None else environ).get(ENV_WORKER)
    if not text:
        example = '{"bundle": "<folder>"}'
        raise RuntimeError(f"{ENV_WORKER} is not set: it must hold the worker settings as JSON, {example}")
    try:
        return WorkerSettings.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RuntimeError(f"{ENV_WORKER}: {where}: {first['msg']}") from None


def app_from_environment() -> Any:
    """App factory for worker processes (uvicorn --factory): bundle, settings and log from ML_PROJECT_WORKER."""
    if not logging.getLogger().handlers:  # a worker process: its messages go to stderr like the parent's
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [worker %(process)d] %(message)s")
    settings = read_worker_settings()
    log = PredictionLog(settings.log_url) if settings.log_url else None
    return settings.app(load_bundle(settings.bundle, serving=True), log)


def run_server(bundle: Bundle, log: PredictionLog | None, settings: WorkerSettings) -> int:
    """Serve `bundle` on service.host:port with service.workers processes until SIGTERM or Ctrl-C (exit 0).

    SIGTERM stops taking connections, answers the requests in flight, flushes the log, then returns.
    """
    import uvicorn

    service = settings.service
    common: dict[str, Any] = {
        "host": service.host,
        "port": service.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 30,
    }
    exit_0_on_sigterm()
    listening = f"listening on http://{service.host}:{service.port} (docs at /docs); stop with Ctrl-C or SIGTERM"
    if service.workers == 1:
        app = settings.app(bundle, log)
        print(listening, flush=True)
        uvicorn.run(app, **common)
        return 0
    if log is not None:
        log.close()  # each worker opens its own: the writer thread would not survive the fork
    worker = settings.model_copy(update={"bundle": bundle.path, "log_url": log.url if log is not None else None})
    os.environ[ENV_WORKER] = worker.model_dump_json()
    print(f"{listening}; {service.workers} workers", flush=True)
    uvicorn.run("deployment.workers:app_from_environment", factory=True, workers=service.workers, **common)
    return 0
