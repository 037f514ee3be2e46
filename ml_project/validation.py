"""Input schema learnt from training data, and lazy pandera validation that quarantines bad rows.

The schema (types, nullability, ranges, allowed categories, missing-value spellings) is derived once
from the config and what training saw, stored in the bundle, and reused by batch scoring and the
service. What a valid value is and how a refusal is worded come from `column_rules`, applied here a
column at a time (the service applies the same rules a value at a time). Validation never drops a
row silently: every row is either returned as valid or listed in the quarantine with the column,
the offending value and the reason.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ml_project import column_rules as rules
from ml_project.config import DataConfig, ValidationConfig
from ml_project.ingestion import require_columns

logger = logging.getLogger(__name__)

QUARANTINE_COLUMNS = ["row", "column", "value", "reason"]
CHECK_ROWS = 500_000  # rows pandera checks at once: its copies of a 10M-row table stay a slice's size
ColumnKind = Literal["numerical", "categorical", "datetime"]


class ColumnSchema(BaseModel):
    """One input feature as training saw it, with the bounds prediction accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: ColumnKind
    nullable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] | None = None


class InputSchema(BaseModel):
    """Everything needed to validate a prediction request or a training table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: list[ColumnSchema]
    target: str
    task: Literal["classification", "regression", "forecasting"]
    classes: list[str] | None = None
    id_column: str | None = None
    missing_values: list[str] = Field(default_factory=lambda: list(rules.MISSING_VALUES))

    @property
    def feature_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> ColumnSchema:
        return next(column for column in self.columns if column.name == name)


class ValidationResult(BaseModel):
    """Valid rows (coerced to the schema's types) and one quarantine line per failed check."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    valid: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def quarantined_rows(self) -> int:
        return int(self.quarantine["row"].nunique())


def _without_missing_text(values: pd.Series, missing_values: list[str]) -> pd.Series:
    """Text spelt as a missing value becomes missing (parquet, SQL and Spark hand it over as text)."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return values
    spelt = values.isin(missing_values).to_numpy()
    return values.mask(spelt, None) if spelt.any() else values


def _coerce_numeric(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Floats (missing where a present value breaks the rule) and each refused cell's reason."""
    if pd.api.types.is_bool_dtype(values):  # no measurement is true or false (rules.number)
        parsed = pd.Series(np.nan, index=values.index)
    elif pd.api.types.is_numeric_dtype(values):
        parsed = values.astype("float64", copy=False)
    else:
        try:
            parsed = _parse_decimal_text(values)
        except (TypeError, ValueError, ArithmeticError):  # not all text (mixed Python objects): cell by cell
            parsed = values.map(_number_or_nan).astype("float64")
    parsed = parsed.where(np.isfinite(parsed))  # ±inf is no measurement: refused
    return parsed, pd.Series(rules.NOT_A_NUMBER, index=values.index)


def _number_or_nan(value: Any) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    try:
        return rules.number(value)
    except rules.Refused:
        return np.nan


def _parse_decimal_text(values: pd.Series) -> pd.Series:
    """Text to float64 in Arrow (about twice pandas' speed on a column with a few bad cells).

    Cells that are not plain decimals (rules.NUMBER_PATTERN after trimming) become missing here;
    the caller reports them, with the reason the service gives for the same text.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True))
    plain = pc.match_substring_regex(text, rules.NUMBER_PATTERN)
    return pd.Series(
        pc.cast(pc.if_else(plain, text, pa.scalar(None, pa.string())), pa.float64()).to_numpy(zero_copy_only=False),
        index=values.index,
    )


def coerce_datetime(values: pd.Series) -> pd.Series:
    """Timestamps with offsets are converted to UTC; naive ones are taken as UTC already."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _coerce_moment(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Datetimes, refusing numbers (bare or as text) as the service does: rules.datetime_text."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return coerce_datetime(values), pd.Series(rules.NOT_A_DATETIME, index=values.index)
    if pd.api.types.is_bool_dtype(values):  # 'True' read as a bool: text that is no date/time
        none = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
        return none, pd.Series(rules.NOT_A_DATETIME, index=values.index)
    if pd.api.types.is_numeric_dtype(values):
        refusals = pd.Series(rules.DATETIME_AS_NUMBER, index=values.index).where(values.notna())
    elif pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):  # all text: Arrow finds the numbers
        refusals = pd.Series(rules.DATETIME_AS_NUMBER, index=values.index).where(_number_text(values))
    else:
        refusals = values.map(_datetime_refusal)
    refused = refusals.notna().to_numpy()
    parsed = coerce_datetime(values.mask(refused, None) if refused.any() else values)
    return parsed, refusals.where(refused, rules.NOT_A_DATETIME)


