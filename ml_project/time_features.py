"""Features of time for forecasting: the season length of a frequency, the target lags, calendar parts.

mlforecast computes every feature from these definitions, in the backtest, in the final fit, in
batch forecasting and in the service alike: the lags and the rolling mean from the series' own past
(`lag_plan`), the calendar parts from the timestamp each forecast is for (`calendar_features`). The
calendar functions are plain module-level callables of a DatetimeIndex, so a fitted forecaster
pickles them by reference and a bundle keeps computing them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from ml_project.config import ForecastConfig

DAY = pd.Timedelta(days=1)


def period_of(frequency: str) -> pd.Timedelta | None:
    """The fixed length of one period, or None for calendar frequencies (months, quarters, years)."""
    offset = to_offset(frequency)
    if isinstance(offset, pd.offsets.Week):  # anchored on a weekday, but always seven days long
        return pd.Timedelta(days=7 * offset.n)
    try:
        return pd.Timedelta(offset)
    except ValueError:
        return None


def season_length(frequency: str) -> int:
    """Periods in one season: a day for sub-daily data, a week of days, a year of weeks, months or quarters."""
    offset = to_offset(frequency)
    period = period_of(frequency)
    if period is not None and period < DAY:
        return max(1, int(DAY // period))
    if period is not None:
        return {DAY: 7, 7 * DAY: 52}.get(period, 1)  # a week of days, a year of weeks; else no season
    name = offset.name.split("-")[0]
    per_year = {"M": 12, "MS": 12, "ME": 12, "BM": 12, "BMS": 12, "BME": 12, "SM": 24, "SMS": 24, "SME": 24}
    per_year |= {"Q": 4, "QS": 4, "QE": 4, "BQ": 4, "BQS": 4, "BQE": 4, "W": 52}
    return max(1, per_year.get(name, 1) // offset.n)


def chosen_season_length(forecast: ForecastConfig) -> int:
    assert forecast.frequency is not None
    return forecast.season_length or season_length(forecast.frequency)


def auto_lags(frequency: str, season: int) -> list[int]:
    """1, 2, 3, one and two seasons back, and a week back for sub-daily data (1,2,3,24,48,168 for 1h)."""
    lags = {1, 2, 3, season, 2 * season}
    period = period_of(frequency)
    if period is not None and period < DAY and season * period == DAY:
        lags.add(7 * season)
    return sorted(lag for lag in lags if lag >= 1)


@dataclass(frozen=True)
class LagPlan:
    """The target lags and the rolling mean (over one season, of the previous value) the ML candidates see."""

    lags: tuple[int, ...]
    rolling_window: int

    @property
    def longest(self) -> int:
        """How many past periods a forecast needs to compute every lag feature."""
        return max(max(self.lags), self.rolling_window + 1)


def lag_plan(forecast: ForecastConfig) -> LagPlan:
    assert forecast.frequency is not None
    season = chosen_season_length(forecast)
    lags = forecast.lags if isinstance(forecast.lags, list) else auto_lags(forecast.frequency, season)
    return LagPlan(tuple(sorted(lags)), max(2, season))


# Calendar parts of the timestamp a value is for. Each is named after what it returns.
def year(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.year)


def quarter(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.quarter)


def month(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.month)


def week_of_year(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.isocalendar().week, dtype="int64")


def week_of_month(dates: pd.DatetimeIndex) -> np.ndarray:
    """1 for the days up to the month's first Sunday, then one more each Monday."""
    first_weekday = (dates - pd.to_timedelta(dates.day - 1, unit="D")).dayofweek
    return np.asarray((dates.day - 1 + first_weekday) // 7 + 1)


def day_of_month(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.day)


def day_of_week(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.dayofweek)


def day_of_year(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.dayofyear)


def hour(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.hour)


def is_weekend(dates: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(dates.dayofweek >= 5, dtype="int64")


def days_to_weekend(dates: pd.DatetimeIndex) -> np.ndarray:
    """Days until the next Saturday: 5 on a Monday, 0 on Saturday, 6 on Sunday."""
    return np.asarray((5 - dates.dayofweek) % 7)


class HolidayFlag:
    """1 on a public holiday of `country` (the holidays package), else 0; named `holiday` as a feature."""

    __name__ = "holiday"

    def __init__(self, country: str) -> None:
        self.country = country

    def __call__(self, dates: pd.DatetimeIndex) -> np.ndarray:
        import holidays

        days = holidays.country_holidays(self.country, years=sorted(set(dates.year)))
        return np.asarray(pd.Index(dates.normalize()).isin(pd.DatetimeIndex(list(days))), dtype="int64")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HolidayFlag) and other.country == self.country

    def __hash__(self) -> int:
        return hash(("holiday", self.country))


# The parts that repeat within a week. A linear model reads the others (year, day of year, ...) as a trend.
REPEATING = frozenset({"hour", "day_of_week", "is_weekend", "days_to_weekend", "holiday"})


def calendar_features(forecast: ForecastConfig) -> list[Callable[[pd.DatetimeIndex], Any]]:
    """The calendar parts that vary at this frequency: no hour for daily data, no weekday for weekly."""
    assert forecast.frequency is not None
    period = period_of(forecast.frequency)
    features: list[Callable[[pd.DatetimeIndex], Any]] = [year, quarter, month]
    if period is not None and period <= pd.Timedelta(days=7):
        features += [week_of_year, week_of_month]
    if period is not None and period <= DAY:
        features += [day_of_month, day_of_week, day_of_year, is_weekend, days_to_weekend]
    if period is not None and period < DAY:
        features.append(hour)
    if forecast.holidays is not None and period is not None and period <= DAY:
        features.append(HolidayFlag(forecast.holidays))
    return features
