"""Validation sets bad rows aside by row and column with a reason, and never loses a row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_project import column_rules as rules
from ml_project.config import ValidationConfig, load_config
from ml_project.ingestion import DataError
from ml_project.validation import (
    InputSchema,
    infer_schema,
    schema_from_config,
    validate,
    validate_engineered,
    warn_set_aside,
)


@pytest.fixture(scope="module")
def schema(penguins: pd.DataFrame) -> InputSchema:
    return infer_schema(penguins, load_config().data, ValidationConfig(range_margin=0.1))


def test_schema_records_what_training_saw(schema: InputSchema, penguins: pd.DataFrame) -> None:
    flipper = schema.column("flipper_length_mm")
    low, high = penguins["flipper_length_mm"].min(), penguins["flipper_length_mm"].max()
    margin = 0.1 * (high - low)
    assert (flipper.minimum, flipper.maximum) == pytest.approx((low - margin, high + margin))
    assert schema.column("island").categories == ["Biscoe", "Dream", "Torgersen"]
    assert schema.column("sex").categories == ["female", "male"]
    assert schema.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert schema.feature_names == ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex"]


def test_schema_round_trips_through_json(schema: InputSchema) -> None:
    assert InputSchema.model_validate_json(schema.model_dump_json()) == schema


def test_valid_rows_pass_untouched_in_count(schema: InputSchema, penguins: pd.DataFrame) -> None:
    result = validate(penguins, schema)
    assert len(result.valid) == len(penguins)
    assert result.quarantine.empty
    assert result.valid["bill_length_mm"].dtype == np.float64


def test_bad_values_are_quarantined_by_row_and_column(schema: InputSchema, penguins: pd.DataFrame) -> None:
    frame = penguins.head(6).copy().astype({"bill_length_mm": object})
    frame.loc[1, "bill_length_mm"] = "long"  # wrong type
    frame.loc[2, "island"] = "Atlantis"  # unknown category
    frame.loc[3, "body_mass_g"] = 99_999.0  # far outside the trained range
    frame.loc[4, "bill_length_mm"] = "n/a?"  # wrong type ...
    frame.loc[4, "flipper_length_mm"] = -5.0  # ... and out of range in the same row
    result = validate(frame, schema)
    rows = list(zip(result.quarantine["row"], result.quarantine["column"], result.quarantine["reason"]))
    assert rows == [
        (1, "bill_length_mm", "expected a finite number"),
        (2, "island", "unknown category (known: Biscoe, Dream, Torgersen)"),
        (3, "body_mass_g", rows[2][2]),
        (4, "bill_length_mm", "expected a finite number"),
        (4, "flipper_length_mm", rows[4][2]),
    ]
    assert rows[2][2].startswith("outside the accepted range [")
    assert result.quarantine["value"].tolist() == ["long", "Atlantis", "99999.0", "n/a?", "-5.0"]
    assert sorted(result.valid.index) == [0, 5]
    assert len(result.valid) + result.quarantined_rows == len(frame)


def test_a_type_error_does_not_hide_later_bad_values_in_the_column(schema: InputSchema, penguins: pd.DataFrame) -> None:
    frame = penguins.head(4).copy().astype({"bill_depth_mm": object})
    frame.loc[0, "bill_depth_mm"] = "deep"
    frame.loc[3, "bill_depth_mm"] = 500.0
    result = validate(frame, schema)
    assert result.quarantine[["row", "column"]].values.tolist() == [[0, "bill_depth_mm"], [3, "bill_depth_mm"]]


def test_missing_values_are_accepted_because_the_pipeline_imputes(schema: InputSchema, penguins: pd.DataFrame) -> None:
    all_missing = penguins.iloc[[3]]  # the shipped row with every measurement NA
    assert validate(all_missing, schema).quarantine.empty


def test_a_missing_column_refuses_the_table(schema: InputSchema, penguins: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="^data error: new.csv has no column 'island'$"):
        validate(penguins.drop(columns=["island"]), schema, source="new.csv")


def test_training_validation_quarantines_a_missing_target(penguins: pd.DataFrame) -> None:
    frame = penguins.head(3).copy()
    frame.loc[1, "species"] = None
    result = validate(frame, schema_from_config(load_config().data), with_target=True)
    assert result.quarantine[["row", "column", "reason"]].values.tolist() == [[1, "species", "missing value"]]


def test_engineered_matrix_must_keep_rows_and_be_finite() -> None:
    validate_engineered(np.ones((3, 2)), 3)
    with pytest.raises(ValueError, match="row count from 4 to 3"):
        validate_engineered(np.ones((3, 2)), 4)
    with pytest.raises(ValueError, match="non-finite value in output column 1"):
        validate_engineered(np.array([[1.0, np.inf]]), 1)


def test_fast_text_to_number_parsing_agrees_with_the_per_value_rule() -> None:
    """Arrow's vectorised parse (batch) and column_rules.number (the service) accept the same text."""
    from ml_project.validation import _coerce_numeric

    def rule(value: object) -> float:
        try:
            return rules.number(value)
        except rules.Refused:
            return np.nan

    cells = ["1.5", " 2 ", "inf", "abc", "-3e2", "1e5 ", ".5", "7.", "1,5", "0x10", "3_9", "١٢", "1e999", "+.5e-3"]
    cells.append("NaN")
    text = pd.Series([*cells, None, np.nan], dtype=object)
    expected = [rule(cell) for cell in cells] + [np.nan, np.nan]
    assert expected[:4] == [1.5, 2.0, pytest.approx(np.nan, nan_ok=True), pytest.approx(np.nan, nan_ok=True)]
    np.testing.assert_array_equal(_coerce_numeric(text)[0].to_numpy(), np.array(expected))
    mixed = pd.Series([1.5, "x", None, True], dtype=object)  # not all text: cell by cell; a bool is no number
    np.testing.assert_array_equal(_coerce_numeric(mixed)[0].to_numpy(), np.array([1.5, np.nan, np.nan, np.nan]))


