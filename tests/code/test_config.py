"""Config loading: merge order, overrides, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_project.config import (
    DEFAULT_ALGORITHMS,
    DEFAULT_PROJECT_CONFIG,
    PROJECT_ROOT,
    ConfigError,
    RunConfig,
    deep_merge,
    load_config,
    parse_override,
)

from ..conftest import CONFIGS


def test_default_config_is_the_penguins_classification() -> None:
    config = load_config()
    assert config.data.target == "species"
    assert config.data.task == "classification"
    assert config.data.features.numerical == ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    assert config.modelling.algorithms == ["baseline", "random_forest", "hist_gradient_boosting", "logistic_regression"]
    assert (config.modelling.n_trials, config.modelling.n_folds, config.modelling.metric) == (20, 5, "f1_macro")
    assert config.modelling.holdout_fraction == 0.2 and config.modelling.seed == 42
    assert config.tracking.model_name == "penguins"
    assert config.run == RunConfig(mode="modelling", data="historic", environment="local")


def test_relative_paths_resolve_against_the_project_root() -> None:
    config = load_config()
    assert config.data.path == str(PROJECT_ROOT / "data" / "penguins.csv")
    assert config.paths.output == PROJECT_ROOT / "output"
    assert config.tracking.uri == f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"


def test_set_overrides_are_parsed_as_yaml_and_win_over_files() -> None:
    config = load_config(overrides=["modelling.algorithms=[baseline, random_forest]", "modelling.n_trials=3"])
    assert config.modelling.algorithms == ["baseline", "random_forest"]
    assert config.modelling.n_trials == 3


def test_use_case_yaml_overrides_project_yaml_and_keeps_the_rest() -> None:
    config = load_config(CONFIGS / "penguins_regression.yaml")
    assert config.tracking.model_name == "penguins_body_mass"
    assert config.tracking.uri.endswith("/mlflow.db")  # from project_config.yaml
    assert config.modelling.metric == "rmse"


def test_metric_and_algorithms_default_from_the_task(tmp_path: Path) -> None:
    use_case = tmp_path / "minimal.yaml"
    use_case.write_text(
        "data: {path: data/penguins.csv, target: body_mass_g, task: regression, features: {numerical: [bill_depth_mm]}}\n"
    )
    config = load_config(use_case)
    assert config.modelling.metric == "rmse"
    assert config.modelling.algorithms == ["baseline", "lightgbm", "hist_gradient_boosting", "ridge", "random_forest"]


def test_the_run_axes_are_set_by_the_use_case() -> None:
    run = RunConfig(mode="prediction", data="production", environment="deployed")
    assert load_config(overrides=["run.mode=prediction"], run=run).run == run
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=["run.mode=modelling"], run=run)
    assert str(raised.value) == (
        "config error: run.mode = 'modelling' conflicts with this use case, which runs with run.mode = 'prediction'; "
        "pick the use case instead of setting run.*"
    )


def test_a_misspelt_section_is_named_before_what_it_leaves_missing() -> None:
    with pytest.raises(ConfigError, match="^config error: datta is not a known key$"):
        load_config(overrides=["datta.target=species", "data=null"])


def test_file_urls_are_files() -> None:
    assert load_config(overrides=[f"data.path=file://{PROJECT_ROOT}/data/penguins.csv"]).data.path == str(
        PROJECT_ROOT / "data" / "penguins.csv"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["modelling.metric=acuracy"], "config error: modelling.metric = 'acuracy' is not one of: accuracy, balanced_accuracy, f1_macro, roc_auc, roc_auc_ovr, log_loss (classification)"),
        (["modelling.metric=rmse"], "config error: modelling.metric = 'rmse' is not one of: accuracy, balanced_accuracy, f1_macro, roc_auc, roc_auc_ovr, log_loss (classification)"),
        (["modelling.n_trails=5"], "config error: modelling.n_trails is not a known key"),
        (["modelling.n_trials=many"], "config error: modelling.n_trials = 'many': Input should be a valid integer, unable to parse string as an integer"),
        (["modelling.n_folds=1"], "config error: modelling.n_folds = 1: Input should be greater than or equal to 2"),
        (["modelling.algorithms=[baseline, ridge]"], "config error: modelling.algorithms: 'ridge' is not one of: baseline, random_forest, hist_gradient_boosting, logistic_regression, lightgbm (classification)"),
        (["data.task=clustering"], "config error: data.task = 'clustering': Input should be 'classification', 'regression' or 'forecasting'"),
        (["data.target=island"], "config error: data.target = 'island' is also listed in data.features"),
        (["tracking.model_name=my model"], "config error: tracking.model_name = 'my model': String should match pattern '^[A-Za-z0-9_.-]+$'"),
        (["modelling"], "config error: --set 'modelling' is not of the form dotted.key=value"),
        (["modelling.class_weight=even"], "config error: modelling.class_weight = 'even': Input should be 'balanced'"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=overrides)
    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^config error: file not found: {tmp_path / 'nope.yaml'}$"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("data:\n  target: [species\n")
    with pytest.raises(ConfigError, match=r"^config error: .*broken.yaml line 3 is not valid YAML$"):
        load_config(broken)


def test_config_is_frozen() -> None:
    config = load_config()
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="Instance is frozen"):
        config.modelling.n_trials = 3  # type: ignore[misc]


def test_deep_merge_and_override_parsing() -> None:
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}
    assert parse_override("tracking.uri=sqlite:///x.db") == {"tracking": {"uri": "sqlite:///x.db"}}


def test_project_config_exists_at_the_root() -> None:
    assert DEFAULT_PROJECT_CONFIG == PROJECT_ROOT / "project_config.yaml"
    assert DEFAULT_PROJECT_CONFIG.is_file()


def test_a_latest_holdout_needs_a_datetime_feature() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=["modelling.holdout_split=latest"])
    assert str(raised.value) == (
        "config error: modelling.holdout_split = 'latest' needs a column in data.features.datetime to order rows by"
    )
    assert load_config(CONFIGS / "seattle_temps_regression.yaml", ["modelling.holdout_split=latest"]).modelling.holdout_split == "latest"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("modelling=5", "config error: modelling = 5: Input should be a valid dictionary or instance of ModellingConfig"),
        ("tracking.model_name=..", "config error: tracking.model_name = '..' is not a folder name; use letters, digits, _ . -"),
        ("paths.output=.", "config error: paths.output must name a folder for generated files, not the project root"),
        ("modelling.seed=-1", "config error: modelling.seed = -1: Input should be greater than or equal to 0"),
        (
            "tracking.uri=bogus://x",
            "config error: tracking.uri = 'bogus://x' is not an MLflow store; expected one of: sqlite://, postgresql://, "
            "mysql://, mssql://, file://, http://, https://, databricks://, or a folder path",
        ),
    ],
)
def test_values_that_would_misplace_or_break_a_run_are_refused(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=[override])
    assert str(raised.value) == message


def test_missing_values_default_to_the_empty_cell_and_na_and_must_keep_the_empty_cell() -> None:
    assert load_config().validation.missing_values == ["", "NA"]
    spelt = load_config(None, ['validation.missing_values=["", NA, "null"]']).validation.missing_values
    assert spelt == ["", "NA", "null"]
    with pytest.raises(ConfigError) as refused:
        load_config(None, ["validation.missing_values=[NA]"])
    assert str(refused.value) == (
        "config error: validation.missing_values = ['NA'] must include '' (an empty cell is always missing)"
    )


FORECAST = CONFIGS / "seattle_temps_forecast.yaml"


def test_the_forecasting_example_and_its_defaults() -> None:
    config = load_config(FORECAST)
    assert (config.data.task, config.data.time_column, config.data.series_column) == ("forecasting", "date", None)
    assert (config.forecast.frequency, config.forecast.horizon, config.forecast.backtest_windows) == ("1h", 24, 7)
    assert (config.forecast.aggregation, config.forecast.fill, config.forecast.lags) == ("mean", "interpolate", "auto")
    assert (config.forecast.season_length, config.forecast.differences, config.forecast.interval) == (None, [1], 0.9)
    bare = load_config(FORECAST, ["modelling=null"])  # the key left out: the task's defaults
    assert bare.modelling.metric == "mase"
    assert bare.modelling.algorithms == ["seasonal_naive", "auto_ets", "ridge", "hist_gradient_boosting"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.time_column=null"], "config error: data.time_column is required for data.task = forecasting: name the timestamp column"),
        (["forecast.frequency=null"], "config error: forecast.frequency is required for data.task = forecasting (a pandas offset alias: 1h, 1D, 1MS)"),
        (["forecast.frequency=hourly"], "config error: forecast.frequency = 'hourly' is not a pandas offset alias (e.g. 15min, 1h, 1D, 1W, 1MS)"),
        (["forecast.holidays=XX"], "config error: forecast.holidays = 'XX' is not a country code the holidays package knows (e.g. US, GB, DE)"),
        (["forecast.aggregation=mode"], "config error: forecast.aggregation = 'mode': Input should be 'mean', 'median', 'min', 'max', 'sum' or 'last'"),
        (["forecast.lags=[1, 0]"], "config error: forecast.lags = [1, 0] must be 'auto' or distinct integers >= 1"),
        (["forecast.differences=[0]"], "config error: forecast.differences = [0] must be integers >= 1 (or [] for none)"),
        (["forecast.horizon=0"], "config error: forecast.horizon = 0: Input should be greater than or equal to 1"),
        (["data.features.datetime=[date2]"], "config error: data.features.datetime is not used for forecasting: calendar features come from data.time_column"),
        (["data.series_column=temp"], "config error: data.target = 'temp' is also data.series_column"),
        (["modelling.algorithms=[ridge, baseline]"], "config error: modelling.algorithms: 'baseline' is not one of: seasonal_naive, auto_ets, auto_arima, mstl, ridge, hist_gradient_boosting, random_forest (forecasting)"),
        (["modelling.metric=r2"], "config error: modelling.metric = 'r2' is not one of: mape, mase, smape, rmse, mae (forecasting)"),
    ],
)
def test_a_wrong_forecasting_config_is_one_line_naming_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(FORECAST, overrides)
    assert str(raised.value) == message


def test_forecasting_keys_are_refused_for_other_tasks() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=["data.time_column=year"])
    assert str(raised.value) == "config error: data.time_column is for data.task = forecasting, not classification"


def test_class_weight_is_off_by_default_and_refused_outside_classification() -> None:
    assert load_config().modelling.class_weight is None
    assert load_config(overrides=["modelling.class_weight=balanced"]).modelling.class_weight == "balanced"
    with pytest.raises(ConfigError) as raised:
        load_config(CONFIGS / "penguins_regression.yaml", ["modelling.class_weight=balanced"])
    assert str(raised.value) == (
        "config error: modelling.class_weight = 'balanced' is for data.task = classification, not regression (set it to null)"
    )


def test_lightgbm_is_a_candidate_of_both_table_tasks_and_a_default_after_the_baseline() -> None:
    chosen = load_config(overrides=["modelling.algorithms=[baseline, lightgbm]"]).modelling.algorithms
    assert chosen == ["baseline", "lightgbm"]
    assert "lightgbm" in load_config(CONFIGS / "penguins_regression.yaml", ["modelling.algorithms=[lightgbm]"]).modelling.algorithms
    assert [DEFAULT_ALGORITHMS[task][:2] for task in ("classification", "regression")] == [("baseline", "lightgbm")] * 2
    assert "lightgbm" not in DEFAULT_ALGORITHMS["forecasting"]
