"""Dashboard data: what each panel shows, as JSON-ready dicts, from the model registry, the prediction log
(aggregated in SQL: a page over 100k logged predictions reads a few hundred rows) and the latest
monitoring summary. `deployment/dashboard_api.py` draws them; another front end can read the same dicts
from the service's /dashboard/api/<panel>.

Panels:
- `model`: the model card (name, version, champion or not, trained at, holdout metrics, top of the leaderboard).
- `volume`: predictions per time bucket, per model version, with the bucket width chosen for the window.
- `predictions`: the class mix (classification) or a histogram of the predicted values (regression).
- `labels`: actual vs predicted per time bucket where labels arrived (the `labels` table of the prediction
  log): mean actual and mean predicted (regression), accuracy and a rolling accuracy (classification).
  A request id logged more than once counts with its latest row, as in monitoring.
- `drift`: the newest production monitoring summary (`monitoring-<stamp>.json` under paths.reports).
- `forecast` (a forecasting model): actual vs forecast per series (at most MAX_SERIES): the logged forecasts
  by the period they are for (the newest logged forecast of each period), their interval, and the actuals
  the service knows (the bundle's stored history, `Sources.actuals`). A forecasting model's page shows
  `model`, `volume` and `forecast` (FORECAST_PANELS); the tabular panels answer "off" for it.

Every panel holds `state`: "ok", or "empty" / "off" / "unavailable" with a one-line `message`
saying why there is nothing to draw (no predictions in the window, no labels yet, no monitoring run
yet, prediction log switched off, database unreachable). Nothing here imports pandas, mlflow,
evidently or plotly.
"""

from __future__ import annotations

import calendar
import csv
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Engine, Float, and_, case, cast, func, literal, literal_column, select
from sqlalchemy.sql import ColumnElement

from ml_project.config import greater_is_better
from ml_project.errors import DashboardError, NoPredictionLog, PredictionLogError, jsonable, naive_utc, one_line
from ml_project.prediction_log import has_labels_table, labels, predictions, reading, shown_url

__all__ = [
    "PANELS",
    "BundleInfo",
    "DashboardError",
    "Selection",
    "Sources",
    "panels",
    "parse_selection",
]

PANELS = ("model", "volume", "predictions", "labels", "drift")
FORECAST_PANELS = ("model", "volume", "forecast")
ALL_PANELS = (*PANELS, "forecast")
TABULAR_ONLY = ("predictions", "labels", "drift")
MAX_SERIES = 6  # series drawn by the forecast panel (the others are counted)
MAX_FORECAST_ROWS = 50_000  # newest logged forecast points read per page
MAX_ACTUALS = 200  # newest stored observations shown per series
# Query parameter `window`: how far back from now; `all` is from the first logged prediction.
WINDOWS = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400, "all": None}
DEFAULT_WINDOW = "all"
PARAMETERS = ("window", "since", "until", "version")
MAX_BUCKETS = 120
BUCKET_SECONDS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400)
HISTOGRAM_BINS = 30
TOP_CLASSES = 12
ROLLING_BUCKETS = 5
LEADERBOARD_ROWS = 10
VERSION_LENGTH = 128
SUMMARY = re.compile(r"^monitoring-(?!holdout-)[A-Za-z0-9._-]+\.json$")
REPORT = re.compile(r"^(drift|quality)-[A-Za-z0-9._-]+\.html$")
LOG_OFF = "the prediction log is off (prediction_log.enabled = false)"
EARLIEST, LATEST = datetime(1970, 1, 1), datetime(9999, 1, 1)  # bounds of since and until
_Span = tuple[datetime, datetime, int]  # first and last logged_at in the selection, and its count


@dataclass(frozen=True)
class Selection:
    """What the page shows: logged_at in [since, until) (naive UTC; None is open) and one model version or all.

    `now` (naive UTC) is when the selection was made: a window such as 24h ends there.
    """

    now: datetime
    window: str = DEFAULT_WINDOW
    since: datetime | None = None
    until: datetime | None = None
    version: str | None = None

    @property
    def end(self) -> datetime | None:
        """Where the selection stops: `until`, else now for a window back from now (a clock ahead of the
        server's cannot put predictions from the future into "the last 24 hours"); None for `all`."""
        if self.until is not None:
            return self.until
        return self.now + timedelta(seconds=1) if self.window != "all" else None

    def as_dict(self) -> dict[str, Any]:
        """The selection as JSON-ready values (ISO times with Z)."""
        return {"window": self.window, "since": _iso(self.since), "until": _iso(self.until), "version": self.version}


