"""Batch-prediction benchmark: throughput and peak memory of `predict_file` on large generated files.

Generates N-row input files of the model's input schema (in bounded blocks, with ~0.1% bad rows so
the quarantine path runs too), then scores each file in a fresh subprocess so the peak RSS reported
is that run's own. Prints rows/s and peak RSS per size and format; asserts nothing about speed.

    cd /work/main && .venv/bin/python tests/benchmarks/batch_prediction.py --rows 1000000 --format csv

Project goal: >= 200k rows/s and peak RSS < 1 GiB at 1M and 10M rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml_project.config import PredictionConfig  # noqa: E402
from ml_project.validation import ColumnSchema, InputSchema  # noqa: E402

BLOCK_ROWS = 500_000
BAD_ROW_SHARE = 0.001
MISSING_SHARE = 0.01
SEED = 20240601
GOAL_ROWS_PER_SECOND = 200_000
GOAL_PEAK_RSS_MIB = 1024

# Runs in the fresh child: times load_bundle and predict_file separately, reports its own peak RSS.
CHILD_CODE = """
import json, resource, sys, time
started = time.perf_counter()
from pathlib import Path
from ml_project.artifacts import load_bundle
from ml_project.prediction import predict_file
imported = time.perf_counter()
bundle = load_bundle(Path(sys.argv[1]))
loaded = time.perf_counter()
cpu_loaded = time.process_time()
profile = sys.argv[6] == "1"
if profile:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
counts = predict_file(bundle, Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
finished = time.perf_counter()
cpu_finished = time.process_time()
if profile:
    import pstats
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
print(json.dumps({
    "rows": counts.rows, "predicted": counts.predicted, "quarantined": counts.quarantined,
    "import_seconds": imported - started, "load_seconds": loaded - imported, "predict_seconds": finished - loaded,
    "child_seconds": finished - started, "predict_cpu_seconds": cpu_finished - cpu_loaded,
    "algorithm": bundle.card.get("algorithm", "?"),
    "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


@dataclass(frozen=True)
class Result:
    rows: int
    file_format: str
    predict_seconds: float
    predict_cpu_seconds: float
    process_seconds: float
    peak_rss_mib: float
    predicted: int
    quarantined: int
    injected_bad: int
    input_mib: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000], help="input sizes")
    parser.add_argument("--format", choices=["csv", "parquet", "both"], default="csv", help="input/output format")
    parser.add_argument("--model", type=Path, help="bundle folder (default: train a small one into the workdir)")
    parser.add_argument("--chunk-size", type=int, default=PredictionConfig().chunk_size, help="rows per chunk")
    parser.add_argument("--workdir", type=Path, help="where files go (default: a temp dir, deleted at the end)")
    parser.add_argument("--bad-share", type=float, default=BAD_ROW_SHARE, help="share of rows with one bad value")
    parser.add_argument("--keep-files", action="store_true", help="keep generated inputs and outputs")
    parser.add_argument("--profile", action="store_true", help="cProfile predict_file in the child (slows it)")
    return parser.parse_args(argv)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


def train_bundle(output: Path) -> Path:
    """Train the default penguins model (8 HPO trials, no tracking) and return its bundle folder."""
    command = [
        sys.executable,
        "-m",
        "use_cases.modelling_historic_data_local",
        "--set",
        "modelling.n_trials=8",
        "--set",
        f"paths.output={output}",
        "--set",
        "tracking.enabled=false",
        "--no-progress",
    ]
    print("training a bundle:", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, env=child_env(), check=True, stdout=subprocess.DEVNULL)
    bundles = sorted((output / "models").glob("*/latest"))
    if not bundles:
        raise SystemExit(f"training wrote no bundle under {output / 'models'}")
    return bundles[0]


def read_schema(bundle: Path) -> InputSchema:
    folder = bundle / "latest" if (bundle / "latest").exists() else bundle
    return InputSchema.model_validate_json((folder / "schema.json").read_text())


def read_algorithm(bundle: Path) -> str:
    folder = bundle / "latest" if (bundle / "latest").exists() else bundle
    card: dict[str, Any] = json.loads((folder / "model.json").read_text())
    return str(card.get("algorithm", "?"))


def _numeric_column(spec: ColumnSchema, n: int, rng: np.random.Generator) -> np.ndarray:
    low = spec.minimum if spec.minimum is not None else 0.0
    high = spec.maximum if spec.maximum is not None else 1000.0
    inset = 0.02 * (high - low)  # stays in range after rounding to one decimal
    values = np.round(rng.uniform(low + inset, high - inset, n), 1)
    values[rng.random(n) < MISSING_SHARE] = np.nan
    return values


def _categorical_column(spec: ColumnSchema, n: int, rng: np.random.Generator) -> np.ndarray:
    categories = np.asarray(spec.categories or ["a", "b"], dtype=object)
    values = categories[rng.integers(0, len(categories), n)]
    values[rng.random(n) < MISSING_SHARE] = None
    return values


def generate_block(
    schema: InputSchema, n: int, file_format: str, bad_share: float, rng: np.random.Generator
) -> tuple[pa.Table, int]:
    """One block of rows; a `bad_share` of them get one bad value (unparsable, unknown category, out of range)."""
    numeric = [spec for spec in schema.columns if spec.kind == "numerical"]
    categorical = [spec for spec in schema.columns if spec.kind == "categorical"]
    values: dict[str, np.ndarray] = {spec.name: _numeric_column(spec, n, rng) for spec in numeric}
    values.update({spec.name: _categorical_column(spec, n, rng) for spec in categorical})
    bad_rows = np.flatnonzero(rng.random(n) < bad_share)
    # Parquet columns are typed: an unparsable number cannot be stored, so it becomes an out-of-range one.
    kinds = rng.integers(0, 3, len(bad_rows))
    if file_format == "parquet":
        kinds[kinds == 0] = 2
    unparsable: dict[str, list[int]] = {}
    for row, kind in zip(bad_rows, kinds):
        if kind == 1 and categorical:
            spec = categorical[int(rng.integers(0, len(categorical)))]
            values[spec.name][row] = "Atlantis"
            continue
        spec = numeric[int(rng.integers(0, len(numeric)))]
        if kind == 0:
            unparsable.setdefault(spec.name, []).append(int(row))
        else:
            high = spec.maximum if spec.maximum is not None else 1000.0
            values[spec.name][row] = round(abs(high) * 10 + 1, 1)
    arrays: dict[str, pa.Array] = {}
    for spec in schema.columns:
        if spec.kind == "numerical":
            array = pa.array(values[spec.name], from_pandas=True)
            if spec.name in unparsable:  # that block's column is text, as a CSV reader sees it anyway
                text = pc.cast(array, pa.string()).to_numpy(zero_copy_only=False)
                text[unparsable[spec.name]] = "n/a?"
                array = pa.array(text, type=pa.string())
            arrays[spec.name] = array
        elif spec.kind == "categorical":
            arrays[spec.name] = pa.array(values[spec.name], type=pa.string())
        else:
            raise SystemExit(f"column {spec.name}: kind {spec.kind} is not generated by this benchmark")
    return pa.table(arrays), len(bad_rows)


def generate_file(schema: InputSchema, rows: int, file_format: str, path: Path, bad_share: float) -> int:
    """Write `rows` rows block by block (memory bounded by BLOCK_ROWS); returns the number of bad rows."""
    rng = np.random.default_rng(SEED + rows)
    if file_format == "csv":  # all text, unquoted: what a CSV export looks like
        target = pa.schema([(spec.name, pa.string()) for spec in schema.columns])
        writer: Any = pcsv.CSVWriter(path, target, write_options=pcsv.WriteOptions(quoting_style="none"))
    else:
        target = pa.schema(
            [(spec.name, pa.float64() if spec.kind == "numerical" else pa.string()) for spec in schema.columns]
        )
        writer = pq.ParquetWriter(path, target)
    bad = written = 0
    with writer:
        while written < rows:
            n = min(BLOCK_ROWS, rows - written)
            table, block_bad = generate_block(schema, n, file_format, bad_share, rng)
            writer.write_table(table.cast(target))
            bad += block_bad
            written += n
    return bad


def run_child(
    bundle: Path, input_path: Path, output: Path, quarantine: Path, chunk_size: int, profile: bool
) -> dict[str, Any]:
    """Score one file in a fresh interpreter; peak RSS comes from wait4 on that child alone."""
    command = [sys.executable, "-c", CHILD_CODE, str(bundle), str(input_path), str(output), str(quarantine)]
    command += [str(chunk_size), "1" if profile else "0"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"prediction child failed with exit code {process.returncode}:\n{stdout}")
    report: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    report["process_seconds"] = elapsed
    report["wait4_maxrss_kib"] = usage.ru_maxrss  # Linux: KiB
    return report


def benchmark(
    bundle: Path, schema: InputSchema, rows: int, file_format: str, workdir: Path, args: argparse.Namespace
) -> Result:
    input_path = workdir / f"input_{rows}.{file_format}"
    output = workdir / f"predictions_{rows}.{file_format}"
    quarantine = workdir / f"quarantine_{rows}.{file_format}"
    started = time.perf_counter()
    injected_bad = generate_file(schema, rows, file_format, input_path, args.bad_share)
    input_mib = input_path.stat().st_size / 2**20
    print(
        f"generated {input_path.name}: {rows:,} rows, {input_mib:,.0f} MiB, {injected_bad:,} bad rows "
        f"in {time.perf_counter() - started:.1f}s (not timed)",
        flush=True,
    )
    report = run_child(bundle, input_path, output, quarantine, args.chunk_size, args.profile)
    assert report["rows"] == rows, f"read {report['rows']} rows of {rows}"
    assert report["rows"] == report["predicted"] + report["quarantined"], report
    print(
        f"  rows {report['rows']:,} == predicted {report['predicted']:,} + quarantined {report['quarantined']:,}"
        f" (injected bad rows: {injected_bad:,}); imports {report['import_seconds']:.2f}s,"
        f" load_bundle {report['load_seconds']:.2f}s, predict_file {report['predict_seconds']:.2f}s,"
        f" process {report['process_seconds']:.2f}s",
        flush=True,
    )
    if not args.keep_files:
        for path in (input_path, output, quarantine):
            path.unlink(missing_ok=True)
    return Result(
        rows=rows,
        file_format=file_format,
        predict_seconds=report["predict_seconds"],
        predict_cpu_seconds=report["predict_cpu_seconds"],
        process_seconds=report["process_seconds"],
        peak_rss_mib=max(report["wait4_maxrss_kib"], report["self_maxrss_kib"]) / 1024,
        predicted=report["predicted"],
        quarantined=report["quarantined"],
        injected_bad=injected_bad,
        input_mib=input_mib,
    )


def print_table(results: list[Result], algorithm: str, bundle: Path, chunk_size: int) -> None:
    print()
    print(f"model: {bundle.resolve()}  algorithm: {algorithm}  chunk_size: {chunk_size:,}")
    header = (
        f"{'rows':>12} {'format':>8} {'seconds':>9} {'rows/s':>10} {'cpu s':>8} {'process s':>10} {'peak RSS MiB':>13}"
        f" {'predicted':>12} {'quarantined':>12} {'input MiB':>10}  goal"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rate = r.rows / r.predict_seconds if r.predict_seconds > 0 else float("inf")
        met = rate >= GOAL_ROWS_PER_SECOND and r.peak_rss_mib < GOAL_PEAK_RSS_MIB
        print(
            f"{r.rows:>12,} {r.file_format:>8} {r.predict_seconds:>9.2f} {rate:>10,.0f} {r.predict_cpu_seconds:>8.2f}"
            f" {r.process_seconds:>10.2f}"
            f" {r.peak_rss_mib:>13,.0f} {r.predicted:>12,} {r.quarantined:>12,} {r.input_mib:>10,.0f}  "
            + ("met" if met else "MISSED")
        )
    print(f"goal: >= {GOAL_ROWS_PER_SECOND:,} rows/s (predict_file wall time) and peak RSS < {GOAL_PEAK_RSS_MIB} MiB")
    print("seconds: predict_file wall time in the child; cpu s: its CPU time (all threads);")
    print("process s: whole child (interpreter start, imports, load_bundle, predict_file) seen from the parent")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    formats = ["csv", "parquet"] if args.format == "both" else [args.format]
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="batch_prediction_bench_")) if temporary else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        bundle = args.model if args.model is not None else train_bundle(workdir / "training_output")
        schema = read_schema(bundle)
        algorithm = read_algorithm(bundle)
        print(f"bundle {bundle} ({algorithm}); workdir {workdir}; chunk size {args.chunk_size:,}", flush=True)
        results = [
            benchmark(bundle, schema, rows, file_format, workdir, args)
            for file_format in formats
            for rows in args.rows
        ]
        print_table(results, algorithm, bundle, args.chunk_size)
    finally:
        if temporary and not args.keep_files:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
