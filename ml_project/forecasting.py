"""Forecasting as a task of the template: rolling-origin backtests, a leaderboard, a holdout, a bundle.

The modelling run for `data.task: forecasting` (`training.train` calls `prepared_run`, then `candidate`, then
the champion gate):
prepare (validate, resample, fill) → hold out each series' last `forecast.horizon` periods →
backtest every candidate on `forecast.backtest_windows` rolling-origin windows of the history
before the holdout (each window's model trained strictly before the window's first timestamp; the
libraries' cross_validation refits per window) → refit the best on that history → score it once on
the holdout → export the bundle → the same champion gate, MLflow run and registry as every task.

Scores are pooled over the series of a window (see `window_scores`); MASE divides each series' mean
absolute error by its own mean seasonal step in the window's training part. The leaderboard shows
the chosen metric per window and every metric's mean and spread; `seasonal_naive` is always on it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_project.artifacts import Bundle, fingerprint_frame, model_card, package_versions
from ml_project.config import Config, ConfigError
from ml_project.forecasters import FORECASTERS, OUTPUT, Forecaster, Setting, fit, ml_engine, series_scale, stats_engine
from ml_project.series import ID, TIME, VALUE, Prepared, as_table, check_length, prepare, split_last
from ml_project.validation import ColumnSchema, InputSchema

logger = logging.getLogger(__name__)

NO_SKILL = "seasonal_naive"
MIN_RESIDUALS_PER_STEP = 10


@dataclass(frozen=True)
class SearchResult:
    leaderboard: pd.DataFrame
    algorithm: str
    params: dict[str, Any]
    backtest: pd.DataFrame  # the best candidate's backtest forecasts (ID, TIME, cutoff, y, forecast)
    cv_metrics: dict[str, float]


def window_scores(points: pd.DataFrame, scale: pd.Series) -> dict[str, float]:
    """Every forecasting metric of one window's forecasts (`y`, `forecast`), pooled over its series.

    mape = mean |e| / |y|; smape = mean 2|e| / (|y| + |f|) (0 where both are 0); rmse and mae over
    every forecast; mase = mean over series of (series mae / series scale).
    """
    y = points[VALUE].to_numpy(dtype="float64")
    error = np.abs(points[OUTPUT].to_numpy(dtype="float64") - y)
    denominator = np.abs(y) + np.abs(points[OUTPUT].to_numpy(dtype="float64"))
    smape = np.divide(2 * error, denominator, out=np.zeros_like(error), where=denominator > 0)
    per_series = pd.Series(error, index=points[ID].to_numpy()).groupby(level=0).mean()
    return {
        "mape": float(np.mean(error / np.abs(y))) if np.all(y != 0) else float("inf"),
        "smape": float(np.mean(smape)),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(error)),
        "mase": float(np.mean(per_series / scale.reindex(per_series.index).fillna(1.0))),
    }


def backtest(algorithm: str, params: dict[str, Any], seed: int, setting: Setting, frame: pd.DataFrame, horizon: int, windows: int) -> pd.DataFrame:
    """Rolling-origin forecasts of the last `windows` windows of `horizon` periods: ID, TIME, cutoff, y, forecast.

    `cutoff` is the last timestamp a window's model was trained on; every forecast is after it.
    """
    candidate = FORECASTERS[algorithm]
    model = candidate.build(params, seed, setting)
    if candidate.kind == "ml":
        engine = ml_engine(algorithm, model, setting)
        result = engine.cross_validation(
            df=frame, n_windows=windows, h=horizon, step_size=horizon, static_features=[], refit=True
        )
    else:
        result = stats_engine(model, setting).cross_validation(
            h=horizon, df=frame[[ID, TIME, VALUE]], n_windows=windows, step_size=horizon, refit=True
        )
        result = result.reset_index() if ID not in result.columns else result
        result = result.rename(columns={str(model): OUTPUT})
    return result[[ID, TIME, "cutoff", VALUE, OUTPUT]].sort_values(["cutoff", ID, TIME], kind="stable", ignore_index=True)


def per_window(points: pd.DataFrame, frame: pd.DataFrame, season: int) -> list[dict[str, float]]:
    """`window_scores` of each backtest window, oldest first; MASE scaled by the window's own training part."""
    scores = []
    for cutoff, window in points.groupby("cutoff", sort=True):
        scale = series_scale(frame[frame[TIME] <= cutoff], season)
        scores.append(window_scores(window, scale))
    return scores