@dataclass(frozen=True)
class BundleInfo:
    """A model version as the card shows it: read from the loaded bundle or from the bundle's JSON files.

    Reading a registry version never unpickles its pipeline: only model.json, metrics.json and leaderboard.csv.
    """

    model_name: str
    version: str
    card: dict[str, Any]
    metrics: dict[str, Any]
    leaderboard: list[dict[str, Any]] | None
    task: str

    @classmethod
    def from_bundle(cls, bundle: Any) -> BundleInfo:
        """From a loaded `artifacts.Bundle`."""
        board = bundle.leaderboard
        return cls(
            model_name=bundle.model_name,
            version=bundle.version,
            card=dict(bundle.card),
            metrics=dict(bundle.metrics),
            leaderboard=None if board is None else _records(board.head(LEADERBOARD_ROWS).to_dict("records")),
            task=bundle.schema.task,
        )

    @classmethod
    def from_folder(cls, folder: Path) -> BundleInfo:
        """From a bundle folder's model.json, metrics.json and (if present) leaderboard.csv."""
        try:
            card = _mapping(json.loads((folder / "model.json").read_text()))
            metrics = _mapping(json.loads((folder / "metrics.json").read_text()))
            board = None
            if (folder / "leaderboard.csv").is_file():
                with (folder / "leaderboard.csv").open(newline="") as handle:
                    board = _records([_typed(row) for _, row in zip(range(LEADERBOARD_ROWS), csv.DictReader(handle))])
        except (OSError, ValueError) as error:
            raise DashboardError(f"bundle {folder.name}: cannot read its card: {one_line(error)}") from None
        return cls(
            model_name=str(card.get("model_name", folder.parent.name)),
            version=str(card.get("version", folder.name)),
            card=card,
            metrics=metrics,
            leaderboard=board,
            task=str(card.get("task", "")),
        )


@dataclass(frozen=True)
class Sources:
    """Where the dashboard reads from; any of them may be missing (a deployed service has no registry)."""

    model_name: str
    served: BundleInfo | None = None
    served_as: str = "path"
    log_url: str | None = None
    models: Path | None = None  # the registry: <paths.output>/models
    reports: Path | None = None  # monitoring summaries and evidently HTML: <paths.output>/reports
    # A forecasting model's actuals: series -> (ISO times, values), its newest observations (stored history).
    actuals: Mapping[str, tuple[list[str], list[float]]] | None = None

    @property
    def forecasting(self) -> bool:
        """Whether the model forecasts series: the served bundle's task, else the newest registry version's."""
        if self.served is not None:
            return self.served.task == "forecasting"
        versions = self.registry_versions()
        if not versions or self.model_dir is None:
            return False
        try:
            return BundleInfo.from_folder(self.model_dir / versions[-1]).task == "forecasting"
        except DashboardError:
            return False

    def shown_panels(self) -> tuple[str, ...]:
        """The panels the page shows for this model."""
        return FORECAST_PANELS if self.forecasting else PANELS

    @property
    def model_dir(self) -> Path | None:
        """The registry folder of this model, if there is a registry."""
        return None if self.models is None else self.models / self.model_name

    def registry_versions(self) -> list[str]:
        """Version folders of this model in the registry, oldest first."""
        folder = self.model_dir
        if folder is None or not folder.is_dir():
            return []
        return sorted(
            child.name
            for child in folder.iterdir()
            if child.is_dir() and not child.is_symlink() and not child.name.startswith(".") and (child / "model.json").is_file()
        )

    def champion(self) -> str | None:
        """The champion's version: the registry's `champion` link, or the served version if it was served as champion."""
        folder = self.model_dir
        link = None if folder is None else folder / "champion"
        if link is not None and link.is_symlink():
            return link.resolve().name
        if self.served is not None and self.served_as == "champion":
            return self.served.version
        return None


def parse_selection(params: Mapping[str, str], now: datetime | None = None) -> Selection:
    """The query parameters window, since, until (ISO 8601, UTC when no offset) and version, checked."""
    now = naive_utc(now or datetime.now(timezone.utc))
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise DashboardError(f"query parameter '{unknown[0]}' is not known; use: {', '.join(PARAMETERS)}")
    window = params.get("window") or DEFAULT_WINDOW
    if window not in WINDOWS:
        raise DashboardError(f"query parameter window = '{window[:40]}' is not one of: {', '.join(WINDOWS)}")
    since = _moment(params, "since")
    until = _moment(params, "until")
    seconds = WINDOWS[window]
    if since is None and seconds is not None:
        since = (until or now) - timedelta(seconds=seconds)
    if since is not None and until is not None and since >= until:
        raise DashboardError(f"query parameter since = {_iso(since)} is not before until = {_iso(until)}")
    version = params.get("version") or None
    if version is not None and len(version) > VERSION_LENGTH:
        raise DashboardError(f"query parameter version has {len(version)} characters; at most {VERSION_LENGTH}")
    return Selection(now=now, window=window, since=since, until=until, version=version)


