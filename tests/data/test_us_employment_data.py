"""Expectations on the shipped multi-series dataset: what the us_employment forecasting config relies on."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from ..conftest import ROOT

US_EMPLOYMENT = ROOT / "data" / "us_employment.csv"
# The long form (series, month, employment) of vega_datasets 0.9.0 vega_datasets/_data/us-employment.csv
# (SHA-256 0fa5366929bf738ac420509b84ed120155f740b0fa9c265ca309dad4057d1b1b): a changed file must be noticed.
SHA256 = "81c48da90551f99d62dde63100489280966ee7172cc0aa83720e0aa3c6dda8f5"
SERIES = [
    "nonfarm",
    "private",
    "goods_producing",
    "service_providing",
    "private_service_providing",
    "mining_and_logging",
    "construction",
    "manufacturing",
    "durable_goods",
    "nondurable_goods",
    "trade_transportation_utilties",  # sic: the source's spelling
    "wholesale_trade",
    "retail_trade",
    "transportation_and_warehousing",
    "utilities",
    "information",
    "financial_activities",
    "professional_and_business_services",
    "education_and_health_services",
    "leisure_and_hospitality",
    "other_services",
    "government",
]
SUPERSECTORS = [
    "mining_and_logging",
    "construction",
    "manufacturing",
    "trade_transportation_utilties",
    "information",
    "financial_activities",
    "professional_and_business_services",
    "education_and_health_services",
    "leisure_and_hospitality",
    "other_services",
    "government",
]
MONTHS = pd.date_range("2006-01-01", "2015-12-01", freq="MS")


@pytest.fixture(scope="module")
def employment() -> pd.DataFrame:
    return pd.read_csv(US_EMPLOYMENT)


@pytest.fixture(scope="module")
def wide(employment: pd.DataFrame) -> pd.DataFrame:
    return employment.pivot(index="month", columns="series", values="employment")


def test_us_employment_is_the_shipped_file() -> None:
    assert hashlib.sha256(US_EMPLOYMENT.read_bytes()).hexdigest() == SHA256


def test_us_employment_is_long_with_the_documented_shape(employment: pd.DataFrame) -> None:
    assert list(employment.columns) == ["series", "month", "employment"]
    assert employment.shape == (2640, 3)
    assert len(SERIES) == 22
    assert sorted(employment["series"].unique()) == sorted(SERIES)
    assert "nonfarm_change" not in set(employment["series"])  # a difference, not a series
    assert int(employment.isna().sum().sum()) == 0
    assert employment.equals(employment.sort_values(["series", "month"]).reset_index(drop=True))


def test_us_employment_every_series_is_monthly_without_gaps_or_duplicates(employment: pd.DataFrame) -> None:
    stamps = pd.to_datetime(employment["month"], format="%Y-%m-%d")
    assert not employment.duplicated(["series", "month"]).any()
    for name, group in stamps.groupby(employment["series"]):
        assert len(group) == 120, name
        assert (group.to_numpy() == MONTHS.to_numpy()).all(), name  # 120 month starts, in order, none missing
        assert pd.infer_freq(group) == "MS", name


def test_us_employment_series_are_strictly_positive(employment: pd.DataFrame) -> None:
    assert (employment["employment"] > 0).all()  # MAPE is defined on every series


def test_us_employment_series_nest(wide: pd.DataFrame) -> None:
    assert ((wide[SUPERSECTORS].sum(axis=1) - wide["nonfarm"]).abs() <= 0.05).all()
    assert ((wide["private"] + wide["government"] - wide["nonfarm"]).abs() <= 0.05).all()
