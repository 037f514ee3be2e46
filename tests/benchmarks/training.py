"""Training benchmark: the modelling run on a generated 1M-row table (10M with --rows) under a time budget,
beside FLAML's AutoML with the same budget on the same split.

The table: 12 numeric and 2 categorical columns, 3 classes (sklearn's make_classification, seeded; the
categoricals are noisy bins of two informative columns), written once as parquet under --work.
Ours is the real command, `python -m use_cases.modelling_historic_data_local`, as its own process with
the default algorithms, `modelling.time_budget_s` = --budget, n_trials 1000 (the budget decides),
tracking and holdout reports off. Printed: wall time of search / refit / evaluation (from the bundle's
card), trials run and pruned, the process's peak RSS, the holdout f1_macro. FLAML then runs in this
process of its own on the same modelling rows (`split_holdout` of the same config) with `time_budget` =
--budget, n_jobs 2, and is scored on the same holdout rows. FLAML's AutoML needs xgboost, which the
project does not use, so it runs in a benchmark-only environment made once under --work (pip install
flaml[automl]==2.8.0 and the table libraries). `--workers N` then runs one `--join-study` process
pinned to one core, and N at once pinned to one core each (as N one-core machines), on a PostgreSQL
server (Debian's postgresql, started on a free loopback port and stopped after, as the tests do), then
one `--finish-study`; it prints the trials each added, the study's own count and the leaderboard's.
Asserts nothing: it prints figures side by side.

    cd /work/main && .venv/bin/python -m tests.benchmarks.training                  # 1M rows, 300 s
    cd /work/main && .venv/bin/python -m tests.benchmarks.training --rows 10000000 --search-rows 200000 --no-flaml
    cd /work/main && .venv/bin/python -m tests.benchmarks.training --budget 120 --search-rows 20000 --workers 2 --workers-only

Goals: total wall <= 1.3 x the budget, holdout f1_macro >= FLAML's - 0.005, 10M rows within 6 GiB peak RSS,
2 workers about twice the trials of one in the same budget, every trial once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NUMERIC = [f"x{index:02d}" for index in range(12)]
CATEGORICAL = ["region", "plan"]


def table(rows: int, path: Path) -> Path:
    """The generated table as parquet (made once per row count)."""
    if path.exists():
        return path
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=rows, n_features=12, n_informative=8, n_redundant=2, n_classes=3, n_clusters_per_class=2,
        class_sep=1.0, flip_y=0.03, random_state=7,
    )
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(X.astype("float32"), columns=NUMERIC)
    frame["region"] = np.where(rng.random(rows) < 0.8, pd.cut(X[:, 0], 8, labels=[f"r{i}" for i in range(8)]).astype(str), "r_other")
    frame["plan"] = pd.cut(X[:, 1] + rng.normal(0, 0.5, rows), 4, labels=["basic", "plus", "pro", "max"]).astype(str)
    frame["label"] = np.array(["low", "mid", "high"])[y]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def config_file(
    work: Path, data: Path, budget: float, search_rows: int | None, storage: str | None = None, n_jobs: int | None = None
) -> Path:
    path = work / "training_benchmark.yaml"
    lines = [
        "data:",
        "  task: classification",
        f"  path: {data}",
        "  target: label",
        f"  features: {{numerical: {json.dumps(NUMERIC)}, categorical: {json.dumps(CATEGORICAL)}}}",
        "modelling:",
        "  metric: f1_macro",
        "  n_trials: 1000",
        f"  time_budget_s: {budget}",
        f"  search_rows: {search_rows if search_rows else 'null'}",
        f"  study_storage: {storage if storage else 'null'}",
        f"  n_jobs: {n_jobs if n_jobs else 'null'}",
        "tracking: {enabled: false, model_name: training_benchmark}",
        "monitoring: {holdout_report: false}",
        f"paths: {{output: {work / 'output'}}}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_ours(config: Path, *flags: str) -> dict[str, Any]:
    """The modelling command as its own process: wall time, peak RSS and what its bundle card says."""
    began = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-m", "use_cases.modelling_historic_data_local", "--config", str(config), "--no-progress", *flags],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    wall = time.monotonic() - began
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"modelling run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {"wall_s": wall, "peak_rss_gib": max(peak, before) / 2**20, "stdout": done.stdout, "stderr": done.stderr}


def latest_card(work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = (work / "output" / "models" / "training_benchmark" / "latest").resolve()
    return json.loads((folder / "model.json").read_text()), json.loads((folder / "metrics.json").read_text())


FLAML_ENV_PACKAGES = ("flaml[automl]==2.8.0", "pandas<3", "pyarrow", "scikit-learn", "lightgbm")
FLAML_SCRIPT = """
import json, sys, time
import pandas as pd
from flaml import AutoML
from sklearn.metrics import f1_score
modelling, holdout, budget = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2]), float(sys.argv[3])
for frame in (modelling, holdout):
    for name in ("region", "plan"):
        frame[name] = frame[name].astype("category")
automl = AutoML()
began = time.monotonic()
automl.fit(modelling.drop(columns="label"), modelling["label"], task="classification", metric="macro_f1",
           time_budget=budget, n_jobs=2, seed=7, verbose=0, estimator_list=["lgbm", "rf", "extra_tree"])
wall = time.monotonic() - began
f1 = f1_score(holdout["label"], automl.predict(holdout.drop(columns="label")), average="macro")
print(json.dumps({"wall_s": wall, "best": automl.best_estimator, "f1_macro": float(f1)}))
"""


def flaml_python(work: Path) -> Path:
    """A benchmark-only environment with FLAML's AutoML (its xgboost and all), made once under --work."""
    env = work / "flaml_env"
    python = env / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *FLAML_ENV_PACKAGES], check=True)
    return python


def run_flaml(config_path: Path, budget: float, work: Path) -> dict[str, Any]:
    """FLAML's AutoML on the same modelling rows, scored on the same holdout rows, in its own environment."""
    from ml_project.config import load_config
    from ml_project.ingestion import load_modelling_data
    from ml_project.modelling import split_holdout

    config = load_config(config_path)
    frame = load_modelling_data(config.data)
    modelling_rows, holdout_rows = split_holdout(frame, config.data, config.modelling)
    modelling_rows.to_parquet(work / "flaml_modelling.parquet", index=False)
    holdout_rows.to_parquet(work / "flaml_holdout.parquet", index=False)
    del frame, modelling_rows, holdout_rows
    script = work / "flaml_run.py"
    script.write_text(FLAML_SCRIPT)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [str(flaml_python(work)), str(script), str(work / "flaml_modelling.parquet"), str(work / "flaml_holdout.parquet"), str(budget)],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"FLAML failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_rss_gib"] = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 2**20
    return result


def workers(work: Path, data: Path, budget: float, search_rows: int | None, count: int) -> None:
    """One process on one core, then `count` processes on one core each joined to one PostgreSQL study
    for the same budget (as `count` one-core machines would), then --finish-study: trials of each."""
    from tests.postgres import postgres_server

    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with postgres_server() as url:
        alone = _joined(config_file(work, data, budget, search_rows, storage=url, n_jobs=1), 1, env)
    with postgres_server() as url:
        config = config_file(work, data, budget, search_rows, storage=url, n_jobs=1)
        began = time.monotonic()
        ran = _joined(config, count, env)
        joined_s = time.monotonic() - began
        print(f"\none process, 1 core, {budget:.0f} s: {sum(alone)} trials; {count} processes: {ran}", flush=True)
        finished = run_ours(config, "--finish-study")
        card, metrics = latest_card(work)
        in_study = _study_trials(url)
    print(f"{count} processes, 1 core each, joined to one PostgreSQL study for {budget:.0f} s: {joined_s:.0f} s wall; "
          f"trials added per process {ran} (sum {sum(ran)}, {sum(ran) / max(1, sum(alone)):.2f} x one process)")
    print(f"--finish-study: leaderboard of {card['search']['trials']} trials ({card['search']['pruned']} pruned) "
          f"from {in_study[1]} trials with a row ({in_study[0]} finished in the study, the others stopped by the budget "
          f"before their first fold); holdout f1_macro {metrics['holdout']['f1_macro']:.4f}, "
          f"{finished['wall_s']:.0f} s")


def _joined(config: Path, count: int, env: dict[str, str]) -> list[int]:
    """`count` --join-study processes at once, each pinned to its own core (taskset); the trials each says it added."""
    command = [sys.executable, "-m", "use_cases.modelling_historic_data_local", "--config", str(config), "--no-progress", "--join-study"]
    cores = sorted(os.sched_getaffinity(0))
    processes = [
        subprocess.Popen(["taskset", "-c", str(cores[index % len(cores)]), *command], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for index in range(count)
    ]
    outputs = [process.communicate() for process in processes]
    for (out, err), process in zip(outputs, processes):
        if process.returncode != 0:
            raise SystemExit(f"--join-study failed ({process.returncode}):\n{err[-3000:]}")
    return [int(match.group(1)) if (match := re.search(r"ran (\d+) trials", out)) else -1 for out, _ in outputs]


def _study_trials(url: str) -> tuple[int, int]:
    """Finished (complete or pruned) trials in the study, read from the database itself, and how many of
    them have a leaderboard row (the others were stopped by the budget before their first fold)."""
    import optuna

    from ml_project.search import STUDY_ROW

    storage = optuna.storages.RDBStorage(url)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = [
        trial
        for name in optuna.get_all_study_names(storage=storage)
        for trial in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False, states=states)
    ]
    return len(trials), sum(STUDY_ROW in trial.user_attrs for trial in trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--search-rows", type=int, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ml_project_training_benchmark"))
    parser.add_argument("--no-flaml", action="store_true")
    parser.add_argument("--workers", type=int, default=0, help="also run this many --join-study processes on PostgreSQL")
    parser.add_argument("--workers-only", action="store_true", help="with --workers: skip the single modelling run")
    args = parser.parse_args()
    data = table(args.rows, args.work / f"table_{args.rows}.parquet")
    print(f"table: {args.rows:,} rows x 14 columns (12 numeric, 2 categorical), 3 classes: {data}")
    if args.workers and args.workers_only:
        workers(args.work, data, args.budget, args.search_rows, args.workers)
        return
    config = config_file(args.work, data, args.budget, args.search_rows)
    shutil.rmtree(args.work / "output", ignore_errors=True)  # a first run: no champion to score back to back
    ours = run_ours(config)
    card, metrics = latest_card(args.work)
    search = card["search"]
    print(f"\nours (budget {args.budget:.0f} s, search_rows {args.search_rows}, {search['n_jobs']} folds x {search['threads_per_fold']} threads):")
    print(f"  wall {ours['wall_s']:.0f} s ({ours['wall_s'] / args.budget:.2f} x budget): search {search['search_s']:.0f} s, "
          f"refit {search['refit_s']:.0f} s, evaluation {search.get('evaluation_s', float('nan')):.0f} s")
    print(f"  trials {search['trials']} ({search['scored']} scored, {search['pruned']} pruned), budget exhausted: {search['budget_exhausted']}")
    print(f"  best {card['algorithm']} {card['params']}; holdout f1_macro {metrics['holdout']['f1_macro']:.4f}; peak RSS {ours['peak_rss_gib']:.2f} GiB")
    print(f"  rows: {card['rows']}")
    if not args.no_flaml:
        peer = run_flaml(config, args.budget, args.work)
        print(f"\nFLAML (time_budget {args.budget:.0f} s, n_jobs 2): wall {peer['wall_s']:.0f} s, best {peer['best']}, "
              f"holdout f1_macro {peer['f1_macro']:.4f}, peak RSS of the largest process so far {peer['peak_rss_gib']:.2f} GiB")
        print(f"\nholdout f1_macro: ours {metrics['holdout']['f1_macro']:.4f} vs FLAML {peer['f1_macro']:.4f} "
              f"(difference {metrics['holdout']['f1_macro'] - peer['f1_macro']:+.4f})")
    if args.workers:
        workers(args.work, data, args.budget, args.search_rows, args.workers)


if __name__ == "__main__":
    main()
