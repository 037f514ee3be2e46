"""Monitoring: logged production inputs against the training reference (drift) and against late labels (quality).

The stages are plain functions of frames. `join_labels` reads the labels file it is given and
`write_reports` writes the reports; nothing else here does I/O. evidently is imported inside the
functions that use it, so importing this module stays light.

Drift is judged per feature column by evidently's default test for the column's kind and the
reference size (K-S, chi-square or Z-test p-values up to 1000 reference rows; Wasserstein or
Jensen-Shannon distances above). Datetime features are not drift-checked: production times lie
after training times by construction. A feature with no value at all in the production window is
counted as drifted (evidently refuses an empty column). The window drifts when the share of drifted
columns is above `monitoring.drift_share_threshold`.

Headline quality metrics are computed with scikit-learn by `evaluation.score`, the function that
scored the holdout, so production and holdout figures mean the same thing; evidently's report is
the picture (confusion matrix, per-class scores) beside them.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_project.artifacts import Bundle
from ml_project.config import Config
from ml_project.errors import BundleError, ConfigError, PredictionLogError, jsonable
from ml_project.ingestion import DataError, read_table, require_columns
from ml_project.prediction_log import read_predictions, shown_url, write_labels
from ml_project.validation import InputSchema, typed_column

LOG_COLUMNS = ["prediction", "probabilities", "request_id", "model_version", "logged_at"]
DRIFT_KINDS = ("numerical", "categorical")
EXAMPLES = 5
REPORT_FILES = (("drift", "html"), ("quality", "html"), ("monitoring", "json"))
REFERENCE = "reference.parquet"
DRIFT_EXIT = 3
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelCounts:
    """What became of each row of a labels file; rows = missing + duplicates + unmatched + unknown_class + matched."""

    rows: int
    missing: int
    duplicates: int
    unmatched: int
    unknown_class: int
    matched: int
    unmatched_examples: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The counts as JSON-ready values."""
        return {**asdict(self), "unmatched_examples": list(self.unmatched_examples)}


def typed_features(frame: pd.DataFrame, schema: InputSchema) -> pd.DataFrame:
    """The schema's feature columns typed as validation types them: float64, text objects, datetime64[ns]."""
    spelt = schema.missing_values
    typed = {column.name: typed_column(frame[column.name], column.kind, spelt) for column in schema.columns}
    return pd.DataFrame(typed, index=frame.index)


def production_frame(log_frame: pd.DataFrame, schema: InputSchema) -> pd.DataFrame:
    """Logged predictions (`read_predictions` output) as typed features plus prediction, probabilities and keys."""
    clashing = [name for name in schema.feature_names if name in LOG_COLUMNS]
    if clashing:
        raise DataError(f"data error: feature '{clashing[0]}' has the name of a prediction log column; cannot monitor")
    # From the logged JSON objects, not read_predictions' expanded columns, where pandas may have made 7 into 7.0.
    records = log_frame["features"].tolist()
    present = set().union(*(record.keys() for record in records))
    missing = [name for name in schema.feature_names if name not in present]
    if missing and records:
        versions = ", ".join(sorted(set(log_frame["model_version"])))
        raise DataError(f"data error: the logged predictions (model versions {versions}) lack feature '{missing[0]}'")
    raw = pd.DataFrame(
        {name: pd.Series([record.get(name) for record in records], dtype=object) for name in schema.feature_names}
    )
    frame = typed_features(raw, schema)
    prediction = log_frame["prediction"].reset_index(drop=True)
    frame["prediction"] = _label_values(prediction, schema)
    frame["probabilities"] = log_frame["probabilities"].astype(object).to_numpy()
    frame["request_id"] = log_frame["request_id"].astype(str).to_numpy()
    frame["model_version"] = log_frame["model_version"].astype(str).to_numpy()
    frame["logged_at"] = pd.to_datetime(log_frame["logged_at"]).astype("datetime64[ns]").to_numpy()
    return frame


def read_labels(labels_path: Path | str, schema: InputSchema) -> pd.DataFrame:
    """A labels file as request_id (text) and the target (the model's class names as text, or numbers)."""
    target = schema.target
    text_columns = ["request_id", target] if schema.task == "classification" else ["request_id"]
    labels = read_table(labels_path, text_columns=text_columns, missing_values=schema.missing_values)
    require_columns(labels.columns, ["request_id", target], str(labels_path))
    return pd.DataFrame({"request_id": _text(labels["request_id"]), target: _label_values(labels[target], schema)})