def _row(trial: int, algorithm: str, params: dict[str, Any], scores: list[dict[str, float]], metric: str, seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": trial, "algorithm": algorithm, "params": json.dumps(params, sort_keys=True)}
    for name in scores[0]:
        values = [window[name] for window in scores]
        row[f"mean_{name}"] = float(np.mean(values))
        row[f"std_{name}"] = float(np.std(values))
    for number, window in enumerate(scores, start=1):
        row[f"{metric}_window_{number}"] = window[metric]
    row["fit_time_s"] = seconds
    return row


def search(frame: pd.DataFrame, config: Config, setting: Setting, progress: bool = True) -> SearchResult:
    """Each statistical candidate backtested once, then Optuna TPE over the ML candidates' parameters.

    As in the tabular search, every tuned candidate is tried first with its defaults and the no-skill
    line (`seasonal_naive`) is always on the leaderboard, asked for or not.
    """
    from threadpoolctl import threadpool_limits

    modelling, forecast = config.modelling, config.forecast
    algorithms = list(dict.fromkeys([NO_SKILL, *modelling.algorithms]))
    rows: list[dict[str, Any]] = []
    forecasts: dict[int, pd.DataFrame] = {}

    def score(algorithm: str, params: dict[str, Any]) -> float:
        started = time.perf_counter()
        points = backtest(algorithm, params, modelling.seed, setting, frame, forecast.horizon, forecast.backtest_windows)
        seconds = time.perf_counter() - started
        row = _row(len(rows), algorithm, params, per_window(points, frame, setting.season), modelling.metric, seconds)
        forecasts[row["trial"]] = points
        rows.append(row)
        logger.info("trial %d %s %s: backtest %s %.4f (%.1f s)", row["trial"], algorithm, row["params"], modelling.metric, row[f"mean_{modelling.metric}"], seconds)
        return float(row[f"mean_{modelling.metric}"])

    with threadpool_limits(limits=1):  # one thread per model: histogram boosting oversubscribes otherwise
        fixed = [name for name in algorithms if not FORECASTERS[name].defaults]
        tuned = [name for name in algorithms if FORECASTERS[name].defaults]
        for algorithm in fixed:
            score(algorithm, {})
        _tune(tuned, max(0, modelling.n_trials - len(rows)), config, score, progress)
    leaderboard = _ranked(pd.DataFrame(rows), modelling.metric)
    best = leaderboard.iloc[0]
    cv = {name.removeprefix("mean_"): float(best[name]) for name in leaderboard.columns if name.startswith("mean_")}
    return SearchResult(leaderboard, str(best["algorithm"]), json.loads(best["params"]), forecasts[int(best["trial"])], cv)


def _tune(tuned: list[str], budget: int, config: Config, score: Any, progress: bool) -> None:
    if not tuned or budget <= 0:
        if tuned:
            logger.warning("modelling.n_trials = %d leaves no trial for %s", config.modelling.n_trials, ", ".join(tuned))
        return
    import optuna

    def objective(trial: Any) -> float:
        algorithm = trial.suggest_categorical("algorithm", tuned)
        return float(score(algorithm, FORECASTERS[algorithm].sample(trial)))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=config.modelling.seed))
    for algorithm in tuned[:budget]:
        defaults = FORECASTERS[algorithm].defaults
        study.enqueue_trial({"algorithm": algorithm, **{f"{algorithm}.{k}": v for k, v in defaults.items()}})
    study.optimize(objective, n_trials=budget, show_progress_bar=progress)


