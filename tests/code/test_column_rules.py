"""column_rules: each kind's rule and each refusal's words, value by value (the parity test runs them on every path)."""

from __future__ import annotations

import math

import pytest

from ml_project import column_rules as rules


@pytest.mark.parametrize(
    ("value", "expected"),
    [("39.1", 39.1), (" 39.1\t", 39.1), ("+1e1", 10.0), (".5", 0.5), ("7.", 7.0), (3, 3.0), (2.5, 2.5)],
)
def test_numbers_and_plain_decimal_text_are_numbers(value: object, expected: float) -> None:
    assert rules.number(value) == expected


@pytest.mark.parametrize(
    "value",
    ["abc", "3_9", "1,5", "0x10", "inf", "nan", "١٢", "", True, False, math.inf, 10**400, "1e999", None, [1], {"a": 1}],
)
def test_anything_else_is_refused_as_not_a_finite_number(value: object) -> None:
    with pytest.raises(rules.Refused, match="^expected a finite number$"):
        rules.number(value)


def test_the_range_is_inclusive_and_its_refusal_names_it() -> None:
    assert rules.number("10", 10.0, 20.0) == 10.0 and rules.number(20, 10.0, 20.0) == 20.0
    with pytest.raises(rules.Refused) as refused:
        rules.number(20.000001, 10.0, 20.0)
    assert str(refused.value) == "outside the accepted range [10, 20]"


def test_categories_compare_as_text_and_the_refusal_lists_them() -> None:
    assert rules.text(1, {"1", "2"}) == "1" and rules.text(True, None) == "True"
    assert rules.text("grün", {"grün"}) == "grün"
    with pytest.raises(rules.Refused) as refused:
        rules.text("red", frozenset({"green", "blue"}))
    assert str(refused.value) == "unknown category (known: blue, green)"
    with pytest.raises(rules.Refused, match="^expected text$"):
        rules.text({"a": 1})


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1714567890, rules.DATETIME_AS_NUMBER),
        ("1714567890", rules.DATETIME_AS_NUMBER),
        (1.5, rules.DATETIME_AS_NUMBER),
        (True, rules.NOT_A_DATETIME),
        ([2024], rules.NOT_A_DATETIME),
    ],
)
def test_a_datetime_given_as_a_number_is_refused(value: object, reason: str) -> None:
    with pytest.raises(rules.Refused) as refused:
        rules.datetime_text(value)
    assert str(refused.value) == reason
    assert rules.datetime_text("2024-05-01") == "2024-05-01"
    assert rules.DATETIME_AS_NUMBER == "expected a date/time as text, e.g. 2024-05-01T13:00:00Z"


def test_missing_is_null_nan_or_an_exact_configured_spelling() -> None:
    spelt = frozenset(rules.MISSING_VALUES)
    assert rules.MISSING_VALUES == ("", "NA")
    assert all(rules.is_missing(value, spelt) for value in [None, math.nan, "", "NA"])
    assert not any(rules.is_missing(value, spelt) for value in ["na", " NA", "null", "None", "N/A", 0, "0"])


def test_a_refusal_is_one_line_naming_the_field_the_reason_and_the_value() -> None:
    line = rules.refusal("bill_length_mm", "abc", rules.NOT_A_NUMBER)
    assert line == "field 'bill_length_mm': expected a finite number (got 'abc')"
    assert rules.refusal(None, None, "a record must be a JSON object") == "record: a record must be a JSON object"


def test_the_fast_iso_reading_is_the_one_pandas_gives() -> None:
    """The service reads common ISO text without pandas; batch reads it with pandas: same instant, or no fast answer."""
    import pandas as pd

    from ml_project.validation import coerce_datetime

    texts = [
        "2024-05-01", "2024-05-01T13:00", "2024-05-01 13:00:00", "2024-05-01T13:00:00Z",
        "2024-05-01T13:00:00.5+02:00", "2024-05-01T23:30:00-05:30", "2024-02-29T00:00:00.123456Z",
        "1678-01-01T00:00:00+14:00", "2261-12-31T23:59:59-12:00",
    ]
    for text in texts:
        fast = rules.iso_datetime(text)
        assert fast is not None, text
        assert pd.Timestamp(fast) == coerce_datetime(pd.Series([text], dtype=object)).iloc[0], text
    refused = ["2024-13-01", "2023-02-29", "1677-09-21", "2262-04-12", "May 1 2024", "2024-05-01t13:00", "٢٠٢٤-05-01"]
    for text in refused:
        assert rules.iso_datetime(text) is None, text
