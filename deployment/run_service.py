"""Run the prediction service in the foreground: ./executables/run.sh serve [--config FILE] [--set k=v ...]

Loads and verifies the bundle (the champion of tracking.model_name under paths.output — latest, with a
warning, while there is none — or --model;
a forecasting bundle serves POST /forecast, any other POST /predict) and opens the prediction log before the port opens; serves on service.host:service.port with
service.workers processes (deployment/workers.py). SIGTERM or Ctrl-C stops taking connections, answers the requests in
flight, flushes the prediction log, then exits 0.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from deployment.process import port_problem
from deployment.workers import WorkerSettings, run_server
from ml_project.artifacts import Bundle
from ml_project.artifacts import served_as as model_reference
from ml_project.cli import add_model_argument, load_model, main_entry, make_parser
from ml_project.config import Config, ConfigError, RunConfig
from ml_project.prediction_log import PredictionLog

NAME = "serve"
RUN = RunConfig(mode="prediction", data="production", environment="local")
logger = logging.getLogger(NAME)


def check_port_free(host: str, port: int) -> None:
    """Refuse a taken port in one line before the model is loaded, not after."""
    problem = port_problem(host, port)
    if problem:
        raise ConfigError(f"config error: service.host:service.port = {host}:{port} cannot be used: {problem}")


def served_bundle(config: Config, given: Path | str | None) -> Bundle:
    """The verified bundle --model names, of any task: /predict for a table's model, /forecast for a forecaster."""
    return load_model(config, given, forecasting=None)


def main(config: Config, args: argparse.Namespace) -> int:
    settings = config.service
    check_port_free(settings.host, settings.port)
    bundle = served_bundle(config, args.model)
    log_url = config.prediction_log_url
    # Opened before the port: a bad URL is one line and exit 2, not a server that cannot log.
    log = PredictionLog(log_url) if log_url else None
    served_as = model_reference(config.paths.models, config.tracking.model_name, args.model)
    print(f"serving model {bundle.model_name} version {bundle.version} ({served_as}) from {bundle.path}", flush=True)
    print(f"prediction log: {log_url or 'off'}", flush=True)
    if bundle.schema.task == "forecasting":
        print(f"forecasts: POST http://{settings.host}:{settings.port}/forecast", flush=True)
    if settings.dashboard:
        print(f"dashboard: http://{settings.host}:{settings.port}/dashboard", flush=True)
    assert bundle.path is not None  # a loaded bundle knows its folder
    worker = WorkerSettings(
        bundle=bundle.path,
        service=settings,
        log_url=log_url,
        served_as=served_as,
        registry=config.paths.models,
        reports=config.paths.reports,
    )
    return run_server(bundle, log, worker)


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    result.prog = "./executables/run.sh serve"
    add_model_argument(result)
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
