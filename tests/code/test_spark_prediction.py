"""spark_prediction without a JVM: paths, missing values as the local reader reads them, output types, one-line errors.

The real Spark runs (every row and the parity battery) are in tests/integration/test_spark.py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from ml_project.artifacts import Bundle
from ml_project.ingestion import DataError
from ml_project.spark_prediction import _job_error, _package_zip, as_read_locally, check_paths, output_schema
from ml_project.validation import ColumnSchema, InputSchema


def test_paths_are_three_distinct_csv_or_parquet_and_outputs_are_folders(tmp_path: Path) -> None:
    assert check_paths("in.csv", "out.parquet", "q.csv") == {"input": "csv", "output": "parquet", "quarantine": "csv"}
    with pytest.raises(DataError, match=r"^data error: input, output and quarantine must be three different paths"):
        check_paths("a.csv", "./a.csv", "q.csv")
    with pytest.raises(DataError, match=r"^data error: out\.json must end in \.csv or \.parquet"):
        check_paths("in.csv", "out.json", "q.csv")
    existing = tmp_path / "out.csv"
    existing.write_text("id\n")
    with pytest.raises(DataError, match=r"is a file \(from the single-machine path\?\)"):
        check_paths("in.csv", str(existing), str(tmp_path / "q.csv"))


def test_csv_cells_spelt_missing_become_missing_ids_included_others_stay_text() -> None:
    cells = {"id": ["NA", "k2", None], "size": ["", "null", "1.5"], "code": ["NA", "N/A", "x"]}
    out = as_read_locally(pd.DataFrame(cells, dtype=object), ["", "NA"])
    rows = out.where(out.notna(), None).values.tolist()
    assert rows == [[None, None, None], ["k2", "null", "N/A"], [None, "1.5", "x"]]


def test_output_rows_hold_predictions_and_quarantine_lines_with_typed_columns() -> None:
    pytest.importorskip("pyspark")
    schema = InputSchema(
        columns=[ColumnSchema(name="size", kind="numerical")], target="label", task="classification", classes=["a", "b"]
    )
    bundle = Bundle(pipeline=None, schema=schema, model_name="m", metrics={}, fingerprint={})
    fields = {field.name: field.dataType.simpleString() for field in output_schema(bundle, id_is_text=False).fields}
    assert fields == {
        "__kind": "string", "id": "bigint", "prediction": "string", "proba_a": "double", "proba_b": "double",
        "model_version": "string", "row": "bigint", "column": "string", "value": "string", "reason": "string",
    }


def test_the_executors_get_the_whole_package_rules_included(tmp_path: Path) -> None:
    with zipfile.ZipFile(_package_zip(tmp_path)) as archive:
        names = set(archive.namelist())
    assert {"ml_project/column_rules.py", "ml_project/validation.py", "ml_project/prediction.py"} <= names


def test_a_malformed_csv_is_the_users_to_fix_anything_else_a_failure() -> None:
    malformed = _job_error(RuntimeError("Traceback\nMalformed records are detected in record parsing"), "in.csv")
    assert isinstance(malformed, DataError) and str(malformed).startswith("data error: in.csv has a malformed CSV row")
    other = _job_error(RuntimeError("py4j.Error\nexecutor lost"), "in.csv")
    assert type(other) is RuntimeError and str(other) == "Spark job failed: executor lost"
