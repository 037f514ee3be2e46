"""Expectations on the shipped multi-series dataset: what the us_employment forecasting config relies on."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from ..conftest import ROOT

US_EMPLOYMENT = ROOT / "data" / "us_employment.csv"
# vega_datasets 0.9.0, vega_datasets/_data/us-employment.csv, byte for byte: a changed file must be noticed.
SHA256 = "0fa5366929bf738ac420509b84ed120155f740b0fa9c265ca309dad4057d1b1b"
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
INDUSTRY_GROUPS = [
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


@pytest.fixture(scope="module")
def employment() -> pd.DataFrame:
    return pd.read_csv(US_EMPLOYMENT)


def test_us_employment_is_the_shipped_file() -> None:
    assert hashlib.sha256(US_EMPLOYMENT.read_bytes()).hexdigest() == SHA256


def test_us_employment_has_the_documented_shape(employment: pd.DataFrame) -> None:
    assert employment.shape == (120, 24)
    assert list(employment.columns) == ["month", *SERIES, "nonfarm_change"]
    assert len(SERIES) == 22
    assert int(employment.isna().sum().sum()) == 0


def test_us_employment_is_monthly_without_gaps_or_duplicates(employment: pd.DataFrame) -> None:
    stamps = pd.to_datetime(employment["month"], format="%Y-%m-%d")
    expected = pd.date_range("2006-01-01", "2015-12-01", freq="MS")
    assert stamps.is_unique
    assert (stamps.to_numpy() == expected.to_numpy()).all()  # 120 month starts, in order, none missing
    assert pd.infer_freq(stamps) == "MS"
    assert employment[SERIES].notna().all().all()  # so every series has all 120 periods


def test_us_employment_series_are_strictly_positive(employment: pd.DataFrame) -> None:
    assert (employment[SERIES] > 0).all().all()  # MAPE is defined on every series
    assert (employment["nonfarm_change"] < 0).any()  # a difference, not a series to forecast with MAPE


def test_us_employment_series_nest(employment: pd.DataFrame) -> None:
    assert (employment[INDUSTRY_GROUPS].sum(axis=1) == employment["nonfarm"]).all()
    assert (employment["private"] + employment["government"] == employment["nonfarm"]).all()
    assert (employment["nonfarm"].diff().iloc[1:] == employment["nonfarm_change"].iloc[1:]).all()
