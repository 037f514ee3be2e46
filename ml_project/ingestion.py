"""Reading tables: whole (CSV, parquet, SQL) for modelling, in bounded chunks for scoring."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ml_project.column_rules import MISSING_VALUES
from ml_project.config import DataConfig
from ml_project.errors import DataError

SUPPORTED_SUFFIXES = (".csv", ".parquet")


def _file_format(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"data error: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(f"data error: {path} has suffix '{suffix}'; expected one of: {', '.join(SUPPORTED_SUFFIXES)}")
    return suffix


@contextmanager
def _readable(file: Path) -> Iterator[None]:
    """A file that is not what its suffix says is the user's to fix: one line, not a traceback."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowException, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"data error: cannot read {file} as {file.suffix.lstrip('.')}: {first_line}") from None


def read_table(
    path: str | Path,
    query: str | None = None,
    text_columns: Iterable[str] = (),
    missing_values: Sequence[str] = MISSING_VALUES,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a CSV or parquet file, or the result of `query` on an SQLAlchemy URL.

    `text_columns` (the categorical features) are read as text, so codes such as '01' keep their form.
    A CSV cell is missing only when spelt as one of `missing_values` (validation.missing_values).
    With `columns`, a file's other columns are never loaded (those of `columns` it lacks are left for
    `require_columns` to name).
    """
    if isinstance(path, str) and "://" in path and not path.startswith("file://"):
        return _read_sql(path, query)
    file = Path(str(path).removeprefix("file://"))
    present = table_columns(file)
    kept = None if columns is None else [name for name in present if name in set(columns)]
    with _readable(file):
        if _file_format(file) == ".csv":
            text = {column: str for column in text_columns if kept is None or column in kept}
            return pd.read_csv(file, low_memory=False, dtype=text, usecols=kept, **_na(missing_values))
        frame = pd.read_parquet(file, columns=kept)
    # pyarrow's pool keeps the table it converted (about the frame's size again) for its next read.
    import pyarrow

    pyarrow.default_memory_pool().release_unused()
    return frame


def _read_sql(url: str, query: str | None) -> pd.DataFrame:
    import sqlalchemy

    if not query:
        raise DataError(f"data error: reading from '{url}' needs a query")
    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            return pd.read_sql_query(sqlalchemy.text(query), connection)
    except sqlalchemy.exc.SQLAlchemyError as error:
        first_line = str(error).splitlines()[0]
        raise DataError(f"data error: query on '{url}' failed: {first_line}") from None


def _na(missing_values: Sequence[str]) -> dict[str, object]:
    """read_csv's missing-value options: exactly `missing_values`, not pandas' own 23 spellings."""
    return {"keep_default_na": False, "na_values": list(missing_values)}


def iter_chunks(
    path: str | Path, chunk_size: int, text_columns: Iterable[str] = (), missing_values: Sequence[str] = MISSING_VALUES
) -> Iterator[pd.DataFrame]:
    """Yield the file in frames of at most `chunk_size` rows, indexed by row number in the file.

    Memory stays bounded by the chunk size, whatever the file size. Types are inferred per chunk
    (validation coerces each column and reports values that do not fit, row by row).
    """
    file = Path(path)
    start = 0
    with _readable(file):
        for chunk in _raw_chunks(file, chunk_size, list(text_columns), missing_values):
            chunk.index = pd.RangeIndex(start, start + len(chunk))
            start += len(chunk)
            yield chunk


def _raw_chunks(
    file: Path, chunk_size: int, text_columns: list[str], missing_values: Sequence[str]
) -> Iterable[pd.DataFrame]:
    if _file_format(file) == ".csv":
        text = {column: str for column in text_columns}
        yield from pd.read_csv(file, chunksize=chunk_size, dtype=text, **_na(missing_values))
        return
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(file)
    for batch in parquet.iter_batches(batch_size=chunk_size):
        yield batch.to_pandas()


def table_columns(path: str | Path) -> list[str]:
    """The column names of a file, read without loading its rows."""
    file = Path(path)
    with _readable(file):
        if _file_format(file) == ".csv":
            import csv

            with file.open(newline="") as handle:
                names = next(csv.reader(handle), [])
        else:
            import pyarrow.parquet as pq

            names = list(pq.ParquetFile(file).schema_arrow.names)
    # pandas would rename a repeated CSV header to 'name.1' and silently use the first one.
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"data error: {file} has column '{repeated[0]}' more than once; names must be unique")
    return names


def require_columns(columns: Iterable[str], required: Iterable[str], source: str) -> None:
    """Refuse data that lacks a column the model needs, naming the first missing one."""
    present = set(columns)
    missing = [column for column in required if column not in present]
    if missing:
        raise DataError(
            f"data error: {source} has no column '{missing[0]}'"
            + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else "")
        )


def load_modelling_data(config: DataConfig, missing_values: Sequence[str] = MISSING_VALUES) -> pd.DataFrame:
    """The historic table's configured features, target and id (no other column is read from a file)."""
    # A class label is text: '1' must not become '1.0' because the column also holds a missing value.
    labels = [config.target] if config.task == "classification" else []
    required = [*config.features.all, config.target] + ([config.id_column] if config.id_column else [])
    frame = read_table(config.path, config.query, [*config.features.categorical, *labels], missing_values, columns=required)
    require_columns(frame.columns, required, config.path)
    if frame.empty:
        raise DataError(f"data error: {config.path} has no rows")
    return frame
