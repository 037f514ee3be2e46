"""time_features: the season of a frequency, the automatic lags and every calendar part, on known dates."""

from __future__ import annotations

import pandas as pd
import pytest

from ml_project import time_features as tf
from ml_project.config import ForecastConfig

# Mon 5 Jul 2010 13:00 (US Independence Day observed), Sat 5 Dec, Sun 6 Dec, Mon 7 Dec, Tue 1 Dec, Thu 31 Dec 2026
DATES = pd.DatetimeIndex(
    ["2010-07-05 13:00", "2026-12-05", "2026-12-06", "2026-12-07", "2026-12-01", "2026-12-31 23:00"]
)


@pytest.mark.parametrize(
    "frequency, season",
    [("1h", 24), ("15min", 96), ("2h", 12), ("1D", 7), ("2D", 1), ("1W", 52), ("W-MON", 52), ("MS", 12), ("3MS", 4), ("QS", 4), ("YS", 1)],
)
def test_season_length_of_each_frequency(frequency: str, season: int) -> None:
    assert tf.season_length(frequency) == season


def test_auto_lags_are_recent_periods_one_and_two_seasons_and_a_week_for_sub_daily_data() -> None:
    assert tf.auto_lags("1h", 24) == [1, 2, 3, 24, 48, 168]
    assert tf.auto_lags("1D", 7) == [1, 2, 3, 7, 14]
    assert tf.auto_lags("MS", 12) == [1, 2, 3, 12, 24]
    assert tf.auto_lags("15min", 96) == [1, 2, 3, 96, 192, 672]


def test_the_lag_plan_follows_the_config() -> None:
    auto = tf.lag_plan(ForecastConfig(frequency="1h"))
    assert (auto.lags, auto.rolling_window, auto.longest) == ((1, 2, 3, 24, 48, 168), 24, 168)
    given = tf.lag_plan(ForecastConfig(frequency="1D", lags=[7, 1], season_length=30))
    assert (given.lags, given.rolling_window, given.longest) == ((1, 7), 30, 31)


@pytest.mark.parametrize(
    "part, values",
    [
        (tf.year, [2010, 2026, 2026, 2026, 2026, 2026]),
        (tf.quarter, [3, 4, 4, 4, 4, 4]),
        (tf.month, [7, 12, 12, 12, 12, 12]),
        (tf.week_of_year, [27, 49, 49, 50, 49, 53]),
        (tf.week_of_month, [2, 1, 1, 2, 1, 5]),
        (tf.day_of_month, [5, 5, 6, 7, 1, 31]),
        (tf.day_of_week, [0, 5, 6, 0, 1, 3]),
        (tf.day_of_year, [186, 339, 340, 341, 335, 365]),
        (tf.hour, [13, 0, 0, 0, 0, 23]),
        (tf.is_weekend, [0, 1, 1, 0, 0, 0]),
        (tf.days_to_weekend, [5, 0, 6, 5, 4, 2]),
        (tf.HolidayFlag("US"), [1, 0, 0, 0, 0, 0]),
    ],
)
def test_calendar_parts_on_known_dates(part: object, values: list[int]) -> None:
    assert list(part(DATES)) == values  # type: ignore[operator]


def test_christmas_is_a_holiday_in_the_configured_country_only() -> None:
    christmas = pd.DatetimeIndex(["2026-12-25 08:00", "2026-12-26 08:00"])
    assert list(tf.HolidayFlag("US")(christmas)) == [1, 0]
    assert list(tf.HolidayFlag("GB")(christmas)) == [1, 1]  # Boxing Day


def test_calendar_parts_are_those_that_vary_at_the_frequency() -> None:
    def names(frequency: str, holidays: str | None = "US") -> list[str]:
        return [part.__name__ for part in tf.calendar_features(ForecastConfig(frequency=frequency, holidays=holidays))]

    daily = ["year", "quarter", "month", "week_of_year", "week_of_month", "day_of_month", "day_of_week", "day_of_year"]
    daily += ["is_weekend", "days_to_weekend"]
    assert names("1h") == [*daily, "hour", "holiday"]
    assert names("1D") == [*daily, "holiday"]
    assert names("1D", None) == daily
    assert names("1W") == ["year", "quarter", "month", "week_of_year", "week_of_month"]
    assert names("MS") == ["year", "quarter", "month"]
    assert tf.REPEATING == {"hour", "day_of_week", "is_weekend", "days_to_weekend", "holiday"}
