"""Forecasting as a user runs it: train on a file, forecast every series into a keyed table twice, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..conftest import CONFIGS, run_use_case

DAYS = 100


def capacity_file(path: Path, days: int = DAYS) -> Path:
    """Two queues' daily capacity use with a weekly cycle, as a long CSV (queue, day, used)."""
    rng = np.random.default_rng(11)
    t = np.arange(days)
    frames = [
        pd.DataFrame(
            {
                "queue": name,
                "day": pd.date_range("2026-01-01", periods=days, freq="D").strftime("%Y/%m/%d"),
                "used": level + 6 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.5, days),
            }
        )
        for name, level in (("DEFAULT", 40.0), ("LLAP", 70.0))
    ]
    pd.concat(frames).to_csv(path, index=False)
    return path


def config_file(tmp_path: Path) -> Path:
    data = capacity_file(tmp_path / "capacity.csv")
    path = tmp_path / "capacity_forecast.yaml"
    path.write_text(
        f"""data:
  task: forecasting
  path: {data}
  target: used
  time_column: day
  series_column: queue
forecast: {{frequency: 1D, horizon: 7, backtest_windows: 2, holidays: US}}
modelling: {{algorithms: [seasonal_naive, ridge], n_trials: 3, metric: mase}}
monitoring: {{holdout_report: false}}
paths: {{output: {tmp_path / 'output'}}}
tracking: {{uri: "sqlite:///{tmp_path / 'mlflow.db'}", experiment: capacity, model_name: capacity}}
"""
    )
    return path


def test_train_then_forecast_every_queue_into_a_keyed_table_twice(tmp_path: Path, postgres_url: str) -> None:
    config = config_file(tmp_path)
    trained = run_use_case("modelling_historic_data_local", "--config", str(config), "--no-progress", timeout=240)
    assert trained.returncode == 0, trained.stderr
    assert "Leaderboard (top 3 of 3 trials, ranked by backtest mase):" in trained.stdout
    assert "mase_window_1" in trained.stdout and "mase_window_2" in trained.stdout
    assert "promoted: no champion yet" in trained.stdout

    url = f"sqlite:///{tmp_path / 'forecasts.db'}"
    for _ in range(2):
        forecast = run_use_case(
            "forecasting_historic_data_local", "--config", str(config), "--horizon", "10", "--output", url, "--table", "capacity"
        )
        assert forecast.returncode == 0, forecast.stderr
        assert "forecast: 20 rows, 2 series x 10 periods from 2026-04-11 00:00:00" in forecast.stdout
    with sa.create_engine(url).connect() as connection:
        rows = connection.execute(sa.text("SELECT series, count(*), min(timestamp), max(timestamp) FROM capacity GROUP BY series")).all()
    assert [(series, count, first[:10], last[:10]) for series, count, first, last in rows] == [
        ("DEFAULT", 10, "2026-04-11", "2026-04-20"),
        ("LLAP", 10, "2026-04-11", "2026-04-20"),
    ]
    for horizon in ("10", "12"):  # the same on a real PostgreSQL server: the rerun replaces its 20 keys
        forecast = run_use_case(
            "forecasting_historic_data_local", "--config", str(config), "--horizon", horizon, "--output", postgres_url, "--table", "capacity"
        )
        assert forecast.returncode == 0, forecast.stderr
    with sa.create_engine(postgres_url).connect() as connection:
        rows = connection.execute(sa.text('SELECT series, count(*), min("timestamp"), max("timestamp") FROM capacity GROUP BY series ORDER BY 1')).all()
    assert [(series, count, str(first), str(last)) for series, count, first, last in rows] == [
        ("DEFAULT", 12, "2026-04-11 00:00:00", "2026-04-22 00:00:00"),
        ("LLAP", 12, "2026-04-11 00:00:00", "2026-04-22 00:00:00"),
    ]

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/capacity@champion")
    logged = model.predict(pd.DataFrame({"horizon": [3]}))
    assert logged["series"].tolist() == ["DEFAULT"] * 3 + ["LLAP"] * 3
    assert logged["timestamp"].astype(str).tolist()[:3] == ["2026-04-11", "2026-04-12", "2026-04-13"]


def test_a_wrong_forecasting_run_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    too_long = run_use_case("modelling_historic_data_local", "--config", str(config), "--set", "forecast.horizon=40", "--no-progress")
    assert too_long.returncode == 2
    assert too_long.stderr.strip().splitlines()[-1] == (
        "config error: forecast.horizon = 40 with forecast.backtest_windows = 2 needs 136 periods per series "
        "(3 windows of 40 after 16 to learn from); series DEFAULT has 100 at 1D (2 series are too short)"
    )
    penguins = run_use_case("forecasting_historic_data_local", "--config", str(CONFIGS / "seattle_temps_forecast.yaml"), "--set", f"paths.output={tmp_path / 'none'}")
    assert penguins.returncode == 2
    assert penguins.stderr.strip().splitlines()[-1] == (
        f"bundle error: no model bundle at {tmp_path / 'none' / 'models' / 'seattle_temps_forecast'} (train one with ./executables/run.sh)"
    )