def _ranked(leaderboard: pd.DataFrame, metric: str) -> pd.DataFrame:
    # Every forecasting metric is an error: lower is better (config.LOWER_IS_BETTER).
    ranked = leaderboard.sort_values([f"mean_{metric}", "trial"], kind="stable").reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return ranked


def interval_widths(points: pd.DataFrame, frame: pd.DataFrame, season: int, horizon: int, coverage: float) -> np.ndarray:
    """Half-width per step ahead, in units of each series' scale: the `coverage` quantile of backtest |errors|.

    Per step when every step has MIN_RESIDUALS_PER_STEP errors (windows x series), else one width for all.
    """
    scaled = []
    for cutoff, window in points.groupby("cutoff", sort=True):
        scale = series_scale(frame[frame[TIME] <= cutoff], season)
        error = (window[OUTPUT] - window[VALUE]).abs() / window[ID].map(scale).fillna(1.0)
        scaled.append(window.assign(step=window.groupby(ID).cumcount(), error=error.to_numpy()))
    errors = pd.concat(scaled, ignore_index=True)
    per_step = errors.groupby("step")["error"]
    if per_step.size().min() >= MIN_RESIDUALS_PER_STEP:
        return per_step.quantile(coverage).reindex(range(horizon)).ffill().to_numpy(dtype="float64")
    return np.full(horizon, float(errors["error"].quantile(coverage)))


def holdout_scores(forecaster: Forecaster, history: pd.DataFrame, holdout: pd.DataFrame, horizon: int) -> dict[str, float]:
    """The metrics of `forecaster` on the `holdout` rows among the `horizon` periods after `history`."""
    points = forecaster.forecast(
        horizon, history=history[[c for c in forecaster.history.columns if c in history]], future=_known(forecaster, holdout)
    )
    joined = holdout[[ID, TIME, VALUE]].merge(points[[ID, TIME, OUTPUT]], on=[ID, TIME], how="left")
    if joined[OUTPUT].isna().any():
        raise ConfigError("config error: the holdout periods do not follow the history at forecast.frequency")
    return window_scores(joined, series_scale(history, forecaster.setting.season))


def _known(forecaster: Forecaster, periods: pd.DataFrame) -> pd.DataFrame | None:
    """The exogenous columns of `periods` as a forecast's `future`, when the model reads any."""
    return periods[[ID, TIME, *forecaster.exogenous]] if forecaster.exogenous else None


def check_metric(prepared: Prepared, config: Config) -> None:
    if config.modelling.metric == "mape" and (prepared.frame[VALUE] == 0).any():
        name = prepared.frame.loc[prepared.frame[VALUE] == 0, ID].iloc[0]
        raise ConfigError(
            f"config error: modelling.metric = 'mape' needs a target with no zero; series {name} of "
            f"'{config.data.target}' holds 0 (use mase or smape)"
        )


@dataclass(frozen=True)
class Run:
    """A forecasting run's data: the grid, the prepared table, the history before the holdout and the holdout."""

    setting: Setting
    prepared: Prepared
    history: pd.DataFrame
    holdout: pd.DataFrame
    fingerprint: dict[str, Any]


def prepared_run(config: Config) -> Run:
    """Validate and resample the table, check it holds the windows, and hold out each series' last horizon."""
    setting = Setting.of(config.forecast)
    prepared = prepare(config, "training_quarantine.csv")
    check_length(prepared.frame, config.forecast, setting.kept)
    check_metric(prepared, config)
    history, holdout = split_last(prepared.frame, config.forecast.horizon)
    return Run(setting, prepared, history, holdout, fingerprint_frame(history))


