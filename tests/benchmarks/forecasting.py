"""Forecasting benchmark: every candidate's backtest, the leaderboard's pick and a 1,000-series batch forecast.

Part 1 backtests each candidate of ml_project.forecasters.FORECASTERS with its default parameters over the
whole prepared series (the last `forecast.backtest_windows` windows of `forecast.horizon` periods of the
file, no separate holdout), so the figures compare with the reference notebook: per candidate the mean
MAPE and MASE over the windows, the wall time of the backtest, of one fit on the whole series and of a
forecast of one horizon from that fit (warm: the second call), and the MAPE ratio to seasonal_naive.
Part 2 runs `forecasting.search` (the config's own algorithms and n_trials) on the history before the last
horizon, then scores the chosen model on that last horizon (the holdout). Part 3 times one batch
`Forecaster.forecast(24)` of a ridge forecaster fitted on 1,000 synthetic hourly series. `--multi CONFIG`
runs parts 1 and 2 on another forecasting config too. Asserts nothing: it prints figures.

    cd /work/main && OMP_NUM_THREADS=1 .venv/bin/python -m tests.benchmarks.forecasting
    cd /work/main && OMP_NUM_THREADS=1 .venv/bin/python -m tests.benchmarks.forecasting --with-arima

Goals: the leaderboard's pick no worse than the best statsforecast model on the same windows, its
holdout MAPE within a factor 1.5 of its backtest MAPE, 1,000 series x 24 periods in one call < 10 s.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml_project.config import Config, load_config  # noqa: E402
from ml_project.forecasters import FORECASTERS, OUTPUT, Setting, fit  # noqa: E402
from ml_project.forecasting import NO_SKILL, backtest, holdout_scores, per_window, search, window_scores  # noqa: E402
from ml_project.series import ID, TIME, VALUE, prepare, split_last  # noqa: E402

DEFAULT_CONFIG = Path("use_cases/configs/seattle_temps_forecast.yaml")
SLOW = frozenset({"auto_arima"})
GOAL_HOLDOUT_FACTOR = 1.5
GOAL_BATCH_SECONDS = 10.0
SCALE_SERIES = 1_000
SCALE_PERIODS = 400
SCALE_HORIZON = 24
SEED = 20240601


@dataclass(frozen=True)
class CandidateRow:
    """Part 1: one candidate's backtest over the whole prepared series, with its default parameters."""

    algorithm: str
    kind: str
    mape: float
    mase: float
    backtest_s: float
    fit_s: float
    forecast_s: float
    ratio: float = float("nan")  # MAPE / seasonal_naive's MAPE


@dataclass(frozen=True)
class Pick:
    """Part 2: the model the leaderboard picks, on the history before the last horizon, and its holdout."""

    algorithm: str
    params: dict[str, Any]
    search_s: float
    backtest_mape: float
    naive_mape: float
    best_statistical: str
    best_statistical_mape: float
    statistical: dict[str, float]  # every statsforecast candidate's mean MAPE on the search's windows
    holdout_mape: float
    training_holdout_mape: float  # forecasting.holdout_scores (forecasts after the whole history, as `train` scores)
    leaderboard: pd.DataFrame

    @property
    def ratio(self) -> float:
        return self.backtest_mape / self.naive_mape

    @property
    def no_worse(self) -> bool:
        return self.backtest_mape <= self.best_statistical_mape

    @property
    def holdout_factor(self) -> float:
        """backtest MAPE / holdout MAPE: the goal is a value between 1/1.5 and 1.5."""
        return self.backtest_mape / self.holdout_mape

    @property
    def holdout_met(self) -> bool:
        return 1 / GOAL_HOLDOUT_FACTOR <= self.holdout_factor <= GOAL_HOLDOUT_FACTOR