def _number_text(values: pd.Series) -> np.ndarray:
    """Which cells of a text column are numbers by rules.NUMBER_PATTERN (missing cells are not)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True))
    return pc.fill_null(pc.match_substring_regex(text, rules.NUMBER_PATTERN), False).to_numpy(zero_copy_only=False)


def _datetime_refusal(value: Any) -> str | None:
    """Why a present cell cannot be a date/time before parsing it (a number), or None."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or hasattr(value, "isoformat"):
        return None
    try:
        rules.datetime_text(value)
    except rules.Refused as refusal:
        return str(refusal)
    return None


def _coerce_text(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_object_dtype(values):
        text = values
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):  # not all text: cell by cell
            odd = values.map(lambda value: isinstance(value, (dict, list, tuple, set))).astype(bool)
            if odd.any():  # an object or list is no category (rules.text)
                text = values.mask(odd, None)
    else:  # categorical, string or numeric dtypes: plain objects, so missing stays missing
        text = values.astype(object)
    return text.where(text.isna(), text.astype(str)).astype(object), pd.Series(rules.NOT_TEXT, index=values.index)


COERCE = {"numerical": _coerce_numeric, "datetime": _coerce_moment, "categorical": _coerce_text}


def typed_column(values: pd.Series, kind: str, missing_values: list[str]) -> pd.Series:
    """A column typed as validation types it, a value the rules refuse becoming missing (monitoring's reading)."""
    return COERCE[kind](_without_missing_text(values, missing_values))[0]


