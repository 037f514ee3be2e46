"""ml_project.errors: the errors and neutral helpers, importable for nothing, re-exported where they were."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from ml_project import errors
from ml_project.errors import jsonable, naive_utc, one_line

HEAVY = ("sqlalchemy", "sklearn", "matplotlib", "pandas", "mlflow", "pandera", "evidently", "optuna")


def _loaded_after(statement: str) -> list[str]:
    """Which heavy top-level packages a fresh interpreter has loaded after `statement`."""
    code = f"import sys; {statement}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(done.stdout.replace("'", '"')))


def test_errors_imports_only_the_standard_library() -> None:
    assert _loaded_after("import ml_project.errors") == []


def test_cli_and_tracking_load_nothing_heavy() -> None:
    # A use case's entry point catches every user error without SQLAlchemy, pandas or scikit-learn;
    # tracking names Bundle and Decision for types only.
    assert _loaded_after("import ml_project.cli") == []
    assert _loaded_after("import ml_project.tracking") == []


def test_promotion_loads_scikit_learn_only_when_it_scores() -> None:
    assert _loaded_after("import ml_project.promotion") == ["pandas"]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("ml_project.config", "ConfigError"),
        ("ml_project.ingestion", "DataError"),
        ("ml_project.artifacts", "BundleError"),
        ("ml_project.prediction_log", "PredictionLogError"),
        ("ml_project.prediction_log", "NoPredictionLog"),
        ("ml_project.streaming", "ServiceUnavailable"),
        ("ml_project.spark_prediction", "SparkUnavailable"),
        ("ml_project.dashboard", "DashboardError"),
    ],
)
def test_domain_modules_re_export_the_one_class(module: str, name: str) -> None:
    imported = __import__(module, fromlist=[name])
    assert getattr(imported, name) is getattr(errors, name)


def test_error_hierarchy() -> None:
    assert issubclass(errors.NoPredictionLog, errors.PredictionLogError)
    assert issubclass(errors.SparkUnavailable, errors.ConfigError)
    assert sorted(errors.__all__) == errors.__all__


def test_one_line() -> None:
    assert one_line(ValueError("first line\nsecond line")) == "first line"
    assert one_line(ValueError("  padded  ")) == "padded"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(None) == "unknown error"

    class Wrapped(Exception):
        orig = OSError("driver says no")

    assert one_line(Wrapped("wrapper text")) == "driver says no"


def test_naive_utc() -> None:
    aware = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert naive_utc(aware) == datetime(2026, 1, 1, 10, 0)
    assert naive_utc(datetime(2026, 1, 1, 12, 0)) == datetime(2026, 1, 1, 12, 0)


def test_jsonable() -> None:
    value = {
        1: float("nan"),
        "inf": -math.inf,
        "list": (np.int64(3), np.float32(0.5), pd.NA),
        "when": datetime(2026, 1, 2, 3, 4, 5),
        "day": date(2026, 1, 2),
        "nat": pd.NaT,
        "other": complex(1, 2),
    }
    assert jsonable(value) == {
        "1": None,
        "inf": None,
        "list": [3, 0.5, None],
        "when": "2026-01-02T03:04:05",
        "day": "2026-01-02",
        "nat": None,
        "other": "(1+2j)",
    }