def test_timestamps_with_several_offsets_are_read_as_utc() -> None:
    from ml_project.validation import coerce_datetime

    stamps = pd.Series(["2010-03-01T00:00:00-08:00", "2010-04-01T00:00:00-07:00", "2010-04-02 05:00", "not a time"])
    assert coerce_datetime(stamps).astype(str).tolist() == [
        "2010-03-01 08:00:00", "2010-04-01 07:00:00", "2010-04-02 05:00:00", "NaT"
    ]


def test_a_refused_value_is_one_line_and_the_warning_says_where_rows_are_listed(schema: InputSchema, penguins: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    frame = penguins.head(3).copy()
    frame["bill_length_mm"] = frame["bill_length_mm"].astype(object)
    frame.loc[0, "bill_length_mm"] = "long"
    result = validate(frame, schema)
    assert result.quarantine[["row", "column", "value", "reason"]].values.tolist() == [[0, "bill_length_mm", "long", "expected a finite number"]]
    with caplog.at_level("WARNING", logger="ml_project.validation"):
        warn_set_aside(result, "training_quarantine.csv")
        warn_set_aside(result, None)
        warn_set_aside(validate(penguins.head(3).dropna(), schema), None)  # nothing set aside: no warning
    assert [record.getMessage() for record in caplog.records] == [
        "1 rows set aside, most often for bill_length_mm: expected a finite number (1); each is listed in training_quarantine.csv",
        "1 rows set aside, most often for bill_length_mm: expected a finite number (1); this run leaves them out and writes no quarantine file",
    ]


def test_checking_in_slices_quarantines_the_same_rows_as_checking_at_once(
    schema: InputSchema, penguins: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = penguins.head(10).copy()
    frame.loc[2, "island"] = "Atlantis"  # in the first slice of 3 rows
    frame.loc[3, "body_mass_g"] = 99_999.0  # the first row of the second slice
    frame.loc[9, "flipper_length_mm"] = -5.0  # alone in the last slice
    whole = validate(frame, schema)
    monkeypatch.setattr("ml_project.validation.CHECK_ROWS", 3)
    sliced = validate(frame, schema)
    pd.testing.assert_frame_equal(sliced.quarantine, whole.quarantine)
    pd.testing.assert_frame_equal(sliced.valid, whole.valid)
    assert list(sliced.quarantine["row"]) == [2, 3, 9]
    assert list(sliced.valid.index) == [0, 1, 4, 5, 6, 7, 8]

