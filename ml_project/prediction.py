"""The one prediction path: validate, predict the valid rows, quarantine the rest.

`predict_frame` serves a single record and a million rows alike; `predict_file` streams a file
through it chunk by chunk so memory stays bounded by the chunk size, not the file size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_project.artifacts import Bundle
from ml_project.ingestion import DataError, iter_chunks, require_columns, table_columns
from ml_project.validation import QUARANTINE_COLUMNS, validate

ID_COLUMN = "id"


@dataclass(frozen=True)
class PredictionCounts:
    """Rows in = rows predicted + rows quarantined, always."""

    rows: int
    predicted: int
    quarantined: int


def predict_columns(bundle: Bundle, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """The one model call: (labels or values, class probabilities or None, class names).

    `columns` maps every feature to a validated 1-D array (a DataFrame works as is). The bundle's
    compiled numpy path is used when it was verified at load; otherwise the sklearn pipeline.
    """
    compiled = bundle.compiled
    if bundle.schema.task == "classification":
        # The label is read off the probabilities: one pass through the model instead of two.
        if compiled is not None:
            proba = compiled.predict_proba(columns)
        else:
            proba = bundle.pipeline.predict_proba(_frame(bundle, columns))
        classes = [str(label) for label in bundle.pipeline.classes_]
        return np.asarray(classes, dtype=object)[proba.argmax(axis=1)], proba, classes
    if compiled is not None:
        values = compiled.predict(columns)
    else:
        values = bundle.pipeline.predict(_frame(bundle, columns))
    return np.asarray(values, dtype="float64"), None, []


def _frame(bundle: Bundle, columns: Mapping[str, Any]) -> pd.DataFrame:
    if isinstance(columns, pd.DataFrame):
        return columns
    return pd.DataFrame({name: columns[name] for name in bundle.schema.feature_names})


def predict_valid(bundle: Bundle, valid: pd.DataFrame) -> pd.DataFrame:
    """Predictions for rows that passed validation: id, prediction, proba_<class>..., model_version."""
    id_column = bundle.schema.id_column
    ids = valid[id_column].to_numpy() if id_column and id_column in valid else valid.index.to_numpy()
    out: dict[str, Any] = {ID_COLUMN: ids}
    features = valid[bundle.schema.feature_names]
    if len(features) == 0:
        out["prediction"] = np.array([], dtype=object if bundle.schema.task == "classification" else "float64")
        for label in bundle.classes:
            out[f"proba_{label}"] = np.array([], dtype="float64")
    else:
        labels, proba, classes = predict_columns(bundle, features)
        out["prediction"] = labels
        for index, label in enumerate(classes):
            out[f"proba_{label}"] = proba[:, index] if proba is not None else None
    out["model_version"] = bundle.version
    return pd.DataFrame(out, index=valid.index)


def predict_frame(bundle: Bundle, frame: pd.DataFrame, source: str = "input") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate and predict; returns (predictions, quarantine). Every input row lands in exactly one."""
    result = validate(frame, bundle.schema, source=source)
    quarantine = result.quarantine
    id_column = bundle.schema.id_column
    ids = frame[id_column] if id_column and id_column in frame else pd.Series(frame.index, index=frame.index)
    quarantine = quarantine.assign(**{ID_COLUMN: ids.reindex(quarantine["row"]).to_numpy()})
    return predict_valid(bundle, result.valid), quarantine[[ID_COLUMN, *QUARANTINE_COLUMNS]]


