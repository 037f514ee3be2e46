"""monitoring_production_data_local as a scheduler runs it: a real SQLite log, real reports, exit codes 0, 3 and 2."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn import metrics as skm

from ml_project.artifacts import load_bundle
from ml_project.online_scoring import Scorer
from ml_project.prediction_log import LoggedPrediction, PredictionLog

from ..conftest import make_config, output_overrides, run_use_case

pytestmark = pytest.mark.slow

NAME = "monitoring_production_data_local"
NUMERICAL = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@dataclass(frozen=True)
class Logged:
    """A prediction log holding 200 served penguins (logged now) and 200 scaled ones (logged 30 days ago)."""

    url: str
    bundle: Path
    served: pd.DataFrame  # request_id, species, prediction of the served records
    boundary: datetime  # between the scaled rows and the served ones


def _records(frame: pd.DataFrame, features: list[str]) -> list[dict[str, Any]]:
    rows = frame[features].to_dict("records")
    return [{name: None if pd.isna(value) else value for name, value in row.items()} for row in rows]


@pytest.fixture(scope="module")
def logged(  # type: ignore[no-untyped-def]
    trained, penguins: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Logged:
    bundle = load_bundle(trained[1].bundle.path)
    features = bundle.schema.feature_names
    url = f"sqlite:///{tmp_path_factory.mktemp('monitoring') / 'prediction_log.db'}"
    drawn = penguins.sample(200, random_state=7).reset_index(drop=True)
    scaled = penguins.sample(200, random_state=8).reset_index(drop=True)
    scaled[NUMERICAL] = scaled[NUMERICAL] * 1.5
    long_ago = datetime.now(timezone.utc) - timedelta(days=30)
    with PredictionLog(url) as log:
        outcomes = Scorer(bundle, log, source="stream").score(_records(drawn, features), request_id="served")
        # The service refuses numbers beyond the trained range (+10%), so shifted inputs are logged directly.
        log.write(
            [
                LoggedPrediction(f"scaled-{i}", bundle.model_name, bundle.version, row, "Gentoo", logged_at=long_ago)
                for i, row in enumerate(_records(scaled, features))
            ]
        )
    assert not [outcome for outcome in outcomes if outcome.errors]
    served = pd.DataFrame(
        {
            "request_id": [outcome.request_id for outcome in outcomes],
            "species": drawn["species"],
            "prediction": [outcome.prediction for outcome in outcomes],
        }
    )
    return Logged(url, bundle.path, served, long_ago + timedelta(days=1))  # type: ignore[arg-type]


def _run(logged: Logged, output: Path, *args: str) -> Any:
    sets = [*output_overrides(output), f"prediction_log.url={logged.url}"]
    return run_use_case(NAME, "--model", str(logged.bundle), *args, *[arg for item in sets for arg in ("--set", item)])


def _summary(output: Path) -> dict[str, Any]:
    (summary,) = (output / "reports").glob("monitoring-*.json")
    return dict(json.loads(summary.read_text()))


def test_served_penguins_do_not_drift_and_labels_give_sklearns_accuracy(logged: Logged, tmp_path: Path) -> None:
    labelled = logged.served.iloc[:150]
    stranger = pd.DataFrame({"request_id": ["nobody"], "species": ["Adelie"]})
    labels = pd.concat([labelled[["request_id", "species"]], stranger])
    labels.to_csv(tmp_path / "labels.csv", index=False)
    since = logged.boundary.strftime("%Y-%m-%dT%H:%M:%S")
    result = _run(logged, tmp_path / "out", "--since", since, "--labels", str(tmp_path / "labels.csv"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].endswith(f": 200 predictions from {since}Z until now")
    assert "drift: 0 of 6 columns drifted (share 0.00, threshold 0.50): no drift" in lines
    assert (
        "labels: 151 rows: 150 matched, 1 unmatched (no logged prediction in the window), 0 repeated ids, 0 missing, "
        "0 of an unknown class"
    ) in lines

    summary = _summary(tmp_path / "out")
    accuracy = skm.accuracy_score(labelled["species"], labelled["prediction"])
    assert summary["quality"]["metrics"]["accuracy"] == accuracy
    f1_macro = skm.f1_score(labelled["species"], labelled["prediction"], average="macro")
    assert summary["quality"]["metrics"]["f1_macro"] == f1_macro
    assert summary["quality"]["labels"] == {
        "rows": 151, "missing": 0, "duplicates": 0, "unmatched": 1, "unknown_class": 0, "matched": 150,
        "unmatched_examples": ["nobody"],
    }
    assert summary["quality"]["holdout_metrics"] == load_bundle(logged.bundle).metrics["holdout"]
    assert f"quality on 150 labelled predictions: accuracy {accuracy:.4f}" in result.stdout
    assert set(summary) == {
        "created_at", "model_name", "reference", "prediction_log", "window", "rows", "model_versions",
        "drift", "quality", "exit_code", "reports",
    }
    assert summary["rows"] == 200 and summary["exit_code"] == 0
    assert summary["model_versions"] == {logged.bundle.name: 200}
    assert summary["window"]["until"] is None and summary["window"]["since"].startswith(since)
    drift = summary["drift"]
    assert (drift["drift_share"], drift["drifted_columns"], drift["drift_detected"]) == (0.0, [], False)
    assert drift["n_current"] == 200 and drift["n_reference"] == summary["reference"]["rows"]
    assert set(drift["per_column"]) == {*NUMERICAL, "island", "sex"}
    assert set(summary["reports"]) == {"drift_html", "quality_html", "summary_json"}
    assert all(Path(path).is_file() for path in summary["reports"].values())
    # the labels are stored for the dashboard: all 151 (the unmatched one may match a later window)
    with sqlite3.connect(logged.url.removeprefix("sqlite:///")) as connection:
        stored = dict(connection.execute("SELECT request_id, label FROM labels").fetchall())
    assert stored == {**{rid: json.dumps(label) for rid, label in zip(labels["request_id"], labels["species"])}}


def test_numbers_times_1_5_are_a_drift_alert_naming_the_numerical_columns(logged: Logged, tmp_path: Path) -> None:
    until = logged.boundary.isoformat()
    result = _run(logged, tmp_path / "out", "--until", until)
    assert result.returncode == 3, result.stderr
    assert "drift: 4 of 6 columns drifted (share 0.67, threshold 0.50): DRIFT" in result.stdout.splitlines()
    summary = _summary(tmp_path / "out")
    assert summary["drift"]["drifted_columns"] == NUMERICAL
    assert summary["rows"] == 200 and summary["exit_code"] == 3 and summary["quality"] is None
    assert set(summary["reports"]) == {"drift_html", "summary_json"}


def test_too_few_rows_or_an_empty_window_is_one_line_and_exit_2(logged: Logged, tmp_path: Path) -> None:
    result = _run(logged, tmp_path / "out", "--model-version", "19990101T000000Z")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"data error: prediction log {logged.url} holds 0 predictions of model penguins version 19990101T000000Z "
        "from the start until now; monitoring.min_rows = 30"
    )
    result = _run(logged, tmp_path / "out", "--since", "2026-03-02", "--until", "2026-03-01T23:00:00+01:00")
    assert result.returncode == 2
    stderr = "data error: --since 2026-03-02T00:00:00Z is not before --until 2026-03-01T22:00:00Z"  # in UTC
    assert result.stderr.strip() == stderr
    assert not (tmp_path / "out" / "reports").exists()


def test_the_modelling_run_writes_holdout_drift_and_quality_reports(tmp_path: Path) -> None:
    from ml_project.training import train

    report = train(make_config(tmp_path, "monitoring.holdout_report=true", "tracking.enabled=false"), progress=False)
    assert sorted(report.reports) == ["drift_html", "quality_html", "summary_json"]
    assert all(path.parent == tmp_path / "reports" and path.stat().st_size > 0 for path in report.reports.values())
    summary = json.loads(report.reports["summary_json"].read_text())
    assert summary["model_version"] == report.bundle.version and summary["kind"] == "holdout"
    assert summary["quality"]["accuracy"] == report.bundle.metrics["holdout"]["accuracy"]  # the same rows, the same score
    assert summary["drift"]["n_current"] == report.bundle.card["rows"]["holdout"]


def test_a_report_that_fails_on_a_class_missing_from_the_holdout_is_skipped_and_the_run_completes(
    tmp_path: Path, penguins: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np

    from ml_project.artifacts import LATEST
    from ml_project.training import train

    # The penguins in an order of observation where no Chinstrap is among the latest 20%: the time-ordered
    # holdout has two of the three classes, and evidently's quality report raises KeyError 'Chinstrap'.
    key = np.random.default_rng(0).random(len(penguins)) * np.where(penguins["species"] == "Chinstrap", 0.7, 1.0)
    ordered = penguins.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    ordered["observed_at"] = pd.date_range("2024-01-01", periods=len(ordered), freq="D").strftime("%Y-%m-%d")
    ordered.to_csv(tmp_path / "ordered.csv", index=False)
    settings = [f"data.path={tmp_path / 'ordered.csv'}", "data.features.datetime=[observed_at]", "modelling.holdout_split=latest"]
    with caplog.at_level("WARNING", logger="ml_project.monitoring"):
        report = train(make_config(tmp_path, *settings, "monitoring.holdout_report=true", "tracking.enabled=false"), progress=False)
    assert "Chinstrap" not in set(ordered["species"].iloc[-report.bundle.card["rows"]["holdout"]:])
    assert [record.getMessage() for record in caplog.records] == ["holdout quality report skipped: KeyError: 'Chinstrap'"]
    assert sorted(report.reports) == ["drift_html", "summary_json"]  # the drift report still written
    summary = json.loads(report.reports["summary_json"].read_text())
    assert summary["skipped"] == {"quality": "KeyError: 'Chinstrap'"} and summary["quality"] is None
    assert report.decision.promoted  # the gate ran, and then latest moved to the run's bundle
    assert (tmp_path / "models" / "penguins" / LATEST).resolve() == report.bundle.path
