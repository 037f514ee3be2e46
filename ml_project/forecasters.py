"""Forecasting candidates and the fitted forecaster a bundle holds.

Two well-kept libraries do the forecasting (documentation/forecasting.md says why these two):
statsforecast fits the statistical models one series at a time (SeasonalNaive, AutoETS, AutoARIMA,
MSTL), mlforecast turns scikit-learn regressors into one global model over every series, with the
lags, the rolling mean and the calendar parts of `time_features` computed from each series' past.

`Forecaster` is what the bundle pickles in place of a scikit-learn pipeline: the fitted engine,
the newest observations of each series (the lags of the next forecast come from them) and the
per-series interval widths learnt from the backtest residuals. `forecast(h, history)` answers the
next `h` periods after each series' last observation, from the stored history or from a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd

from ml_project.config import ForecastConfig
from ml_project.errors import DataError
from ml_project.modelling import SEARCH_SPACES
from ml_project.series import ID, TIME, VALUE, next_periods
from ml_project.time_features import (
    DAY,
    REPEATING,
    LagPlan,
    calendar_features,
    chosen_season_length,
    lag_plan,
    period_of,
)

OUTPUT = "forecast"
Kind = Literal["statistical", "ml"]


@dataclass(frozen=True)
class Setting:
    """What every candidate is built from: the grid, the season, the lags and the calendar parts."""

    frequency: str
    season: int
    plan: LagPlan
    calendar: tuple[Callable[[pd.DatetimeIndex], Any], ...]
    seasons: tuple[int, ...]  # MSTL's: a day and a week for sub-daily data, else the one season
    differences: tuple[int, ...] = (1,)
    scaling: str = "none"  # forecast.scaling

    @property
    def needed(self) -> int:
        """Past periods an ML forecast needs: the longest lag or rolling window, after the differencing."""
        return self.plan.longest + sum(self.differences)

    @property
    def kept(self) -> int:
        """Past periods a forecaster keeps per series: what the lags need, and two seasons for the baselines."""
        return max(self.needed, 2 * self.season) + 1

    @classmethod
    def of(cls, forecast: ForecastConfig) -> Setting:
        assert forecast.frequency is not None
        season = chosen_season_length(forecast)
        period = period_of(forecast.frequency)
        seasons = (season, 7 * season) if period is not None and period < DAY and season * period == DAY else (season,)
        calendar = tuple(calendar_features(forecast))
        plan = lag_plan(forecast)
        return cls(forecast.frequency, season, plan, calendar, seasons, tuple(forecast.differences), forecast.scaling)


@dataclass(frozen=True)
class Candidate:
    """One algorithm a config may name: its kind, how it is built, its defaults and how HPO samples it."""

    kind: Kind
    build: Callable[[dict[str, Any], int, Setting], Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    sample: Callable[[Any], dict[str, Any]] = lambda trial: {}
    calendar: Literal["all", "repeating"] = "all"  # ML: which calendar parts it sees (time_features.REPEATING)


def _seasonal_naive(params: dict[str, Any], seed: int, setting: Setting) -> Any:
    from statsforecast.models import SeasonalNaive

    return SeasonalNaive(season_length=setting.season)


def _auto_ets(params: dict[str, Any], seed: int, setting: Setting) -> Any:
    from statsforecast.models import AutoETS

    return AutoETS(season_length=setting.season)


def _auto_arima(params: dict[str, Any], seed: int, setting: Setting) -> Any:
    from statsforecast.models import AutoARIMA

    return AutoARIMA(season_length=setting.season)


def _mstl(params: dict[str, Any], seed: int, setting: Setting) -> Any:
    from statsforecast.models import MSTL

    return MSTL(season_length=list(setting.seasons) if len(setting.seasons) > 1 else setting.season)


def _regressor(name: str, calendar: Literal["all", "repeating"] = "all") -> Candidate:
    spec = SEARCH_SPACES["regression"][name]
    return Candidate("ml", lambda params, seed, setting: spec.build(params, seed), spec.defaults, spec.sample, calendar)


# The one table of forecasting candidates; config.ALGORITHM_NAMES["forecasting"] names the same ones.
FORECASTERS: dict[str, Candidate] = {
    "seasonal_naive": Candidate("statistical", _seasonal_naive),
    "auto_ets": Candidate("statistical", _auto_ets),
    "auto_arima": Candidate("statistical", _auto_arima),
    "mstl": Candidate("statistical", _mstl),
    "ridge": _regressor("ridge", calendar="repeating"),
    "hist_gradient_boosting": _regressor("hist_gradient_boosting"),
    "random_forest": _regressor("random_forest"),
}


def ml_engine(algorithm: str, estimator: Any, setting: Setting) -> Any:
    """mlforecast's global model over every series: lags, a rolling mean of the last season, calendar parts,
    learning the target differenced at `forecast.differences` and, with `forecast.scaling: standard`, each
    series standardised by its own mean and deviation (mlforecast undoes both in every forecast)."""
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.target_transforms import Differences, LocalStandardScaler

    calendar = list(setting.calendar)
    if FORECASTERS[algorithm].calendar == "repeating":
        calendar = [part for part in calendar if getattr(part, "__name__", "") in REPEATING]
    transforms: list[Any] = [Differences(list(setting.differences))] if setting.differences else []
    if setting.scaling == "standard":
        transforms.append(LocalStandardScaler())
    return MLForecast(
        models={OUTPUT: estimator},
        freq=setting.frequency,
        lags=list(setting.plan.lags),
        lag_transforms={1: [RollingMean(window_size=setting.plan.rolling_window)]},
        date_features=calendar,
        target_transforms=transforms or None,
        num_threads=1,
    )


def stats_engine(model: Any, setting: Setting) -> Any:
    from statsforecast import StatsForecast

    return StatsForecast(models=[model], freq=setting.frequency, n_jobs=1)


def series_scale(frame: pd.DataFrame, season: int) -> pd.Series:
    """Each series' typical seasonal step, mean |y_t - y_(t-season)|: MASE's scale and the interval's unit."""

    def scale(values: pd.Series) -> float:
        y = values.to_numpy(dtype="float64")
        for lag in (season, 1):
            if len(y) > lag:
                step = float(np.mean(np.abs(y[lag:] - y[:-lag])))
                if step > 0:
                    return step
        return 1.0  # a constant series: errors are read in the series' own units

    return frame.groupby(ID, sort=True)[VALUE].apply(scale)


