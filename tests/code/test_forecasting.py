"""forecasting: the scores, the interval, the leaderboard, and the whole run from a file to a gated bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_project.artifacts import load_bundle
from ml_project.config import Config, build_config
from ml_project.forecasters import OUTPUT, Setting
from ml_project.forecasting import forecast_history, forecast_table, interval_widths, live_scores, search, window_scores
from ml_project.series import ID, TIME, VALUE, prepare, split_last
from ml_project.training import train


def test_window_scores_pool_the_series_of_a_window() -> None:
    points = pd.DataFrame({ID: ["A", "A", "B", "B"], VALUE: [10.0, 20.0, 100.0, 50.0], OUTPUT: [11.0, 18.0, 90.0, 50.0]})
    scores = window_scores(points, pd.Series({"A": 2.0, "B": 10.0}))
    assert scores["mae"] == pytest.approx((1 + 2 + 10 + 0) / 4)
    assert scores["rmse"] == pytest.approx(np.sqrt((1 + 4 + 100 + 0) / 4))
    assert scores["mape"] == pytest.approx((0.1 + 0.1 + 0.1 + 0) / 4)
    assert scores["smape"] == pytest.approx((2 / 21 + 4 / 38 + 20 / 190 + 0) / 4)
    assert scores["mase"] == pytest.approx((1.5 / 2 + 5 / 10) / 2)
    assert window_scores(points.assign(**{VALUE: 0.0}), pd.Series({"A": 1.0}))["mape"] == float("inf")


def test_interval_widths_are_quantiles_of_scaled_backtest_errors() -> None:
    frame = pd.DataFrame({ID: "A", TIME: pd.date_range("2026-01-01", periods=10, freq="D"), VALUE: np.arange(10.0)})
    # scale of the training part up to each cutoff: mean |y_t - y_(t-7)| = 7, so errors of 7 and 14 are 1 and 2 scales
    points = pd.DataFrame(
        {ID: "A", TIME: frame[TIME].iloc[8:10].tolist() * 1, "cutoff": frame[TIME].iloc[7], VALUE: [8.0, 9.0], OUTPUT: [15.0, 23.0]}
    )
    assert interval_widths(points, frame, 7, 2, 0.5).tolist() == [1.5, 1.5]  # 2 errors < 10 per step: one width


def seasonal_config(tmp_path: Path, frame: pd.DataFrame, **modelling: object) -> Config:
    path = tmp_path / "queues.csv"
    frame.rename(columns={ID: "queue", TIME: "day", VALUE: "used"}).to_csv(path, index=False)
    return build_config(
        {
            "data": {"task": "forecasting", "path": str(path), "target": "used", "time_column": "day", "series_column": "queue"},
            "forecast": {"frequency": "1D", "horizon": 5, "backtest_windows": 2, "interval": 0.8},
            "modelling": {"algorithms": ["ridge"], "n_trials": 2, "metric": "mase", **modelling},
            "monitoring": {"holdout_report": False},
            "paths": {"output": str(tmp_path / "output")},
            "tracking": {"enabled": False, "experiment": "queues", "model_name": "queues"},
        }
    )


def queues(days: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    t = np.arange(days)
    pieces = [
        pd.DataFrame({ID: name, TIME: pd.date_range("2026-01-01", periods=days, freq="D"), VALUE: level + 8 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 1, days)})
        for name, level in (("DEFAULT", 60.0), ("LLAP", 30.0))
    ]
    return pd.concat(pieces, ignore_index=True)


def test_the_leaderboard_holds_the_no_skill_line_and_each_window(tmp_path: Path) -> None:
    config = seasonal_config(tmp_path, queues(), n_trials=3)
    history, _ = split_last(prepare(config).frame, 5)
    result = search(history, config, Setting.of(config.forecast), progress=False)
    board = result.leaderboard
    assert board["algorithm"].tolist().count("seasonal_naive") == 1  # not asked for, always there
    assert sorted(board["algorithm"]) == ["ridge", "ridge", "seasonal_naive"]  # n_trials counts every trial
    assert {"mase_window_1", "mase_window_2", "mean_mase", "std_mase", "mean_mape"} <= set(board.columns)
    assert board["mean_mase"].tolist() == sorted(board["mean_mase"])
    row = board.iloc[0]
    assert row["mean_mase"] == pytest.approx((row["mase_window_1"] + row["mase_window_2"]) / 2)


def test_the_run_trains_gates_and_forecasts_every_series(tmp_path: Path) -> None:
    config = seasonal_config(tmp_path, queues())
    report = train(config, progress=False)
    bundle = load_bundle(report.bundle.path)  # pickled, verified, loaded back
    assert bundle.schema.task == "forecasting" and report.decision.promoted
    assert bundle.card["forecast"]["series"] == ["DEFAULT", "LLAP"]
    assert bundle.card["forecast"]["history_end"] == {"DEFAULT": "2026-03-31T00:00:00", "LLAP": "2026-03-31T00:00:00"}
    assert set(bundle.metrics["holdout"]) == {"mape", "mase", "smape", "rmse", "mae"}
    reference = pd.read_parquet(bundle.path / "reference.parquet")
    assert reference["day"].max() == pd.Timestamp("2026-03-26")  # the holdout (last 5 days) is not in it
    table = forecast_history(config, bundle, 3)
    assert table.columns.tolist() == ["series", "timestamp", "forecast", "forecast_lower", "forecast_upper", "model_version"]
    assert table["series"].tolist() == ["DEFAULT"] * 3 + ["LLAP"] * 3
    assert table["timestamp"].astype(str).tolist()[:3] == ["2026-04-01", "2026-04-02", "2026-04-03"]
    assert set(table["model_version"]) == {bundle.version}
    pd.testing.assert_frame_equal(table, forecast_table(bundle, 3))  # the file is unchanged: the same history

    again = train(config, progress=False)  # the same data: the champion is scored on the same holdout days
    assert again.decision.champion_version == bundle.version
    assert again.decision.gate_rows == 10 and again.decision.champion_score == pytest.approx(again.decision.candidate_score)
    assert not again.decision.promoted


def test_live_scores_match_logged_forecasts_to_the_actuals_of_the_time_they_are_for() -> None:
    actual = pd.DataFrame(
        {ID: ["A"] * 4 + ["B"] * 2, TIME: list(pd.date_range("2026-01-01", periods=4, freq="D")) * 1 + list(pd.date_range("2026-01-01", periods=2, freq="D")), VALUE: [10.0, 12.0, 10.0, 12.0, 5.0, 5.0]}
    )
    points = pd.DataFrame(
        {
            ID: ["A", "A", "B", "B", "C"],
            TIME: pd.to_datetime(["2026-01-03", "2026-01-09", "2026-01-02", "2026-01-02", "2026-01-02"]),
            OUTPUT: [11.0, 99.0, 4.0, 6.0, 1.0],
            "forecast_lower": [10.5, 0.0, 4.5, 5.5, 0.0],
            "forecast_upper": [11.5, 200.0, 5.5, 6.5, 2.0],
        }
    )
    live = live_scores(points, actual, season=2)
    assert {key: live[key] for key in ("forecasts", "with_actuals", "waiting", "unknown_series")} == {
        "forecasts": 5, "with_actuals": 3, "waiting": 1, "unknown_series": 1
    }
    assert live["metrics"]["mae"] == pytest.approx(1.0)  # |11-10|, |4-5|, |6-5|
    assert live["per_series"]["B"]["mape"] == pytest.approx(0.2)
    assert live["interval_coverage"] == pytest.approx(1 / 3)  # only B's 4.5..5.5 holds its actual (5)


def test_the_forecast_command_reads_exogenous_columns_from_a_future_file(tmp_path: Path) -> None:
    frame = queues()
    promo = (frame[TIME].dt.day % 5 == 0).astype(float)
    frame = frame.assign(promo=promo, **{VALUE: frame[VALUE] + 30 * promo})
    config = seasonal_config(tmp_path, frame)
    config = config.model_copy(update={"data": config.data.model_copy(update={"features": type(config.data.features)(numerical=["promo"])})})
    bundle = load_bundle(train(config, progress=False).bundle.path)
    assert bundle.card["algorithm"] == "ridge" and bundle.pipeline.exogenous == ("promo",)
    days = pd.date_range("2026-04-01", periods=5, freq="D")
    future = pd.DataFrame({"queue": ["DEFAULT"] * 5 + ["LLAP"] * 5, "day": list(days.strftime("%Y-%m-%d")) * 2})
    future["promo"] = [0.0, 0.0, 0.0, 0.0, 1.0] * 2
    future.to_csv(tmp_path / "future.csv", index=False)
    table = forecast_history(config, bundle, 5, str(tmp_path / "future.csv"))
    lift = table["forecast"].to_numpy().reshape(2, 5)
    assert (lift[:, 4] - lift[:, 3] > 15).all()
