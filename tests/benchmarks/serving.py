"""Serving benchmark: this project's service against `mlflow models serve`, same model, same load generator.

Serves the default bundle (output/models/penguins/latest) with `python -m deployment.run_service`, then the
same model as logged in MLflow (the run tagged `bundle.version` = the bundle's version) with
`mlflow models serve --env-manager local`, one server after the other. Each is checked by hand, warmed
up with 2 s of load, then driven by wrk (a Lua script POSTing one JSON record per request) at each
connection count. Prints req/s, p50, p99 and errors side by side, the goal ratios, the cold start of our
service (process start to the first 200 on GET /health, median of 3) and checks that the prediction log
holds one row per 2xx response. Asserts nothing: it prints figures.

    cd /work/main && .venv/bin/python tests/benchmarks/serving.py
    cd /work/main && .venv/bin/python tests/benchmarks/serving.py --workers 1,2 --duration 10

Goals (the serving issue):
  - throughput at 32 connections: ours / mlflow >= 20x, with our p99 <= 100 ms and zero errors;
  - single-connection p50: ours / mlflow <= 1/3;
  - cold start of our service <= 3 s.

Without the bundle, make it first with `./executables/run.sh` (exit code 2 says it is missing).
Falls back to a bounded Python client (one thread and keep-alive connection per connection) if wrk is absent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml_project.prediction_log import count_predictions  # noqa: E402
from tests.code.test_online_scoring import RECORD  # noqa: E402

GOAL_THROUGHPUT_RATIO = 20.0
GOAL_P99_MS = 100.0
GOAL_P50_RATIO = 1 / 3
GOAL_COLD_START_S = 3.0
WARMUP_S = 2
WRK_TIMEOUT = "5s"
STOP_GRACE_S = 30.0
OURS_READY_S = 120.0
MLFLOW_READY_S = 180.0
COLD_STARTS = 3


@dataclass
class Target:
    """One server to measure: how to start it, where to POST, what to send and where to poll readiness."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    path: str
    body: str
    ready_paths: tuple[str, ...]
    log_file: Path
    ready_timeout: float
    kill_group_on_stop: bool
    prediction_log_url: str | None = None
    shown_env: dict[str, str] = field(default_factory=dict)
    info_path: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def shown(self) -> str:
        """The command as a person would type it, with the environment variables it is given."""
        prefix = "".join(f"{name}={value} " for name, value in self.shown_env.items())
        return f"(cd {shlex.quote(str(ROOT))} && {prefix}{shlex.join(self.command)})"


@dataclass
class LoadResult:
    """What the load generator reported for one run."""

    connections: int
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx


