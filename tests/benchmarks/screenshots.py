"""Screenshots for documentation/: the MLflow UI on the project's store, and an evidently report.

Starts `mlflow server` on loopback over the sqlite store (tracking.uri), opens the registered
model's page and the experiment's runs in headless Debian chromium, and renders the newest
evidently HTML report under <paths.output>/reports; writes PNGs to documentation/images/.
Prints each command. Needs Debian's chromium (`apt-get install chromium`); not part of the tests.

    cd /work/main && ./executables/run.sh && .venv/bin/python tests/benchmarks/screenshots.py
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.browser import CHROMIUM_ARGS  # noqa: E402

CHROMIUM_FLAGS = ["--headless", *CHROMIUM_ARGS, "--hide-scrollbars"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def screenshot(url: str, out: Path, size: str, wait_ms: int) -> None:
    """Render `url` in headless chromium, letting its scripts run for `wait_ms` of virtual time."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            f"--virtual-time-budget={wait_ms}",
            f"--screenshot={out}",
            url,
        ]
        print("$ " + shlex.join(command), flush=True)
        subprocess.run(command, check=True, capture_output=True, timeout=180)
    print(f"  wrote {out} ({out.stat().st_size // 1024} KiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracking-uri", default=f"sqlite:///{ROOT / 'mlflow.db'}")
    parser.add_argument("--model-name", default="penguins")
    parser.add_argument("--reports", type=Path, default=ROOT / "output" / "reports")
    parser.add_argument("--out", type=Path, default=ROOT / "documentation" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = [str(ROOT / ".venv" / "bin" / "mlflow"), "server", "--backend-store-uri", args.tracking_uri]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    print("$ " + shlex.join(command), flush=True)
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        else:
            sys.exit("mlflow server did not start")
        screenshot(f"{base}/#/models/{args.model_name}", args.out / "mlflow_registered_model.png", "1400,800", 15000)
        screenshot(f"{base}/#/experiments", args.out / "mlflow_experiments.png", "1400,800", 15000)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    reports = sorted(args.reports.glob("drift-*.html"), key=lambda path: path.stat().st_mtime)
    if reports:
        screenshot(reports[-1].as_uri(), args.out / "evidently_drift_report.png", "1400,1600", 20000)
    else:
        print(f"no drift-*.html under {args.reports}: run monitoring_production_data_local or a modelling run first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
