"""predicting_historic_data_spark on a real local[2] Spark: the same rows, predictions and quarantine as the local path.

Skipped only when Java is absent (Spark needs a JVM); ./cicd_pipeline.sh installs pyspark itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from ..conftest import PENGUINS, output_overrides, run_use_case

pytestmark = [
    pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed: Spark needs a JVM (Java 17+)"),
    pytest.mark.timeout(600),
]


def _read_output(path: Path) -> pd.DataFrame:
    """A Spark output folder (its part files in order) or a single-machine output file, as one frame."""
    files = sorted(path.glob("part-*")) if path.is_dir() else [path]
    csv = path.suffix == ".csv"
    frames = [pd.read_csv(f, float_precision="round_trip") if csv else pd.read_parquet(f) for f in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """100k real penguin rows (sampled with replacement), with bad cells the quarantine must catch."""
    frame = pd.read_csv(PENGUINS).sample(100_000, replace=True, random_state=11).reset_index(drop=True)
    frame.loc[::997, "island"] = "Atlantis"
    frame["body_mass_g"] = frame["body_mass_g"].astype(object)
    frame.loc[5::1999, "body_mass_g"] = "heavy"
    path = tmp_path_factory.mktemp("spark") / "rows.csv"
    frame.to_csv(path, index=False, na_rep="NA")  # missing cells spelled NA, as in the shipped penguins.csv
    return path


def _both(trained, source: Path, out: Path, suffix: str, *extra: str) -> tuple[pd.DataFrame, ...]:  # type: ignore[no-untyped-def]
    model = str(trained[1].bundle.path)
    sets = _sets(*output_overrides(out))
    local = run_use_case(
        "predicting_historic_data_local", *sets, "--input", str(source), "--output", str(out / f"local{suffix}"), "--model", model
    )
    spark = run_use_case(
        "predicting_historic_data_spark", *sets, "--input", str(source), "--output", str(out / f"spark{suffix}"),
        "--model", model, "--master", "local[2]", *extra, timeout=540,
    )
    assert local.returncode == 0, local.stderr
    assert spark.returncode == 0, spark.stderr[-3000:]
    counts = [line for line in local.stdout.splitlines() if line.startswith("rows ")]
    assert counts == [line for line in spark.stdout.splitlines() if line.startswith("rows ")]
    assert "on Spark master local[2]" in spark.stdout
    frames = []
    for name in ("local", "spark"):
        for kind, keys in (("", ["id"]), (".quarantine", ["row", "column"])):
            frame = _read_output(out / f"{name}{kind}{suffix}")
            frames.append(frame.sort_values(keys).reset_index(drop=True))
    return tuple(frames)


def test_spark_scores_100k_rows_exactly_as_the_local_path(trained, source: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    local, local_quarantine, spark, spark_quarantine = _both(trained, source, tmp_path, ".parquet")
    assert len(local) + local_quarantine["row"].nunique() == 100_000
    assert list(spark.columns) == list(local.columns) == ["id", "prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo", "model_version"]
    pd.testing.assert_frame_equal(spark, local, check_exact=True)  # row by row: ids, labels, probabilities
    pd.testing.assert_frame_equal(spark_quarantine, local_quarantine, check_exact=True)
    assert set(local_quarantine["value"]) == {"Atlantis", "heavy"}  # NA cells are missing values, not bad ones
    assert "NA" in source.read_text()[:20_000]


def test_parquet_in_and_csv_out_keep_the_same_answers(trained, source: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    parquet = tmp_path / "rows.parquet"
    frame = pd.read_csv(source, nrows=3000)
    frame["body_mass_g"] = pd.to_numeric(frame["body_mass_g"], errors="coerce")  # parquet keeps types
    frame.to_parquet(parquet, index=False)
    local, local_quarantine, spark, spark_quarantine = _both(trained, parquet, tmp_path, ".csv")
    assert len(local) == len(spark) > 2900
    pd.testing.assert_frame_equal(spark, local, check_exact=True)
    pd.testing.assert_frame_equal(spark_quarantine, local_quarantine, check_exact=True)


def test_bad_paths_and_missing_columns_are_one_line_and_exit_2(trained, source: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = ["--model", str(trained[1].bundle.path)]
    sets = _sets(*output_overrides(tmp_path))
    wrong_suffix = run_use_case("predicting_historic_data_spark", *sets, "--input", str(source), "--output", str(tmp_path / "out.json"), *model)
    assert (wrong_suffix.returncode, wrong_suffix.stderr.strip().splitlines()[-1]) == (
        2, f"data error: {tmp_path / 'out.json'} must end in .csv or .parquet (a file, or a folder of part files)"
    )
    same = run_use_case(
        "predicting_historic_data_spark", *sets, "--input", str(source), "--output", str(source.parent / "x" / ".." / "rows.csv"), *model
    )
    assert same.returncode == 2 and same.stderr.strip().splitlines()[-1].startswith(
        "data error: input, output and quarantine must be three different paths; got input "
    )
    existing = tmp_path / "old.parquet"
    existing.write_bytes(b"from the local path")
    occupied = run_use_case("predicting_historic_data_spark", *sets, "--input", str(source), "--output", str(existing), *model)
    assert (occupied.returncode, occupied.stderr.strip().splitlines()[-1]) == (
        2, f"data error: output {existing} is a file (from the single-machine path?); Spark writes a folder there: remove it or choose another name"
    )
    assert existing.read_bytes() == b"from the local path" and source.exists()
    lacking = tmp_path / "lacking.csv"
    pd.read_csv(source, nrows=10).drop(columns=["island"]).to_csv(lacking, index=False)
    missing = run_use_case("predicting_historic_data_spark", *sets, "--input", str(lacking), "--output", str(tmp_path / "o.parquet"), *model, "--master", "local[1]")
    assert missing.returncode == 2 and missing.stderr.strip().splitlines()[-1].startswith("data error: ")
    assert "island" in missing.stderr.strip().splitlines()[-1]
    nowhere = run_use_case("predicting_historic_data_spark", *sets, "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o.parquet"), *model, "--master", "local[1]")
    assert nowhere.returncode == 2 and nowhere.stderr.strip().splitlines()[-1].startswith(f"data error: Spark cannot read {tmp_path / 'nope.csv'}")


def test_spark_gives_the_parity_battery_the_verdicts_of_every_other_path(tmp_path: Path) -> None:
    """The battery of tests/code/test_validation_parity.py, read by Spark as predict_with_spark reads it."""
    from ml_project.config import SparkConfig
    from ml_project.spark_prediction import as_read_locally, read_input, start_session
    from ml_project.validation import validate

    from ..code.test_validation_parity import BASE, BATTERY, EXPECTED, SCHEMA, batch_verdicts, write_battery

    path = write_battery(tmp_path / "battery.csv")
    spark = start_session(SparkConfig(), master="local[1]", app_name="parity")
    try:
        frame = read_input(spark, str(path), "csv", list(BASE)).toPandas()  # Spark's CSV reader, one partition
    finally:
        spark.stop()
    assert len(frame) == len(BATTERY)
    quarantine = validate(as_read_locally(frame, SCHEMA.missing_values), SCHEMA).quarantine
    found: list[dict[str, str]] = [{} for _ in BATTERY]
    for row, column, reason in quarantine[["row", "column", "reason"]].itertuples(index=False):
        found[int(row)][str(column)] = str(reason)
    assert [dict(sorted(refusals.items())) for refusals in found] == EXPECTED == batch_verdicts(path, len(BATTERY))