@dataclass
class ServerRun:
    """All load runs against one server, plus the requests answered 2xx in total (warm-up and checks included)."""

    name: str
    results: dict[int, LoadResult] = field(default_factory=dict)
    total_2xx: int = 0
    in_flight_bound: int = 0
    log_rows: int | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_call(port: int, method: str, path: str, body: str | None = None, timeout: float = 5.0) -> tuple[int, str]:
    """One request on a fresh connection: (status, body text); raises OSError if nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body.encode() if body is not None else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def wait_ready(process: subprocess.Popen[bytes], target: Target, started: float, poll_s: float = 0.01) -> float:
    """Seconds from `started` until a readiness path answers 200; raises if the process dies or time runs out."""
    deadline = started + target.ready_timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{target.name} exited with code {process.returncode} before it served; "
                f"its output:\n{tail(target.log_file)}"
            )
        for path in target.ready_paths:
            try:
                status, _ = http_call(target.port, "GET", path, timeout=1.0)
            except (OSError, http.client.HTTPException):
                continue
            if status == 200:
                return time.perf_counter() - started
        time.sleep(poll_s)
    raise RuntimeError(
        f"{target.name} did not answer 200 on {target.ready_paths} within {target.ready_timeout:.0f} s; "
        f"its output:\n{tail(target.log_file)}"
    )


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


@contextmanager
def running(target: Target) -> Iterator[float]:
    """Start the server in its own session, yield its seconds from start to ready; always stop its whole group."""
    with open(target.log_file, "ab") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            target.command,
            cwd=ROOT,
            env=target.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield wait_ready(process, target, started)
    finally:
        stop(process, target)


def stop(process: subprocess.Popen[bytes], target: Target) -> None:
    """SIGTERM (the group for servers that fork, else the main process), wait 30 s, then SIGKILL the group."""
    if process.poll() is None:
        try:
            if target.kill_group_on_stop:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            print(f"  {target.name} did not stop within {STOP_GRACE_S:.0f} s of SIGTERM; killing its process group")
    try:
        os.killpg(process.pid, signal.SIGKILL)  # leftovers: workers of a supervisor that has already exited
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def write_lua(folder: Path, target: Target) -> Path:
    script = folder / f"{target.name.split()[0]}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [[{target.body}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def wrk_command(target: Target, lua: Path, connections: int, seconds: int) -> list[str]:
    threads = min(connections, 2)
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        WRK_TIMEOUT,
        "--latency",
        "-s",
        str(lua),
        target.url,
    ]


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"wrk duration '{text}' not understood")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str, connections: int) -> LoadResult:
    """Requests, req/s, p50, p99, non-2xx and socket errors from `wrk --latency` output."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if total is None or rate is None or p50 is None or p99 is None:
        raise RuntimeError(f"wrk output not understood:\n{output}")
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return LoadResult(
        connections=connections,
        requests=int(total.group(1)),
        seconds=_duration_ms(total.group(2) + total.group(3)) / 1000,
        requests_per_second=float(rate.group(1)),
        p50_ms=_duration_ms(p50.group(1)),
        p99_ms=_duration_ms(p99.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(value) for value in sockets.groups()) if sockets else 0,
    )


def run_wrk(target: Target, lua: Path, connections: int, seconds: int, show: bool) -> LoadResult:
    command = wrk_command(target, lua, connections, seconds)
    if show:
        print(f"  $ {shlex.join(command)}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed with code {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout, connections)


def run_python_client(target: Target, connections: int, seconds: int, show: bool) -> LoadResult:
    """Fallback load: one thread per connection, keep-alive, one request in flight each, for `seconds`."""
    if show:
        print(f"  python client: {connections} keep-alive connections x {seconds} s, POST {target.url}")
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [[0, 0] for _ in range(connections)]  # [non-2xx, socket errors]
    body = target.body.encode()
    headers = {"Content-Type": "application/json"}
    deadline = time.perf_counter() + seconds

    def drive(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5.0)
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                connection.request("POST", target.path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                failures[slot][1] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5.0)
                continue
            latencies[slot].append((time.perf_counter() - sent) * 1000)
            failures[slot][0] += not 200 <= response.status < 300
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(slot,), daemon=True) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 10)
    elapsed = time.perf_counter() - started
    every = sorted(latency for slot in latencies for latency in slot)
    if not every:
        raise RuntimeError(f"python client: no response from {target.url}")
    return LoadResult(
        connections=connections,
        requests=len(every),
        seconds=elapsed,
        requests_per_second=len(every) / elapsed,
        p50_ms=every[min(len(every) - 1, math.ceil(0.50 * len(every)) - 1)],
        p99_ms=every[min(len(every) - 1, math.ceil(0.99 * len(every)) - 1)],
        non_2xx=sum(slot[0] for slot in failures),
        socket_errors=sum(slot[1] for slot in failures),
    )


def load(target: Target, lua: Path | None, connections: int, seconds: int, show: bool) -> LoadResult:
    if lua is None:
        return run_python_client(target, connections, seconds, show)
    return run_wrk(target, lua, connections, seconds, show)


