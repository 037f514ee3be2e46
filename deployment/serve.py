"""Run the prediction service in the foreground: ./executables/run.sh serve [--config FILE] [--set k=v ...]

Loads and verifies the bundle (the latest of tracking.model_name under paths.output, or --model)
and opens the prediction log before the port opens; serves on service.host:service.port with
service.workers processes. SIGTERM or Ctrl-C stops taking connections, answers the requests in
flight, flushes the prediction log, then exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

from ml_project.artifacts import load_bundle
from ml_project.cli import add_model_argument, load_model, main_entry, make_parser
from ml_project.config import Config, ConfigError, RunConfig, ServiceConfig
from ml_project.prediction_log import PredictionLog

NAME = "serve"
RUN = RunConfig(mode="prediction", data="production", environment="local")
# How a worker process (and every deployment target) finds its bundle and settings.
ENV_BUNDLE = "ML_PROJECT_BUNDLE"
ENV_SERVICE = "ML_PROJECT_SERVICE"
ENV_LOG_URL = "ML_PROJECT_PREDICTION_LOG_URL"
ENV_SERVED_AS = "ML_PROJECT_SERVED_AS"
logger = logging.getLogger(NAME)


def check_port_free(host: str, port: int) -> None:
    """Refuse a taken port in one line before the model is loaded, not after."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(
                f"config error: service.host:service.port = {host}:{port} cannot be used: {error.strerror}"
            ) from None


def app_from_environment() -> Any:
    """App factory for worker processes and deployment targets: bundle, settings and log URL from env vars."""
    from deployment.service import create_app

    if not logging.getLogger().handlers:  # a worker process: its messages go to stderr like the parent's
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [worker %(process)d] %(message)s")
    bundle_path = os.environ.get(ENV_BUNDLE)
    if not bundle_path:
        raise RuntimeError(f"{ENV_BUNDLE} is not set: it must name the model bundle folder to serve")
    settings = ServiceConfig.model_validate(json.loads(os.environ.get(ENV_SERVICE) or "{}"))
    log_url = os.environ.get(ENV_LOG_URL)
    log = PredictionLog(log_url) if log_url else None
    return create_app(load_bundle(Path(bundle_path)), settings, log, os.environ.get(ENV_SERVED_AS, "path"))


def _stopped(signum: int, frame: Any) -> None:
    logger.info("stopped by signal %d after draining requests", signum)


def main(config: Config, args: argparse.Namespace) -> int:
    import uvicorn

    from deployment.service import create_app

    settings = config.service
    check_port_free(settings.host, settings.port)
    bundle = load_model(config, args.model)
    log_url = config.prediction_log_url
    # Opened before the port: a bad URL is one line and exit 2, not a server that cannot log.
    log = PredictionLog(log_url) if log_url else None
    served_as = str(args.model) if str(args.model) in ("champion", "latest") else "path" if args.model else "latest"
    print(f"serving model {bundle.model_name} version {bundle.version} ({served_as}) from {bundle.path}", flush=True)
    print(f"prediction log: {log_url or 'off'}", flush=True)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 30,
    }
    # uvicorn drains connections on SIGTERM, then re-raises the signal to the handler it found; a
    # handler of ours (instead of the default, which kills) turns that clean stop into exit 0.
    signal.signal(signal.SIGTERM, _stopped)
    listening = f"listening on http://{settings.host}:{settings.port} (docs at /docs); stop with Ctrl-C or SIGTERM"
    if settings.workers == 1:
        app = create_app(bundle, settings, log, served_as)
        print(listening, flush=True)
        uvicorn.run(app, **common)
        return 0
    if log is not None:
        log.close()  # each worker opens its own: the writer thread would not survive the fork
        os.environ[ENV_LOG_URL] = str(log_url)
    os.environ[ENV_BUNDLE] = str(bundle.path)
    os.environ[ENV_SERVED_AS] = served_as
    os.environ[ENV_SERVICE] = settings.model_dump_json()
    print(f"{listening}; {settings.workers} workers", flush=True)
    uvicorn.run("deployment.serve:app_from_environment", factory=True, workers=settings.workers, **common)
    return 0


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    result.prog = "./executables/run.sh serve"
    add_model_argument(result)
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
