"""series: the forecasting table validated, resampled to the frequency, gaps and duplicates counted, split in time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ml_project.config import Config, ConfigError, ForecastConfig, build_config
from ml_project.series import ID, TIME, VALUE, check_length, prepare, regular, split_last


def forecasting_config(tmp_path: Path, table: pd.DataFrame, series: bool = True, **forecast: Any) -> Config:
    path = tmp_path / "series.csv"
    table.to_csv(path, index=False)
    data = {"task": "forecasting", "path": str(path), "target": "value", "time_column": "when"}
    if series:
        data["series_column"] = "queue"
    return build_config(
        {
            "data": data,
            "forecast": {"frequency": "1h", "horizon": 2, "backtest_windows": 1, **forecast},
            "modelling": {"algorithms": ["seasonal_naive"]},
            "paths": {"output": str(tmp_path / "output")},
            "tracking": {"enabled": False, "experiment": "e", "model_name": "m"},
        }
    )


def long(values: dict[str, list[tuple[str, float]]]) -> pd.DataFrame:
    rows = [{ID: name, TIME: pd.Timestamp(when), VALUE: value} for name, points in values.items() for when, value in points]
    return pd.DataFrame(rows)


def test_several_rows_in_a_period_are_aggregated_and_empty_periods_filled_and_counted() -> None:
    frame = long(
        {
            "A": [("2026-01-01 00:10", 1.0), ("2026-01-01 00:50", 3.0), ("2026-01-01 03:00", 8.0)],
            "B": [("2026-01-01 01:00", 5.0), ("2026-01-01 02:00", 7.0)],
        }
    )
    result, report = regular(frame, ForecastConfig(frequency="1h"))
    assert result[ID].tolist() == ["A"] * 4 + ["B"] * 2
    assert result[TIME].dt.hour.tolist() == [0, 1, 2, 3, 1, 2]
    assert result[VALUE].tolist() == [2.0, 4.0, 6.0, 8.0, 5.0, 7.0]  # mean of 1 and 3; 1:00 and 2:00 interpolated in time
    assert (report.periods, report.aggregated, report.filled) == ({"A": 4, "B": 2}, {"A": 1, "B": 0}, {"A": 2, "B": 0})
    assert report.lines(ForecastConfig(frequency="1h")) == [
        "series A: 1 periods held several rows, combined by mean",
        "series A: 2 of 4 periods had no observation, filled by interpolate",
    ]


@pytest.mark.parametrize("aggregation, fill, values", [("sum", "zero", [4.0, 0.0, 0.0, 8.0]), ("max", "ffill", [3.0, 3.0, 3.0, 8.0])])
def test_aggregation_and_fill_rules(aggregation: str, fill: str, values: list[float]) -> None:
    frame = long({"A": [("2026-01-01 00:10", 1.0), ("2026-01-01 00:50", 3.0), ("2026-01-01 03:00", 8.0)]})
    result, _ = regular(frame, ForecastConfig(frequency="1h", aggregation=aggregation, fill=fill))  # type: ignore[arg-type]
    assert result[VALUE].tolist() == values


def test_a_frequency_finer_than_the_data_is_refused_naming_the_key() -> None:
    frame = long({"A": [("2026-01-01", 1.0), ("2026-01-02", 2.0), ("2026-01-03", 3.0)]})
    with pytest.raises(ConfigError) as error:
        regular(frame, ForecastConfig(frequency="1h"))
    assert str(error.value) == (
        "config error: forecast.frequency = '1h' is finer than the data of series A: 46 of 49 periods hold no "
        "observation; choose the data's own frequency or a coarser one"
    )


def test_a_history_too_short_for_the_windows_names_the_keys_and_the_series() -> None:
    frame = pd.concat([long({"A": [(f"2026-01-01 {h:02d}:00", 1.0) for h in range(20)]}), long({"B": [("2026-01-01", 1.0)] })])
    with pytest.raises(ConfigError) as error:
        check_length(frame, ForecastConfig(frequency="1h", horizon=4, backtest_windows=2), needed_history=10)
    assert str(error.value) == (
        "config error: forecast.horizon = 4 with forecast.backtest_windows = 2 needs 22 periods per series "
        "(3 windows of 4 after 10 to learn from); series A has 20 at 1h (2 series are too short)"
    )


def test_the_holdout_is_each_series_last_periods() -> None:
    frame = long({"A": [(f"2026-01-01 {h:02d}:00", h) for h in range(5)], "B": [(f"2026-01-01 {h:02d}:00", 10 + h) for h in range(3)]})
    history, holdout = split_last(frame, 2)
    assert history[VALUE].tolist() == [0, 1, 2, 10]
    assert holdout[VALUE].tolist() == [3, 4, 11, 12]


def test_prepare_quarantines_bad_rows_with_their_reason_and_keeps_the_rest(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "queue": ["LLAP", "LLAP", "LLAP", "DEFAULT", "DEFAULT", None],
            "when": ["2026-01-01 00:00", "2026-01-01 01:00", "yesterday", "2026-01-01 00:00", "2026-01-01 01:00", "2026-01-01 01:00"],
            "value": [1.0, "x", 3.0, 4.0, 5.0, 6.0],
        }
    )
    prepared = prepare(forecasting_config(tmp_path, table))
    # A required column's refused value is also reported as the missing value it leaves (as for every task's target).
    assert prepared.raw.quarantine[["row", "column", "value", "reason"]].values.tolist() == [
        [1, "value", "x", "expected a finite number"],  # refused once: not also "missing value"
        [2, "when", "yesterday", "expected a date/time"],
        [5, "queue", "nan", "missing value"],
    ]
    assert prepared.frame[[ID, VALUE]].values.tolist() == [["DEFAULT", 4.0], ["DEFAULT", 5.0], ["LLAP", 1.0]]


def test_the_time_column_in_an_explicit_format_and_without_a_series_column(tmp_path: Path) -> None:
    table = pd.DataFrame({"when": ["01.01.2026 00h", "01.01.2026 01h", "01.01.2026 02h"], "value": [1.0, 2.0, 3.0]})
    prepared = prepare(forecasting_config(tmp_path, table, series=False, frequency="1h").model_copy(
        update={"data": forecasting_config(tmp_path, table, series=False).data.model_copy(update={"time_format": "%d.%m.%Y %Hh"})}
    ))
    assert prepared.frame[ID].unique().tolist() == ["value"]  # one series, named after the target
    assert prepared.frame[TIME].astype(str).tolist() == ["2026-01-01 00:00:00", "2026-01-01 01:00:00", "2026-01-01 02:00:00"]


def test_a_time_that_does_not_fit_data_time_format_is_refused_not_parsed_another_way(tmp_path: Path) -> None:
    """2026-01-01 03:00 is a time pandas reads, but not in the configured format: quarantined with that reason."""
    table = pd.DataFrame({"when": ["01.01.2026 00h", "01.01.2026 01h", "2026-01-01 03:00", "01.01.2026 02h", "soon"], "value": [1.0, 2.0, 9.0, 3.0, 4.0]})
    base = forecasting_config(tmp_path, table, series=False, frequency="1h")
    prepared = prepare(base.model_copy(update={"data": base.data.model_copy(update={"time_format": "%d.%m.%Y %Hh"})}))
    assert prepared.raw.quarantine.values.tolist() == [
        [2, "when", "2026-01-01 03:00", "does not match data.time_format '%d.%m.%Y %Hh'"],
        [4, "when", "soon", "expected a date/time"],
    ]
    assert prepared.frame[VALUE].tolist() == [1.0, 2.0, 3.0]