def check_by_hand(target: Target) -> int:
    """POST the record once, print status and body; returns 1 if it was a 2xx (it then counts in the log)."""
    status, text = http_call(target.port, "POST", target.path, target.body)
    print(f"  hand check: POST {target.url} -> {status} {text[:400]}")
    if not 200 <= status < 300:
        raise RuntimeError(f"{target.name} answered {status} to the benchmark record; not measuring it")
    if target.info_path is not None:
        status, text = http_call(target.port, "GET", target.info_path)
        path = json.loads(text).get("prediction_path") if status == 200 else None
        print(f"  GET {target.info_path} -> {status}; prediction_path: {path}")
    return 1


def load_average() -> str:
    """The 1-minute load average: other work on the machine shows here, and skews every figure below it."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


def measure(target: Target, lua: Path | None, connection_counts: Sequence[int], seconds: int) -> ServerRun:
    """Start the server, check it, warm it up, run the load at each connection count, stop it."""
    run = ServerRun(target.name)
    print(f"\n== {target.name}\n  $ {target.shown()}")
    with running(target) as ready_s:
        print(f"  ready after {ready_s:.1f} s (GET {' or '.join(target.ready_paths)} -> 200); {load_average()}")
        run.total_2xx += check_by_hand(target)
        warmup = load(target, lua, max(connection_counts), WARMUP_S, show=True)
        run.total_2xx += warmup.ok
        run.in_flight_bound += warmup.connections
        print(f"  warm-up: {warmup.requests} requests, {warmup.requests_per_second:.0f} req/s, {warmup.errors} errors")
        for connections in connection_counts:
            result = load(target, lua, connections, seconds, show=True)
            run.results[connections] = result
            run.total_2xx += result.ok
            run.in_flight_bound += connections
            print(
                f"  {connections:>3} connections: {result.requests_per_second:9.1f} req/s  p50 {result.p50_ms:8.2f} ms"
                f"  p99 {result.p99_ms:8.2f} ms  errors {result.errors} ({result.non_2xx} non-2xx)"
            )
    return run


def measure_cold_start(make_target: Callable[[str], Target], starts: int) -> list[float]:
    """Seconds from Popen to the first 200 on GET /health, one fresh process (and output folder) per start."""
    seconds: list[float] = []
    for index in range(starts):
        target = make_target(f"cold-{index + 1}")
        if index == 0:
            print(f"  $ {target.shown()}")
        with running(target) as ready_s:
            seconds.append(ready_s)
        print(f"  start {index + 1}: {ready_s:.2f} s")
    return seconds


def ours_target(bundle: Path, workers: int, folder: Path, tag: str) -> Target:
    """Our service on a free port, writing its prediction log (and anything else) under folder/tag."""
    output = folder / tag
    output.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "deployment.run_service",
        "--model",
        str(bundle),
        "--set",
        f"service.port={port}",
        "--set",
        f"service.workers={workers}",
        "--set",
        f"paths.output={output}",
        "--set",
        f"tracking.uri=sqlite:///{output}/mlflow.db",
    ]
    return Target(
        name=f"ours ({workers} worker{'s' if workers > 1 else ''})",
        command=command,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        port=port,
        path="/predict",
        body=json.dumps(RECORD),
        ready_paths=("/health",),
        log_file=folder / f"{tag}.out",
        ready_timeout=OURS_READY_S,
        kill_group_on_stop=False,
        prediction_log_url=f"sqlite:///{output}/prediction_log.db",
        shown_env={"PYTHONPATH": shlex.quote(str(ROOT))},
        info_path="/model",
    )


def mlflow_target(run_id: str, tracking_uri: str, folder: Path) -> Target:
    """`mlflow models serve` of the run's model in this environment, on a free port."""
    port = free_port()
    executable = Path(sys.executable).parent / "mlflow"
    command = [
        str(executable) if executable.exists() else "mlflow",
        "models",
        "serve",
        "-m",
        f"runs:/{run_id}/model",
        "--env-manager",
        "local",
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
    ]
    # mlflow runs `exec uvicorn ...` through bash: the environment's bin folder must be on PATH, as when activated.
    bin_folder = str(Path(sys.executable).parent)
    shown_env = {
        "PATH": f"{shlex.quote(bin_folder)}:$PATH",
        "MLFLOW_TRACKING_URI": shlex.quote(tracking_uri),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env = {
        **os.environ,
        "PATH": f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("PYTHONPATH", None)  # the logged model carries its own code (code_paths)
    return Target(
        name="mlflow models serve",
        command=command,
        env=env,
        port=port,
        path="/invocations",
        body=json.dumps({"dataframe_records": [RECORD]}),
        ready_paths=("/ping", "/health"),
        log_file=folder / "mlflow.out",
        ready_timeout=MLFLOW_READY_S,
        kill_group_on_stop=True,
        shown_env=shown_env,
    )


def find_run_id(tracking_uri: str, version: str) -> str:
    """The MLflow run tagged `bundle.version` = version in the store at tracking_uri."""
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`bundle.version` = '{version}'",
        output_format="list",
    )
    if not runs:
        raise LookupError(f"no MLflow run tagged bundle.version = '{version}' in {tracking_uri}")
    return str(runs[0].info.run_id)


def markdown_table(runs: Sequence[ServerRun], connection_counts: Sequence[int]) -> str:
    header = ["connections"]
    for run in runs:
        header += [f"{run.name} req/s", "p50 ms", "p99 ms", "errors"]
    mlflow_run = next((run for run in runs if run.name.startswith("mlflow")), None)
    ours = [run for run in runs if run is not mlflow_run]
    if mlflow_run is not None:
        header += [f"{run.name} / mlflow req/s" for run in ours]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    for connections in connection_counts:
        cells = [str(connections)]
        for run in runs:
            result = run.results[connections]
            cells += [
                f"{result.requests_per_second:,.1f}",
                f"{result.p50_ms:.2f}",
                f"{result.p99_ms:.2f}",
                f"{result.errors}" + (f" ({result.non_2xx} non-2xx)" if result.non_2xx else ""),
            ]
        if mlflow_run is not None:
            theirs = mlflow_run.results[connections].requests_per_second
            cells += [f"{run.results[connections].requests_per_second / theirs:.1f}x" for run in ours]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def print_goals(ours: Sequence[ServerRun], mlflow_run: ServerRun | None, connection_counts: Sequence[int]) -> None:
    high, low = max(connection_counts), min(connection_counts)
    if high != 32 or low != 1:
        print(f"(goals are stated at 32 and 1 connections; comparing at {high} and {low})")
    for run in ours:
        busy, single = run.results[high], run.results[low]
        p99_met = busy.p99_ms <= GOAL_P99_MS
        errors_met = busy.errors == 0
        print(f"- {run.name}, {high} connections: p99 {busy.p99_ms:.2f} ms (goal <= {GOAL_P99_MS:.0f} ms): "
              f"{verdict(p99_met)}; errors {busy.errors} (goal 0): {verdict(errors_met)}")
        if mlflow_run is None:
            continue
        ratio = busy.requests_per_second / mlflow_run.results[high].requests_per_second
        print(f"- {run.name} / mlflow throughput at {high} connections: {ratio:.1f}x "
              f"(goal >= {GOAL_THROUGHPUT_RATIO:.0f}x): {verdict(ratio >= GOAL_THROUGHPUT_RATIO)}"
              + ("" if ratio >= GOAL_THROUGHPUT_RATIO else f", short by {GOAL_THROUGHPUT_RATIO / ratio:.2f}x"))
        p50_ratio = single.p50_ms / mlflow_run.results[low].p50_ms
        print(f"- {run.name} / mlflow p50 at {low} connection: {single.p50_ms:.2f} / "
              f"{mlflow_run.results[low].p50_ms:.2f} ms = {p50_ratio:.3f} (goal <= {GOAL_P50_RATIO:.3f}): "
              f"{verdict(p50_ratio <= GOAL_P50_RATIO)}")


def print_log_check(run: ServerRun) -> None:
    """Rows in the prediction log against 2xx responses (hand check + warm-up + measured runs)."""
    rows = run.log_rows if run.log_rows is not None else -1
    difference = rows - run.total_2xx
    exact = "equal" if difference == 0 else f"differ by {difference:+d}"
    print(f"- {run.name}: prediction log rows {rows}, 2xx responses counted by the client {run.total_2xx}: {exact}")
    if difference != 0:
        explained = 0 < difference <= run.in_flight_bound
        print(
            f"  (the client stops at its deadline with up to one request in flight per connection, "
            f"{run.in_flight_bound} in all; the server answers and logs those too: "
            f"{'within' if explained else 'NOT within'} that bound)"
        )


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of whole numbers") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must list positive whole numbers")
    return counts


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("--bundle", type=Path, default=ROOT / "output" / "models" / "penguins" / "latest")
    result.add_argument("--tracking-uri", default=f"sqlite:///{ROOT / 'mlflow.db'}")
    result.add_argument("--duration", type=int, default=10, help="seconds of load per connection count")
    result.add_argument("--connections", type=parse_counts, default=[1, 8, 32], help="e.g. 1,8,32")
    result.add_argument("--workers", type=parse_counts, default=[1], help="our service's workers; 1,2 runs both")
    result.add_argument("--skip-mlflow", action="store_true", help="measure our service only")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    bundle: Path = args.bundle.resolve()
    manifest = bundle / "manifest.json"
    if not manifest.is_file():
        print(
            f"no model bundle at {bundle} ({manifest.name} missing); make it with: "
            f"cd {ROOT} && ./executables/run.sh",
            file=sys.stderr,
        )
        return 2
    version = json.loads(manifest.read_text())["version"]
    connection_counts: list[int] = args.connections
    lua_folder = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    lua: Path | None = None
    if shutil.which("wrk") is None:
        print("wrk not found: using the bounded Python client (its own CPU use caps what it can measure)")
    print(f"bundle {bundle} version {version}; {args.duration} s per run; {load_average()}; scratch {lua_folder}")

    runs: list[ServerRun] = []
    mlflow_run: ServerRun | None = None
    try:
        print(
            f"\n== cold start of our service with {args.workers[0]} worker(s) "
            f"(process start to first 200 on GET /health), {COLD_STARTS} starts"
        )
        cold = measure_cold_start(lambda tag: ours_target(bundle, args.workers[0], lua_folder, tag), COLD_STARTS)
        for workers in args.workers:
            target = ours_target(bundle, workers, lua_folder, f"ours-{workers}w")
            if shutil.which("wrk") is not None:
                lua = write_lua(lua_folder, target)
                print(f"  lua script {lua}:\n" + "".join(f"    {line}\n" for line in lua.read_text().splitlines()))
            run = measure(target, lua, connection_counts, args.duration)
            assert target.prediction_log_url is not None
            run.log_rows = count_predictions(target.prediction_log_url)
            runs.append(run)
        if not args.skip_mlflow:
            run_id = find_run_id(args.tracking_uri, version)
            print(f"\nMLflow run {run_id} is tagged bundle.version = {version}")
            target = mlflow_target(run_id, args.tracking_uri, lua_folder)
            if shutil.which("wrk") is not None:
                lua = write_lua(lua_folder, target)
                print(f"  lua script {lua}:\n" + "".join(f"    {line}\n" for line in lua.read_text().splitlines()))
            mlflow_run = measure(target, lua, connection_counts, args.duration)
            runs.append(mlflow_run)
    finally:
        shutil.rmtree(lua_folder, ignore_errors=True)

    print("\n## Results (one JSON record per request)\n")
    print(markdown_table(runs, connection_counts))
    print("\n## Goals\n")
    median = statistics.median(cold)
    print(f"- cold start, median of {COLD_STARTS}: {median:.2f} s ({', '.join(f'{s:.2f}' for s in cold)}) "
          f"(goal <= {GOAL_COLD_START_S:.0f} s): {verdict(median <= GOAL_COLD_START_S)}")
    print_goals([run for run in runs if run is not mlflow_run], mlflow_run, connection_counts)
    print("\n## Prediction log check\n")
    for run in runs:
        if run is not mlflow_run:
            print_log_check(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