def _coerce(
    frame: pd.DataFrame, kinds: dict[str, str], missing_values: list[str]
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Convert each column to its kind's type; values that do not convert become quarantine lines.

    Done per column before pandera, because a failed coercion inside pandera reports no row and
    hides any later check on that column. The reasons are column_rules' words.
    """
    coerced = frame.copy()
    failures: list[pd.DataFrame] = []
    for name, kind in kinds.items():
        original = _without_missing_text(frame[name], missing_values)
        converted, reasons = COERCE[kind](original)
        # Only values that came out missing can have failed; checking just those keeps clean columns cheap.
        missing = converted.isna().to_numpy()
        failed = pd.Series(False, index=frame.index)
        if missing.any():
            failed[missing] = original[missing].notna().to_numpy()
        if failed.any():
            failures.append(
                pd.DataFrame(
                    {
                        "row": frame.index[failed],
                        "column": name,
                        "value": original[failed].astype(str).to_numpy(),
                        "reason": reasons[failed].to_numpy(),
                    }
                )
            )
        coerced[name] = converted
    return coerced, failures


def infer_schema(frame: pd.DataFrame, data: DataConfig, validation: ValidationConfig) -> InputSchema:
    """Learn types, ranges and categories from the (already coerced) modelling data."""
    columns: list[ColumnSchema] = []
    for name in data.features.numerical:
        values = frame[name].dropna()
        low, high = (float(values.min()), float(values.max())) if len(values) else (None, None)
        if low is not None and high is not None:
            width = high - low if high > low else max(abs(high), 1.0)  # a constant column still gets slack
            margin = validation.range_margin * width
            low, high = low - margin, high + margin
        columns.append(ColumnSchema(name=name, kind="numerical", minimum=low, maximum=high))
    for name in data.features.categorical:
        categories = sorted(str(value) for value in frame[name].dropna().unique())
        columns.append(ColumnSchema(name=name, kind="categorical", categories=categories))
    for name in data.features.datetime:
        columns.append(ColumnSchema(name=name, kind="datetime"))
    classes = None
    if data.task == "classification" and data.target in frame:
        classes = sorted(str(value) for value in frame[data.target].dropna().unique())
    return InputSchema(
        columns=columns,
        target=data.target,
        task=data.task,
        classes=classes,
        id_column=data.id_column,
        missing_values=validation.missing_values,
    )


def schema_from_config(data: DataConfig, missing_values: list[str] | None = None) -> InputSchema:
    """The schema before training has seen data: types only, used to validate the raw table."""
    columns = [ColumnSchema(name=name, kind="numerical") for name in data.features.numerical]
    columns += [ColumnSchema(name=name, kind="categorical") for name in data.features.categorical]
    columns += [ColumnSchema(name=name, kind="datetime") for name in data.features.datetime]
    spelt = list(rules.MISSING_VALUES) if missing_values is None else missing_values
    return InputSchema(
        columns=columns, target=data.target, task=data.task, id_column=data.id_column, missing_values=spelt
    )


def _pandera_schema(schema: InputSchema, with_target: bool) -> Any:
    import pandera.pandas as pa

    columns: dict[str, Any] = {}
    for spec in schema.columns:
        checks = []
        if spec.kind == "numerical":
            if spec.minimum is not None and spec.maximum is not None:
                checks.append(pa.Check.in_range(spec.minimum, spec.maximum))
            columns[spec.name] = pa.Column("float64", checks=checks, nullable=spec.nullable)
        elif spec.kind == "categorical":
            if spec.categories is not None:
                checks.append(pa.Check.isin(spec.categories))
            columns[spec.name] = pa.Column(object, checks=checks, nullable=spec.nullable)
        else:
            columns[spec.name] = pa.Column("datetime64[ns]", nullable=spec.nullable)
    if with_target:
        target_type = object if schema.task == "classification" else "float64"
        target_checks = [pa.Check.isin(schema.classes)] if schema.classes else []
        columns[schema.target] = pa.Column(target_type, checks=target_checks, nullable=False)
    return pa.DataFrameSchema(columns, strict=False)


def _reason(check: str, spec: ColumnSchema | None) -> str:
    if check == "not_nullable":
        return rules.MISSING
    if check.startswith("in_range") and spec is not None and spec.minimum is not None and spec.maximum is not None:
        return rules.outside_range(spec.minimum, spec.maximum)
    if check.startswith("isin"):
        return rules.unknown_category(spec.categories if spec else None)
    return f"failed check {check}"


def validate(frame: pd.DataFrame, schema: InputSchema, *, with_target: bool = False, source: str = "input") -> ValidationResult:
    """Split `frame` into valid rows and quarantine lines (row, column, value, reason).

    A missing required column refuses the whole table (DataError naming it); everything else is
    decided row by row, so one bad value never costs the other rows their predictions.
    """
    import pandera.pandas as pa

    required = schema.feature_names + ([schema.target] if with_target else [])
    require_columns(frame.columns, required, source)
    kinds: dict[str, str] = {spec.name: spec.kind for spec in schema.columns}
    if with_target:
        kinds[schema.target] = "categorical" if schema.task == "classification" else "numerical"
    coerced, failures = _coerce(frame, kinds, schema.missing_values)
    checked = _pandera_schema(schema, with_target)
    specs = {spec.name: spec for spec in schema.columns}
    for start in range(0, len(coerced), CHECK_ROWS):  # pandera copies what it checks: a slice at a time
        try:
            checked.validate(coerced.iloc[start : start + CHECK_ROWS], lazy=True)
        except pa.errors.SchemaErrors as errors:
            cases = errors.failure_cases
            cases = cases[cases["index"].notna()]
            if not len(cases):
                continue
            failures.append(
                pd.DataFrame(
                    {
                        "row": cases["index"].astype(frame.index.dtype).to_numpy(),
                        "column": cases["column"].to_numpy(),
                        "value": cases["failure_case"].astype(str).to_numpy(),
                        "reason": [_reason(str(check), specs.get(str(column))) for check, column in zip(cases["check"], cases["column"])],
                    }
                )
            )
    quarantine = (
        _once_per_cell(pd.concat(failures, ignore_index=True)).sort_values(["row", "column"], kind="stable", ignore_index=True)
        if failures
        else pd.DataFrame({name: pd.Series(dtype="int64" if name == "row" else object) for name in QUARANTINE_COLUMNS})
    )
    bad_rows = pd.Index(quarantine["row"].unique())
    valid = coerced.loc[~coerced.index.isin(bad_rows)] if len(bad_rows) else coerced  # no copy of a clean table
    return ValidationResult(valid=valid, quarantine=quarantine)


def warn_set_aside(result: ValidationResult, listed_in: str | None) -> None:
    """One warning naming how many rows were set aside, the top three reasons, and where each is listed."""
    if not len(result.quarantine):
        return
    top = result.quarantine.groupby(["column", "reason"]).size().sort_values(ascending=False, kind="stable").head(3)
    reasons = "; ".join(f"{column}: {reason} ({count})" for (column, reason), count in top.items())
    where = f"each is listed in {listed_in}" if listed_in else "this run leaves them out and writes no quarantine file"
    logger.warning("%d rows set aside, most often for %s; %s", result.quarantined_rows, reasons, where)


def _once_per_cell(lines: pd.DataFrame) -> pd.DataFrame:
    """A cell refused for its value is not also reported missing (its refusal is what emptied it)."""
    missing = (lines["reason"] == rules.MISSING).to_numpy()
    refused = set(zip(lines["row"][~missing], lines["column"][~missing]))
    echo = missing & np.array([cell in refused for cell in zip(lines["row"], lines["column"])], dtype=bool)
    return lines[~echo]


def validate_engineered(matrix: np.ndarray, rows: int) -> None:
    """The engineered feature matrix must keep every row and hold only finite numbers."""
    if matrix.shape[0] != rows:
        raise ValueError(f"feature engineering changed the row count from {rows} to {matrix.shape[0]}")
    finite = np.isfinite(np.asarray(matrix, dtype="float64"))
    if not finite.all():
        bad_column = int(np.argwhere(~finite)[0][1])
        raise ValueError(f"feature engineering produced a non-finite value in output column {bad_column}")