def panels(names: list[str], sources: Sources, selection: Selection) -> dict[str, dict[str, Any]]:
    """The data of the named panels (see PANELS) for the selection, reading the prediction log through one engine."""
    for name in names:
        if name not in ALL_PANELS:
            raise DashboardError(f"panel '{name[:40]}' is not one of: {', '.join(ALL_PANELS)}")
    found: dict[str, dict[str, Any]] = {}
    forecasting = sources.forecasting
    if forecasting:
        found.update({name: _state("off", f"the {name} panel is for tabular models; this one forecasts series") for name in names if name in TABULAR_ONLY})
    elif "forecast" in names:
        found["forecast"] = _state("off", "the forecast panel is for a forecasting model (data.task: forecasting)")
    from_log = [name for name in names if name in LOG_PANELS and name not in found]
    if from_log:
        found.update(_log_panels(from_log, sources, selection))
    if "model" in names:
        found["model"] = model_panel(sources, selection)
    if "drift" in names and "drift" not in found:
        found["drift"] = drift_panel(sources, selection)
    if "forecast" in names and "forecast" not in found:
        found["forecast"] = forecast_panel(sources, selection)
    return {name: found[name] for name in names}


def _log_panels(names: list[str], sources: Sources, selection: Selection) -> dict[str, dict[str, Any]]:
    """The prediction log's panels, or each one's empty / off / unavailable state when the log cannot be read."""
    if sources.log_url is None:
        return {name: _state("off", LOG_OFF) for name in names}
    try:
        with reading(sources.log_url) as engine:
            try:
                span = _span(engine, sources, selection)
            except Exception as error:  # the database went away, a driver error
                return {name: _state("unavailable", f"prediction log {shown_url(str(sources.log_url))}: {one_line(error)}") for name in names}
            if span is None:
                return {name: _empty_window(selection) for name in names}
            return {name: _guarded(name, engine, sources, selection, span) for name in names}
    except NoPredictionLog:
        return {name: _state("empty", f"no predictions logged yet: no prediction log at {shown_url(str(sources.log_url))}") for name in names}
    except PredictionLogError as error:  # cannot connect, a table of another shape
        return {name: _state("unavailable", str(error)) for name in names}


def _guarded(name: str, engine: Engine, sources: Sources, selection: Selection, span: _Span) -> dict[str, Any]:
    """One log panel; a database failure mid-page becomes the panel's "unavailable" state, not a failed page."""
    try:
        return LOG_PANELS[name](engine, sources, selection, span)
    except Exception as error:  # the database went away, a driver error, a dialect without time buckets
        return _state("unavailable", f"prediction log {shown_url(str(sources.log_url))}: {one_line(error)}")


# --- model card ---------------------------------------------------------------------------------------------


def model_panel(sources: Sources, selection: Selection) -> dict[str, Any]:
    """The card of the selected version (the served one by default), the versions known, and the leaderboard."""
    registry = sources.registry_versions()
    champion = sources.champion()
    wanted = selection.version or (sources.served.version if sources.served else None) or champion
    wanted = wanted or (registry[-1] if registry else None)
    info: BundleInfo | None = None
    if sources.served is not None and wanted == sources.served.version:
        info = sources.served
    elif wanted is not None and wanted in registry and sources.model_dir is not None:
        try:
            info = BundleInfo.from_folder(sources.model_dir / wanted)
        except DashboardError as error:
            return {**_state("unavailable", str(error)), "model_name": sources.model_name, "version": wanted}
    base = {"registry_versions": registry, "champion_version": champion, "served_version": _served(sources)}
    if info is None:
        if wanted is None:
            message = f"no model {sources.model_name} yet: train one with ./executables/run.sh"
        else:
            message = f"model {sources.model_name} version {wanted} is not in the registry here; its logged predictions are shown"
        return {**_state("empty", message), **base, "model_name": sources.model_name, "version": wanted}
    metric = str(info.card.get("metric") or "")
    board = info.leaderboard
    return {
        "state": "ok",
        **base,
        "model_name": info.model_name,
        "version": info.version,
        "champion": champion == info.version if champion is not None else None,
        "served": sources.served is not None and sources.served.version == info.version,
        "task": info.task or info.card.get("task"),
        "target": info.card.get("target"),
        "algorithm": info.card.get("algorithm"),
        "params": info.card.get("params"),
        "trained_at": info.card.get("trained_at"),
        "rows": _mapping(info.card.get("rows")),
        "metric": metric,
        "greater_is_better": greater_is_better(metric),
        "holdout_metrics": _metrics(info.metrics.get("holdout")),
        "cv_metrics": _metrics(info.metrics.get("cv")),
        "leaderboard": board,
        "leaderboard_message": None if board else "the leaderboard is not in this bundle (a serving copy leaves it out)",
        "forecast": _forecast_card(info.card.get("forecast")),
    }