def usable_labels(labels: pd.DataFrame, schema: InputSchema) -> pd.DataFrame:
    """The labels worth keeping: present, of a known class, the last line of a repeated request id."""
    target = schema.target
    present = labels.dropna().drop_duplicates("request_id", keep="last")
    return present[present[target].isin(schema.classes)] if schema.classes else present


def join_labels(
    frame: pd.DataFrame, labels_file: Path | str | pd.DataFrame, schema: InputSchema
) -> tuple[pd.DataFrame, LabelCounts]:
    """Join labels (a file, or `read_labels` of one) on the latest logged row per request id, counting every label row."""
    target = schema.target
    labels = labels_file if isinstance(labels_file, pd.DataFrame) else read_labels(labels_file, schema)
    present = labels.dropna()
    unique = present.drop_duplicates("request_id", keep="last")  # a later line corrects an earlier one
    latest = frame.drop_duplicates("request_id", keep="last")  # the log is ordered by logged_at, then id
    known = unique["request_id"].isin(latest["request_id"])
    matched = latest.merge(unique[known], on="request_id", how="inner", validate="one_to_one")
    in_classes = matched[target].isin(schema.classes) if schema.classes else pd.Series(True, index=matched.index)
    counts = LabelCounts(
        rows=len(labels),
        missing=len(labels) - len(present),
        duplicates=len(present) - len(unique),
        unmatched=int((~known).sum()),
        unknown_class=int((~in_classes).sum()),
        matched=int(in_classes.sum()),
        unmatched_examples=tuple(unique.loc[~known, "request_id"].head(EXAMPLES)),
    )
    return matched[in_classes].reset_index(drop=True), counts


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, schema: InputSchema, threshold: float
) -> tuple[Any | None, dict[str, Any]]:
    """evidently's data-drift report of `current` against `reference`, and a summary of it per column."""
    reference, current = typed_features(reference, schema), typed_features(current, schema)
    checkable = [column.name for column in schema.columns if column.kind in DRIFT_KINDS]
    unchecked = {column.name: "datetime feature" for column in schema.columns if column.kind not in DRIFT_KINDS}
    unchecked.update({name: "no value in the reference" for name in checkable if reference[name].isna().all()})
    empty = [name for name in checkable if name not in unchecked and current[name].isna().all()]
    tested = [name for name in checkable if name not in unchecked and name not in empty]
    per_column = {name: _empty_column(schema.column(name).kind) for name in empty}
    snapshot = _run_drift(reference[tested], current[tested], schema, threshold) if tested else None
    if snapshot is not None:
        per_column.update(_column_results(snapshot.dict(), schema))
    columns = [name for name in checkable if name not in unchecked]
    drifted = [name for name in columns if per_column[name]["drifted"]]
    share = len(drifted) / len(columns) if columns else 0.0
    summary = {
        "columns": columns,
        "unchecked_columns": unchecked,
        "drifted_columns": drifted,
        "drifted_count": len(drifted),
        "drift_share": share,
        "threshold": threshold,
        "drift_detected": share > threshold,
        "n_reference": len(reference),
        "n_current": len(current),
        "per_column": {name: per_column[name] for name in columns},
    }
    return snapshot, summary


def quality_report(
    labelled: pd.DataFrame, schema: InputSchema, classes: list[str] | None
) -> tuple[Any, dict[str, Any]]:
    """evidently's quality report on labelled predictions, and the holdout's metrics computed on them exactly."""
    from ml_project.evaluation import score

    y_true, prediction = labelled[schema.target], labelled["prediction"]
    frame = pd.DataFrame({"target": y_true, "prediction": prediction})
    if schema.task == "regression":
        return _run_quality(frame, schema, [], False), score("regression", y_true, prediction.to_numpy(), None, None)
    names = list(classes or schema.classes or [])
    proba = _probability_matrix(labelled["probabilities"], names)
    metrics = score("classification", y_true, prediction.to_numpy(), proba, names)  # proba None: label metrics only
    # evidently names probability columns after the classes; a class called target or prediction cannot be one.
    with_proba = proba is not None and not set(names) & {"target", "prediction"}
    if with_proba:
        frame = pd.concat([frame, pd.DataFrame(proba, columns=names, index=frame.index)], axis=1)
    return _run_quality(frame, schema, names, with_proba), metrics


