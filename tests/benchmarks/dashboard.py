"""Dashboard speed over a large prediction log: server time per page and per JSON call, and the time until
headless chromium has drawn every chart, for N logged predictions (half of them labelled).

Fills a SQLite prediction log with N penguin predictions spread over 30 days (two model versions), starts
the real service (`python -m deployment.run_service`) on 127.0.0.1 over it, and measures:
  - server: GET /dashboard and GET /dashboard/api, median and max of 7 (httpx, after one warm-up);
  - browser: a new tab loading /dashboard until every chart's SVG exists, median and max of 5 (the
    vendored plotly.js cached after the first load, as for a user coming back to the page).
Needs a trained model (./executables/run.sh) and Debian's chromium (executables/setup_browser.sh).

    .venv/bin/python tests/benchmarks/dashboard.py --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ml_project.prediction_log import PredictionLog, write_labels  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.conftest import free_port  # noqa: E402

CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
CHARTS = ("chart-leaderboard", "chart-volume", "chart-predictions", "chart-labels")


def fill(path: Path, rows: int, version: str) -> None:
    PredictionLog(f"sqlite:///{path}").close()  # the table and its indexes
    start = datetime(2026, 10, 20)
    step = 30 * 86400 / rows
    features = json.dumps({"island": "Biscoe", "bill_length_mm": 45.1, "bill_depth_mm": 15.0, "flipper_length_mm": 215.0, "body_mass_g": 5000.0, "sex": "female"})
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO predictions (logged_at, request_id, model_name, model_version, source, features, prediction, probabilities)"
            " VALUES (?, ?, 'penguins', ?, 'service', ?, ?, ?)",
            (
                (str(start + timedelta(seconds=step * i)), f"r{i}", version if i > rows // 4 else "older", features,
                 json.dumps(CLASSES[i % 3]), json.dumps({name: 1 / 3 for name in CLASSES}))
                for i in range(rows)
            ),
        )
    write_labels(f"sqlite:///{path}", [(f"r{i}", CLASSES[i % 3] if i % 7 else "Adelie") for i in range(0, rows, 2)])


def timed(url: str, repeat: int) -> list[float]:
    httpx.get(url, timeout=60)
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = httpx.get(url, timeout=60)
        runs.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text[:200]
    return runs


def browser_runs(url: str, repeat: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        for attempt in range(repeat + 1):
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            began = time.perf_counter()
            page.goto(url, wait_until="load")
            for chart in CHARTS:
                page.wait_for_selector(f"#{chart} .main-svg", state="attached", timeout=60_000)
            elapsed = time.perf_counter() - began
            assert not errors, errors
            if attempt:  # the first load fills the browser's cache
                runs.append(elapsed)
            page.close()
        browser.close()
    return runs


def line(name: str, runs: list[float]) -> str:
    return f"{name:<34} median {statistics.median(runs) * 1000:7.0f} ms   max {max(runs) * 1000:7.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--model", default="champion", help="bundle to serve (default: champion)")
    args = parser.parse_args()
    model = ROOT / "output" / "models" / "penguins" / args.model if args.model in ("champion", "latest") else Path(args.model)
    version = model.resolve().name
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as folder:
            log = Path(folder) / "prediction_log.db"
            began = time.perf_counter()
            fill(log, rows, version)
            print(f"== {rows} logged predictions ({rows // 2} labelled), filled in {time.perf_counter() - began:.1f} s")
            port = free_port()
            command = [sys.executable, "-m", "deployment.run_service", "--model", str(model), "--set", f"service.port={port}",
                       "--set", f"prediction_log.url=sqlite:///{log}", "--set", f"paths.output={folder}"]
            print("$ " + " ".join(command[1:]))
            server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
            try:
                base = f"http://127.0.0.1:{port}"
                for _ in range(600):
                    try:
                        if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                print(line("server GET /dashboard", timed(f"{base}/dashboard", 7)))
                print(line("server GET /dashboard/api", timed(f"{base}/dashboard/api", 7)))
                print(line("server GET /dashboard?window=24h", timed(f"{base}/dashboard?window=24h", 7)))
                print(line("browser /dashboard, charts drawn", browser_runs(f"{base}/dashboard", 5)))
            finally:
                server.terminate()
                server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
