"""Score a historic CSV/parquet file with a model bundle, streaming it in chunks.

Writes id, prediction, proba_<class> (classification) and model_version for every valid row,
and a quarantine file (id, row, column, value, reason) for the rest. Rows in = predicted + quarantined."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ml_project.cli import add_model_argument, load_model, main_entry, make_parser
from ml_project.config import Config, RunConfig
from ml_project.prediction import predict_file, quarantine_beside

NAME = "predicting_historic_data_local"
RUN = RunConfig(mode="prediction", data="historic", environment="local")
logger = logging.getLogger(NAME)


def main(config: Config, args: argparse.Namespace) -> int:
    bundle = load_model(config, args.model)
    output = Path(args.output)
    quarantine = Path(args.quarantine or quarantine_beside(str(output)))
    counts = predict_file(bundle, Path(args.input), output, quarantine, config.prediction.chunk_size)
    print(f"model {bundle.model_name} version {bundle.version}")
    print(f"rows {counts.rows}: predicted {counts.predicted}, quarantined {counts.quarantined}")
    print(f"predictions: {output}")
    print(f"quarantine:  {quarantine}")
    return 0


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    result.add_argument("--input", required=True, help="CSV or parquet file to score")
    result.add_argument("--output", required=True, help="predictions file (.csv or .parquet)")
    add_model_argument(result)
    result.add_argument("--quarantine", help="rejected rows file (default: <output stem>.quarantine<suffix>)")
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