def write_reports(
    folder: Path, stamp: str, summary: dict[str, Any], drift: Any | None, quality: Any | None = None
) -> dict[str, Path]:
    """Write drift-<stamp>.html, quality-<stamp>.html and, last, monitoring-<stamp>.json; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = _free_stamp(folder, stamp)
    paths: dict[str, Path] = {}
    if drift is not None:
        paths["drift_html"] = folder / f"drift-{stamp}.html"
        drift.save_html(str(paths["drift_html"]))
    if quality is not None:
        paths["quality_html"] = folder / f"quality-{stamp}.html"
        quality.save_html(str(paths["quality_html"]))
    paths["summary_json"] = folder / f"monitoring-{stamp}.json"
    content = {**summary, "reports": {name: str(path) for name, path in paths.items()}}
    paths["summary_json"].write_text(json.dumps(jsonable(content), indent=2, allow_nan=False) + "\n")
    return paths


def drift_lines(drift: dict[str, Any]) -> list[str]:
    """The drift summary as a few printable lines: the verdict, then one line per column."""
    verdict = "DRIFT" if drift["drift_detected"] else "no drift"
    lines = [
        f"drift: {drift['drifted_count']} of {len(drift['columns'])} columns drifted "
        f"(share {drift['drift_share']:.2f}, threshold {drift['threshold']:.2f}): {verdict}"
    ]
    width = max([len(name) for name in drift["per_column"]] + [6])
    for name, result in drift["per_column"].items():
        score = "" if result["score"] is None else f" {result['score']:.3g} (threshold {result['threshold']:.3g})"
        mark = "drifted" if result["drifted"] else "ok"
        lines.append(f"  {name:<{width}}  {mark:<7}  {result['test']}{score}")
    lines += [f"  {name:<{width}}  not checked: {reason}" for name, reason in drift["unchecked_columns"].items()]
    return lines


def _run_drift(reference: pd.DataFrame, current: pd.DataFrame, schema: InputSchema, threshold: float) -> Any:
    """evidently's DataDriftPreset on the given columns, with its per-column tests."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    kinds = {name: schema.column(name).kind for name in current.columns}
    definition = DataDefinition(
        numerical_columns=[name for name, kind in kinds.items() if kind == "numerical"],
        categorical_columns=[name for name, kind in kinds.items() if kind == "categorical"],
    )
    report = Report([DataDriftPreset(columns=list(current.columns), drift_share=threshold)], include_tests=True)
    with warnings.catch_warnings():
        # chi-square divides by zero for a category the reference never had; its p-value of 0 says enough.
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"scipy\.")
        return report.run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )


def _empty_column(kind: str) -> dict[str, Any]:
    """The result for a column with no value in the window: drifted, since the feature stopped arriving."""
    return {"kind": kind, "test": "no value in the window", "score": None, "threshold": None, "drifted": True}


def _column_results(content: dict[str, Any], schema: InputSchema) -> dict[str, dict[str, Any]]:
    """Per column from a drift snapshot's dict: the test evidently chose, its score and threshold, and its verdict."""
    failed = {
        test["metric_config"]["metric_id"]
        for test in content["tests"]
        if str(getattr(test["status"], "value", test["status"])) == "FAIL"
    }
    results: dict[str, dict[str, Any]] = {}
    for metric in content["metrics"]:
        config = metric["config"]
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        results[config["column"]] = {
            "kind": schema.column(config["column"]).kind,
            "test": config["method"],
            "score": float(metric["value"]),
            "threshold": float(config["threshold"]),
            "drifted": metric["id"] in failed,
        }
    return results


def _run_quality(frame: pd.DataFrame, schema: InputSchema, classes: list[str], with_proba: bool) -> Any:
    """evidently's classification or regression preset on the target, prediction (and class probability) columns."""
    from evidently import BinaryClassification, DataDefinition, Dataset, MulticlassClassification, Regression, Report
    from evidently.presets import ClassificationPreset, RegressionPreset

    if schema.task == "regression":
        definition = DataDefinition(numerical_columns=["target", "prediction"], regression=[Regression()])
        return Report([RegressionPreset()]).run(Dataset.from_pandas(frame, data_definition=definition), None)
    labels: dict[Any, str] = {name: name for name in classes}
    task: Any
    if len(classes) == 2:  # evidently's multiclass task breaks on two classes (KeyError on its pos_label)
        task = BinaryClassification(
            target="target",
            prediction_labels="prediction",
            prediction_probas=classes[1] if with_proba else None,
            pos_label=classes[1],
            labels=labels,
        )
    else:
        task = MulticlassClassification(
            target="target",
            prediction_labels="prediction",
            prediction_probas=classes if with_proba else None,
            labels=labels,
        )
    definition = DataDefinition(categorical_columns=["target", "prediction"], classification=[task])
    return Report([ClassificationPreset()]).run(Dataset.from_pandas(frame, data_definition=definition), None)


