"""Check logged production predictions for drift against the training reference, and for quality against labels.

Reads the prediction log (prediction_log.url) for a time window, compares its inputs with the bundle's
reference.parquet through evidently, and, given --labels (request_id and the target), scores the
predictions with the holdout's metrics. Writes drift-<stamp>.html, quality-<stamp>.html and
monitoring-<stamp>.json under paths.reports. The labels (present, of a known class, the last line per
request id) are also stored in the prediction log's `labels` table, where the dashboard's
actual-vs-predicted panel reads them.

Exit codes: 0 no drift, 3 drift alert (drift share above monitoring.drift_share_threshold),
2 a mistake to fix (one line: too few logged rows, bad flag, missing log or bundle), 1 a bug."""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ml_project.artifacts import Bundle, BundleError
from ml_project.cli import add_model_argument, load_model, main_entry, make_parser
from ml_project.config import Config, ConfigError, RunConfig
from ml_project.ingestion import DataError
from ml_project.monitoring import (
    drift_lines,
    drift_report,
    join_labels,
    production_frame,
    quality_report,
    read_labels,
    usable_labels,
    write_reports,
)
from ml_project.prediction_log import PredictionLogError, read_predictions, shown_url, write_labels

NAME = "monitoring_production_data_local"
RUN = RunConfig(mode="prediction", data="production", environment="local")
DRIFT_EXIT = 3
REFERENCE = "reference.parquet"
logger = logging.getLogger(NAME)


def main(config: Config, args: argparse.Namespace) -> int:
    url = config.prediction_log_url
    if url is None:
        raise ConfigError("config error: prediction_log.enabled = false: there is no prediction log to monitor")
    if args.since and args.until and args.since >= args.until:
        raise DataError(f"data error: --since {_when(args.since)} is not before --until {_when(args.until)}")
    bundle = load_model(config, args.model)
    assert bundle.path is not None  # load_bundle always sets it
    reference_file = bundle.path / REFERENCE
    if not reference_file.is_file():
        raise BundleError(f"bundle error: {bundle.path} has no {REFERENCE} to compare with; retrain to get one")
    frame = production_frame(read_predictions(url, args.since, args.until, bundle.model_name), bundle.schema)
    if args.model_version:
        frame = frame[frame["model_version"] == args.model_version].reset_index(drop=True)
    window = f"from {_when(args.since, 'the start')} until {_when(args.until, 'now')}"
    if len(frame) < config.monitoring.min_rows:
        of = f" version {args.model_version}" if args.model_version else ""
        raise DataError(
            f"data error: prediction log {shown_url(url)} holds {len(frame)} predictions of model {bundle.model_name}{of} "
            f"{window}; monitoring.min_rows = {config.monitoring.min_rows}"
        )
    reference = pd.read_parquet(reference_file)
    quality_snapshot, quality = _quality(frame, bundle, args.labels, url)  # first: a wrong labels file fails fast
    drift_snapshot, drift = drift_report(reference, frame, bundle.schema, config.monitoring.drift_share_threshold)
    versions = dict(sorted(Counter(frame["model_version"]).items()))
    exit_code = DRIFT_EXIT if drift["drift_detected"] else 0
    summary = {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "model_name": bundle.model_name,
        "reference": {"model_version": bundle.version, "path": str(reference_file), "rows": len(reference)},
        "prediction_log": shown_url(url),
        "window": {
            "since": args.since.isoformat() if args.since else None,
            "until": args.until.isoformat() if args.until else None,
            "first_logged_at": frame["logged_at"].min().isoformat(),
            "last_logged_at": frame["logged_at"].max().isoformat(),
        },
        "rows": len(frame),
        "model_versions": versions,
        "drift": drift,
        "quality": quality,
        "exit_code": exit_code,
    }
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    paths = write_reports(config.paths.reports, stamp, summary, drift_snapshot, quality_snapshot)
    print(f"model {bundle.model_name}: reference {len(reference)} rows of version {bundle.version}")
    print(f"prediction log {shown_url(url)}: {len(frame)} predictions {window}")
    print("model versions: " + ", ".join(f"{version} ({count})" for version, count in versions.items()))
    for line in [*drift_lines(drift), *_quality_lines(quality)]:
        print(line)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return exit_code


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


def _moment(text: str) -> datetime:
    """An ISO 8601 date or time as an aware UTC datetime; a time without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an ISO 8601 time such as 2026-11-23T12:00:00Z") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    add_model_argument(result)
    result.add_argument("--since", type=_moment, help="first logged_at to include, ISO 8601, UTC (default: the start)")
    result.add_argument("--until", type=_moment, help="logged_at to stop before, ISO 8601, UTC (default: now)")
    result.add_argument("--labels", type=Path, help="CSV or parquet file of request_id and the target (optional)")
    result.add_argument(
        "--model-version", help="only predictions of this model version (default: every version in the window)"
    )
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
