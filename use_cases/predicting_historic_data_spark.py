"""Score a historic CSV/parquet file, folder or URI with a model bundle on Apache Spark.

The scale-out twin of predicting_historic_data_local, for data that outgrows one machine: the same
validation and model call run inside Spark (mapInPandas), and the outputs have the same columns
(id, prediction, proba_<class>, model_version; quarantine: id, row, column, value, reason), written
as folders of part files. Needs the [spark] packages and Java 17+; --master (default spark.master,
local[*]) picks the cluster. Rows in = predicted + quarantined."""

from __future__ import annotations

import argparse
import logging
import time

from ml_project.cli import add_model_argument, load_model, main_entry, make_parser
from ml_project.config import Config, RunConfig
from ml_project.prediction import quarantine_beside
from ml_project.spark_prediction import check_paths, master_of, predict_with_spark, start_session

NAME = "predicting_historic_data_spark"
RUN = RunConfig(mode="prediction", data="historic", environment="local")
logger = logging.getLogger(NAME)


def main(config: Config, args: argparse.Namespace) -> int:
    bundle = load_model(config, args.model)
    quarantine = args.quarantine or quarantine_beside(args.output)
    check_paths(args.input, args.output, quarantine)  # before the JVM starts
    spark = start_session(config.spark, args.master, app_name=f"{NAME} {bundle.model_name} {bundle.version}")
    master = master_of(spark)
    began = time.perf_counter()
    try:
        counts = predict_with_spark(spark, bundle, args.input, args.output, quarantine)
    finally:
        spark.stop()
    elapsed = time.perf_counter() - began
    print(f"model {bundle.model_name} version {bundle.version} on Spark master {master}")
    print(f"rows {counts.rows}: predicted {counts.predicted}, quarantined {counts.quarantined}")
    print(f"predictions: {args.output}")
    print(f"quarantine:  {quarantine}")
    print(f"elapsed {elapsed:.1f} s, {counts.rows / elapsed if elapsed > 0 else 0:,.0f} rows/s")
    return 0


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    result.add_argument("--input", required=True, help="CSV or parquet file, folder of part files, or URI (hdfs://, s3a://)")
    result.add_argument("--output", required=True, help="predictions folder (ends in .csv or .parquet)")
    add_model_argument(result)
    result.add_argument("--quarantine", help="rejected rows folder (default: <output stem>.quarantine<suffix>)")
    result.add_argument(
        "--master",
        help="Spark master URL, e.g. local[2], spark://host:7077, yarn (default: spark-submit's master, else spark.master)",
    )
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
