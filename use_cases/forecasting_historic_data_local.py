"""Forecast the next periods of every series with a forecasting bundle (default: the champion).

Reads data.path again (the history may have grown since training), forecasts `--horizon` periods
(default forecast.horizon) after each series' newest observation and writes series, timestamp,
forecast, forecast_lower, forecast_upper and model_version to a CSV or parquet file, or to an SQL
table keyed by (series, timestamp), so that running it again replaces rows and never duplicates them."""

from __future__ import annotations

import argparse

from ml_project.cli import add_model_argument, load_model, main_entry, make_parser, positive
from ml_project.config import Config, RunConfig

NAME = "forecasting_historic_data_local"
RUN = RunConfig(mode="prediction", data="historic", environment="local")


def main(config: Config, args: argparse.Namespace) -> int:
    from ml_project.forecast_output import write_forecast
    from ml_project.forecasting import forecast_history

    bundle = load_model(config, args.model, forecasting=True)
    table = forecast_history(config, bundle, args.horizon, args.future)
    output = args.output or str(config.paths.output / "forecasts" / f"{bundle.model_name}.csv")
    where = write_forecast(table, output, args.table)
    series = table["series"].nunique() if "series" in table else 1
    print(f"model {bundle.model_name} version {bundle.version} ({bundle.card['algorithm']})")
    print(f"forecast: {len(table)} rows, {series} series x {len(table) // series} periods from {table['timestamp'].min()}")
    print(f"written: {where}")
    return 0


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    add_model_argument(result)
    result.add_argument("--horizon", type=positive, help="periods ahead (default: forecast.horizon of the bundle)")
    result.add_argument("--output", help="file (.csv, .parquet) or SQLAlchemy URL (default: <paths.output>/forecasts/)")
    result.add_argument("--table", help="table name, when --output is a database URL")
    result.add_argument("--future", help="file of the exogenous columns for the forecast periods (when the model uses any)")
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
