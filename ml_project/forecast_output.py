"""Where forecasts are written: a CSV or parquet file, or an SQL table keyed by (series, timestamp).

A file is written whole (to a temporary name, then renamed), so re-running replaces it. A table is
created when missing, with the key as its primary key; re-running replaces the rows of the same
(series, timestamp) in one transaction and keeps every other row, so a table collects forecasts
of many runs and never holds a key twice. Any SQLAlchemy URL works (sqlite:///…,
postgresql+psycopg://…).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ml_project.errors import ConfigError, DataError

KEY = ("series", "timestamp")


def is_url(output: str) -> bool:
    return "://" in output and not output.startswith("file://")


def write_forecast(table: pd.DataFrame, output: str, table_name: str | None = None) -> str:
    """Write `table` (forecasting.forecast_table's columns) to `output`; returns where, for the console."""
    if is_url(output):
        if not table_name:
            raise ConfigError(f"config error: --output {output} is a database: name the table with --table")
        rows = write_table(table, output, table_name)
        return f"{rows} rows in table {table_name} of {_shown(output)}"
    if table_name:
        raise ConfigError(f"config error: --table {table_name} is for a database --output, not the file {output}")
    path = Path(output.removeprefix("file://"))
    if path.suffix not in (".csv", ".parquet"):
        raise ConfigError(f"config error: --output {output} must end in .csv or .parquet, or be an SQLAlchemy URL")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    if path.suffix == ".parquet":
        table.to_parquet(temporary, index=False)
    else:
        table.to_csv(temporary, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    os.replace(temporary, path)
    return str(path)


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _sql_table(metadata: Any, name: str, keyed: list[str]) -> Any:
    import sqlalchemy as sa

    columns: list[Any] = [sa.Column("series", sa.String(255), primary_key=True)] if "series" in keyed else []
    columns += [
        sa.Column("timestamp", sa.DateTime(), primary_key=True),
        sa.Column("forecast", sa.Float(), nullable=False),
        sa.Column("forecast_lower", sa.Float(), nullable=False),
        sa.Column("forecast_upper", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
    ]
    return sa.Table(name, metadata, *columns)


def write_table(table: pd.DataFrame, url: str, name: str) -> int:
    """Upsert by key: delete the rows of the keys being written, insert the new ones, in one transaction."""
    import sqlalchemy as sa

    keyed = [column for column in KEY if column in table.columns]
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        wanted = _sql_table(metadata, name, keyed)
        inspector = sa.inspect(engine)
        if inspector.has_table(name):
            present = {column["name"] for column in inspector.get_columns(name)}
            missing = [column.name for column in wanted.columns if column.name not in present]
            if missing:
                raise DataError(f"data error: table {name} has no column {missing[0]}; it was not made for forecasts")
        records = _records(table)
        with engine.begin() as connection:
            wanted.create(connection, checkfirst=True)
            key = sa.and_(*[wanted.c[column] == sa.bindparam(f"key_{column}") for column in keyed])
            connection.execute(
                wanted.delete().where(key), [{f"key_{column}": record[column] for column in keyed} for record in records]
            )
            connection.execute(wanted.insert(), records)
        return len(records)
    finally:
        engine.dispose()


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    stamps = [stamp.to_pydatetime() for stamp in pd.to_datetime(table["timestamp"])]  # the driver's datetime
    frame = table.assign(timestamp=pd.Series(stamps, index=table.index, dtype=object))
    if "series" in frame:
        frame["series"] = frame["series"].astype(str)
    records: list[dict[str, Any]] = frame.astype(object).to_dict("records")
    return records
