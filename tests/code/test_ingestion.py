"""Reading tables: CSV, parquet and SQLAlchemy URLs, chunks, and files that are not what they claim."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from ml_project.config import ConfigError, load_config
from ml_project.ingestion import DataError, iter_chunks, load_modelling_data, read_table

from ..conftest import PENGUINS


def test_modelling_data_from_an_sqlalchemy_url(tmp_path: Path, penguins: pd.DataFrame) -> None:
    database = tmp_path / "warehouse.db"
    with sqlite3.connect(database) as connection:
        penguins.to_sql("penguins", connection, index=False)
    config = load_config(overrides=[f"data.path=sqlite:///{database}", "data.query=SELECT * FROM penguins WHERE year > 2007"])
    frame = load_modelling_data(config.data)
    assert len(frame) == int((penguins["year"] > 2007).sum())
    bad = load_config(overrides=[f"data.path=sqlite:///{database}", "data.query=SELECT * FROM birds"])
    with pytest.raises(DataError, match=r"^data error: query on 'sqlite:///.*warehouse.db' failed: .*no such table: birds"):
        load_modelling_data(bad.data)


def test_an_sql_url_needs_a_query() -> None:
    with pytest.raises(ConfigError, match=r"^config error: data.query is required when data.path is an SQLAlchemy URL"):
        load_config(overrides=["data.path=postgresql://db/analytics"])


def test_unsupported_files_and_chunk_indices(tmp_path: Path) -> None:
    (tmp_path / "table.xlsx").write_text("")
    with pytest.raises(DataError, match=r"has suffix '.xlsx'; expected one of: .csv, .parquet$"):
        read_table(tmp_path / "table.xlsx")
    chunks = list(iter_chunks(PENGUINS, 100))
    assert [len(chunk) for chunk in chunks] == [100, 100, 100, 44]
    assert chunks[3].index[0] == 300 and chunks[3].index[-1] == 343


def test_categorical_codes_keep_their_text(tmp_path: Path) -> None:
    source = tmp_path / "codes.csv"
    source.write_text("code,x\n01,1.5\n10,2.5\n")
    assert read_table(source, text_columns=["code"])["code"].tolist() == ["01", "10"]
    assert next(iter_chunks(source, 10, text_columns=["code"]))["code"].tolist() == ["01", "10"]


def test_a_file_that_is_not_what_its_suffix_says_is_a_data_error(tmp_path: Path) -> None:
    fake = tmp_path / "table.parquet"
    fake.write_text("species,island\nAdelie,Dream\n")
    with pytest.raises(DataError, match=rf"^data error: cannot read {fake} as parquet: .*magic bytes"):
        list(iter_chunks(fake, 10))
    with pytest.raises(DataError, match=rf"^data error: cannot read {fake} as parquet"):
        read_table(fake)


def test_a_repeated_column_name_is_refused_in_csv_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_file = tmp_path / "twice.csv"
    csv_file.write_text("island,bill_length_mm,island\nDream,39.1,Biscoe\n")
    parquet_file = tmp_path / "twice.parquet"
    pq.write_table(pa.table([pa.array(["Dream"]), pa.array(["Biscoe"])], names=["island", "island"]), parquet_file)
    for file in (csv_file, parquet_file):
        with pytest.raises(DataError, match=rf"^data error: {file} has column 'island' more than once; names must be unique$"):
            read_table(file)


def test_csv_cells_are_missing_exactly_when_spelt_as_a_configured_missing_value(tmp_path: Path) -> None:
    source = tmp_path / "spellings.csv"
    source.write_text("code,size\nNA,1\nnull,NA\nNone,\n,nan\n")
    frame = read_table(source, text_columns=["code"])
    assert frame["code"].where(frame["code"].notna(), None).tolist() == [None, "null", "None", None]
    assert frame["size"].isna().tolist() == [False, True, True, False]  # NA and the empty cell only
    assert frame["size"].tolist()[3] == "nan"  # pandas' default list would have read it as missing
    chunk = next(iter_chunks(source, 10, ["code"], missing_values=["", "null"]))
    assert chunk["code"].where(chunk["code"].notna(), None).tolist() == ["NA", None, "None", None]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_only_the_configured_columns_of_a_file_are_read(tmp_path: Path, penguins: pd.DataFrame, suffix: str) -> None:
    path = tmp_path / f"wide{suffix}"
    wide = penguins.assign(notes="x" * 100, weight_kg=penguins["body_mass_g"] / 1000)
    wide.to_csv(path, index=False) if suffix == ".csv" else wide.to_parquet(path)
    config = load_config(overrides=[f"data.path={path}"])
    frame = load_modelling_data(config.data)
    assert sorted(frame.columns) == sorted([*config.data.features.all, config.data.target])
    pd.testing.assert_frame_equal(frame, penguins[list(frame.columns)])
    missing = config.data.model_copy(update={"features": config.data.features.model_copy(update={"numerical": ["bill_length_mm", "wing_mm"]})})
    with pytest.raises(DataError) as error:
        load_modelling_data(missing)
    assert "wing_mm" in str(error.value)
