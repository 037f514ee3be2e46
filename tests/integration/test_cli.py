"""The use cases as a user runs them: exit codes, one-line errors, and config-only retargeting."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ..conftest import CONFIGS, FAST, PENGUINS, ROOT, output_overrides, run_use_case


def _sets(*overrides: str) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "modelling.metric=acuracy"], "config error: modelling.metric = 'acuracy' is not one of: accuracy, balanced_accuracy, f1_macro, roc_auc, roc_auc_ovr, log_loss (classification)"),
        (["--set", "data.features.numerical=[bill_length_mm, beak_colour]"], "data error: {data} has no column 'beak_colour'"),
        (["--set", "data.path=data/nope.csv"], "data error: file not found: {root}/data/nope.csv"),
        (["--config", "missing.yaml"], "config error: file not found: missing.yaml"),
        (["--set", "modelling.algorithms=[baseline, xgboost]"], "config error: modelling.algorithms: 'xgboost' is not one of: baseline, random_forest, hist_gradient_boosting, logistic_regression, lightgbm (classification)"),
    ],
)
def test_bad_config_exits_2_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_use_case("modelling_historic_data_local", *args, *_sets(*output_overrides(tmp_path)), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == message.format(data=PENGUINS, root=ROOT)
    assert "Traceback" not in result.stderr


def test_help_documents_every_flag() -> None:
    result = run_use_case("predicting_historic_data_local", "--help")
    assert result.returncode == 0
    for flag in ("--config", "--set", "--log-level", "--input", "--output", "--model", "--quarantine"):
        assert flag in result.stdout


def test_missing_required_flag_is_a_usage_error() -> None:
    result = run_use_case("predicting_historic_data_local", "--output", "x.csv")
    assert result.returncode == 2
    assert "the following arguments are required: --input" in result.stderr


def test_train_then_score_a_file_with_bad_rows(tmp_path: Path, penguins: pd.DataFrame) -> None:
    sets = _sets(*FAST, *output_overrides(tmp_path))
    trained = run_use_case("modelling_historic_data_local", *sets, "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert "Leaderboard (top 5 of 5 trials, ranked by CV f1_macro):" in trained.stdout
    assert "Holdout metrics: accuracy=" in trained.stdout
    assert f"./executables/run.sh mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}" in trained.stdout
    assert list((tmp_path / "logs").glob("modelling_historic_data_local-*.log"))

    bad = penguins.astype({"flipper_length_mm": object})
    bad.loc[0, "flipper_length_mm"] = "big"
    bad.loc[1, "island"] = "Atlantis"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    scored = run_use_case(
        "predicting_historic_data_local", "--input", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "p.parquet"), *sets
    )
    assert scored.returncode == 0, scored.stderr
    assert "rows 344: predicted 342, quarantined 2" in scored.stdout
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == 342
    assert pd.read_parquet(tmp_path / "p.quarantine.parquet")["column"].tolist() == ["flipper_length_mm", "island"]

    penguins.drop(columns=["body_mass_g"]).to_csv(tmp_path / "short.csv", index=False)
    refused = run_use_case(
        "predicting_historic_data_local", "--input", str(tmp_path / "short.csv"), "--output", str(tmp_path / "s.csv"), *sets
    )
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"data error: {tmp_path / 'short.csv'} has no column 'body_mass_g'"


def test_scoring_without_a_bundle_says_how_to_get_one(tmp_path: Path) -> None:
    result = run_use_case(
        "predicting_historic_data_local", "--input", str(PENGUINS), "--output", str(tmp_path / "p.csv"),
        *_sets(*output_overrides(tmp_path)),
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"bundle error: no model bundle at {tmp_path / 'models' / 'penguins'} (train one with ./executables/run.sh)"
    )


@pytest.mark.parametrize(
    ("config", "extra", "metrics"),
    [
        ("penguins_regression.yaml", [], {"rmse", "mae", "r2", "mape"}),
        (
            "seattle_temps_regression.yaml",
            ["modelling.algorithms=[baseline, hist_gradient_boosting, ridge]", "modelling.n_trials=4"],
            {"rmse", "mae", "r2", "mape"},
        ),
    ],
)
def test_another_dataset_target_and_task_need_only_a_config(config: str, extra: list[str], metrics: set[str], tmp_path: Path) -> None:
    sets = _sets(*FAST, *output_overrides(tmp_path), "tracking.enabled=false", *extra)
    result = run_use_case("modelling_historic_data_local", "--config", str(CONFIGS / config), *sets, "--no-progress")
    assert result.returncode == 0, result.stderr
    bundle = next((tmp_path / "models").glob("*/latest"))
    holdout = json.loads((bundle / "metrics.json").read_text())["holdout"]
    assert set(holdout) == metrics
    leaderboard = pd.read_csv(bundle / "leaderboard.csv")
    metric = json.loads((bundle / "model.json").read_text())["metric"]
    baseline = leaderboard.loc[leaderboard["algorithm"] == "baseline", f"mean_{metric}"]
    assert leaderboard.iloc[0]["algorithm"] != "baseline"
    assert len(baseline) == 1
    assert leaderboard.iloc[0][f"mean_{metric}"] < 0.5 * baseline.iloc[0]  # both metrics here are errors: lower wins
    if config.startswith("seattle"):
        schema = json.loads((bundle / "schema.json").read_text())
        assert [c["kind"] for c in schema["columns"]] == ["datetime"]
        assert holdout["mape"] < 0.15  # time of day and season explain most of an hourly temperature


@pytest.mark.parametrize(
    ("table", "overrides", "message"),
    [
        ("single_class", [], "data error: data.target 'species' has a single class 'Adelie'; classification needs two or more"),
        ("rare_class", [], "config error: modelling.n_folds = 3 needs every class in each fold; class 'Chinstrap' of 'species' has only 2 valid rows (lower n_folds, or drop or merge that class)"),
        ("penguins", ["modelling.holdout_fraction=0.001"], "config error: modelling.holdout_fraction = 0.001 and modelling.n_folds = 3 do not fit 344 valid rows (holdout 0, modelling 344)"),
        ("no_valid_row", [], "data error: {path} has no valid row left after validation (see the quarantine reasons in the log)"),
    ],
)
def test_training_data_that_cannot_be_modelled_is_a_one_line_error(
    table: str, overrides: list[str], message: str, tmp_path: Path, penguins: pd.DataFrame
) -> None:
    frames = {
        "single_class": penguins[penguins["species"] == "Adelie"],
        "rare_class": pd.concat([penguins[penguins["species"] != "Chinstrap"], penguins[penguins["species"] == "Chinstrap"].head(2)]),
        "penguins": penguins,
        "no_valid_row": penguins.assign(species=None),
    }
    path = tmp_path / f"{table}.csv"
    frames[table].to_csv(path, index=False)
    sets = _sets(*FAST, *output_overrides(tmp_path), f"data.path={path}", *overrides)
    result = run_use_case("modelling_historic_data_local", *sets, "--no-progress", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == message.format(path=path)
    assert "Traceback" not in result.stderr
    if table == "no_valid_row":  # the error points at the log: the reasons are there
        assert "344 rows set aside, most often for species: missing value (344)" in result.stderr
