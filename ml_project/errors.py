"""Every error a user can act on, and the small neutral helpers several modules share.

Importing this module costs nothing: it uses the standard library only, so a command-line entry
point can catch a prediction-log or data error without importing SQLAlchemy or pandas, and a
module can name an error without importing the domain module that raises it. The domain modules
re-export their errors (`from ml_project.config import ConfigError` keeps working).

Each error's message is one line naming the key, file, URL or field and what was expected.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timezone
from typing import Any

__all__ = [
    "BundleError",
    "ConfigError",
    "DashboardError",
    "DataError",
    "NoPredictionLog",
    "PredictionLogError",
    "ServiceUnavailable",
    "SparkUnavailable",
    "json_default",
    "jsonable",
    "naive_utc",
    "one_line",
]


class ConfigError(Exception):
    """A configuration the user can fix: one line naming the key, the value and what was expected."""


class DataError(Exception):
    """Input data the user can fix (missing file or column, unsupported format): one line."""


class BundleError(Exception):
    """A bundle that cannot be used (missing, incomplete, or changed after export): one line."""


class PredictionLogError(Exception):
    """One line naming the URL and what went wrong (cannot connect, not a database, table of another shape)."""


class NoPredictionLog(PredictionLogError):
    """Nothing was logged there yet: no SQLite file, or a database without the predictions table."""


class ServiceUnavailable(Exception):
    """The service cannot be reached or is not ready: one line naming the URL."""


class SparkUnavailable(ConfigError):
    """pyspark or Java missing: one line saying what to install."""


class DashboardError(Exception):
    """A query parameter the dashboard cannot use: one line naming it."""


def one_line(error: BaseException | None) -> str:
    """The first line of an exception's message, with its type when the message is empty."""
    if error is None:
        return "unknown error"
    orig = getattr(error, "orig", None)  # SQLAlchemy wraps the driver's error; its own message is clearer
    source = orig if isinstance(orig, BaseException) else error
    text = str(source).strip().splitlines()
    return text[0] if text else type(source).__name__


def naive_utc(moment: datetime) -> datetime:
    """`moment` in UTC without tzinfo; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def json_default(value: Any) -> Any:
    """JSON stand-in for a type json does not know: dates as ISO strings, numpy as Python, NaT/NA as None."""
    if isinstance(value, (datetime, date, time)):
        return None if value != value else value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if type(value).__name__ == "NAType":  # pandas.NA, without importing pandas
        return None
    return str(value)


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of `value` with NaN and infinity as None and every key a string."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return jsonable(json_default(value))