class _TableWriter:
    """Append frames to a CSV or parquet file through Arrow (fast, and parquet stays one file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temporary = path.with_name(f".{path.name}.{os.getpid()}.{id(self)}.partial")
        self._writer: Any = None
        self._schema: Any = None
        self._empty: pd.DataFrame | None = None

    def write(self, frame: pd.DataFrame) -> None:
        """Append rows; the first non-empty frame fixes the column types (an empty one cannot)."""
        if frame.empty and self._writer is None:
            self._empty = frame
            return
        self._append(frame)

    def _append(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False, schema=self._schema)
        if self._writer is None:
            # A column with only missing values has no type yet (e.g. ids of quarantined rows): text.
            fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
            table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
            self._schema = table.schema
            self._writer = self._open(table.schema)
        self._writer.write_table(table)

    def _open(self, schema: Any) -> Any:
        if self.path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetWriter(self.temporary, schema)
        import pyarrow.csv as pcsv

        return pcsv.CSVWriter(self.temporary, schema)

    def close(self) -> None:
        """Finish the file and move it into place in one rename: no reader sees half an output."""
        if self._writer is None and self._empty is not None:
            self._append(self._empty)  # only empty frames came: a file with just the header
        if self._writer is not None:
            self._writer.close()
            os.replace(self.temporary, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.temporary.unlink(missing_ok=True)


@contextmanager
def _all_cores(pipeline: Any) -> Iterator[None]:
    """Let a forest predict large chunks on every core, then restore it for single-record use."""
    model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    has_jobs = "n_jobs" in model.get_params() and type(model).__name__.startswith("RandomForest")
    before = model.get_params()["n_jobs"] if has_jobs else None
    if has_jobs:
        model.set_params(n_jobs=-1)
    try:
        yield
    finally:
        if has_jobs:
            model.set_params(n_jobs=before)


def quarantine_beside(output: str) -> str:
    """Default quarantine path: <output stem>.quarantine<suffix> in the same folder (also for URIs)."""
    head, slash, name = output.rstrip("/").rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    return f"{head}{slash}{stem}.quarantine.{suffix}" if dot and stem else f"{head}{slash}{name}.quarantine"


def _check_output_path(path: Path) -> None:
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise DataError(f"data error: output {path} must end in .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)


def predict_file(
    bundle: Bundle, input_path: Path, output_path: Path, quarantine_path: Path, chunk_size: int
) -> PredictionCounts:
    """Stream `input_path` through the model into `output_path`; rejected rows go to `quarantine_path`."""
    for path in (output_path, quarantine_path):
        _check_output_path(path)
    paths = {"input": input_path.resolve(), "output": output_path.resolve(), "quarantine": quarantine_path.resolve()}
    if len(set(paths.values())) < 3:
        raise DataError(
            "data error: input, output and quarantine must be three different files; got "
            + ", ".join(f"{name} {path}" for name, path in paths.items())
        )
    id_columns = [bundle.schema.id_column] if bundle.schema.id_column else []
    require_columns(table_columns(input_path), bundle.schema.feature_names + id_columns, str(input_path))
    # Ids are read as text: a type inferred per chunk could change between chunks (42, then 'P200').
    text_columns = [c.name for c in bundle.schema.columns if c.kind == "categorical"] + id_columns
    predictions, quarantine = _TableWriter(output_path), _TableWriter(quarantine_path)
    rows = predicted = quarantined = 0
    try:
        with _all_cores(bundle.pipeline):
            for chunk in iter_chunks(input_path, chunk_size, text_columns, bundle.schema.missing_values):
                chunk_predictions, chunk_quarantine = predict_frame(bundle, chunk, source=str(input_path))
                predictions.write(chunk_predictions)
                quarantine.write(chunk_quarantine)
                rows += len(chunk)
                predicted += len(chunk_predictions)
                quarantined += int(chunk_quarantine["row"].nunique())
        if rows == 0:
            empty = pd.DataFrame(columns=bundle.schema.feature_names)
            predictions.write(predict_valid(bundle, empty))
            quarantine.write(predict_frame(bundle, empty)[1])
        predictions.close()
        quarantine.close()
    except BaseException:
        predictions.abort()
        quarantine.abort()
        raise
    return PredictionCounts(rows=rows, predicted=predicted, quarantined=quarantined)
