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
from pathlib import Path

from ml_project.cli import add_model_argument, load_model, main_entry, make_parser, utc_moment
from ml_project.config import Config, RunConfig
from ml_project.monitoring import Window, monitor, report_lines

NAME = "monitoring_production_data_local"
RUN = RunConfig(mode="prediction", data="production", environment="local")


def main(config: Config, args: argparse.Namespace) -> int:
    window = Window(args.since, args.until, args.model_version)
    report = monitor(config, load_model(config, args.model), window, args.labels)
    print("\n".join(report_lines(report, window)))
    return report.exit_code


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    add_model_argument(result)
    result.add_argument("--since", type=utc_moment, help="first logged_at to include, ISO 8601, UTC (default: the start)")
    result.add_argument("--until", type=utc_moment, help="logged_at to stop before, ISO 8601, UTC (default: now)")
    result.add_argument("--labels", type=Path, help="CSV or parquet file of request_id and the target (optional)")
    result.add_argument(
        "--model-version", help="only predictions of this model version (default: every version in the window)"
    )
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
