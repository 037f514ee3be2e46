"""Simulate production traffic in-process: records from a file through the prediction function, logged.

Each mini-batch goes through the same Scorer the HTTP service uses (schema validation, one model
call, prediction log at prediction_log.url with source 'stream'). Prints counts and latency
percentiles of the in-process calls."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ml_project.cli import add_model_argument, add_stream_arguments, load_model, main_entry, make_parser
from ml_project.config import Config, RunConfig
from ml_project.online_scoring import Scorer
from ml_project.prediction_log import PredictionLog
from ml_project.streaming import Outcome, batches, iter_records, run_stream

NAME = "predicting_production_data_local"
RUN = RunConfig(mode="prediction", data="production", environment="local")


def main(config: Config, args: argparse.Namespace) -> int:
    bundle = load_model(config, args.model)
    source = args.input or Path(config.data.path)
    log_url = config.prediction_log_url
    log = PredictionLog(log_url) if log_url else None
    scorer = Scorer(bundle, log, source="stream")

    def send(batch: list[dict[str, Any]]) -> Outcome:
        began = time.perf_counter()
        outcomes = scorer.score(batch)
        refused = [outcome for outcome in outcomes if outcome.errors]
        message = str(refused[0].errors[0]) if refused else None
        return Outcome(len(batch) - len(refused), len(refused), 0, time.perf_counter() - began, message)

    records = iter_records(source, bundle.schema, config.prediction.chunk_size, args.limit)
    try:
        report = run_stream(send, batches(records, args.batch_size), args.rate)
    finally:
        if log is not None:
            log.close()
    print(f"model {bundle.model_name} version {bundle.version}; instances from {source}")
    for line in report.lines():
        print(line)
    if log is not None:
        print(f"prediction log: {log_url} ({log.written} rows written)")
    return 0


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    add_stream_arguments(result, concurrency=False)
    add_model_argument(result)
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
