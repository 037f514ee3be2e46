"""Batch prediction on Apache Spark: the same validation and model call as `prediction.predict_file`, in parallel.

For files that outgrow one machine. Spark reads the input (CSV or parquet, a file or a folder of
part files, any URI Spark understands), every partition is validated and scored by
`prediction.predict_frame` inside `mapInPandas` (the bundle is shipped to the executors with
`SparkContext.addFile`, the package with `addPyFile`), and the predictions and the quarantine are
written with the same columns as the single-machine path. Rows are numbered as in the file, so
`id` (without an id column) and the quarantine's `row` match `predicting_historic_data_local`.

pyspark is imported inside the functions: it is an optional install (Pipfile category [spark]).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_project.artifacts import Bundle, load_bundle
from ml_project.config import PROJECT_ROOT, SparkConfig
from ml_project.errors import SparkUnavailable
from ml_project.ingestion import DataError, require_columns
from ml_project.prediction import ID_COLUMN, PredictionCounts, predict_frame
from ml_project.validation import QUARANTINE_COLUMNS

logger = logging.getLogger(__name__)

KIND = "__kind"
POSITION = "__position"
PARTITION_BITS = 33  # monotonically_increasing_id(): partition index << 33 | position in the partition
_EXECUTOR_BUNDLES: dict[str, Bundle] = {}  # per Python worker: each bundle is loaded (and verified) once


def start_session(settings: SparkConfig, master: str | None = None, app_name: str = "ml_project") -> Any:
    """A SparkSession on `master` whose Python workers run this interpreter.

    Without `master`: under spark-submit, the master spark-submit was given; otherwise settings.master.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            "spark error: pyspark is not installed; run: pipenv sync --categories \"packages spark\" (see README)"
        ) from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started this driver and its JVM
    chosen = master or (None if under_submit else settings.master)
    builder = SparkSession.builder.master(chosen) if chosen else SparkSession.builder
    builder = (
        builder.appName(app_name)
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(settings.batch_records))
        .config("spark.sql.session.timeZone", "UTC")  # timestamps reach pandas as UTC, as in the local path
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    try:
        session = builder.getOrCreate()
    except Exception as error:  # the JVM did not start (no Java), or the master refused us
        first = _first_line(error)
        hint = "; Spark needs Java 17+ (java on PATH or JAVA_HOME)" if "JAVA_GATEWAY_EXITED" in str(error) else ""
        raise SparkUnavailable(
            f"spark error: cannot start Spark on master '{chosen or 'from spark-submit'}': {first}{hint}"
        ) from None
    session.sparkContext.setLogLevel("WARN")
    return session


def master_of(session: Any) -> str:
    return str(session.sparkContext.master)


def _first_line(error: BaseException) -> str:
    """The first meaningful line of a (often very long) Spark or Py4J error message."""
    for line in str(error).strip().splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback", "File ", "at ", "py4j.")):
            return line[:400]
    return type(error).__name__


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(uri[len("file://") :]).resolve()
    return None if "://" in uri else Path(uri).resolve()


def _file_format(uri: str) -> str:
    suffix = Path(uri.rstrip("/")).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataError(f"data error: {uri} must end in .csv or .parquet (a file, or a folder of part files)")
    return suffix[1:]


def _package_zip(folder: Path) -> Path:
    """ml_project as a zip for `addPyFile`: what the executors import, on a cluster as locally."""
    archive = folder / "ml_project.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle_zip:
        for path in sorted((PROJECT_ROOT / "ml_project").rglob("*.py")):
            bundle_zip.write(path, path.relative_to(PROJECT_ROOT).as_posix())
    return archive


def _executor_bundle(name: str) -> Bundle:
    from pyspark import SparkFiles

    if name not in _EXECUTOR_BUNDLES:
        _EXECUTOR_BUNDLES[name] = load_bundle(Path(SparkFiles.get(name)))
    return _EXECUTOR_BUNDLES[name]