def _probability_matrix(probabilities: pd.Series, classes: list[str]) -> np.ndarray | None:
    """Logged class probabilities as rows in `classes` order, or None unless every row has all of them."""
    if not classes or not all(isinstance(row, dict) and set(classes) <= set(row) for row in probabilities):
        return None
    rows = [[float(row[name]) for name in classes] for row in probabilities]
    return np.array(rows, dtype="float64").reshape(len(rows), len(classes))


def _label_values(values: pd.Series, schema: InputSchema) -> pd.Series:
    """Labels as the model's classes (text) or as numbers; a value that is neither becomes missing."""
    kind = "categorical" if schema.task == "classification" else "numerical"
    return typed_column(values, kind, schema.missing_values)


def _text(values: pd.Series) -> pd.Series:
    """Text objects with missing values kept missing, as validation types categorical columns."""
    text = values.astype(object)
    return text.where(text.isna(), text.astype(str)).astype(object)


def _free_stamp(folder: Path, stamp: str) -> str:
    """`stamp`, or `stamp-2`, `stamp-3`, … when a report of that name exists already (two runs in one second)."""
    candidate, number = stamp, 1
    while any((folder / f"{kind}-{candidate}.{suffix}").exists() for kind, suffix in REPORT_FILES):
        number += 1
        candidate = f"{stamp}-{number}"
    return candidate


