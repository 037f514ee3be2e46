"""One prediction path for records and files: rows in = predicted + quarantined, chunking is invisible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_project.ingestion import DataError
from ml_project.prediction import predict_file, predict_frame

from ..conftest import PENGUINS


def _bad_rows_file(penguins: pd.DataFrame, path: Path) -> Path:
    frame = penguins.copy().astype({"bill_length_mm": object})
    frame.loc[5, "bill_length_mm"] = "forty"
    frame.loc[17, "island"] = "Atlantis"
    frame.loc[18, "body_mass_g"] = 1_000_000
    frame.loc[40, "sex"] = "unknown"
    frame.to_csv(path, index=False)
    return path


def test_predict_frame_returns_labels_probabilities_and_version(trained, penguins: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    predictions, quarantine = predict_frame(report.bundle, penguins.head(10))
    assert list(predictions.columns) == [
        "id", "prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo", "model_version"
    ]
    assert quarantine.empty
    probabilities = predictions[["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert (predictions["model_version"] == report.bundle.version).all()
    # The fitted pipeline takes the raw frame too: its ColumnTransformer hands each step only its own columns.
    assert predictions["prediction"].tolist() == report.bundle.pipeline.predict(penguins.head(10)).tolist()
    np.testing.assert_array_equal(probabilities, report.bundle.pipeline.predict_proba(penguins.head(10)))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_file_with_bad_rows(trained, penguins: pd.DataFrame, tmp_path: Path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    source = _bad_rows_file(penguins, tmp_path / "input.csv")
    if suffix == ".parquet":
        pd.read_csv(source, dtype={"bill_length_mm": str}).to_parquet(tmp_path / "input.parquet")
        source = tmp_path / "input.parquet"
    output, quarantine = tmp_path / f"out{suffix}", tmp_path / f"bad{suffix}"
    counts = predict_file(report.bundle, source, output, quarantine, chunk_size=50)
    assert (counts.rows, counts.predicted, counts.quarantined) == (344, 340, 4)
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    predicted, rejected = read(output), read(quarantine)
    assert len(predicted) == 340
    assert rejected[["id", "row", "column"]].values.tolist() == [
        [5, 5, "bill_length_mm"], [17, 17, "island"], [18, 18, "body_mass_g"], [40, 40, "sex"]
    ]
    assert rejected["reason"].tolist()[:2] == ["expected a finite number", "unknown category (known: Biscoe, Dream, Torgersen)"]
    assert sorted([*predicted["id"], *rejected["id"]]) == list(range(344))


def test_chunk_size_does_not_change_predictions(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    predict_file(report.bundle, PENGUINS, small, tmp_path / "q1.csv", chunk_size=7)
    predict_file(report.bundle, PENGUINS, large, tmp_path / "q2.csv", chunk_size=100_000)
    pd.testing.assert_frame_equal(pd.read_csv(small), pd.read_csv(large))


def test_a_file_missing_a_required_column_is_refused(trained, penguins: pd.DataFrame, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    source = tmp_path / "no_sex.csv"
    penguins.drop(columns=["sex"]).to_csv(source, index=False)
    with pytest.raises(DataError, match=f"^data error: {source} has no column 'sex'$"):
        predict_file(report.bundle, source, tmp_path / "o.csv", tmp_path / "q.csv", chunk_size=100)
    assert not (tmp_path / "o.csv").exists()


def test_an_all_bad_file_still_writes_both_outputs(trained, penguins: pd.DataFrame, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    source = tmp_path / "bad.csv"
    penguins.head(3).assign(island="Atlantis").to_csv(source, index=False)
    counts = predict_file(report.bundle, source, tmp_path / "o.csv", tmp_path / "q.csv", chunk_size=100)
    assert (counts.rows, counts.predicted, counts.quarantined) == (3, 0, 3)
    assert pd.read_csv(tmp_path / "o.csv").columns.tolist()[:2] == ["id", "prediction"]
    assert len(pd.read_csv(tmp_path / "q.csv")) == 3


def test_unsupported_output_suffix_is_refused(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    with pytest.raises(DataError, match=r"must end in .csv or .parquet$"):
        predict_file(report.bundle, PENGUINS, tmp_path / "o.json", tmp_path / "q.csv", chunk_size=100)


def test_ids_keep_their_text_across_chunks(trained, penguins: pd.DataFrame, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    _, report = trained
    bundle = replace(report.bundle, schema=report.bundle.schema.model_copy(update={"id_column": "tag"}))
    tags = [str(n) for n in range(300)] + [f"P{n}" for n in range(300, 344)]  # numeric-looking, then not
    source = tmp_path / "tagged.csv"
    penguins.assign(tag=tags).to_csv(source, index=False)
    counts = predict_file(bundle, source, tmp_path / "o.csv", tmp_path / "q.csv", chunk_size=100)
    assert counts.predicted == 344
    assert pd.read_csv(tmp_path / "o.csv", dtype={"id": str})["id"].tolist() == tags
    penguins.to_csv(tmp_path / "untagged.csv", index=False)
    with pytest.raises(DataError, match="has no column 'tag'$"):
        predict_file(bundle, tmp_path / "untagged.csv", tmp_path / "o2.csv", tmp_path / "q2.csv", chunk_size=100)


def test_category_dtype_columns_from_parquet_are_scored(trained, penguins: pd.DataFrame, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    source = tmp_path / "categorical.parquet"
    penguins.assign(sex=penguins["sex"].astype("category"), island=penguins["island"].astype("category")).to_parquet(source)
    counts = predict_file(report.bundle, source, tmp_path / "o.csv", tmp_path / "q.csv", chunk_size=100)
    assert (counts.predicted, counts.quarantined) == (344, 0)


def test_a_quarantine_chunk_with_only_missing_ids_does_not_fix_the_id_type(trained, penguins: pd.DataFrame, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    _, report = trained
    bundle = replace(report.bundle, schema=report.bundle.schema.model_copy(update={"id_column": "tag"}))
    frame = penguins.head(4).assign(tag=[None, "P1", "P2", "P3"])
    frame.loc[0, "island"] = "Atlantis"
    frame.loc[3, "island"] = "Atlantis"
    frame.to_csv(tmp_path / "in.csv", index=False)
    counts = predict_file(bundle, tmp_path / "in.csv", tmp_path / "o.csv", tmp_path / "q.csv", chunk_size=2)
    assert (counts.predicted, counts.quarantined) == (2, 2)
    assert pd.read_csv(tmp_path / "q.csv")["id"].tolist()[1] == "P3"


def test_outputs_may_not_overwrite_the_input_or_each_other(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    copy = tmp_path / "in.csv"
    copy.write_bytes(PENGUINS.read_bytes())
    with pytest.raises(DataError, match="^data error: input, output and quarantine must be three different files"):
        predict_file(report.bundle, copy, tmp_path / "o.csv", copy, chunk_size=100)
    with pytest.raises(DataError, match="must be three different files"):
        predict_file(report.bundle, copy, tmp_path / "o.csv", tmp_path / "o.csv", chunk_size=100)
    assert copy.read_bytes() == PENGUINS.read_bytes()


def test_infinite_values_are_quarantined(trained, penguins: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    frame = penguins.head(3).copy()
    frame.loc[1, "bill_length_mm"] = np.inf
    predictions, quarantine = predict_frame(report.bundle, frame)
    assert quarantine[["row", "column", "reason"]].values.tolist() == [[1, "bill_length_mm", "expected a finite number"]]
    assert len(predictions) == 2



def test_every_valid_training_row_is_accepted_by_the_bundle_it_trained(tmp_path: Path) -> None:
    """Ranges are learned from all valid training rows, holdout included: with no margin, the rows
    of the training file that lie beyond the modelling rows' range (one row on the shipped penguins) still score."""
    from ml_project.ingestion import load_modelling_data
    from ml_project.training import train
    from ml_project.validation import schema_from_config, validate

    from ..conftest import make_config

    overrides = ("validation.range_margin=0", "tracking.enabled=false", "monitoring.holdout_report=false")
    config = make_config(tmp_path, *overrides)
    report = train(config, progress=False)
    raw = validate(load_modelling_data(config.data), schema_from_config(config.data), with_target=True)
    predictions, quarantine = predict_frame(report.bundle, raw.valid[config.data.features.all])
    assert (len(predictions), quarantine.to_dict("records")) == (len(raw.valid), [])
    rows = report.bundle.card["rows"]
    assert rows["modelling"] + rows["holdout"] == len(raw.valid)