def _forecast_card(value: Any) -> dict[str, Any] | None:
    """A forecasting card's basics: frequency, horizon, interval and its series (None for a tabular model)."""
    forecast = _mapping(value)
    if not forecast:
        return None
    series = [str(name) for name in _sequence(forecast.get("series"))]
    return {
        "frequency": forecast.get("frequency"),
        "horizon": forecast.get("horizon"),
        "interval": _float(forecast.get("interval")),
        "series": series,
        "history_end": {str(key): str(stamp) for key, stamp in _mapping(forecast.get("history_end")).items()},
    }


def _served(sources: Sources) -> str | None:
    return sources.served.version if sources.served is not None else None


# --- prediction log panels ----------------------------------------------------------------------------------


def volume_panel(engine: Engine, sources: Sources, selection: Selection, span: _Span) -> dict[str, Any]:
    """Predictions per time bucket and model version, plus the versions seen in the window."""
    first, last, total = span
    grid = _grid(selection, first, last)
    bucket = _bucket(engine, predictions.c.logged_at, grid)
    query = (
        select(bucket.label("bucket"), predictions.c.model_version, func.count().label("n"))
        .where(*_filters(sources, selection))
        .group_by(bucket, predictions.c.model_version)
    )
    by_version: dict[str, dict[int, int]] = {}
    with engine.connect() as connection:
        for index, version, count in connection.execute(query):
            by_version.setdefault(str(version), {})[int(index)] = int(count)
    times = grid.times(index for counts in by_version.values() for index in counts)
    series = [
        {"model_version": version, "counts": [counts.get(index, 0) for index in range(len(times))]}
        for version, counts in sorted(by_version.items())
    ]
    return {
        "state": "ok",
        **grid.as_dict(),
        "bucket_starts": times,
        "series": series,
        "total": total,
        "first_logged_at": _iso(first),
        "last_logged_at": _iso(last),
    }


def predictions_panel(engine: Engine, sources: Sources, selection: Selection, span: _Span) -> dict[str, Any]:
    """Classification: count and share per predicted class. Regression: a histogram of the predicted values."""
    total = span[2]
    task = _task(engine, sources, selection)
    where = _filters(sources, selection)
    if task == "regression":
        histogram = _histogram(engine, where, total)
        if not histogram["counts"]:
            return _state("empty", f"none of the {total} predictions in this window is a number")
        return {"state": "ok", "task": task, "total": total, **histogram}
    query = (
        select(predictions.c.prediction, func.count().label("n"))
        .where(*where)
        .group_by(predictions.c.prediction)
        .order_by(func.count().desc(), predictions.c.prediction)
    )
    with engine.connect() as connection:
        rows = [(_decoded(text), int(count)) for text, count in connection.execute(query)]
    shown, rest = rows[:TOP_CLASSES], rows[TOP_CLASSES:]
    classes = [{"class": str(value), "count": count, "share": count / total} for value, count in shown]
    if rest:
        other = sum(count for _, count in rest)
        classes.append({"class": f"{len(rest)} other classes", "count": other, "share": other / total})
    return {"state": "ok", "task": task, "total": total, "classes": classes}


def _histogram(engine: Engine, where: list[ColumnElement[bool]], total: int) -> dict[str, Any]:
    """HISTOGRAM_BINS equal bins between the smallest and largest prediction, counted in SQL.

    Only predictions logged as JSON numbers count (CAST would read null or text as 0); the others are
    reported as `not_numeric`.
    """
    where = [*where, _numeric(predictions.c.prediction)]
    value = cast(predictions.c.prediction, Float)
    with engine.connect() as connection:
        low, high, mean, count = connection.execute(
            select(func.min(value), func.max(value), func.avg(value), func.count()).where(*where)
        ).one()
        if not count:
            return {"edges": [], "counts": [], "mean": None, "min": None, "max": None, "not_numeric": total}
        low, high = float(low), float(high)
        # high/bins - low/bins stays finite where (high - low) would overflow (±1e308)
        width = high / HISTOGRAM_BINS - low / HISTOGRAM_BINS if high > low else 1.0
        index = _floor(engine, value / literal(width) - literal(low / width))
        query = select(index.label("bin"), func.count()).where(*where).group_by(index)
        counts = [0] * HISTOGRAM_BINS
        for position, found in connection.execute(query):
            # the maximum (and rounding at the top edge) falls in the last bin
            counts[min(max(int(position if position is not None else HISTOGRAM_BINS), 0), HISTOGRAM_BINS - 1)] += int(found)
    edges = [low + width * step for step in range(HISTOGRAM_BINS + 1)]
    return {"edges": edges, "counts": counts, "mean": _float(mean), "min": low, "max": high, "not_numeric": total - int(count)}


