"""Deployed folders: install size, cold start, memory, and Lambda invocation latency. Prints figures.

    .venv/bin/python tests/benchmarks/deployment.py [--pypi] [--model champion|latest|BUNDLE]

Assembles the heroku and aws_lambda folders from the champion (run ./executables/run.sh first),
then, with a Python that holds only each folder's requirements.txt:
- heroku (the same `python -m deployment.run_deployed` as docker, app engine and sagemaker): seconds
  from process start to the first 200 on /health (median of 3) and RSS after 200 predictions;
- aws_lambda: import of lambda_handler, the first event (model load), warm p50/p99 over 300 events.
Packages are linked from .venv by default (no download); --pypi installs requirements.txt from
PyPI into a new venv instead, timed, which is what a platform's build does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import runtime_env  # noqa: E402
from tests.code.test_online_scoring import RECORD  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.test_deployment import API_GATEWAY_V2  # noqa: E402

LAMBDA_PROBE = """
import json, resource, sys, time
began = time.perf_counter()
import lambda_handler
imported = time.perf_counter()
event = json.loads(sys.stdin.read())
assert lambda_handler.handler(event, None)["statusCode"] == 200
first = time.perf_counter()
times = []
for _ in range(300):
    start = time.perf_counter()
    lambda_handler.handler(event, None)
    times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"import_s": imported - began, "first_event_s": first - imported, "p50_ms": times[150] * 1e3,
                  "p99_ms": times[296] * 1e3, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def assemble(target: str, out: Path, model: str) -> Path:
    folder = out / target
    subprocess.run(
        [sys.executable, "-m", "deployment.cloud_setup", target, "--model", model, "--out", str(folder)],
        cwd=ROOT, check=True, capture_output=True,
    )
    return folder


def python_for(folder: Path, work: Path, pypi: bool) -> tuple[Path, str]:
    venv = work / f"venv-{folder.name}"
    if not pypi:
        return runtime_env.build(folder / "requirements.txt", venv), "linked from .venv"
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir", "--require-hashes", "-r", str(folder / "requirements.txt")],
        check=True,
    )
    size = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True).stdout.split()[0]
    return venv / "bin" / "python", f"pip install from PyPI {time.perf_counter() - began:.1f} s, {size} MB"


def service_figures(folder: Path, python: Path) -> dict[str, float]:
    starts, rss = [], 0.0
    for _ in range(3):
        port = free_port()
        env = runtime_env.environment(python, HOST="127.0.0.1", PORT=str(port), ML_PROJECT_PREDICTION_LOG_URL="off")
        began = time.perf_counter()
        process = subprocess.Popen(["python", "-m", "deployment.run_deployed"], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
        starts.append(time.perf_counter() - began)
        with httpx.Client() as client:
            for _ in range(200):
                client.post(f"{url}/predict", json=RECORD)
        rss = int(Path(f"/proc/{process.pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
        process.terminate()
        process.wait(30)
    return {"cold_start_s": statistics.median(starts), "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pypi", action="store_true", help="install requirements.txt from PyPI instead of linking .venv")
    parser.add_argument("--model", default="champion")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        heroku = assemble("heroku", work, args.model)
        python, how = python_for(heroku, work, args.pypi)
        figures = service_figures(heroku, python)
        print(f"heroku/docker/app engine/sagemaker entry ({how}; {len(runtime_env.requirement_names(heroku / 'requirements.txt'))} packages):")
        print(f"  cold start to first /health 200: {figures['cold_start_s']:.2f} s (median of 3); RSS after 200 predictions: {figures['rss_mb']:.0f} MB")
        lambda_folder = assemble("aws_lambda", work, args.model)
        python, how = python_for(lambda_folder, work, args.pypi)
        run = subprocess.run(
            ["python", "-c", LAMBDA_PROBE], input=json.dumps(API_GATEWAY_V2), cwd=lambda_folder, capture_output=True, text=True,
            env=runtime_env.environment(python, ML_PROJECT_PREDICTION_LOG_URL="off"), check=True,
        )
        result = json.loads(run.stdout)
        print(f"aws_lambda handler ({how}; {len(runtime_env.requirement_names(lambda_folder / 'requirements.txt'))} packages):")
        print(
            f"  import {result['import_s']:.2f} s, first event (model load) {result['first_event_s']:.2f} s, "
            f"warm p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, max RSS {result['max_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    main()
