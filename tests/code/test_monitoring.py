"""Monitoring stages on real penguins rows and a real SQLite prediction log: typing, label joins, drift, quality."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from ml_project.ingestion import DataError
from ml_project.monitoring import (
    LabelCounts,
    drift_report,
    join_labels,
    production_frame,
    quality_report,
    write_reports,
)
from ml_project.prediction_log import LoggedPrediction, PredictionLog, read_predictions
from ml_project.validation import ColumnSchema, InputSchema

NUMERICAL = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
PENGUINS = InputSchema(
    columns=[ColumnSchema(name=name, kind="numerical") for name in NUMERICAL]
    + [ColumnSchema(name=name, kind="categorical") for name in CATEGORICAL],
    target="species",
    task="classification",
    classes=CLASSES,
)
T0 = datetime(2026, 3, 1, 12, 0, 0)


def _log(path: Path, records: list[LoggedPrediction]) -> str:
    url = f"sqlite:///{path}"
    with PredictionLog(url) as log:
        log.write(records)
    return url


def _logged(request_id: str, features: dict[str, Any], prediction: object, minutes: int = 0) -> LoggedPrediction:
    return LoggedPrediction(
        request_id=request_id,
        model_name="m",
        model_version="v1",
        features=features,
        prediction=prediction,
        logged_at=T0 + timedelta(minutes=minutes),
    )


def test_production_frame_types_each_feature_as_validation_does(tmp_path: Path) -> None:
    schema = InputSchema(
        columns=[
            ColumnSchema(name="size", kind="numerical"),
            ColumnSchema(name="code", kind="categorical"),
            ColumnSchema(name="seen", kind="datetime"),
            ColumnSchema(name="source", kind="categorical"),  # read back as feature_source: a log column's name
        ],
        target="y",
        task="regression",
    )
    url = _log(
        tmp_path / "log.db",
        [
            _logged("a", {"size": 1.5, "code": 7, "seen": "2026-03-01T13:00:00+01:00", "source": "web"}, 2.5),
            _logged("b", {"size": None, "code": None, "seen": None, "source": None}, 3.0, minutes=1),
        ],
    )
    frame = production_frame(read_predictions(url), schema)
    assert list(frame.columns) == [
        "size", "code", "seen", "source", "prediction", "probabilities", "request_id", "model_version", "logged_at"
    ]
    assert frame.dtypes.astype(str).tolist() == [
        "float64", "object", "datetime64[ns]", "object", "float64", "object", "object", "object", "datetime64[ns]"
    ]
    assert frame.loc[0, ["size", "code", "source", "prediction", "request_id"]].tolist() == [1.5, "7", "web", 2.5, "a"]
    assert frame.loc[0, "seen"] == pd.Timestamp("2026-03-01T12:00:00")  # converted to UTC
    assert frame.loc[1, ["size", "code", "seen", "source"]].isna().all()
    assert frame["logged_at"].tolist() == [pd.Timestamp(T0), pd.Timestamp(T0 + timedelta(minutes=1))]


def test_production_frame_of_an_empty_window_has_every_column_and_type(tmp_path: Path) -> None:
    url = _log(tmp_path / "log.db", [])
    frame = production_frame(read_predictions(url), PENGUINS)
    assert len(frame) == 0
    assert list(frame.columns)[:6] == [*NUMERICAL, *CATEGORICAL]
    assert frame.dtypes.astype(str).tolist()[:6] == ["float64"] * 4 + ["object"] * 2


def test_production_frame_names_a_feature_the_log_does_not_hold(tmp_path: Path) -> None:
    url = _log(tmp_path / "log.db", [_logged("a", {"island": "Dream"}, "Adelie")])
    with pytest.raises(DataError) as error:
        production_frame(read_predictions(url), PENGUINS)
    assert str(error.value) == "data error: the logged predictions (model versions v1) lack feature 'bill_length_mm'"


def test_join_labels_uses_the_latest_logged_row_and_accounts_for_every_label(tmp_path: Path) -> None:
    features = {name: 40.0 for name in NUMERICAL} | {"island": "Dream", "sex": "male"}
    url = _log(
        tmp_path / "log.db",
        [
            _logged("a", features, "Adelie"),
            _logged("b", features, "Gentoo", minutes=1),
            _logged("a", features, "Chinstrap", minutes=2),  # a retried request: this row counts
            _logged("c", features, "Adelie", minutes=3),
        ],
    )
    frame = production_frame(read_predictions(url), PENGUINS)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "request_id,species\n"
        "a,Adelie\n"
        "b,Adelie\n"
        "b,Gentoo\n"  # a correction: the later line wins
        "c,\n"  # no label yet
        "d,Adelie\n"  # not in the log
        "e,Chinstrap\n"  # not in the log
        "c,Emperor\n"  # a class the model does not know
    )
    joined, counts = join_labels(frame, labels, PENGUINS)
    assert counts == LabelCounts(
        rows=7, missing=1, duplicates=1, unmatched=2, unknown_class=1, matched=2, unmatched_examples=("d", "e")
    )
    assert counts.rows == counts.missing + counts.duplicates + counts.unmatched + counts.unknown_class + counts.matched
    assert joined[["request_id", "species", "prediction"]].values.tolist() == [
        ["b", "Gentoo", "Gentoo"],
        ["a", "Adelie", "Chinstrap"],
    ]


def test_join_labels_refuses_a_file_without_the_target(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\na,Adelie\n")
    frame = pd.DataFrame({"request_id": ["a"], "prediction": ["Adelie"]})
    with pytest.raises(DataError) as error:
        join_labels(frame, labels, PENGUINS)
    assert str(error.value) == f"data error: {labels} has no column 'species'"


@pytest.fixture(scope="module")
def samples(penguins: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A training-like reference of 250 rows and 200 production rows, both drawn from the penguins."""
    reference = penguins.sample(250, random_state=1)
    current = penguins.sample(200, random_state=2)
    return reference.reset_index(drop=True), current.reset_index(drop=True)


