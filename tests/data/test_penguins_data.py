"""Expectations on the shipped datasets: what the example configs rely on."""

from __future__ import annotations

import pandas as pd

from ..conftest import ROOT


def test_penguins_has_the_documented_shape(penguins: pd.DataFrame) -> None:
    assert penguins.shape == (344, 8)
    assert list(penguins.columns) == [
        "species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year"
    ]
    assert penguins["species"].value_counts().to_dict() == {"Adelie": 152, "Gentoo": 124, "Chinstrap": 68}
    assert int(penguins.isna().sum().sum()) == 19  # 11 NA cells in sex, 2 rows with every measurement NA
    assert penguins["species"].notna().all()


def test_seattle_temps_is_hourly_and_strictly_positive() -> None:
    temps = pd.read_csv(ROOT / "data" / "seattle_temps.csv")
    stamps = pd.to_datetime(temps["date"], format="%Y/%m/%d %H:%M")
    assert len(temps) == 8759  # 365 days × 24 hours, one hour missing (DST change)
    assert stamps.is_monotonic_increasing
    assert (stamps.dt.year == 2010).all()
    assert (temps["temp"] > 0).all()
