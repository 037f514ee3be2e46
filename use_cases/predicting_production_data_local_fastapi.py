"""Start the prediction service locally, stream production instances to it over HTTP, then stop it.

The server is `./executables/run.sh serve` with this command's --config and --set (so it serves
the same bundle on service.host:service.port and logs to prediction_log.url); the client is the
deployed-server use case's. Prints counts and latency percentiles; stops the server with SIGTERM,
which flushes the prediction log. Exit 1 when a request failed or the server did not stop cleanly."""

from __future__ import annotations

import argparse
from pathlib import Path

from deployment.local_service import running, serve_command
from ml_project.cli import add_model_argument, add_stream_arguments, main_entry, make_parser
from ml_project.config import Config, RunConfig
from ml_project.streaming import print_report, stream_to_service

NAME = "predicting_production_data_local_fastapi"
RUN = RunConfig(mode="prediction", data="production", environment="local")


def main(config: Config, args: argparse.Namespace) -> int:
    base_url = f"http://{config.service.host}:{config.service.port}"
    log_path = config.paths.logs / f"{NAME}-server.log"
    command = serve_command(args.config, args.overrides, args.model, args.log_level)
    with running(command, base_url, log_path) as server:
        print(f"server up in {server.started_s:.2f} s at {base_url} (output in {log_path})", flush=True)
        report = stream_to_service(base_url, args.input or Path(config.data.path), config.prediction.chunk_size, args)
    code = print_report(report)
    print(f"server stopped with exit code {server.returncode}")
    return code or (1 if server.returncode != 0 else 0)


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    add_stream_arguments(result, concurrency=True)
    add_model_argument(result)
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