def output_schema(bundle: Bundle, id_is_text: bool) -> Any:
    """One row type for both outputs (a KIND column tells them apart): predictions, then quarantine fields."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    classification = bundle.schema.task == "classification"
    fields = [
        StructField(KIND, StringType()),
        StructField(ID_COLUMN, StringType() if id_is_text else LongType()),
        StructField("prediction", StringType() if classification else DoubleType()),
        *(StructField(f"proba_{label}", DoubleType()) for label in bundle.classes),
        StructField("model_version", StringType()),
        StructField("row", LongType()),
        StructField("column", StringType()),
        StructField("value", StringType()),
        StructField("reason", StringType()),
    ]
    return StructType(fields)


def _score_batches(
    batches: Iterator[pd.DataFrame],
    bundle_name: str,
    offsets: dict[int, int],
    columns: list[str],
    source: str,
    csv_input: bool = False,
    id_is_text: bool = False,
) -> Iterator[pd.DataFrame]:
    """Inside Spark: number the rows as in the file, validate and predict, yield both outputs as one frame."""
    bundle = _executor_bundle(bundle_name)
    for batch in batches:
        position = batch.pop(POSITION).to_numpy(dtype="int64")
        if csv_input:
            batch = as_read_locally(batch, bundle.schema.missing_values)
        partition = position >> PARTITION_BITS
        rows = np.array([offsets[int(p)] for p in partition], dtype="int64") + (position & ((1 << PARTITION_BITS) - 1))
        batch.index = pd.Index(rows)
        predictions, quarantine = predict_frame(bundle, batch, source=source)
        predictions = predictions.assign(**{KIND: "prediction"})
        quarantine = quarantine.assign(**{KIND: "quarantine", "value": quarantine["value"].astype(str)})
        out = pd.concat([predictions, quarantine], ignore_index=True)
        if id_is_text:  # parquet may hold integer ids; the output column is text, as for CSV input
            out[ID_COLUMN] = [None if pd.isna(value) else str(value) for value in out[ID_COLUMN]]
        yield out.reindex(columns=columns)


def read_input(spark: Any, input_uri: str, file_format: str, wanted: list[str]) -> Any:
    """The `wanted` columns of `input_uri` as Spark reads them for scoring; CSV cells arrive as text.

    Validation parses the text (a bad cell is quarantined, not nulled); `as_read_locally` then
    makes each batch's missing-value spellings missing, as the local path's CSV reader does.
    """
    from pyspark.sql import functions as F

    reader = spark.read
    if file_format == "csv":
        # As pandas reads CSV: "" inside quotes is one quote (Spark's default escape is a backslash).
        reader = reader.option("header", "true").option("escape", '"')
    try:
        frame = reader.format(file_format).load(input_uri)
    except Exception as error:  # AnalysisException: path does not exist, unreadable file
        raise DataError(f"data error: Spark cannot read {input_uri}: {_first_line(error)}") from None
    require_columns(list(frame.columns), wanted, input_uri)
    return frame.select(*(F.col(f"`{name}`") for name in wanted))


def as_read_locally(batch: pd.DataFrame, missing_values: list[str]) -> pd.DataFrame:
    """A batch of CSV text cells with validation.missing_values spellings missing (ids too, as pandas' na_values)."""
    return batch.mask(batch.isin(missing_values), None)


def check_paths(input_uri: str, output_uri: str, quarantine_uri: str) -> dict[str, str]:
    """The three paths' formats (csv or parquet), or a one-line DataError, before any JVM starts."""
    uris = {"input": input_uri, "output": output_uri, "quarantine": quarantine_uri}
    same = {name: _local_path(uri) or uri for name, uri in uris.items()}  # ./x and x are one file
    if len(set(same.values())) < 3:
        raise DataError(
            "data error: input, output and quarantine must be three different paths; got "
            + ", ".join(f"{name} {uri}" for name, uri in uris.items())
        )
    formats = {name: _file_format(uri) for name, uri in uris.items()}
    for name in ("output", "quarantine"):
        local = _local_path(uris[name])
        if local is not None and local.is_file():
            raise DataError(
                f"data error: {name} {uris[name]} is a file (from the single-machine path?); Spark writes a folder "
                "there: remove it or choose another name"
            )
    return formats


def predict_with_spark(
    spark: Any, bundle: Bundle, input_uri: str, output_uri: str, quarantine_uri: str
) -> PredictionCounts:
    """Score `input_uri` on `spark` into `output_uri` (predictions) and `quarantine_uri`; returns the counts."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    formats = check_paths(input_uri, output_uri, quarantine_uri)
    id_column = bundle.schema.id_column
    wanted = bundle.schema.feature_names + ([id_column] if id_column else [])
    # Numbered once and kept: the counting job and the scoring job see the same numbers.
    frame = (
        read_input(spark, input_uri, formats["input"], wanted)
        .withColumn(POSITION, F.monotonically_increasing_id())
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        sizes = {
            int(row["partition"]): int(row["count"])
            for row in frame.groupBy(F.shiftright(F.col(POSITION), PARTITION_BITS).alias("partition")).count().collect()
        }
    except Exception as error:
        frame.unpersist()
        raise _job_error(error, input_uri) from None
    offsets, start = {}, 0
    for partition in sorted(sizes):
        offsets[partition] = start
        start += sizes[partition]
    parallelism = spark.sparkContext.defaultParallelism
    if frame.rdd.getNumPartitions() < parallelism:  # a small file is one split: spread it over the cores
        frame = frame.repartition(parallelism)
    id_is_text = id_column is not None
    csv_input = formats["input"] == "csv"
    schema = output_schema(bundle, id_is_text)
    columns = schema.fieldNames()
    with tempfile.TemporaryDirectory(prefix="ml_project_spark_") as scratch:
        assert bundle.path is not None
        spark.sparkContext.addFile(str(bundle.path), recursive=True)
        spark.sparkContext.addPyFile(str(_package_zip(Path(scratch))))
        bundle_name, source = bundle.path.name, input_uri
        scored = frame.mapInPandas(
            lambda batches: _score_batches(batches, bundle_name, offsets, columns, source, csv_input, id_is_text),
            schema,
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            prediction_columns = [ID_COLUMN, "prediction", *(f"proba_{label}" for label in bundle.classes), "model_version"]
            _write(scored.filter(F.col(KIND) == "prediction").select(*prediction_columns), output_uri, formats["output"])
            _write(
                scored.filter(F.col(KIND) == "quarantine").select(ID_COLUMN, *QUARANTINE_COLUMNS),
                quarantine_uri,
                formats["quarantine"],
            )
            predicted = scored.filter(F.col(KIND) == "prediction").count()
            quarantined = scored.filter(F.col(KIND) == "quarantine").select("row").distinct().count()
        except Exception as error:
            raise _job_error(error, input_uri) from None
        finally:
            scored.unpersist()
            frame.unpersist()
    return PredictionCounts(rows=start, predicted=predicted, quarantined=quarantined)


def _job_error(error: Exception, input_uri: str) -> Exception:
    """A failed Spark job as one line: malformed input is the user's to fix (exit 2), anything else a failure."""
    text = str(error)
    if "Malformed" in text or "MALFORMED" in text:
        return DataError(f"data error: {input_uri} has a malformed CSV row (more cells than the header?): {_first_line(error)}")
    return RuntimeError(f"Spark job failed: {_first_line(error)}")


def _write(frame: Any, uri: str, file_format: str) -> None:
    """Spark writes a folder of part files (with a _SUCCESS marker once complete); an old folder is replaced."""
    if file_format == "csv":
        # Spark's CSV writer rounds doubles to fewer digits; as text they keep every bit (round trip).
        from pyspark.sql import functions as F

        frame = frame.select(
            *(F.col(name).cast("string").alias(name) if kind == "double" else F.col(name) for name, kind in frame.dtypes)
        )
    writer = frame.write.mode("overwrite")
    if file_format == "csv":
        writer = writer.option("header", "true")
    writer.format(file_format).save(uri)