def holdout_reports(bundle: Bundle, modelling_rows: pd.DataFrame, holdout_rows: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """The modelling run's own reports: drift of the holdout against the modelling rows, and quality on it.

    The same reports as production monitoring, so a production report reads against this baseline.
    A report that fails is skipped with a warning naming it and the error, and the summary records
    it under `skipped`: a report describes the run, it never breaks it.
    """
    from ml_project.prediction import predict_frame

    schema = bundle.schema
    skipped: dict[str, str] = {}

    def attempt(name: str, make: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
        try:
            return make()
        except Exception as error:  # noqa: BLE001 - any failure of a report library is reported, not raised
            skipped[name] = f"{type(error).__name__}: {error}"
            logger.warning("holdout %s report skipped: %s", name, skipped[name])
            return None, None

    def quality() -> tuple[Any, Any]:
        predictions, _ = predict_frame(bundle, holdout_rows)
        labelled = pd.DataFrame(
            {schema.target: holdout_rows.loc[predictions.index, schema.target], "prediction": predictions["prediction"]}
        )
        if schema.task == "classification":
            labelled[schema.target] = labelled[schema.target].astype(str)
            columns = {label: predictions[f"proba_{label}"].to_numpy() for label in bundle.classes}
            labelled["probabilities"] = [dict(zip(columns, values)) for values in zip(*columns.values())]
        return quality_report(labelled, schema, bundle.classes or None)

    drift, drift_summary = attempt("drift", lambda: drift_report(modelling_rows, holdout_rows, schema, threshold=1.0))
    quality_html, metrics = attempt("quality", quality)
    summary = {"model_version": bundle.version, "kind": "holdout", "drift": drift_summary, "quality": metrics}
    if skipped:
        summary["skipped"] = skipped
    return write_reports(folder, f"holdout-{bundle.version}", summary, drift, quality_html)


@dataclass(frozen=True)
class Window:
    """Which logged predictions to monitor: logged_at in [since, until), of one model version or all."""

    since: datetime | None = None
    until: datetime | None = None
    model_version: str | None = None

    def text(self) -> str:
        return f"from {_when(self.since, 'the start')} until {_when(self.until, 'now')}"


@dataclass(frozen=True)
class MonitoringReport:
    """The monitoring.json summary, the report files written, and the exit code (3 on a drift alert)."""

    summary: dict[str, Any]
    paths: dict[str, Path]
    exit_code: int


def monitor(config: Config, bundle: Bundle, window: Window, labels: Path | None = None) -> MonitoringReport:
    """Drift of the window's logged inputs against the bundle's reference and, given labels, quality; reports written."""
    url = config.prediction_log_url
    if url is None:
        raise ConfigError("config error: prediction_log.enabled = false: there is no prediction log to monitor")
    if window.since and window.until and window.since >= window.until:
        raise DataError(f"data error: --since {_when(window.since)} is not before --until {_when(window.until)}")
    if bundle.schema.task == "forecasting":
        return monitor_forecasts(config, bundle, window, url)
    reference_file = _reference_file(bundle)
    frame = _logged_window(config, bundle, window, url)
    reference = pd.read_parquet(reference_file)
    quality_snapshot, quality = _quality(frame, bundle, labels, url)  # first: a wrong labels file fails fast
    drift_snapshot, drift = drift_report(reference, frame, bundle.schema, config.monitoring.drift_share_threshold)
    exit_code = DRIFT_EXIT if drift["drift_detected"] else 0
    summary = {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "model_name": bundle.model_name,
        "reference": {"model_version": bundle.version, "path": str(reference_file), "rows": len(reference)},
        "prediction_log": shown_url(url),
        "window": {
            "since": window.since.isoformat() if window.since else None,
            "until": window.until.isoformat() if window.until else None,
            "first_logged_at": frame["logged_at"].min().isoformat(),
            "last_logged_at": frame["logged_at"].max().isoformat(),
        },
        "rows": len(frame),
        "model_versions": dict(sorted(Counter(frame["model_version"]).items())),
        "drift": drift,
        "quality": quality,
        "exit_code": exit_code,
    }
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    paths = write_reports(config.paths.reports, stamp, summary, drift_snapshot, quality_snapshot)
    return MonitoringReport(summary, paths, exit_code)


def monitor_forecasts(config: Config, bundle: Bundle, window: Window, url: str) -> MonitoringReport:
    """Live scores of the window's logged forecasts whose actuals arrived in data.path, and their plot."""
    from ml_project import forecasting
    from ml_project.series import prepare

    logged = read_predictions(url, window.since, window.until, bundle.model_name)
    if window.model_version:
        logged = logged[logged["model_version"] == window.model_version].reset_index(drop=True)
    if len(logged) < config.monitoring.min_rows:
        raise DataError(
            f"data error: prediction log {shown_url(url)} holds {len(logged)} forecasts of model {bundle.model_name} "
            f"{window.text()}; monitoring.min_rows = {config.monitoring.min_rows}"
        )
    points = forecasting.logged_forecasts(logged)
    actual = prepare(config).frame
    live = forecasting.live_scores(points, actual, int(bundle.card["forecast"]["season_length"]))
    summary = {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "model_name": bundle.model_name,
        "task": "forecasting",
        "prediction_log": shown_url(url),
        "actuals": config.data.path,
        "window": {"since": window.since.isoformat() if window.since else None, "until": window.until.isoformat() if window.until else None},
        "rows": len(logged),
        "model_versions": dict(sorted(Counter(logged["model_version"]).items())),
        "forecast_quality": {**live, "holdout_metrics": bundle.metrics.get("holdout")},
        "exit_code": 0,
    }
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    paths = write_reports(config.paths.reports, stamp, summary, None)
    if live["with_actuals"]:
        paths["forecast_png"] = paths["summary_json"].with_name(paths["summary_json"].stem.replace("monitoring", "forecast") + ".png")
        forecasting.actual_vs_forecast_figure(points, actual).savefig(paths["forecast_png"], dpi=110)
    return MonitoringReport(summary, paths, 0)


def _forecast_lines(summary: dict[str, Any]) -> list[str]:
    live = summary["forecast_quality"]
    lines = [
        f"forecasts: {live['forecasts']} logged, {live['with_actuals']} with actuals in {summary['actuals']}, "
        f"{live['waiting']} waiting for theirs, {live['unknown_series']} of a series the file does not hold"
    ]
    if live["metrics"] is None:
        return [*lines, "forecast quality: no actual has arrived yet for a logged forecast"]
    holdout = live["holdout_metrics"] or {}
    shown = [f"{name} {value:.4f}" + (f" (holdout {holdout[name]:.4f})" if name in holdout else "") for name, value in live["metrics"].items()]
    coverage = f"; interval coverage {live['interval_coverage']:.2f}" if live["interval_coverage"] is not None else ""
    return [*lines, "live forecast quality: " + ", ".join(shown) + coverage]


def report_lines(report: MonitoringReport, window: Window) -> list[str]:
    """What the monitoring command prints: the reference, the window, versions, drift, quality and the files."""
    summary = report.summary
    if summary.get("task") == "forecasting":
        versions = summary["model_versions"].items()
        return [
            f"model {summary['model_name']}: prediction log {summary['prediction_log']}: {summary['rows']} forecasts {window.text()}",
            "model versions: " + ", ".join(f"{version} ({count})" for version, count in versions),
            *_forecast_lines(summary),
            *(f"{name}: {path}" for name, path in report.paths.items()),
        ]
    reference = summary["reference"]
    versions = summary["model_versions"].items()
    return [
        f"model {summary['model_name']}: reference {reference['rows']} rows of version {reference['model_version']}",
        f"prediction log {summary['prediction_log']}: {summary['rows']} predictions {window.text()}",
        "model versions: " + ", ".join(f"{version} ({count})" for version, count in versions),
        *drift_lines(summary["drift"]),
        *_quality_lines(summary["quality"]),
        *(f"{name}: {path}" for name, path in report.paths.items()),
    ]


def _reference_file(bundle: Bundle) -> Path:
    assert bundle.path is not None  # load_bundle always sets it
    reference_file = bundle.path / REFERENCE
    if not reference_file.is_file():
        raise BundleError(f"bundle error: {bundle.path} has no {REFERENCE} to compare with; retrain to get one")
    return reference_file


def _logged_window(config: Config, bundle: Bundle, window: Window, url: str) -> pd.DataFrame:
    """The window's logged predictions of this model as a typed frame; too few of them is a DataError."""
    frame = production_frame(read_predictions(url, window.since, window.until, bundle.model_name), bundle.schema)
    if window.model_version:
        frame = frame[frame["model_version"] == window.model_version].reset_index(drop=True)
    if len(frame) < config.monitoring.min_rows:
        of = f" version {window.model_version}" if window.model_version else ""
        raise DataError(
            f"data error: prediction log {shown_url(url)} holds {len(frame)} predictions of model {bundle.model_name}{of} "
            f"{window.text()}; monitoring.min_rows = {config.monitoring.min_rows}"
        )
    return frame


def _quality(frame: pd.DataFrame, bundle: Bundle, labels: Path | None, url: str) -> tuple[Any, dict[str, Any] | None]:
    """The quality report and its summary when a labels file is given (its labels stored too); (None, None) otherwise."""
    if labels is None:
        return None, None
    given = read_labels(labels, bundle.schema)
    labelled, counts = join_labels(frame, given, bundle.schema)
    kept = usable_labels(given, bundle.schema)
    try:  # for the dashboard; the reports do not depend on it, so a log that refuses writes costs a warning
        stored = write_labels(url, list(zip(kept["request_id"], kept[bundle.schema.target].tolist())))
        logger.info("stored %d labels in the prediction log's labels table", stored)
    except PredictionLogError as error:
        logger.warning("labels not stored for the dashboard: %s", error)
    snapshot, metrics = quality_report(labelled, bundle.schema, bundle.classes) if counts.matched else (None, None)
    summary = {"labels_file": str(labels), "labels": counts.as_dict(), "metrics": metrics}
    return snapshot, {**summary, "holdout_metrics": bundle.metrics.get("holdout")}


def _quality_lines(quality: dict[str, Any] | None) -> list[str]:
    """The label counts and the metrics next to the holdout's, as printable lines."""
    if quality is None:
        return []
    counts = quality["labels"]
    lines = [
        f"labels: {counts['rows']} rows: {counts['matched']} matched, {counts['unmatched']} unmatched "
        f"(no logged prediction in the window), {counts['duplicates']} repeated ids, {counts['missing']} missing, "
        f"{counts['unknown_class']} of an unknown class"
    ]
    if counts["unmatched_examples"]:
        lines.append("  unmatched request ids, e.g.: " + ", ".join(counts["unmatched_examples"]))
    if not quality["metrics"]:
        return [*lines, "quality: no label matched a logged prediction; no quality report"]
    holdout = quality["holdout_metrics"] or {}
    shown = [
        f"{name} {value:.4f}" + (f" (holdout {holdout[name]:.4f})" if name in holdout else "")
        for name, value in quality["metrics"].items()
    ]
    return [*lines, f"quality on {counts['matched']} labelled predictions: " + ", ".join(shown)]


def _when(moment: datetime | None, unset: str = "") -> str:
    """A window bound as printed: UTC to the second, or `unset` when the flag was not given."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else unset
