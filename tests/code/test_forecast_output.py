"""forecast_output: files are replaced whole, a table is keyed by (series, timestamp) and never holds a key twice."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from ml_project.errors import ConfigError, DataError
from ml_project.forecast_output import write_forecast


def forecasts(start: str, values: list[float], version: str, series: tuple[str, ...] = ("DEFAULT", "LLAP")) -> pd.DataFrame:
    rows = []
    for name in series:
        for step, value in enumerate(values):
            stamp = pd.Timestamp(start) + pd.Timedelta(hours=step)
            rows.append({"series": name, "timestamp": stamp, "forecast": value, "forecast_lower": value - 1, "forecast_upper": value + 1, "model_version": version})
    return pd.DataFrame(rows)


def test_a_table_rerun_replaces_the_same_keys_and_keeps_the_others(database: str) -> None:
    url = database
    assert write_forecast(forecasts("2026-12-03 00:00", [1.0, 2.0], "v1"), url, "capacity") == (
        f"4 rows in table capacity of {url}"
    )
    write_forecast(forecasts("2026-12-03 01:00", [5.0, 6.0], "v2"), url, "capacity")  # overlaps 01:00
    with sa.create_engine(url).connect() as connection:
        rows = connection.execute(sa.text('SELECT series, "timestamp", forecast, model_version FROM capacity ORDER BY 1, 2')).all()
    assert [(series, str(stamp)[:16], value, version) for series, stamp, value, version in rows] == [
        ("DEFAULT", "2026-12-03 00:00", 1.0, "v1"),
        ("DEFAULT", "2026-12-03 01:00", 5.0, "v2"),
        ("DEFAULT", "2026-12-03 02:00", 6.0, "v2"),
        ("LLAP", "2026-12-03 00:00", 1.0, "v1"),
        ("LLAP", "2026-12-03 01:00", 5.0, "v2"),
        ("LLAP", "2026-12-03 02:00", 6.0, "v2"),
    ]
    primary_key = sa.inspect(sa.create_engine(url)).get_pk_constraint("capacity")["constrained_columns"]
    assert primary_key == ["series", "timestamp"]


def test_a_single_series_table_is_keyed_by_timestamp(database: str) -> None:
    url = database
    single = forecasts("2026-12-03", [1.0], "v1", series=("temp",)).drop(columns="series")
    write_forecast(single, url, "temps")
    write_forecast(single.assign(forecast=9.0), url, "temps")
    with sa.create_engine(url).connect() as connection:
        assert connection.execute(sa.text('SELECT "timestamp", forecast FROM temps')).all()[0][1] == 9.0
        assert connection.execute(sa.text("SELECT count(*) FROM temps")).scalar() == 1


def test_files_are_written_whole(tmp_path: Path) -> None:
    for name in ("f.csv", "f.parquet"):
        path = tmp_path / "out" / name
        write_forecast(forecasts("2026-12-03", [1.0, 2.0, 3.0], "v1"), str(path))
        write_forecast(forecasts("2026-12-04", [4.0], "v2"), str(path))
        read = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
        assert read["forecast"].tolist() == [4.0, 4.0] and read["model_version"].tolist() == ["v2", "v2"]
    assert pd.read_csv(tmp_path / "out" / "f.csv")["timestamp"].tolist() == ["2026-12-04T00:00:00"] * 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f.csv", "f.parquet"]  # no temporary left


@pytest.mark.parametrize(
    "output, table, message",
    [
        ("sqlite:///x.db", None, "config error: --output sqlite:///x.db is a database: name the table with --table"),
        ("out.csv", "t", "config error: --table t is for a database --output, not the file out.csv"),
        ("out.json", None, "config error: --output out.json must end in .csv or .parquet, or be an SQLAlchemy URL"),
    ],
)
def test_a_wrong_destination_is_one_line(output: str, table: str | None, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        write_forecast(forecasts("2026-12-03", [1.0], "v1"), output, table)
    assert str(error.value) == message


def test_a_table_made_for_something_else_is_refused(database: str) -> None:
    url = database
    with sa.create_engine(url).begin() as connection:
        connection.execute(sa.text('CREATE TABLE capacity (series TEXT, "timestamp" TEXT)'))
    with pytest.raises(DataError) as error:
        write_forecast(forecasts("2026-12-03", [1.0], "v1"), url, "capacity")
    assert str(error.value) == "data error: table capacity has no column forecast; it was not made for forecasts"