def labels_panel(engine: Engine, sources: Sources, selection: Selection, span: _Span) -> dict[str, Any]:
    """Actual vs predicted per time bucket over the predictions whose labels arrived (latest row per request id)."""
    first, last, total = span
    if not has_labels_table(engine):
        return _state("empty", "no labels yet: run monitoring_production_data_local with --labels to store them")
    task = _task(engine, sources, selection)
    grid = _grid(selection, first, last)
    # The latest row of each labelled request id within the selection, by logged_at then id, as
    # monitoring joins labels: ranked by a window function, one sort of the labelled rows.
    rank = func.row_number().over(
        partition_by=predictions.c.request_id, order_by=(predictions.c.logged_at.desc(), predictions.c.id.desc())
    )
    ranked = (
        select(predictions.c.request_id, predictions.c.logged_at, predictions.c.prediction, rank.label("rank"))
        .where(*_filters(sources, selection), predictions.c.request_id.in_(select(labels.c.request_id)))
        .subquery("ranked")
    )
    bucket = _bucket(engine, ranked.c.logged_at, grid)
    joined = ranked.join(labels, labels.c.request_id == ranked.c.request_id)
    where: list[ColumnElement[bool]] = [ranked.c.rank == 1]
    if task == "regression":
        where += [_numeric(ranked.c.prediction), _numeric(labels.c.label)]  # CAST reads null as 0
        predicted, actual = cast(ranked.c.prediction, Float), cast(labels.c.label, Float)
        measures = [func.avg(actual), func.avg(predicted), func.avg(func.abs(actual - predicted))]
    else:
        measures = [func.sum(case((ranked.c.prediction == labels.c.label, 1), else_=0))]
    query = select(bucket.label("bucket"), func.count(), *measures).select_from(joined).where(*where).group_by(bucket)
    with engine.connect() as connection:
        rows = {int(row[0]): row[1:] for row in connection.execute(query)}
    labelled = sum(int(row[0]) for row in rows.values())
    if not labelled:
        return _state("empty", f"no labels yet for the {total} predictions in this window")
    times = grid.times(rows)
    counts = [int(rows[index][0]) if index in rows else 0 for index in range(len(times))]
    result: dict[str, Any] = {
        "state": "ok",
        "task": task,
        **grid.as_dict(),
        "bucket_starts": times,
        "labelled": counts,
        "labelled_total": labelled,
        "predictions_total": total,
    }
    if task == "regression":
        actual_means = [_float(rows[index][1]) if index in rows else None for index in range(len(times))]
        predicted_means = [_float(rows[index][2]) if index in rows else None for index in range(len(times))]
        errors = [_float(rows[index][3]) if index in rows else None for index in range(len(times))]
        error_sum = sum(rows[index][3] * rows[index][0] for index in rows)
        return {**result, "actual_mean": actual_means, "predicted_mean": predicted_means, "mae": errors, "mae_total": error_sum / labelled}
    correct = [int(rows[index][1]) if index in rows else 0 for index in range(len(times))]
    accuracy = [correct[index] / counts[index] if counts[index] else None for index in range(len(times))]
    rolling = []
    for index in range(len(times)):  # over at most MAX_BUCKETS buckets, not over rows
        window = slice(max(0, index - ROLLING_BUCKETS + 1), index + 1)
        seen = sum(counts[window])
        rolling.append(sum(correct[window]) / seen if seen else None)
    return {
        **result,
        "correct": correct,
        "accuracy": accuracy,
        "rolling_accuracy": rolling,
        "rolling_buckets": ROLLING_BUCKETS,
        "accuracy_total": sum(correct) / labelled,
    }


LOG_PANELS = {"volume": volume_panel, "predictions": predictions_panel, "labels": labels_panel}


# --- forecast ---------------------------------------------------------------------------------------------


