"""Forecasting data: the table read, validated and put on a regular grid, one series per id.

`prepare` returns the long frame every forecasting step works on (`unique_id`, `ds`, `y` and the
exogenous columns, Nixtla's layout), sorted by series then time, with one row per period from each
series' first to its last observation. On the way nothing is dropped silently: rows with a bad
timestamp, series name or value are quarantined with the reason (as for every other task),
periods holding several observations are combined by `forecast.aggregation`, and periods with none
are filled by `forecast.fill`; both are counted per series in `SeriesReport` and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from ml_project.config import Config, ConfigError, DataConfig, ForecastConfig
from ml_project.ingestion import DataError, read_table, require_columns
from ml_project.validation import ColumnSchema, InputSchema, ValidationResult, validate, warn_set_aside

ID, TIME, VALUE = "unique_id", "ds", "y"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeriesReport:
    """Per series: periods on the grid, periods that held several rows (aggregated), periods with none (filled)."""

    periods: dict[str, int] = field(default_factory=dict)
    aggregated: dict[str, int] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)

    def lines(self, forecast: ForecastConfig) -> list[str]:
        said = []
        for name, count in self.aggregated.items():
            if count:
                said.append(f"series {name}: {count} periods held several rows, combined by {forecast.aggregation}")
        for name, count in self.filled.items():
            if count:
                said.append(
                    f"series {name}: {count} of {self.periods[name]} periods had no observation, filled by {forecast.fill}"
                )
        return said


@dataclass(frozen=True)
class Prepared:
    """The regular long frame, the validation result of the raw table and what resampling did."""

    frame: pd.DataFrame
    raw: ValidationResult
    report: SeriesReport


def raw_schema(data: DataConfig, missing_values: list[str]) -> InputSchema:
    """The raw table's columns as validation checks them: series as text, time as a timestamp, target a number."""
    assert data.time_column is not None
    columns = [ColumnSchema(name=data.series_column, kind="categorical", nullable=False)] if data.series_column else []
    columns.append(ColumnSchema(name=data.time_column, kind="datetime", nullable=False))
    columns += [ColumnSchema(name=name, kind="numerical") for name in data.features.numerical]
    return InputSchema(columns=columns, target=data.target, task="forecasting", missing_values=missing_values)


def _parse_time(table: pd.DataFrame, data: DataConfig) -> tuple[pd.DataFrame, pd.Series]:
    """With data.time_format, the time column parsed by it, and which present values it does not fit
    (refused in `read_series`, never parsed some other way)."""
    assert data.time_column is not None
    if data.time_format is None:
        return table, pd.Series(False, index=table.index)
    text = table[data.time_column]
    parsed = pd.to_datetime(text, format=data.time_format, errors="coerce")
    unmatched = parsed.isna() & text.notna()
    return table.assign(**{data.time_column: parsed.astype(object).where(parsed.notna(), text)}), unmatched


def read_series(config: Config) -> ValidationResult:
    """The forecasting table validated; invalid rows are quarantined with a reason, as for every task."""
    data, spelt = config.data, config.validation.missing_values
    text = [data.series_column] if data.series_column else []
    table = read_table(data.path, data.query, text, spelt)
    require_columns(table.columns, data.forecast_columns, data.path)
    if table.empty:
        raise DataError(f"data error: {data.path} has no rows")
    parsed, unmatched = _parse_time(table, data)
    result = validate(parsed, raw_schema(data, spelt), with_target=True, source=data.path)
    result = _refuse_unmatched(result, table, unmatched, data)
    if result.valid.empty:
        raise DataError(f"data error: {data.path} has no valid row left after validation (see the quarantine reasons)")
    return result


def _refuse_unmatched(result: ValidationResult, table: pd.DataFrame, unmatched: pd.Series, data: DataConfig) -> ValidationResult:
    """Rows whose time does not fit data.time_format are quarantined with that reason (once per row)."""
    assert data.time_column is not None
    time_lines = result.quarantine["column"] == data.time_column
    rows = unmatched[unmatched].index.difference(pd.Index(result.quarantine.loc[time_lines, "row"]))
    if rows.empty:
        return result
    lines = pd.DataFrame(
        {
            "row": rows.to_numpy(),
            "column": data.time_column,
            "value": table.loc[rows, data.time_column].astype(str).to_numpy(),
            "reason": f"does not match data.time_format {data.time_format!r}",
        }
    )
    quarantine = pd.concat([result.quarantine, lines], ignore_index=True).sort_values(["row", "column"], kind="stable", ignore_index=True)
    return ValidationResult(valid=result.valid.drop(index=rows, errors="ignore"), quarantine=quarantine)


