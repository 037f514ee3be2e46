"""Start the prediction service locally, stream production instances to it over HTTP, then stop it.

The server is `./executables/run.sh serve` with this command's --config and --set (so it serves
the same bundle on service.host:service.port and logs to prediction_log.url); the client is the
deployed-server use case's. Prints counts and latency percentiles; stops the server with SIGTERM,
which flushes the prediction log. Exit 1 when a request failed or the server did not stop cleanly."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

from ml_project.cli import add_model_argument, add_stream_arguments, main_entry, make_parser
from ml_project.config import PROJECT_ROOT, Config, RunConfig
from ml_project.streaming import HttpSender, ServiceUnavailable, print_report, stream_to_service

NAME = "predicting_production_data_local_fastapi"
RUN = RunConfig(mode="prediction", data="production", environment="local")
START_TIMEOUT = 60.0


def start_server(config: Config, args: argparse.Namespace, log_path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "deployment.run_service", "--config", str(args.config), "--log-level", args.log_level]
    for override in args.overrides:
        command += ["--set", override]
    if args.model:
        command += ["--model", str(args.model)]
    with open(log_path, "wb") as output:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT)


def wait_until_healthy(server: subprocess.Popen[bytes], base_url: str, log_path: Path) -> float:
    """Seconds from start to the first 200 on /health; ServiceUnavailable if the server dies or stalls."""
    began = time.perf_counter()
    probe = HttpSender(base_url, timeout=2.0)
    try:
        while time.perf_counter() - began < START_TIMEOUT:
            if server.poll() is not None:
                lines = log_path.read_text(errors="replace").strip().splitlines()
                raise ServiceUnavailable(
                    f"service error: the server exited with {server.returncode}: {lines[-1] if lines else 'no output'}"
                )
            try:
                probe.health()
                return time.perf_counter() - began
            except ServiceUnavailable:
                time.sleep(0.05)
    finally:
        probe.close()
    raise ServiceUnavailable(f"service error: no 200 from {base_url}/health within {START_TIMEOUT:.0f} s (see {log_path})")


def main(config: Config, args: argparse.Namespace) -> int:
    base_url = f"http://{config.service.host}:{config.service.port}"
    log_path = config.paths.logs / f"{NAME}-server.log"
    server = start_server(config, args, log_path)
    try:
        started = wait_until_healthy(server, base_url, log_path)
        print(f"server up in {started:.2f} s at {base_url} (output in {log_path})", flush=True)
        report = stream_to_service(base_url, args.input or Path(config.data.path), config.prediction.chunk_size, args)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
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