def forecast_panel(sources: Sources, selection: Selection) -> dict[str, Any]:
    """Actual vs forecast per series: the logged forecasts by the period they are for, with their interval.

    A period forecast more than once in the selection shows its newest logged forecast. An empty or
    missing log still shows the actuals, with a sentence saying why no forecast is drawn.
    """
    actuals = dict(sources.actuals or {})
    if sources.log_url is None:
        return _forecast_view({}, actuals, "empty", LOG_OFF)
    try:
        with reading(sources.log_url) as engine:
            points, read = _logged_points(engine, sources, selection)
    except NoPredictionLog:
        return _forecast_view({}, actuals, "empty", f"no forecasts logged yet: no prediction log at {shown_url(str(sources.log_url))}")
    except PredictionLogError as error:
        return _forecast_view({}, actuals, "unavailable", str(error))
    except Exception as error:  # the database went away, a driver error
        return _forecast_view({}, actuals, "unavailable", f"prediction log {shown_url(str(sources.log_url))}: {one_line(error)}")
    if not points:
        message = _empty_window(selection)["message"].replace("predictions", "forecasts")
        return _forecast_view({}, actuals, "empty", message)
    capped = f" (the newest {MAX_FORECAST_ROWS} logged points)" if read >= MAX_FORECAST_ROWS else ""
    return _forecast_view(points, actuals, "ok", f"{read} logged forecast points{capped}")


def _logged_points(engine: Engine, sources: Sources, selection: Selection) -> tuple[dict[str, dict[str, tuple[float, Any, Any]]], int]:
    """series -> period (ISO) -> (forecast, lower, upper) of the newest logged forecast of that period."""
    query = (
        select(predictions.c.features, predictions.c.prediction)
        .where(*_filters(sources, selection))
        .order_by(predictions.c.logged_at.desc(), predictions.c.id.desc())
        .limit(MAX_FORECAST_ROWS)
    )
    points: dict[str, dict[str, tuple[float, Any, Any]]] = {}
    read = 0
    with engine.connect() as connection:
        for features_text, prediction_text in connection.execute(query):
            read += 1
            features = _mapping(_decoded(str(features_text)))
            value, period = _float(_decoded(str(prediction_text))), _period(features.get("timestamp"))
            if value is None or period is None or features.get("series") is None:
                continue  # not a forecast point (a tabular prediction of the same model name)
            series = points.setdefault(str(features["series"]), {})
            if period not in series:  # rows come newest first
                series[period] = (value, _float(features.get("forecast_lower")), _float(features.get("forecast_upper")))
    return points, read


def _forecast_view(points: dict[str, dict[str, tuple[float, Any, Any]]], actuals: dict[str, tuple[list[str], list[float]]], state: str, message: str) -> dict[str, Any]:
    """The panel: one entry per series (those forecast first, then those with actuals only), at most MAX_SERIES."""
    names = sorted(points) + sorted(set(actuals) - set(points))
    series = []
    for name in names[:MAX_SERIES]:
        periods = sorted(points.get(name, {}))
        values = [points[name][period] for period in periods]
        times, observed = actuals.get(name, ([], []))
        series.append(
            {
                "series": name,
                "timestamps": periods,
                "forecast": [value[0] for value in values],
                "forecast_lower": [value[1] for value in values],
                "forecast_upper": [value[2] for value in values],
                "actual_timestamps": list(times[-MAX_ACTUALS:]),
                "actual": list(observed[-MAX_ACTUALS:]),
            }
        )
    return {
        "state": state,
        "message": message,
        "series": series,
        "series_total": len(names),
        "series_left_out": names[MAX_SERIES:],
        "actuals_source": "the bundle's stored history" if actuals else None,
    }


def _period(value: Any) -> str | None:
    """The ISO time a forecast is for, as naive UTC to the second (as POST /forecast answers it)."""
    try:
        moment = naive_utc(datetime.fromisoformat(str(value)))
    except (TypeError, ValueError, OverflowError):
        return None
    return moment.isoformat(timespec="seconds")


# --- drift ----------------------------------------------------------------------------------------------------


def drift_panel(sources: Sources, selection: Selection) -> dict[str, Any]:
    """The newest monitoring summary of this model (covering the selected version, if one is selected)."""
    folder = sources.reports
    if folder is None:
        return _state("off", "no reports folder here: monitoring runs where paths.reports is (the standalone dashboard reads it)")
    names = [path.name for path in folder.glob("monitoring-*.json") if SUMMARY.match(path.name)] if folder.is_dir() else []
    for name in sorted(names, key=_summary_order, reverse=True):
        try:
            summary = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue  # being written, or not ours: the next newest one
        if not isinstance(summary, dict) or summary.get("model_name") != sources.model_name:
            continue
        versions = _mapping(summary.get("model_versions"))
        if selection.version is not None and selection.version not in versions:
            continue
        return _drift_summary(folder, name, summary)
    covering = f" covering version {selection.version}" if selection.version else ""
    return _state(
        "empty",
        f"no monitoring run yet{covering}: run ./executables/run.sh monitoring_production_data_local (reports go to {folder})",
    )


def _summary_order(name: str) -> tuple[str, int]:
    """monitoring-<stamp>.json before monitoring-<stamp>-2.json before -10 (two runs in one second)."""
    match = re.match(r"^monitoring-(.+?)(?:-(\d+))?\.json$", name)
    return (match.group(1), int(match.group(2) or 1)) if match else (name, 0)