def candidate(config: Config, run: Run, progress: bool = True) -> tuple[Bundle, dict[str, pd.DataFrame], dict[str, Any]]:
    """Search, refit the best on the history, score it once on the holdout: the bundle to gate, its tables and plots."""
    forecast = config.forecast
    result = search(run.history, config, run.setting, progress)
    fitted = fit(result.algorithm, result.params, config.modelling.seed, run.setting, run.history)
    widths = interval_widths(result.backtest, run.history, run.setting.season, forecast.horizon, forecast.interval)
    fitted = replace(fitted, widths=widths)
    scores = holdout_scores(fitted, run.history, run.holdout, forecast.horizon)
    bundle = exported(config, result, fitted.with_history(run.prepared.frame), run.prepared, run.fingerprint, scores)
    tables = {"reference.parquet": as_table(run.history, config.data), "training_quarantine.csv": run.prepared.raw.quarantine}
    plots = {
        "leaderboard": _leaderboard_figure(result.leaderboard, config.modelling.metric),
        "holdout_forecast": holdout_figure(
            fitted.forecast(forecast.horizon, future=_known(fitted, run.holdout)), run.history, run.holdout
        ),
    }
    return bundle, tables, plots


def holdout_table(config: Config, run: Run) -> pd.DataFrame:
    """The holdout rows under the config's column names, as the champion gate scores them."""
    return as_table(run.holdout, config.data)


def exported(
    config: Config, result: SearchResult, forecaster: Forecaster, prepared: Prepared, fingerprint: dict[str, Any], holdout: dict[str, float]
) -> Bundle:
    """The forecasting bundle: the forecaster in place of a pipeline, the card saying what it forecasts."""
    data, forecast = config.data, config.forecast
    ends = forecaster.ends
    schema = InputSchema(
        columns=[ColumnSchema(name=name, kind="numerical") for name in data.features.numerical],
        target=data.target,
        task="forecasting",
        missing_values=config.validation.missing_values,
    )
    rows = {
        "modelling": int(fingerprint["rows"]),
        "holdout": int(len(prepared.frame) - fingerprint["rows"]),
        "quarantined": prepared.raw.quarantined_rows,
    }
    card = {
        **model_card(config, result.algorithm, result.params, rows),
        "forecast": {
            "frequency": forecast.frequency,
            "aggregation": forecast.aggregation,
            "fill": forecast.fill,
            "horizon": forecast.horizon,
            "season_length": forecaster.setting.season,
            "lags": list(forecaster.setting.plan.lags),
            "interval": forecast.interval,
            "time_column": data.time_column,
            "series_column": data.series_column,
            "series": forecaster.series,
            "history_end": {name: stamp.isoformat() for name, stamp in ends.items()},
            "filled_periods": prepared.report.filled,
        },
    }
    return Bundle(
        pipeline=forecaster,
        schema=schema,
        model_name=config.tracking.model_name,
        metrics={"holdout": holdout, "cv": result.cv_metrics},
        fingerprint=fingerprint,
        config=config.model_dump(mode="json"),
        card=card,
        versions={**package_versions(), **_forecasting_versions()},
        leaderboard=result.leaderboard,
    )


def _forecasting_versions() -> dict[str, str]:
    from importlib import metadata

    return {name: metadata.version(name) for name in ("mlforecast", "statsforecast", "utilsforecast")}


def gate_score(candidate: Bundle, champion: Bundle, rows: pd.DataFrame, metric: str) -> tuple[float, float]:
    """Candidate and champion scored on the same holdout rows, both forecasting from the candidate's history."""
    from ml_project.series import from_table

    assert candidate.path is not None
    data = _data_of(candidate)
    history = from_table(pd.read_parquet(candidate.path / "reference.parquet"), data)
    holdout = from_table(rows, data)
    horizon = int(candidate.card["forecast"]["horizon"])
    return (
        holdout_scores(candidate.pipeline, history, holdout, horizon)[metric],
        holdout_scores(champion.pipeline, history, holdout, horizon)[metric],
    )


