"""Back-to-back test: score one table with a candidate and a baseline model, report what changes.

Defaults: the latest bundle against the champion, on data.path. Reports the share of changed
predictions, label changes per class pair, the largest probability (or value) shift and, when the
table holds the target, each metric of both models and its delta. Writes the report as JSON under
<paths.reports>. Exit 3 when the changed share exceeds promotion.max_changed_share, so a pipeline
can stop a rollout on it."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

from ml_project.cli import load_model, main_entry, make_parser
from ml_project.comparison import compare
from ml_project.config import Config, RunConfig
from ml_project.ingestion import read_table

NAME = "comparing_models_local"
RUN = RunConfig(mode="prediction", data="historic", environment="local")
EXIT_TOO_MANY_CHANGES = 3


def main(config: Config, args: argparse.Namespace) -> int:
    candidate, baseline = load_model(config, args.candidate), load_model(config, args.baseline)
    source = args.input or Path(config.data.path)
    text = [column.name for column in candidate.schema.columns if column.kind == "categorical"]
    table = read_table(source, text_columns=text, missing_values=candidate.schema.missing_values)
    comparison = compare(candidate, baseline, table, config.promotion.regression_tolerance)
    for line in comparison.lines():
        print(line)
    config.paths.reports.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = config.paths.reports / f"comparison-{candidate.version}-vs-{baseline.version}-{stamp}.json"
    limit = config.promotion.max_changed_share
    verdict = comparison.changed_share <= limit
    report.write_text(json.dumps({**comparison.as_dict(), "input": str(source), "max_changed_share": limit, "passed": verdict}, indent=2))
    print(f"changed share {comparison.changed_share:.2%} {'<=' if verdict else '>'} promotion.max_changed_share {limit:.2%}")
    print(f"report: {report}")
    return 0 if verdict else EXIT_TOO_MANY_CHANGES


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    result.add_argument("--candidate", default="latest", help="bundle folder, latest or champion (default: %(default)s)")
    result.add_argument("--baseline", default="champion", help="bundle folder, latest or champion (default: %(default)s)")
    result.add_argument("--input", type=Path, help="CSV or parquet table to score with both (default: data.path)")
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