def test_resampled_penguins_do_not_drift_and_numbers_times_1_5_do(samples: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = samples
    snapshot, summary = drift_report(reference, current, PENGUINS, threshold=0.5)
    assert summary["drifted_columns"] == [] and summary["drift_share"] == 0.0 and not summary["drift_detected"]
    assert (summary["n_reference"], summary["n_current"]) == (250, 200)
    assert {name: result["test"] for name, result in summary["per_column"].items()} == {
        **{name: "K-S p_value" for name in NUMERICAL},
        "island": "chi-square p_value",
        "sex": "Z-test p_value",
    }
    assert all(result["score"] > result["threshold"] for result in summary["per_column"].values())

    shifted = current.assign(**{name: current[name] * 1.5 for name in NUMERICAL})
    snapshot, summary = drift_report(reference, shifted, PENGUINS, threshold=0.5)
    assert summary["drifted_columns"] == NUMERICAL
    assert summary["drift_share"] == 4 / 6 and summary["drift_detected"]
    assert all(summary["per_column"][name]["score"] < 1e-6 for name in NUMERICAL)
    assert snapshot is not None
    counted = next(metric for metric in snapshot.dict()["metrics"] if "DriftedColumnsCount" in metric["metric_name"])
    assert counted["value"] == {"count": 4.0, "share": 4 / 6}  # evidently's own count agrees


def test_a_feature_that_stopped_arriving_is_drifted_and_datetimes_are_not_checked(
    samples: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = samples
    schema = PENGUINS.model_copy(update={"columns": [*PENGUINS.columns, ColumnSchema(name="seen", kind="datetime")]})
    seen = pd.date_range("2026-01-01", periods=250, freq="h")
    current = current.assign(sex=None, seen=seen[:200])
    _, summary = drift_report(reference.assign(seen=seen), current, schema, threshold=0.5)
    assert summary["drifted_columns"] == ["sex"]
    assert summary["per_column"]["sex"] == {
        "kind": "categorical", "test": "no value in the window", "score": None, "threshold": None, "drifted": True
    }
    assert summary["unchecked_columns"] == {"seen": "datetime feature"}
    assert summary["drift_share"] == 1 / 6


def _labelled(classes: list[str], rows: int, seed: int) -> pd.DataFrame:
    """Labels and logged predictions that agree about 80% of the time, with probabilities whose argmax is the label."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(classes, rows)
    proba = rng.dirichlet(np.ones(len(classes)), rows)
    predicted = np.array(classes)[proba.argmax(axis=1)]
    predicted = np.where(rng.random(rows) < 0.8, truth, predicted)
    for row, label in enumerate(predicted):  # the logged label is the most probable class, as the service logs it
        proba[row, classes.index(label)] = proba[row].max() + 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    return pd.DataFrame(
        {
            "species": truth,
            "prediction": predicted,
            "probabilities": [dict(zip(classes, row)) for row in proba.tolist()],
        }
    ).astype({"species": object, "prediction": object})


@pytest.mark.parametrize("classes", [CLASSES, ["no", "yes"]], ids=["three classes", "two classes"])
def test_classification_quality_equals_sklearn_on_the_same_rows(classes: list[str]) -> None:
    labelled = _labelled(classes, 150, seed=3)
    schema = PENGUINS.model_copy(update={"classes": classes})
    snapshot, metrics = quality_report(labelled, schema, classes)
    truth, predicted = labelled["species"], labelled["prediction"]
    proba = np.array([[row[name] for name in classes] for row in labelled["probabilities"]])
    assert metrics["accuracy"] == skm.accuracy_score(truth, predicted)
    assert metrics["f1_macro"] == skm.f1_score(truth, predicted, average="macro")
    assert metrics["log_loss"] == skm.log_loss(truth, proba, labels=classes)
    evidently = {metric["metric_name"].split("(")[0]: metric["value"] for metric in snapshot.dict()["metrics"]}
    assert evidently["Accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-12)


def test_regression_quality_equals_sklearn_on_the_same_rows() -> None:
    rng = np.random.default_rng(4)
    truth = rng.normal(4200.0, 800.0, 120)
    labelled = pd.DataFrame({"body_mass_g": truth, "prediction": truth + rng.normal(0.0, 300.0, 120)})
    schema = InputSchema(columns=PENGUINS.columns, target="body_mass_g", task="regression")
    snapshot, metrics = quality_report(labelled, schema, None)
    assert metrics == {
        "rmse": skm.root_mean_squared_error(truth, labelled["prediction"]),
        "mae": skm.mean_absolute_error(truth, labelled["prediction"]),
        "r2": skm.r2_score(truth, labelled["prediction"]),
        "mape": skm.mean_absolute_percentage_error(truth, labelled["prediction"]),
    }
    evidently = {metric["metric_name"].split("(")[0]: metric["value"] for metric in snapshot.dict()["metrics"]}
    assert evidently["RMSE"] == pytest.approx(metrics["rmse"], rel=1e-12)


def test_write_reports_never_overwrites_and_writes_strict_json(
    tmp_path: Path, samples: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    snapshot, drift = drift_report(*samples, PENGUINS, threshold=0.5)
    at = datetime(2026, 3, 1, tzinfo=timezone.utc).isoformat()
    summary = {"drift": drift, "quality": {"r2": float("nan")}, "at": at}
    first = write_reports(tmp_path / "reports", "20260301T120000Z", summary, snapshot)
    second = write_reports(tmp_path / "reports", "20260301T120000Z", summary, snapshot)
    assert [path.name for path in first.values()] == ["drift-20260301T120000Z.html", "monitoring-20260301T120000Z.json"]
    assert [path.name for path in second.values()] == [
        "drift-20260301T120000Z-2.html",
        "monitoring-20260301T120000Z-2.json",
    ]
    assert "<!doctype html>" in first["drift_html"].read_text()[:100].lower()
    written = json.loads(first["summary_json"].read_text())  # strict: NaN would not parse as the same value
    assert written["quality"] == {"r2": None}
    assert written["drift"] == json.loads(json.dumps(drift))
    assert written["reports"] == {name: str(path) for name, path in first.items()}


def test_forecasts_are_scored_live_against_the_actuals_that_arrived_for_their_time(tmp_path: Path) -> None:
    from ml_project.forecasting import forecast_table
    from ml_project.monitoring import Window, monitor, report_lines
    from ml_project.training import train

    from .test_forecasting import queues, seasonal_config

    history = queues(days=100)
    config = seasonal_config(tmp_path, history.iloc[list(range(0, 90)) + list(range(100, 190))])  # 90 days per queue
    bundle = train(config, progress=False).bundle
    table = forecast_table(bundle, 16)  # the 16 days after day 90; the file will grow by 10 of them
    url = config.prediction_log_url
    assert url is not None
    log = PredictionLog(url)
    log.write(
        [
            LoggedPrediction(
                request_id="r1", model_name=bundle.model_name, model_version=bundle.version, prediction=float(row.forecast),
                features={"series": row.series, "timestamp": row.timestamp.isoformat(), "step": step % 16 + 1,
                          "forecast_lower": float(row.forecast_lower), "forecast_upper": float(row.forecast_upper)},
            )
            for step, row in enumerate(table.itertuples())
        ]
    )
    log.close()
    seasonal_config(tmp_path, history)  # the actuals arrive: the data file now holds 100 days per queue
    report = monitor(config, bundle, Window(None, None, None))
    live = report.summary["forecast_quality"]
    assert (live["forecasts"], live["with_actuals"], live["waiting"], live["unknown_series"]) == (32, 20, 12, 0)
    arrived = history.rename(columns={"unique_id": "series", "ds": "timestamp", "y": "actual"})
    joined = table.merge(arrived, on=["series", "timestamp"])
    assert live["metrics"]["mae"] == pytest.approx(float((joined["forecast"] - joined["actual"]).abs().mean()))
    assert report.exit_code == 0 and report.paths["forecast_png"].is_file()
    lines = report_lines(report, Window(None, None, None))
    assert lines[2] == f"forecasts: 32 logged, 20 with actuals in {config.data.path}, 12 waiting for theirs, 0 of a series the file does not hold"
    assert lines[3].startswith("live forecast quality: mape ") and "(holdout " in lines[3]