@dataclass(frozen=True)
class Forecaster:
    """A fitted candidate that forecasts the periods after each series' newest observation."""

    algorithm: str
    params: dict[str, Any]
    kind: Kind
    setting: Setting
    engine: Any  # a fitted MLForecast, or {series id: fitted statsforecast model}
    history: pd.DataFrame  # the newest observations per series (ID, TIME, exogenous, VALUE)
    exogenous: tuple[str, ...] = ()
    widths: np.ndarray = field(default_factory=lambda: np.zeros(1))  # interval half-width per step, in scale units
    scale: dict[str, float] = field(default_factory=dict)

    @property
    def series(self) -> list[str]:
        return sorted(self.history[ID].unique())

    @property
    def ends(self) -> pd.Series:
        """Each series' newest timestamp."""
        return self.history.groupby(ID, sort=True)[TIME].max()

    def with_history(self, frame: pd.DataFrame) -> Forecaster:
        """The same fitted model, forecasting after `frame`.

        An ML model keeps the periods its lags need; a statistical one keeps every period, because its
        `forward` runs its fitted parameters over the whole series (its states start at the first period).
        """
        ordered = frame.sort_values([ID, TIME], kind="stable")
        if self.kind == "ml":
            ordered = ordered.groupby(ID, sort=False).tail(self.setting.kept)
        scale = {**self.scale, **series_scale(frame, self.setting.season).to_dict()}
        return replace(self, history=ordered.reset_index(drop=True), scale=scale)

    def forecast(self, horizon: int, history: pd.DataFrame | None = None, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """The next `horizon` periods per series: ID, TIME, forecast, forecast_lower, forecast_upper.

        `history` (same layout as the stored one) replaces the stored observations of the series it
        holds; `future` gives the exogenous columns for every forecast period.
        """
        newest = self.history if history is None else _merged(self.history, history)
        forecaster = self
        if history is not None:  # the interval of a sent series is in units of its own (newest) scale
            sent = newest[newest[ID].isin(history[ID].unique())]
            forecaster = replace(self, scale={**self.scale, **series_scale(sent, self.setting.season).to_dict()})
        if self.exogenous and future is None:
            raise DataError(
                "data error: the model uses exogenous columns (" + ", ".join(self.exogenous) + "): "
                f"give their values for the next {horizon} periods of every series"
            )
        if self.kind == "ml":
            points = self._ml_points(newest, horizon, future)
        else:
            points = self._stats_points(newest, horizon)
        return forecaster._with_interval(points)

    def _ml_points(self, newest: pd.DataFrame, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame:
        _refuse_short(newest, self.setting.needed + 1, "the model's lags need")
        X_df = None if future is None else future[[ID, TIME, *self.exogenous]]
        points = self.engine.predict(horizon, new_df=newest, X_df=X_df)
        return points[[ID, TIME, OUTPUT]]

    def _stats_points(self, newest: pd.DataFrame, horizon: int) -> pd.DataFrame:
        _refuse_short(newest, self.setting.season, "the model needs a full season:")
        grid = next_periods(newest.groupby(ID, sort=True)[TIME].max(), self.setting.frequency, horizon)
        values = []
        for name, rows in newest.groupby(ID, sort=True):
            y = rows.sort_values(TIME)[VALUE].to_numpy(dtype="float64")
            model = self.engine.get(name)
            if model is None:  # a series the model never saw: its parameters are fitted on what was sent
                model = FORECASTERS[self.algorithm].build(self.params, 0, self.setting)
                values.append(model.forecast(y=y, h=horizon)["mean"])
            else:
                values.append(model.forward(y=y, h=horizon)["mean"])
        return grid.assign(**{OUTPUT: np.concatenate(values)})

    def _with_interval(self, points: pd.DataFrame) -> pd.DataFrame:
        step = points.groupby(ID, sort=False).cumcount().to_numpy()
        width = self.widths[np.minimum(step, len(self.widths) - 1)]
        scale = points[ID].map(self.scale).fillna(1.0).to_numpy(dtype="float64")
        values = points[OUTPUT].to_numpy(dtype="float64")
        return points.assign(
            **{OUTPUT: values, f"{OUTPUT}_lower": values - width * scale, f"{OUTPUT}_upper": values + width * scale}
        ).reset_index(drop=True)


def _refuse_short(newest: pd.DataFrame, least: int, why: str) -> None:
    """A series with fewer than `least` observations cannot be forecast: one line naming it."""
    sizes = newest.groupby(ID, sort=True).size()
    short = sizes[sizes < least]
    if len(short):
        count = int(short.iloc[0])
        raise DataError(
            f"data error: series {short.index[0]} has {count} observation{'' if count == 1 else 's'}; {why} "
            f"at least {least}"
        )


def _merged(stored: pd.DataFrame, sent: pd.DataFrame) -> pd.DataFrame:
    """The sent observations replace the stored ones of the same series; other series keep theirs."""
    absent = [column for column in stored.columns if column not in sent.columns]
    if absent:
        raise DataError(f"data error: the history sent has no column '{absent[0]}', which the model forecasts from")
    kept = stored[~stored[ID].isin(sent[ID].unique())]
    return pd.concat([kept, sent[stored.columns]], ignore_index=True).sort_values([ID, TIME], kind="stable")


def fit(algorithm: str, params: dict[str, Any], seed: int, setting: Setting, frame: pd.DataFrame) -> Forecaster:
    """`algorithm` fitted on `frame` (every observation of every series in it)."""
    candidate = FORECASTERS[algorithm]
    exogenous = tuple(column for column in frame.columns if column not in (ID, TIME, VALUE))
    if candidate.kind == "ml":
        engine = ml_engine(algorithm, candidate.build(params, seed, setting), setting)
        engine.fit(frame, static_features=[], dropna=True, keep_last_n=setting.kept)
    else:
        engine = {}
        for name, rows in frame.groupby(ID, sort=True):
            model = candidate.build(params, seed, setting)
            engine[str(name)] = model.fit(y=rows.sort_values(TIME)[VALUE].to_numpy(dtype="float64"))
        exogenous = ()  # statistical models forecast from the series alone
    fitted = Forecaster(algorithm, params, candidate.kind, setting, engine, frame.iloc[:0], exogenous)
    return fitted.with_history(frame if candidate.kind == "ml" else frame[[ID, TIME, VALUE]])