def _drift_summary(folder: Path, name: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The panel's view of one summary, its shapes checked (a hand-edited or foreign file cannot break the
    page): the verdict, per-column results, quality beside the holdout, links to the reports that exist."""
    drift = _mapping(summary.get("drift"))
    quality = _mapping(summary.get("quality"))
    reports = {}
    for kind, path in _mapping(summary.get("reports")).items():
        file = Path(str(path)).name
        if REPORT.match(file) and (folder / file).is_file():
            reports[str(kind).removesuffix("_html")] = file
    version = _mapping(summary.get("reference")).get("model_version")
    baseline = {kind: f"{kind}-holdout-{version}.html" for kind in ("drift", "quality")} if isinstance(version, str) else {}
    per_column = {
        str(column): {
            "test": str(result.get("test", "")),
            "score": _float(result.get("score")),
            "threshold": _float(result.get("threshold")),
            "drifted": bool(result.get("drifted")),
        }
        for column, result in _mapping(drift.get("per_column")).items()
        if isinstance(result, dict)
    }
    window = {key: str(value) for key, value in _mapping(summary.get("window")).items() if value is not None}
    labels = {key: value for key, value in _mapping(quality.get("labels")).items() if isinstance(value, int)}
    return {
        "state": "ok",
        "summary_file": name,
        "created_at": str(summary.get("created_at", "")),
        "window": window,
        "rows": summary.get("rows") if isinstance(summary.get("rows"), int) else None,
        "model_versions": {str(key): value for key, value in _mapping(summary.get("model_versions")).items()},
        "reference_version": version if isinstance(version, str) else None,
        "drift_detected": bool(drift.get("drift_detected")),
        "drift_share": _float(drift.get("drift_share")),
        "threshold": _float(drift.get("threshold")),
        "drifted_columns": [column for column in _sequence(drift.get("drifted_columns")) if isinstance(column, str)],
        "per_column": per_column,
        "unchecked_columns": {str(key): str(value) for key, value in _mapping(drift.get("unchecked_columns")).items()},
        "quality_metrics": _metrics(quality.get("metrics")) or None,
        "holdout_metrics": _metrics(quality.get("holdout_metrics")) or None,
        "labels": labels or None,
        "reports": reports,
        "baseline_reports": {kind: file for kind, file in baseline.items() if REPORT.match(file) and (folder / file).is_file()},
    }


# --- SQL helpers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """Time buckets: bucket i covers [origin + i * width, origin + (i + 1) * width) seconds since the epoch."""

    origin: int
    width: int
    count: int

    def times(self, indexes: Any = ()) -> list[str]:
        """Bucket starts: every bucket of the window, and any further one a row fell into (none is dropped)."""
        count = max([self.count, *(index + 1 for index in indexes)])
        return [_iso(datetime(1970, 1, 1) + timedelta(seconds=self.origin + index * self.width)) or "" for index in range(count)]

    def as_dict(self) -> dict[str, Any]:
        return {"bucket_seconds": self.width}


def _grid(selection: Selection, first: datetime, last: datetime) -> _Grid:
    """Buckets over the window (`all`: from the first to the last prediction), at most about MAX_BUCKETS of them."""
    start = selection.since or first
    end = selection.until or max(selection.now if selection.window != "all" else last, last)
    span = max(_epoch_of(end) - _epoch_of(start), 1)
    width = next((seconds for seconds in BUCKET_SECONDS if span / seconds <= MAX_BUCKETS), math.ceil(span / MAX_BUCKETS))
    origin = _epoch_of(start) // width * width
    return _Grid(origin=origin, width=width, count=(_epoch_of(end) - origin) // width + 1)


def _bucket(engine: Engine, column: Any, grid: _Grid) -> ColumnElement[Any]:
    """The bucket index of a naive-UTC DATETIME column, computed by the database."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        # strftime rounds to the millisecond (12:04:59.9999 -> 12:05:00); the first 19 characters truncate.
        seconds: ColumnElement[Any] = cast(func.strftime("%s", func.substr(column, 1, 19)), BigInteger)
    elif dialect == "postgresql":
        seconds = cast(func.floor(func.extract("epoch", column)), BigInteger)
    elif dialect in ("mysql", "mariadb"):
        seconds = func.timestampdiff(literal_column("SECOND"), literal("1970-01-01 00:00:00"), column)
    else:
        raise DashboardError(f"prediction log dialect '{dialect}': time buckets are written for sqlite, postgresql and mysql")
    return _floor(engine, (seconds - grid.origin) / literal(grid.width))


