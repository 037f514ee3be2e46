"""Spark local[2] vs the single-machine chunked path on 1M and 10M rows: rows/s and peak memory. Prints figures.

    .venv/bin/python tests/benchmarks/spark_batch.py [--rows 1000000,10000000] [--format parquet|csv] [--model latest]

Needs the [spark] packages and Java. Input: penguins rows sampled with replacement (a real
distribution, 1 row in ~1000 made invalid so the quarantine path runs too). Each path runs as
its use case, a separate process, while this script samples the RSS of that process tree every
0.1 s: `driver` is the use case's Python process plus the JVM it starts (Spark's driver; in
local mode the executors live in that JVM), `tree` adds Spark's Python workers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def make_input(rows: int, folder: Path, file_format: str) -> Path:
    penguins = pd.read_csv(ROOT / "data" / "penguins.csv")
    frame = penguins.sample(rows, replace=True, random_state=rows).reset_index(drop=True)
    frame.loc[::997, "island"] = "Atlantis"
    path = folder / f"input_{rows}.{file_format}"
    if file_format == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False, row_group_size=100_000)
    return path


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def run_measured(command: list[str]) -> tuple[float, float, float, str]:
    """(seconds, peak driver RSS MB, peak tree RSS MB, stdout) of one use-case run."""
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver_peak = tree_peak = 0.0
    while process.poll() is None:
        pids, stack = [], [process.pid]
        while stack:
            pid = stack.pop()
            pids.append(pid)
            stack.extend(_children(pid))
        driver = _rss_mb(process.pid) + sum(_rss_mb(pid) for pid in pids if "java" in _command(pid).split(" ")[0])
        driver_peak = max(driver_peak, driver)
        tree_peak = max(tree_peak, sum(_rss_mb(pid) for pid in pids))
        time.sleep(0.1)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {stderr[-2000:]}")
    return time.perf_counter() - began, driver_peak, tree_peak, stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--model", default="latest")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    python = sys.executable
    print(f"{'rows':>11} | {'path':<22} | {'seconds':>8} | {'rows/s':>10} | {'driver MB':>9} | {'tree MB':>8}")
    with tempfile.TemporaryDirectory(prefix="spark_bench_") as scratch:
        folder = Path(scratch)
        for rows in [int(value) for value in args.rows.split(",")]:
            source = make_input(rows, folder, args.format)
            runs = {
                "local chunked": [python, "-m", "use_cases.predicting_historic_data_local", "--input", str(source),
                                  "--output", str(folder / f"local_{rows}.parquet"), "--model", args.model],
                f"spark {args.master}": [python, "-m", "use_cases.predicting_historic_data_spark", "--input", str(source),
                                         "--output", str(folder / f"spark_{rows}.parquet"), "--model", args.model,
                                         "--master", args.master],
            }
            for name, command in runs.items():
                seconds, driver, tree, stdout = run_measured(command)
                counted = next(line for line in stdout.splitlines() if line.startswith("rows "))
                assert counted.startswith(f"rows {rows}:"), counted
                print(f"{rows:>11,} | {name:<22} | {seconds:>8.1f} | {rows / seconds:>10,.0f} | {driver:>9,.0f} | {tree:>8,.0f}", flush=True)
            os.remove(source)


if __name__ == "__main__":
    main()
