"""Stream production instances to a running prediction service at service.url, and time them.

The server may run anywhere (./executables/run.sh serve, a container, a cloud target); this client
sends records from a file over HTTP and prints counts and latency percentiles. Exit 1 when any
request failed (connection error or 5xx), so a smoke test in a deployment pipeline can gate on it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ml_project.cli import add_stream_arguments, main_entry, make_parser
from ml_project.config import Config, ConfigError, RunConfig
from ml_project.streaming import print_report, stream_to_service

NAME = "predicting_production_data_deployed_server"
RUN = RunConfig(mode="prediction", data="production", environment="deployed")


def main(config: Config, args: argparse.Namespace) -> int:
    if not config.service.url:
        raise ConfigError("config error: service.url is required: the base URL of the running service, e.g. http://host:8000")
    source = args.input or Path(config.data.path)
    report = stream_to_service(config.service.url, source, config.prediction.chunk_size, args)
    return print_report(report)


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    add_stream_arguments(result, concurrency=True)
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
