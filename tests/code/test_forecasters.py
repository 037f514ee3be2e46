"""forecasters: backtests never train on their window, serving computes the training lags, one model many series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_project.config import ALGORITHM_NAMES, ForecastConfig
from ml_project.errors import DataError
from ml_project.forecasters import FORECASTERS, OUTPUT, Setting, fit
from ml_project.forecasting import backtest
from ml_project.series import ID, TIME, VALUE

DAILY = Setting.of(ForecastConfig(frequency="1D", horizon=5, holidays="US"))


def daily_series(names: dict[str, int], seed: int = 0, start: str = "2026-01-01") -> pd.DataFrame:
    """Positive weekly-seasonal series with noise, of the given lengths."""
    rng = np.random.default_rng(seed)
    pieces = []
    for number, (name, length) in enumerate(names.items()):
        t = np.arange(length)
        values = 50 + 10 * number + 5 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.5, length)
        pieces.append(pd.DataFrame({ID: name, TIME: pd.date_range(start, periods=length, freq="D"), VALUE: values}))
    return pd.concat(pieces, ignore_index=True)


def test_one_table_of_forecasting_candidates() -> None:
    assert tuple(FORECASTERS) == ALGORITHM_NAMES["forecasting"]
    assert [name for name, candidate in FORECASTERS.items() if candidate.kind == "statistical"] == [
        "seasonal_naive", "auto_ets", "auto_arima", "mstl"
    ]


@pytest.mark.parametrize("algorithm", ["ridge", "hist_gradient_boosting", "seasonal_naive"])
def test_a_backtest_window_never_trains_on_its_own_periods(algorithm: str) -> None:
    # Zero until the first window, then a jump to 1000: a model trained only before the window forecasts
    # exactly 0 for it (a zero series differenced is zero, and so is every lag); one row of the window leaking
    # into its training would move the forecast off zero.
    frame = daily_series({"A": 60})
    frame[VALUE] = 0.0
    frame.loc[45:, VALUE] = 1000.0
    points = backtest(algorithm, FORECASTERS[algorithm].defaults, 0, DAILY, frame, horizon=5, windows=3)
    first = points[points["cutoff"] == points["cutoff"].min()]
    assert first["cutoff"].iloc[0] == pd.Timestamp("2026-02-14")  # the last training day: 45 days in
    assert first[TIME].min() == pd.Timestamp("2026-02-15") and len(first) == 5
    assert np.abs(first[OUTPUT].to_numpy()).max() < 1e-6
    assert sorted(points["cutoff"].unique()) == list(pd.to_datetime(["2026-02-14", "2026-02-19", "2026-02-24"]))
    assert (points[TIME] > points["cutoff"]).all()


def test_serving_computes_the_lag_and_calendar_features_training_computed_for_the_same_history() -> None:
    frame = daily_series({"A": 80, "B": 80})
    forecaster = fit("ridge", {"alpha": 1.0}, 0, DAILY, frame[frame[TIME] < "2026-03-21"])
    trained = forecaster.engine.preprocess(frame, static_features=[], dropna=True)
    seen: list[pd.DataFrame] = []

    def capture(features: pd.DataFrame) -> pd.DataFrame:
        seen.append(features.copy())
        return features

    history = frame[frame[TIME] < "2026-03-21"]
    forecaster.engine.predict(1, new_df=history, before_predict_callback=capture)
    served = seen[0].reset_index(drop=True)
    expected = trained[trained[TIME] == "2026-03-21"].drop(columns=[ID, TIME, VALUE]).reset_index(drop=True)
    pd.testing.assert_frame_equal(served[expected.columns], expected, check_dtype=False)
    assert {"lag1", "lag7", "lag14", "rolling_mean_lag1_window_size7", "day_of_week", "holiday"} <= set(served.columns)
    assert "year" not in served.columns  # ridge reads only the calendar parts that repeat within a week


@pytest.mark.parametrize("algorithm", ["ridge", "seasonal_naive"])
def test_every_series_gets_exactly_horizon_consecutive_periods_after_its_own_end(algorithm: str) -> None:
    frame = daily_series({"DEFAULT": 70, "LLAP": 60, "ETL": 65})
    forecaster = fit(algorithm, FORECASTERS[algorithm].defaults, 0, DAILY, frame)
    points = forecaster.forecast(6)
    assert points.groupby(ID).size().to_dict() == {"DEFAULT": 6, "ETL": 6, "LLAP": 6}
    for name, rows in points.groupby(ID):
        end = frame.loc[frame[ID] == name, TIME].max()
        assert rows[TIME].tolist() == list(pd.date_range(end + pd.Timedelta(days=1), periods=6, freq="D"))
    assert (points["forecast_lower"] <= points[OUTPUT]).all() and (points[OUTPUT] <= points["forecast_upper"]).all()


def test_the_same_seed_forecasts_the_same_numbers() -> None:
    frame = daily_series({"A": 70, "B": 70})
    params = FORECASTERS["random_forest"].defaults | {"n_estimators": 20}
    first = fit("random_forest", params, 7, DAILY, frame).forecast(5)
    again = fit("random_forest", params, 7, DAILY, frame).forecast(5)
    pd.testing.assert_frame_equal(first, again)


def test_a_newer_history_moves_the_forecast_start_and_feeds_the_lags() -> None:
    frame = daily_series({"A": 80})
    older = frame.iloc[:70]
    for algorithm in ("ridge", "seasonal_naive"):
        forecaster = fit(algorithm, FORECASTERS[algorithm].defaults, 0, DAILY, older)
        points = forecaster.forecast(3, history=frame)
        assert points[TIME].min() == frame[TIME].max() + pd.Timedelta(days=1)
        refitted_history = forecaster.with_history(frame).forecast(3)
        pd.testing.assert_frame_equal(points, refitted_history)
    naive = fit("seasonal_naive", {}, 0, DAILY, older).forecast(7, history=frame)
    assert naive[OUTPUT].tolist() == frame[VALUE].iloc[-7:].tolist()  # the same weekday last week


def test_too_short_a_history_for_the_lags_is_one_line() -> None:
    frame = daily_series({"A": 80})
    forecaster = fit("ridge", {"alpha": 1.0}, 0, DAILY, frame)
    with pytest.raises(DataError) as error:
        forecaster.forecast(3, history=frame.iloc[-10:])
    assert str(error.value) == "data error: series A has 10 observations; the model's lags need at least 16"


@pytest.mark.parametrize("algorithm", ["auto_ets", "mstl"])
def test_a_statistical_model_forecasts_from_its_stored_history_as_from_the_fitted_series(algorithm: str) -> None:
    frame = daily_series({"A": 120})
    forecaster = fit(algorithm, {}, 0, DAILY, frame)
    stored = forecaster.forecast(5)[OUTPUT].to_numpy()
    assert np.allclose(stored, forecaster.engine["A"].predict(h=5)["mean"])
    assert np.allclose(stored, forecaster.forecast(5, history=frame)[OUTPUT].to_numpy())


def test_a_sent_series_gets_an_interval_in_its_own_units_and_too_short_a_series_is_refused() -> None:
    frame = daily_series({"A": 80})
    forecaster = fit("seasonal_naive", {}, 0, DAILY, frame)
    big = frame.assign(**{ID: "B", VALUE: frame[VALUE] * 1000})
    both = forecaster.forecast(3, history=big)
    width = (both["forecast_upper"] - both["forecast_lower"]).groupby(both[ID]).mean()
    assert width["B"] == pytest.approx(width["A"] * 1000)
    with pytest.raises(DataError) as error:
        forecaster.forecast(3, history=big.iloc[:5])
    assert str(error.value) == "data error: series B has 5 observations; the model needs a full season: at least 7"


def test_an_exogenous_column_known_in_the_future_is_read_from_the_future_frame() -> None:
    frame = daily_series({"A": 90, "B": 90})
    promo = (frame[TIME].dt.day % 5 == 0).astype(float)
    frame = frame.assign(promo=promo, **{VALUE: frame[VALUE] + 20 * promo})
    forecaster = fit("ridge", {"alpha": 0.01}, 0, DAILY, frame[[ID, TIME, "promo", VALUE]])
    assert forecaster.exogenous == ("promo",)
    future = pd.DataFrame({ID: ["A"] * 5 + ["B"] * 5, TIME: list(pd.date_range("2026-04-01", periods=5, freq="D")) * 2})
    future["promo"] = (future[TIME].dt.day % 5 == 0).astype(float)  # 5 April is a promotion day
    points = forecaster.forecast(5, future=future)
    lift = points[OUTPUT].to_numpy().reshape(2, 5)[:, 4] - points[OUTPUT].to_numpy().reshape(2, 5)[:, 3]
    assert (lift > 10).all()  # the model learnt the promotion's +20 and applies it on the day the future says
    with pytest.raises(DataError) as error:
        forecaster.forecast(5)
    assert str(error.value) == "data error: the model uses exogenous columns (promo): give their values for the next 5 periods of every series"


def test_standard_scaling_lets_one_global_model_forecast_a_series_at_any_level() -> None:
    """B is A times 1000. Standardised per series (after differencing) they are the same series, so the
    global model's forecast of B is exactly 1000 times its forecast of A; unscaled, B's level dominates."""
    base = daily_series({"A": 80})
    frame = pd.concat([base, base.assign(**{ID: "B", VALUE: base[VALUE] * 1000})], ignore_index=True)
    scaled = Setting.of(ForecastConfig(frequency="1D", horizon=5, scaling="standard"))
    forecast = fit("ridge", {"alpha": 1.0}, 0, scaled, frame).forecast(5)
    a, b = (forecast.loc[forecast[ID] == name, OUTPUT].to_numpy() for name in ("A", "B"))
    np.testing.assert_allclose(b, 1000 * a, rtol=1e-9)
    plain = fit("ridge", {"alpha": 1.0}, 0, Setting.of(ForecastConfig(frequency="1D", horizon=5)), frame).forecast(5)
    a, b = (plain.loc[plain[ID] == name, OUTPUT].to_numpy() for name in ("A", "B"))
    assert np.abs(b / a - 1000).max() > 1
    assert (scaled.scaling, DAILY.scaling) == ("standard", "none")