@dataclass(frozen=True)
class Scale:
    """Part 3: one batch forecast of many series by a fitted ridge forecaster."""

    series: int
    periods: int
    rows: int
    fit_s: float
    cold_s: float
    warm_s: float

    @property
    def met(self) -> bool:
        return self.warm_s < GOAL_BATCH_SECONDS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the forecasting config of parts 1-2")
    parser.add_argument("--multi", type=Path, help="another forecasting config (e.g. multi-series): parts 1-2 on it")
    parser.add_argument("--with-arima", action="store_true", help="also backtest auto_arima (slow)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    parser.add_argument("--series", type=int, default=SCALE_SERIES, help="part 3: synthetic series")
    parser.add_argument("--periods", type=int, default=SCALE_PERIODS, help="part 3: hourly periods per series")
    parser.add_argument("--skip-scale", action="store_true", help="skip part 3")
    return parser.parse_args(argv)


def load(path: Path, overrides: list[str]) -> tuple[Config, Setting, pd.DataFrame]:
    """The config, its Setting and the prepared long frame (ID, TIME, exogenous, VALUE)."""
    config = load_config(path, overrides=["tracking.enabled=false", *overrides])
    if config.data.task != "forecasting":
        raise SystemExit(f"{path}: data.task is {config.data.task!r}, not forecasting")
    return config, Setting.of(config.forecast), prepare(config).frame


def candidates(with_arima: bool) -> list[str]:
    return [name for name in FORECASTERS if with_arima or name not in SLOW]


def timed(function: Any, *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def measure(algorithm: str, config: Config, setting: Setting, frame: pd.DataFrame) -> CandidateRow:
    """Backtest, fit and forecast one candidate with its defaults, one thread per model (as `search` does)."""
    from threadpoolctl import threadpool_limits

    candidate, forecast, seed = FORECASTERS[algorithm], config.forecast, config.modelling.seed
    params = dict(candidate.defaults)
    with threadpool_limits(limits=1):
        windows = (forecast.horizon, forecast.backtest_windows)
        points, backtest_s = timed(backtest, algorithm, params, seed, setting, frame, *windows)
        scores = per_window(points, frame, setting.season)
        fitted, fit_s = timed(fit, algorithm, params, seed, setting, frame)
        fitted.forecast(forecast.horizon)  # warm-up: first-call imports and caches
        _, forecast_s = timed(fitted.forecast, forecast.horizon)
    mape = float(np.mean([window["mape"] for window in scores]))
    mase = float(np.mean([window["mase"] for window in scores]))
    row = CandidateRow(algorithm, candidate.kind, mape, mase, backtest_s, fit_s, forecast_s)
    print(f"  {algorithm:<24} mape {mape:.4f}  mase {mase:.3f}  backtest {backtest_s:6.1f} s", flush=True)
    return row


def part1(config: Config, setting: Setting, frame: pd.DataFrame, with_arima: bool) -> list[CandidateRow]:
    rows = [measure(name, config, setting, frame) for name in candidates(with_arima)]
    naive = next(row.mape for row in rows if row.algorithm == NO_SKILL)
    return [CandidateRow(**{**row.__dict__, "ratio": row.mape / naive}) for row in rows]


def holdout_mape(
    pick: str, params: dict[str, Any], config: Config, setting: Setting, frame: pd.DataFrame
) -> tuple[float, float]:
    """Fit on the history before the last horizon, forecast one horizon, MAPE against those periods.

    First from the forecaster's stored history (what a bundle answers), then as `train` scores it
    (forecasting.holdout_scores, which sends the whole history again).
    """
    horizon = config.forecast.horizon
    history, holdout = split_last(frame, horizon)
    fitted = fit(pick, params, config.modelling.seed, setting, history)
    points = fitted.forecast(horizon)
    joined = holdout[[ID, TIME, VALUE]].merge(points[[ID, TIME, OUTPUT]], on=[ID, TIME], how="left")
    if joined[OUTPUT].isna().any():
        raise SystemExit("the forecast periods do not line up with the holdout periods")
    stored = window_scores(joined, pd.Series(dtype="float64"))["mape"]
    return stored, holdout_scores(fitted, history, holdout, horizon)["mape"]


def statistical_mapes(
    board: pd.DataFrame, config: Config, setting: Setting, history: pd.DataFrame, with_arima: bool
) -> pd.Series:
    """Mean backtest MAPE of every statsforecast candidate on the search's windows: from the leaderboard,
    or (for those the config does not name) backtested here with the same windows and defaults."""
    from threadpoolctl import threadpool_limits

    mape = board.groupby("algorithm")["mean_mape"].min()
    forecast = config.forecast
    for name in candidates(with_arima):
        if FORECASTERS[name].kind == "statistical" and name not in mape.index:
            with threadpool_limits(limits=1):
                args = (config.modelling.seed, setting, history, forecast.horizon, forecast.backtest_windows)
                points = backtest(name, {}, *args)
            mape[name] = float(np.mean([window["mape"] for window in per_window(points, history, setting.season)]))
            print(f"  off the leaderboard, same windows: {name:<16} mape {mape[name]:.4f}", flush=True)
    return mape[[FORECASTERS[name].kind == "statistical" for name in mape.index]]


def part2(config: Config, setting: Setting, frame: pd.DataFrame, with_arima: bool) -> Pick:
    """`forecasting.search` on the history before the last horizon, timed as a whole; the pick's holdout."""
    history, _ = split_last(frame, config.forecast.horizon)
    result, search_s = timed(search, history, config, setting, False)
    board = result.leaderboard
    statistical = statistical_mapes(board, config, setting, history, with_arima)
    stored, training = holdout_mape(result.algorithm, result.params, config, setting, frame)
    return Pick(
        algorithm=result.algorithm,
        params=result.params,
        search_s=search_s,
        backtest_mape=result.cv_metrics["mape"],
        naive_mape=float(statistical[NO_SKILL]),
        best_statistical=str(statistical.idxmin()),
        best_statistical_mape=float(statistical.min()),
        statistical={str(name): float(value) for name, value in statistical.sort_values().items()},
        holdout_mape=stored,
        training_holdout_mape=training,
        leaderboard=board,
    )


def synthetic(series: int, periods: int) -> pd.DataFrame:
    """`series` hourly series of `periods` periods: a daily sine, a level per series and noise, all positive."""
    rng = np.random.default_rng(SEED)
    stamps = pd.date_range("2024-01-01", periods=periods, freq="h")
    hours = np.arange(periods)
    level = rng.uniform(20.0, 80.0, (series, 1))
    amplitude = rng.uniform(2.0, 10.0, (series, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (series, 1))
    values = level + amplitude * np.sin(2 * np.pi * hours / 24 + phase) + rng.normal(0.0, 1.0, (series, periods))
    ids = np.repeat([f"s{number:04d}" for number in range(series)], periods)
    return pd.DataFrame({ID: ids, TIME: np.tile(stamps, series), VALUE: np.abs(values).ravel()})


def part3(config: Config, series: int, periods: int) -> Scale:
    """A ridge forecaster fitted on the synthetic series, then one batch forecast of all of them (timed warm)."""
    from threadpoolctl import threadpool_limits

    setting = Setting.of(config.forecast.model_copy(update={"frequency": "1h", "season_length": None, "lags": "auto"}))
    frame = synthetic(series, periods)
    with threadpool_limits(limits=1):
        fitted, fit_s = timed(fit, "ridge", dict(FORECASTERS["ridge"].defaults), config.modelling.seed, setting, frame)
        _, cold_s = timed(fitted.forecast, SCALE_HORIZON)
        points, warm_s = timed(fitted.forecast, SCALE_HORIZON)
    if len(points) != series * SCALE_HORIZON or points[OUTPUT].isna().any():
        raise SystemExit(f"the batch forecast has {len(points)} rows, {int(points[OUTPUT].isna().sum())} empty")
    return Scale(series, periods, len(points), fit_s, cold_s, warm_s)


def print_part1(rows: list[CandidateRow], name: str) -> None:
    print(f"\n{name}: default parameters, backtest over the whole prepared series")
    header = (
        f"{'algorithm':<24} {'kind':<12} {'MAPE':>7} {'MASE':>7} {'/naive':>7} {'backtest s':>11} {'fit s':>7}"
        f" {'forecast s':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.algorithm:<24} {r.kind:<12} {r.mape:>7.4f} {r.mase:>7.3f} {r.ratio:>7.2f} {r.backtest_s:>11.1f}"
            f" {r.fit_s:>7.2f} {r.forecast_s:>11.3f}"
        )


def print_part2(pick: Pick) -> None:
    columns = ["rank", "trial", "algorithm", "mean_mape", "std_mape", "mean_mase", "fit_time_s", "params"]
    shown = pick.leaderboard[columns].assign(params=pick.leaderboard["params"].str.slice(0, 60))
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(shown.to_string(index=False))
    print(f"search wall time       {pick.search_s:.1f} s")
    print(f"chosen                 {pick.algorithm} {pick.params}")
    print(f"backtest MAPE          {pick.backtest_mape:.4f} ({pick.ratio:.2f} x seasonal_naive {pick.naive_mape:.4f})")
    print("statsforecast, same windows " + ", ".join(f"{name} {value:.4f}" for name, value in pick.statistical.items()))
    print(
        f"best statsforecast     {pick.best_statistical} {pick.best_statistical_mape:.4f}: chosen no worse: "
        + ("yes" if pick.no_worse else "NO")
    )
    print(
        f"holdout MAPE (last h)  {pick.holdout_mape:.4f}; backtest/holdout {pick.holdout_factor:.2f} "
        f"(goal within x{GOAL_HOLDOUT_FACTOR}): " + ("met" if pick.holdout_met else "MISSED")
    )
    print(f"holdout as train has it {pick.training_holdout_mape:.4f} (forecasting.holdout_scores)")


def print_part3(scale: Scale) -> None:
    print(f"series x periods       {scale.series:,} x {scale.periods} (hourly), fit {scale.fit_s:.1f} s")
    print(f"forecast rows          {scale.rows:,} ({scale.series:,} series x {SCALE_HORIZON})")
    print(f"one batch call         cold {scale.cold_s:.2f} s, warm {scale.warm_s:.2f} s")
    print(f"under {GOAL_BATCH_SECONDS:.0f} s (warm)       " + ("yes" if scale.met else "NO"))


def markdown(results: list[tuple[str, list[CandidateRow], Pick]], scale: Scale | None) -> list[str]:
    """The plain-text table for documentation/forecasting.md."""
    lines = ["| data | algorithm | MAPE | MASE | MAPE / seasonal_naive | backtest s | forecast s |"]
    lines.append("|---|---|---|---|---|---|---|")
    for name, rows, _ in results:
        for r in rows:
            lines.append(
                f"| {name} | {r.algorithm} | {r.mape:.4f} | {r.mase:.3f} | {r.ratio:.2f} | {r.backtest_s:.1f}"
                f" | {r.forecast_s:.3f} |"
            )
    lines += ["", "| data | leaderboard pick | backtest MAPE | / seasonal_naive | no worse than statsforecast | "
              "holdout MAPE | backtest / holdout | search s |", "|---|---|---|---|---|---|---|---|"]
    for name, _, p in results:
        lines.append(
            f"| {name} | {p.algorithm} | {p.backtest_mape:.4f} | {p.ratio:.2f} | {'yes' if p.no_worse else 'no'} "
            f"({p.best_statistical} {p.best_statistical_mape:.4f}) | {p.holdout_mape:.4f} | {p.holdout_factor:.2f}"
            f" | {p.search_s:.0f} |"
        )
    if scale is not None:
        lines += [
            "",
            f"Batch forecast: {scale.series:,} series x {SCALE_HORIZON} periods = {scale.rows:,} rows in one "
            f"`Forecaster.forecast` call of a fitted ridge: {scale.warm_s:.2f} s warm ({scale.cold_s:.2f} s cold).",
        ]
    return lines


def describe(config: Config, setting: Setting, frame: pd.DataFrame, path: Path) -> str:
    forecast = config.forecast
    series = frame[ID].nunique()
    step = pd.tseries.frequencies.to_offset(forecast.frequency)
    start = frame[TIME].max() - step * (forecast.horizon * forecast.backtest_windows - 1)
    print(
        f"{path}: {series} series, {len(frame):,} rows at {forecast.frequency} "
        f"({frame[TIME].min()} .. {frame[TIME].max()}); "
        f"horizon {forecast.horizon}, {forecast.backtest_windows} windows from {start}; season {setting.season}, "
        f"lags {list(setting.plan.lags)}, rolling mean {setting.plan.rolling_window}, "
        f"differences {list(setting.differences)}"
    )
    return path.stem


def run_config(
    path: Path, args: argparse.Namespace, parts: tuple[str, str]
) -> tuple[str, list[CandidateRow], Pick, Config]:
    config, setting, frame = load(path, args.overrides)
    print(f"\n=== Part {parts[0]}: every candidate with its defaults ===")
    name = describe(config, setting, frame, path)
    rows = part1(config, setting, frame, args.with_arima)
    print_part1(rows, name)
    modelling = config.modelling
    print(f"\n=== Part {parts[1]}: the leaderboard's pick ({modelling.algorithms}, n_trials {modelling.n_trials}) ===")
    pick = part2(config, setting, frame, args.with_arima)
    print_part2(pick)
    return name, rows, pick, config


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    started = time.perf_counter()
    name, rows, pick, config = run_config(args.config, args, ("1", "2"))
    results = [(name, rows, pick)]
    scale = None
    if not args.skip_scale:
        print(f"\n=== Part 3: {args.series:,} series x {SCALE_HORIZON} periods in one batch call (ridge) ===")
        scale = part3(config, args.series, args.periods)
        print_part3(scale)
    if args.multi is not None:
        labels = ("4 (--multi, part 1)", "4 (--multi, part 2)")
        multi_name, multi_rows, multi_pick, _ = run_config(args.multi, args, labels)
        results.append((multi_name, multi_rows, multi_pick))
    print("\n=== Summary (paste into documentation/forecasting.md) ===\n")
    print("\n".join(markdown(results, scale)))
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