def _floor(engine: Engine, value: Any) -> ColumnElement[Any]:
    """floor() of a value that is never negative: SQLite's CAST truncates (and its floor() may not be built in),
    other databases' CAST rounds."""
    return cast(value if engine.dialect.name == "sqlite" else func.floor(value), BigInteger)


def _numeric(column: Any) -> ColumnElement[bool]:
    """Whether a JSON text column holds a number (not null, text or a list)."""
    return func.substr(column, 1, 1).in_(list("-0123456789"))


def _filters(sources: Sources, selection: Selection, table: Any = predictions) -> list[ColumnElement[bool]]:
    """The selection as conditions on `table` (the predictions table or an alias of it)."""
    where = [table.c.model_name == sources.model_name]
    if selection.since is not None:
        where.append(table.c.logged_at >= selection.since)
    end = selection.end
    if end is not None:
        where.append(table.c.logged_at < end)
    if selection.version is not None:
        where.append(table.c.model_version == selection.version)
    return where


def _span(engine: Engine, sources: Sources, selection: Selection) -> _Span | None:
    """First and last logged_at and the count in the selection, or None when it holds no prediction."""
    column = predictions.c.logged_at
    query = select(func.min(column), func.max(column), func.count()).where(and_(*_filters(sources, selection)))
    with engine.connect() as connection:
        first, last, count = connection.execute(query).one()
    if not count:
        return None
    return _as_datetime(first), _as_datetime(last), int(count)


def _task(engine: Engine, sources: Sources, selection: Selection) -> str:
    """The task of the selected version: its bundle in the registry, or the served one when it is the served
    version (or none is selected); else as logged: a class is JSON text, a regression prediction a number."""
    served = sources.served
    if served is not None and served.task and selection.version in (None, served.version):
        return served.task
    versions = sources.registry_versions()
    wanted = selection.version if selection.version is not None else (versions[-1] if versions else None)
    if wanted in versions and sources.model_dir is not None:
        try:
            task = BundleInfo.from_folder(sources.model_dir / wanted).task
        except DashboardError:
            task = ""  # the model panel says why; the log decides here
        if task:
            return task
    with engine.connect() as connection:
        text = connection.execute(select(predictions.c.prediction).where(*_filters(sources, selection)).limit(1)).scalar()
    return "classification" if str(text or "").startswith('"') else "regression"


def _empty_window(selection: Selection) -> dict[str, Any]:
    of = f" of version {selection.version}" if selection.version else ""
    if selection.since is None and selection.until is None:
        return _state("empty", f"no predictions{of} logged yet")
    return _state("empty", f"no predictions{of} logged from {_iso(selection.since) or 'the start'} until {_iso(selection.until) or 'now'}")


# --- small helpers ---------------------------------------------------------------------------------------------


def _state(state: str, message: str) -> dict[str, Any]:
    return {"state": state, "message": message}


def _moment(params: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 query parameter as naive UTC, between 1970 and 9999 (what the time buckets can hold)."""
    text = params.get(name)
    if not text:
        return None
    example = "such as 2026-11-23T12:00:00Z"
    try:
        moment = naive_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise DashboardError(f"query parameter {name} = '{text[:40]}' is not an ISO 8601 time {example}") from None
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        moment = datetime.min
    if not EARLIEST <= moment <= LATEST:
        raise DashboardError(f"query parameter {name} = '{text[:40]}' is not between 1970 and 9999, {example}")
    return moment


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _epoch_of(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def _as_datetime(value: Any) -> datetime:
    """SQLite may hand back text for an aggregate of a DATETIME column."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _decoded(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _float(value: Any) -> float | None:
    """A finite float, or None for anything else (None, NaN, infinity, text, a list)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value) if isinstance(value, str) else None
        except ValueError:
            value = None
    return float(value) if value is not None and math.isfinite(value) else None


def _typed(row: dict[Any, Any]) -> dict[str, Any]:
    """A leaderboard CSV row with its numbers as numbers (a short row's missing cells as None)."""
    typed: dict[str, Any] = {}
    for key, value in row.items():
        if not isinstance(key, str):
            continue  # DictReader files the cells of an over-long row under None
        if not isinstance(value, str):
            typed[key] = None
            continue
        try:
            typed[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            typed[key] = value
    return typed


def _mapping(value: Any) -> dict[Any, Any]:
    """`value` if it is a JSON object, else an empty one: files written by hand or by an older version."""
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def _metrics(value: Any) -> dict[str, float | None]:
    """Metric name -> finite number or None (a metric can be NaN: R² of one labelled row)."""
    return {str(name): _float(number) for name, number in _mapping(value).items()}


def _records(rows: list[dict[Any, Any]]) -> list[dict[str, Any]]:
    """Leaderboard rows with JSON-safe values (NaN as None, numpy scalars as Python numbers)."""
    return [jsonable(row) for row in rows]