def _data_of(bundle: Bundle) -> Any:
    from ml_project.config import DataConfig

    return DataConfig.model_validate(bundle.config["data"])


def _leaderboard_figure(leaderboard: pd.DataFrame, metric: str) -> Any:
    from ml_project.evaluation import leaderboard_figure

    return leaderboard_figure(leaderboard, metric)


def holdout_figure(points: pd.DataFrame, history: pd.DataFrame, holdout: pd.DataFrame, shown: int = 4) -> Any:
    """Actual vs forecast on the holdout, with the interval band and the periods before it, per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(points[ID].unique())[:shown]
    figure, axes = plt.subplots(len(names), 1, figsize=(9, 2.6 * len(names)), squeeze=False)
    for axis, name in zip(axes[:, 0], names):
        before = history[history[ID] == name].tail(3 * len(holdout[holdout[ID] == name]))
        mine, actual = points[points[ID] == name], holdout[holdout[ID] == name]
        axis.plot(before[TIME], before[VALUE], color="0.5", label="history")
        axis.plot(actual[TIME], actual[VALUE], color="black", label="actual")
        axis.plot(mine[TIME], mine[OUTPUT], color="tab:blue", label="forecast")
        axis.fill_between(mine[TIME], mine[f"{OUTPUT}_lower"], mine[f"{OUTPUT}_upper"], color="tab:blue", alpha=0.2)
        axis.set_title(str(name), fontsize=9)
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure



FORECAST_COLUMNS = ["timestamp", "forecast", "forecast_lower", "forecast_upper", "model_version"]


def forecast_table(
    bundle: Bundle, horizon: int | None = None, history: pd.DataFrame | None = None, future: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The next `horizon` periods (default: the bundle's forecast.horizon) of every series, as written out.

    Columns: `series` (when the data has a series column), `timestamp`, `forecast`, `forecast_lower`,
    `forecast_upper`, `model_version`; `horizon` rows per series at consecutive timestamps.
    `history` (the long layout) forecasts after newer observations than the bundle holds.
    """
    forecaster: Forecaster = bundle.pipeline
    steps = int(horizon or bundle.card["forecast"]["horizon"])
    points = forecaster.forecast(steps, history=history, future=future)
    table = points.rename(columns={TIME: "timestamp"}).assign(model_version=bundle.version)
    if bundle.card["forecast"].get("series_column"):
        return table.rename(columns={ID: "series"})[["series", *FORECAST_COLUMNS]]
    return table[FORECAST_COLUMNS]


def forecast_history(config: Config, bundle: Bundle, horizon: int | None, future_path: str | None = None) -> pd.DataFrame:
    """`forecast_table` after the newest observations of `data.path` (read, validated and resampled again).

    The history may have grown since training: the forecast starts after each series' last period in
    the file, with the lags taken from it; the bundle's model is not refitted.
    """
    from ml_project.errors import BundleError

    if bundle.schema.task != "forecasting":
        raise BundleError(
            f"bundle error: {bundle.model_name} {bundle.version} is a {bundle.schema.task} model; "
            "forecasting needs a bundle trained with data.task = forecasting"
        )
    prepared = prepare(config)
    future = _future(config, future_path) if future_path else None
    return forecast_table(bundle, horizon, history=prepared.frame, future=future)


def _future(config: Config, path: str) -> pd.DataFrame:
    """The exogenous columns for the forecast periods, from a file with the training table's columns."""
    from ml_project.ingestion import read_table, require_columns
    from ml_project.series import to_long
    from ml_project.validation import coerce_datetime

    data = config.data
    assert data.time_column is not None
    table = read_table(path, None, [data.series_column] if data.series_column else [], config.validation.missing_values)
    columns = [*([data.series_column] if data.series_column else []), data.time_column, *data.features.numerical]
    require_columns(table.columns, columns, path)
    table = table.assign(**{data.target: 0.0, data.time_column: coerce_datetime(table[data.time_column])})
    return to_long(table, data).drop(columns=VALUE)


