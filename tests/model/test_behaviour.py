"""Behavioural tests of the trained default model: skill, invariance, direction, reproducibility."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ml_project.prediction import predict_frame

from ..conftest import make_config

TIMING = ["fit_time_s"]


def test_holdout_skill_and_leaderboard_beat_the_baseline(trained) -> None:  # type: ignore[no-untyped-def]
    config, report = trained
    holdout = report.bundle.metrics["holdout"]
    assert holdout["accuracy"] >= 0.95
    leaderboard = report.bundle.leaderboard
    assert list(leaderboard["rank"]) == list(range(1, len(leaderboard) + 1))
    assert leaderboard["mean_f1_macro"].is_monotonic_decreasing
    assert set(leaderboard["algorithm"]) == set(config.modelling.algorithms)  # each tried at least once
    assert (leaderboard["algorithm"] == "baseline").sum() == 1  # scored once; no budget spent on it again
    assert sorted(leaderboard["trial"]) == list(range(config.modelling.n_trials))
    baseline = leaderboard.loc[leaderboard["algorithm"] == "baseline", "mean_f1_macro"].max()
    assert leaderboard.iloc[0]["mean_f1_macro"] > baseline + 0.5
    assert leaderboard.iloc[0]["algorithm"] != "baseline"
    assert len(leaderboard) == config.modelling.n_trials


def test_columns_the_model_does_not_use_change_nothing(trained, penguins: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    base, _ = predict_frame(report.bundle, penguins)
    shuffled, _ = predict_frame(report.bundle, penguins.assign(year=penguins["year"].sample(frac=1, random_state=0).to_numpy()))
    pd.testing.assert_frame_equal(base, shuffled)


def test_longer_flippers_and_heavier_bodies_point_to_gentoo(trained, penguins: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    adelie = penguins[penguins["species"] == "Adelie"].dropna().head(20)
    bigger = adelie.assign(flipper_length_mm=225.0, body_mass_g=5500.0, bill_depth_mm=14.5, bill_length_mm=47.0)
    before, _ = predict_frame(report.bundle, adelie)
    after, _ = predict_frame(report.bundle, bigger)
    assert (after["proba_Gentoo"].to_numpy() > before["proba_Gentoo"].to_numpy()).all()
    assert (after["prediction"] == "Gentoo").mean() >= 0.9


def test_same_data_config_and_seed_reproduce_the_run(trained, tmp_path: Path, penguins: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    from ml_project.training import train

    _, first = trained
    second = train(make_config(tmp_path, "tracking.enabled=false"), progress=False)
    pd.testing.assert_frame_equal(first.bundle.leaderboard.drop(columns=TIMING), second.bundle.leaderboard.drop(columns=TIMING))
    assert first.bundle.fingerprint == second.bundle.fingerprint
    assert first.bundle.metrics == second.bundle.metrics
    first_predictions, _ = predict_frame(first.bundle, penguins)
    second_predictions, _ = predict_frame(second.bundle, penguins)
    pd.testing.assert_frame_equal(
        first_predictions.drop(columns="model_version"), second_predictions.drop(columns="model_version")
    )


@pytest.mark.parametrize("seed", [7])
def test_another_seed_changes_the_split_and_so_the_fingerprint(trained, tmp_path: Path, seed: int) -> None:  # type: ignore[no-untyped-def]
    from ml_project.training import train

    _, first = trained
    other = train(
        make_config(tmp_path, "tracking.enabled=false", f"modelling.seed={seed}", "modelling.n_trials=1"), progress=False
    )
    assert other.bundle.fingerprint["rows"] == first.bundle.fingerprint["rows"]
    assert other.bundle.fingerprint["sha256"] != first.bundle.fingerprint["sha256"]