def to_long(valid: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """The validated rows in Nixtla's layout; without a series column every row is series `data.target`."""
    ids = valid[data.series_column].astype(str) if data.series_column else pd.Series(data.target, index=valid.index)
    frame = pd.DataFrame({ID: ids.to_numpy(), TIME: valid[data.time_column].to_numpy()})
    for name in data.features.numerical:
        frame[name] = valid[name].to_numpy(dtype="float64")
    frame[VALUE] = valid[data.target].to_numpy(dtype="float64")
    return frame


def regular(long: pd.DataFrame, forecast: ForecastConfig) -> tuple[pd.DataFrame, SeriesReport]:
    """Each series resampled to `forecast.frequency`: several rows per period aggregated, empty periods filled."""
    assert forecast.frequency is not None
    pieces, report = [], SeriesReport()
    for name, rows in long.groupby(ID, sort=True):
        indexed = rows.drop(columns=ID).set_index(TIME).sort_index()
        grouped = indexed.resample(forecast.frequency)
        sizes = grouped.size()
        values = grouped.agg(forecast.aggregation)
        empty = values[VALUE].isna().to_numpy()
        _check_grid(str(name), int(empty.sum()), len(values), forecast)
        report.periods[str(name)] = len(values)
        report.aggregated[str(name)] = int((sizes > 1).sum())
        report.filled[str(name)] = int(empty.sum())
        filled = _filled(values, forecast)
        pieces.append(filled.reset_index().assign(**{ID: str(name)}))
    frame = pd.concat(pieces, ignore_index=True)
    return frame[[ID, TIME, *[c for c in frame.columns if c not in (ID, TIME, VALUE)], VALUE]], report


def _filled(values: pd.DataFrame, forecast: ForecastConfig) -> pd.DataFrame:
    if forecast.fill == "zero":
        return values.fillna(0.0)
    if forecast.fill == "ffill":
        return values.ffill().bfill()
    return values.interpolate(method="time", limit_direction="both")


def _check_grid(name: str, empty: int, periods: int, forecast: ForecastConfig) -> None:
    """Refuse a grid finer than the data: most periods would be made up by the fill rule."""
    if periods > 1 and empty * 2 > periods:
        raise ConfigError(
            f"config error: forecast.frequency = '{forecast.frequency}' is finer than the data of series {name}: "
            f"{empty} of {periods} periods hold no observation; choose the data's own frequency or a coarser one"
        )


def check_length(frame: pd.DataFrame, forecast: ForecastConfig, needed_history: int) -> None:
    """Every series must hold the holdout, the backtest windows and enough history before them."""
    lengths = frame.groupby(ID, sort=True).size()
    windows = forecast.backtest_windows + 1
    needed = forecast.horizon * windows + needed_history
    short = lengths[lengths < needed]
    if len(short):
        name, length = str(short.index[0]), int(short.iloc[0])
        raise ConfigError(
            f"config error: forecast.horizon = {forecast.horizon} with forecast.backtest_windows = "
            f"{forecast.backtest_windows} needs {needed} periods per series ({windows} windows of {forecast.horizon} "
            f"after {needed_history} to learn from); series {name} has {length} at {forecast.frequency}"
            + (f" ({len(short)} series are too short)" if len(short) > 1 else "")
        )


def prepare(config: Config, quarantine_file: str | None = None) -> Prepared:
    """The forecasting table, validated and regular (see the module docstring); `quarantine_file` is where
    the run lists the rows set aside (the modelling run's training_quarantine.csv), for the warning."""
    raw = read_series(config)
    warn_set_aside(raw, quarantine_file)
    frame, report = regular(to_long(raw.valid, config.data), config.forecast)
    for line in report.lines(config.forecast):
        logger.info(line)
    return Prepared(frame, raw, report)


def split_last(frame: pd.DataFrame, periods: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each series' last `periods` rows apart from the rest (the holdout is never a random sample)."""
    position = frame.groupby(ID, sort=False).cumcount(ascending=False)
    last = (position < periods).to_numpy()
    return frame[~last].reset_index(drop=True), frame[last].reset_index(drop=True)


def as_table(frame: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """A long frame back under the config's column names (the bundle's reference and holdout files)."""
    assert data.time_column is not None
    renamed = frame.rename(columns={TIME: data.time_column, VALUE: data.target})
    if data.series_column:
        return renamed.rename(columns={ID: data.series_column})
    return renamed.drop(columns=ID)


def from_table(table: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """`as_table`'s inverse, for files the bundle wrote itself."""
    assert data.time_column is not None
    frame = table.rename(columns={data.time_column: TIME, data.target: VALUE})
    if data.series_column:
        frame = frame.rename(columns={data.series_column: ID})
    else:
        frame.insert(0, ID, data.target)
    frame[TIME] = pd.to_datetime(frame[TIME])
    frame[ID] = frame[ID].astype(str)
    return frame


def next_periods(last: pd.Series, frequency: str, horizon: int) -> pd.DataFrame:
    """The `horizon` timestamps after each series' last one (index: series id), in Nixtla's layout."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    rows = [
        pd.DataFrame({ID: name, TIME: pd.date_range(end + offset, periods=horizon, freq=offset)})
        for name, end in last.items()
    ]
    return pd.concat(rows, ignore_index=True)