def logged_forecasts(logged: pd.DataFrame) -> pd.DataFrame:
    """The prediction log's forecast rows (`read_predictions` output) as ID, TIME (the time each is for), forecast.

    A served forecast is logged one row per period: features {series, timestamp, step, forecast_lower,
    forecast_upper}, prediction the forecast (documentation/serving.md).
    """
    features = pd.DataFrame(list(logged["features"]), index=logged.index)
    missing = [key for key in ("series", "timestamp") if key not in features]
    if missing:
        raise ConfigError(f"config error: the logged rows of this model hold no '{missing[0]}': they are not forecasts")
    return pd.DataFrame(
        {
            ID: features["series"].astype(str),
            TIME: pd.to_datetime(features["timestamp"], format="ISO8601", utc=True).dt.tz_localize(None),
            "step": features.get("step", pd.Series(np.nan, index=logged.index)),
            OUTPUT: pd.to_numeric(logged["prediction"], errors="coerce"),
            f"{OUTPUT}_lower": pd.to_numeric(features.get(f"{OUTPUT}_lower"), errors="coerce"),
            f"{OUTPUT}_upper": pd.to_numeric(features.get(f"{OUTPUT}_upper"), errors="coerce"),
            "model_version": logged["model_version"].to_numpy(),
            "logged_at": logged["logged_at"].to_numpy(),
        }
    )


def live_scores(points: pd.DataFrame, actual: pd.DataFrame, season: int) -> dict[str, Any]:
    """Scores of the logged forecasts whose actuals have arrived (matched on series and the time they are for).

    `actual` is the data file as prepared for training (its newest observations included). A forecast for
    a period after its series' last observation is waiting for its actual; one for a series the file
    does not hold is counted apart.
    """
    ends = actual.groupby(ID)[TIME].max()
    joined = points.merge(actual[[ID, TIME, VALUE]], on=[ID, TIME], how="left")
    known = joined[ID].isin(ends.index)
    waiting = known & (joined[TIME] > joined[ID].map(ends))
    matched = joined[joined[VALUE].notna()]
    scale = series_scale(actual, season)
    result: dict[str, Any] = {
        "forecasts": int(len(points)),
        "with_actuals": int(len(matched)),
        "waiting": int(waiting.sum()),
        "unknown_series": int((~known).sum()),
        "metrics": window_scores(matched, scale) if len(matched) else None,
        "per_series": {
            str(name): window_scores(rows, scale) for name, rows in matched.groupby(ID, sort=True)
        },
    }
    inside = (matched[VALUE] >= matched[f"{OUTPUT}_lower"]) & (matched[VALUE] <= matched[f"{OUTPUT}_upper"])
    result["interval_coverage"] = float(inside.mean()) if len(matched) else None
    return result


def actual_vs_forecast_figure(points: pd.DataFrame, actual: pd.DataFrame, shown: int = 6) -> Any:
    """Actual against logged forecast by the time each forecast is for, per series, with the interval band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(points[ID].unique())[:shown]
    figure, axes = plt.subplots(len(names), 1, figsize=(9, 2.6 * len(names)), squeeze=False)
    for axis, name in zip(axes[:, 0], names):
        mine = points[points[ID] == name].sort_values(TIME)
        span = actual[(actual[ID] == name) & (actual[TIME] >= mine[TIME].min()) & (actual[TIME] <= mine[TIME].max())]
        axis.plot(span[TIME], span[VALUE], color="black", label="actual")
        axis.plot(mine[TIME], mine[OUTPUT], ".", color="tab:blue", label="forecast (by the time it is for)")
        axis.fill_between(mine[TIME], mine[f"{OUTPUT}_lower"], mine[f"{OUTPUT}_upper"], color="tab:blue", alpha=0.15)
        axis.set_title(str(name), fontsize=9)
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure
