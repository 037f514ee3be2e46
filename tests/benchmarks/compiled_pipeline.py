"""Compiled-pipeline benchmark: milliseconds per prediction call, sklearn against the compiled numpy path.

Times the default bundle and freshly fitted random-forest, gradient-boosting and LightGBM pipelines (penguins,
default parameters; the forest also with n_jobs=-1, as `predict_file` sets it) on 1, 32 and 100k
validated rows, the way `predict_valid` calls them: predict_proba for a classifier, predict for a
regressor. Each figure is the median of repeated calls, timed in blocks that alternate between
sklearn and compiled; the compiled result is also checked against sklearn's. Prints figures,
asserts nothing about speed.

    cd /work/main && .venv/bin/python tests/benchmarks/compiled_pipeline.py [--bundle PATH] [--rows 1 32 100000]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml_project.artifacts import load_bundle  # noqa: E402
from ml_project.compiled import compile_pipeline, verify_compiled  # noqa: E402
from ml_project.config import load_config  # noqa: E402
from ml_project.ingestion import load_modelling_data  # noqa: E402
from ml_project.modelling import SEARCH_SPACES, build_pipeline, split_features_target  # noqa: E402
from ml_project.validation import validate  # noqa: E402

SEED = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=ROOT / "output" / "models" / "penguins" / "latest")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 32, 100_000])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per figure and side, over 5 blocks")
    return parser.parse_args(argv)


def per_call_ms(calls: list[Callable[[], Any]], seconds: float, rounds: int = 5) -> list[float]:
    """Median wall time per call of each callable, timed in alternating blocks.

    Blocks rather than strict turns: sklearn's thread pools keep spinning for a moment after a call,
    which would slow whatever runs next; alternating blocks still spread any change in machine load
    over all the callables.
    """
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for call, taken in zip(calls, times):
            call()  # warm-up, and lets the previous block's threads settle
            deadline = time.perf_counter() + seconds / rounds
            count = 0
            while count < 1 or (time.perf_counter() < deadline and count < 400):
                started = time.perf_counter()
                call()
                taken.append(time.perf_counter() - started)
                count += 1
    return [statistics.median(taken) * 1e3 for taken in times]


def sample_rows(valid: pd.DataFrame, rows: int) -> pd.DataFrame:
    """`rows` validated rows drawn with replacement, with a fresh index as a scoring chunk has."""
    picks = np.random.default_rng(SEED).integers(0, len(valid), rows)
    return valid.iloc[picks].reset_index(drop=True)


def candidates(bundle_path: Path) -> list[tuple[str, Any, Any, pd.DataFrame]]:
    """(name, pipeline, schema, validated feature rows) for the bundle and the fitted forest and boosting."""
    bundle = load_bundle(bundle_path)
    config = load_config(ROOT / "use_cases" / "configs" / "penguins_classification.yaml")
    table = load_modelling_data(config.data)
    valid = validate(table, bundle.schema, with_target=True).valid
    X, y = split_features_target(valid, config.data)
    found = [(f"bundle ({type(bundle.pipeline[-1]).__name__})", bundle.pipeline, bundle.schema, X)]
    for algorithm in ("random_forest", "hist_gradient_boosting", "lightgbm"):
        defaults = SEARCH_SPACES["classification"][algorithm].defaults
        pipeline = build_pipeline(algorithm, defaults, config.data, config.preprocessing, SEED).fit(X, y)
        found.append((algorithm, pipeline, bundle.schema, X))
        if algorithm == "random_forest":
            all_cores = copy.deepcopy(pipeline).set_params(model__n_jobs=-1)
            found.append((f"{algorithm} (n_jobs=-1)", all_cores, bundle.schema, X))
    return found


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"{'pipeline':<38} {'rows':>7} {'sklearn ms':>11} {'compiled ms':>12} {'speed-up':>9}  parity")
    for name, pipeline, schema, X in candidates(args.bundle):
        compiled = compile_pipeline(pipeline)
        if compiled is None:
            print(f"{name:<38} not compiled: it holds a step compiled.py does not know")
            continue
        reason = verify_compiled(compiled, pipeline, schema)
        if reason is not None:
            print(f"{name:<38} verify_compiled refused it: {reason}")
            continue
        method = "predict_proba" if compiled.classes_ is not None else "predict"
        for rows in args.rows:
            frame = sample_rows(X, rows)
            theirs, ours = getattr(pipeline, method), getattr(compiled, method)
            parity = "exact" if np.array_equal(ours(frame), theirs(frame)) else "DIFFERS"
            sklearn_ms, compiled_ms = per_call_ms([lambda: theirs(frame), lambda: ours(frame)], args.seconds)
            print(
                f"{name:<38} {rows:>7} {sklearn_ms:>11.3f} {compiled_ms:>12.3f} "
                f"{sklearn_ms / compiled_ms:>8.1f}x  {parity}",
                flush=True,
            )


if __name__ == "__main__":
    main()
