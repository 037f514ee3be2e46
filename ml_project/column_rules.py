"""What a valid value of each column kind is, and how a refusal is worded: the one rule set of every path.

Batch scoring (`validation`, vectorised), the service and the in-process stream (`online_scoring`,
one record at a time), Spark (`validation` inside each partition) and monitoring all read their
checks and their reason texts from here, so a value gets the same verdict and the same words
wherever it arrives. Pure Python: the serving path imports it per record at no cost.

Kinds:
  numerical    a finite number: a JSON number (not a bool: a CSV reader may or may not read 'True' so), or text that
               is a plain decimal after trimming whitespace (`NUMBER_PATTERN`: ASCII digits, optional
               sign, point and exponent; no '_', no 'inf', no other digits), within the trained range.
  categorical  text (a JSON number or bool compares as its text), one of the categories training saw.
  datetime     text that pandas parses as a date/time (with an offset: converted to UTC). A number,
               bare or as text, is refused: seconds or milliseconds since when is anyone's guess.
Missing: JSON null, a float NaN, or text spelled exactly as one of `validation.missing_values`.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

# The empty cell, and R's spelling (the shipped penguins CSV writes NA): see documentation/configuration.md.
MISSING_VALUES: tuple[str, ...] = ("", "NA")
# Plain decimal numbers, ASCII digits only (Arrow's RE2 and Python's re then agree on every string).
NUMBER_PATTERN = r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"
DATETIME_EXAMPLE = "2024-05-01T13:00:00Z"

MISSING = "missing value"
NOT_A_NUMBER = "expected a finite number"
NOT_TEXT = "expected text"
NOT_A_DATETIME = "expected a date/time"
DATETIME_AS_NUMBER = f"expected a date/time as text, e.g. {DATETIME_EXAMPLE}"

_NUMBER = re.compile(NUMBER_PATTERN)
# The common ISO 8601 forms, read without pandas; anything else goes to pandas (validation.coerce_datetime).
_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # date, then optionally a time with seconds, fraction and offset
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)


class Refused(ValueError):
    """A value that breaks its column's rule; the message is the reason, worded as every path words it."""


def outside_range(minimum: float, maximum: float) -> str:
    return f"outside the accepted range [{minimum:.6g}, {maximum:.6g}]"


def unknown_category(categories: Sequence[str] | None) -> str:
    return "unknown category" + (f" (known: {', '.join(categories)})" if categories else "")


def refusal(field: str | None, value: Any, reason: str) -> str:
    """One line naming the field, the reason and the value: field 'x': expected a finite number (got 'abc')."""
    where = f"field '{field}'" if field else "record"
    shown = "" if value is None else f" (got {value!r})"
    return f"{where}: {reason}{shown}"


def is_missing(value: Any, missing_values: Sequence[str] | frozenset[str]) -> bool:
    """JSON null, NaN, or one of the configured missing-value spellings (exact text, no trimming)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value in missing_values


def is_number_text(value: str) -> bool:
    return _NUMBER.match(value.strip()) is not None


def number(value: Any, minimum: float | None = None, maximum: float | None = None) -> float:
    """A present value of a numerical column as a float, or Refused with the reason."""
    if isinstance(value, bool):  # a CSV reader may read 'True' as a bool or as text: refused either way
        raise Refused(NOT_A_NUMBER)
    if isinstance(value, numbers.Real):
        try:
            parsed = float(value)
        except OverflowError:  # an integer beyond float64: no finite number
            raise Refused(NOT_A_NUMBER) from None
    elif isinstance(value, str) and is_number_text(value):
        parsed = float(value.strip())
    else:
        raise Refused(NOT_A_NUMBER)
    if not math.isfinite(parsed):
        raise Refused(NOT_A_NUMBER)
    if minimum is not None and maximum is not None and not minimum <= parsed <= maximum:
        raise Refused(outside_range(minimum, maximum))
    return parsed


def text(
    value: Any, categories: Sequence[str] | frozenset[str] | None = None, known: Sequence[str] | None = None
) -> str:
    """A present value of a categorical column as text, or Refused; `known` is the sorted list the reason names."""
    if isinstance(value, numbers.Real):
        value = str(value)
    elif not isinstance(value, str):
        raise Refused(NOT_TEXT)
    if categories is not None and value not in categories:
        raise Refused(unknown_category(known if known is not None else sorted(categories)))
    return value


def datetime_text(value: Any) -> str:
    """A present value of a datetime column that may be parsed as one: text that is not a number."""
    if isinstance(value, str):
        if is_number_text(value):
            raise Refused(DATETIME_AS_NUMBER)
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        raise Refused(DATETIME_AS_NUMBER)
    raise Refused(NOT_A_DATETIME)


def iso_datetime(value: str) -> datetime | None:
    """A common ISO 8601 text as a naive UTC datetime, exactly as pandas reads it; None: ask pandas.

    The service's fast path (pandas costs ~0.5 ms a value): only forms whose reading is the same
    either way, well inside the years a nanosecond timestamp holds (1678-2261).
    """
    if _ISO.fullmatch(value) is None or not "1678" <= value[:4] <= "2261":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # '2024-13-01': pandas words the refusal
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed
