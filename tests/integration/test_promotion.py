"""The champion gate end to end: real training runs, the on-disk champion link, the MLflow registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ml_project.artifacts import BundleError, load_bundle, locate_bundle
from ml_project.promotion import read_decisions

from ..conftest import make_config, output_overrides, run_use_case

pytestmark = pytest.mark.slow
BASELINE = ["modelling.algorithms=[baseline]", "modelling.n_trials=1"]


def test_only_a_better_model_becomes_champion_and_the_registry_keeps_the_trail(tmp_path: Path) -> None:
    import mlflow

    from ml_project.training import train

    weak = train(make_config(tmp_path, *BASELINE), progress=False)
    assert (weak.decision.promoted, weak.decision.reason) == (True, "no champion yet")
    strong = train(make_config(tmp_path, "promotion.min_gate_rows=60"), progress=False)  # penguins hold out 69 rows
    assert strong.decision.promoted and strong.decision.champion_version == weak.bundle.version
    assert strong.decision.gain_interval is not None and strong.decision.gain_interval[0] > 0.5
    assert strong.decision.baseline_score == weak.decision.candidate_score == weak.bundle.metrics["baseline_holdout"]["f1_macro"]
    assert strong.decision.candidate_score > strong.decision.champion_score  # type: ignore[operator]
    again = train(make_config(tmp_path, *BASELINE), progress=False)
    assert not again.decision.promoted and not again.decision.forced
    assert again.decision.champion_score == strong.decision.candidate_score  # the same holdout rows, the same score
    default = run_use_case(  # the rejected baseline-only model is latest; what predicts by default is the champion
        "predicting_historic_data_local",
        *[arg for item in output_overrides(tmp_path) for arg in ("--set", item)],
        "--input", str(Path(__file__).parents[2] / "data" / "penguins.csv"), "--output", str(tmp_path / "default.csv"),
    )
    assert default.returncode == 0, default.stderr
    assert default.stdout.splitlines()[0] == f"model penguins version {strong.bundle.version}"
    assert "no champion yet" not in default.stderr
    forced = train(make_config(tmp_path, *BASELINE), progress=False, force_promote=True)
    assert (forced.decision.promoted, forced.decision.forced) == (True, True)

    model_dir = tmp_path / "models" / "penguins"
    assert [entry["promoted"] for entry in read_decisions(model_dir)] == [True, True, False, True]
    assert load_bundle(locate_bundle(tmp_path / "models", "penguins", "champion")).version == forced.bundle.version

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("penguins", "champion")
    assert str(champion.version) == "4" and champion.tags["gate.forced"] == "true"
    assert champion.tags["bundle.version"] == forced.bundle.version
    versions = {str(version.version): version.tags for version in client.search_model_versions("name='penguins'")}
    assert versions["3"]["gate.verdict"] == "not promoted" and "champion.promoted_at" not in versions["3"]
    assert versions["2"]["champion.replaced_by"] == "4" and versions["1"]["champion.replaced_by"] == "2"
    assert float(versions["2"]["holdout.f1_macro"]) == pytest.approx(strong.bundle.metrics["holdout"]["f1_macro"], abs=1e-6)

    scored = run_use_case(
        "predicting_historic_data_local",
        *[arg for item in output_overrides(tmp_path) for arg in ("--set", item)],
        "--model", "champion", "--input", str(Path(__file__).parents[2] / "data" / "penguins.csv"),
        "--output", str(tmp_path / "scored.csv"),
    )
    assert scored.returncode == 0, scored.stderr
    assert scored.stdout.splitlines()[0] == f"model penguins version {forced.bundle.version}"



def test_a_gain_of_one_prediction_on_69_holdout_rows_is_noise_and_not_promoted(tmp_path: Path) -> None:
    from ml_project.training import train

    one = ["modelling.n_trials=1", "promotion.min_gate_rows=0"]  # the defaults of one algorithm each; the row floor aside
    champion = train(make_config(tmp_path, *one, "modelling.algorithms=[logistic_regression]"), progress=False)
    candidate = train(make_config(tmp_path, *one, "modelling.algorithms=[random_forest]"), progress=False)
    decision = candidate.decision
    assert decision.champion_version == champion.bundle.version and decision.gate_rows == 69
    assert candidate.comparison is not None and candidate.comparison.changed <= 2  # the two agree on all but a row or two
    assert decision.gain_interval is not None and decision.gain_interval[0] <= 0.0 <= decision.gain_interval[1]
    assert not decision.promoted and "beyond noise (interval [" in decision.reason
    default = train(make_config(tmp_path, "modelling.n_trials=1", "modelling.algorithms=[random_forest]"), progress=False)
    assert not default.decision.promoted and default.decision.reason.startswith("69 gate rows are fewer than promotion.min_gate_rows 100")


def test_asking_for_a_champion_before_there_is_one_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as error:
        locate_bundle(tmp_path / "models", "penguins", "champion")
    assert str(error.value) == f"bundle error: model penguins has no champion yet under {tmp_path / 'models' / 'penguins'} (train one first)"
    assert os.fspath(locate_bundle(tmp_path / "models", "penguins", None)) == os.fspath(tmp_path / "models" / "penguins")


def test_back_to_back_comparison_reports_changes_and_gates_on_their_share(tmp_path: Path, penguins) -> None:  # type: ignore[no-untyped-def]
    from ml_project.comparison import compare
    from ml_project.training import train

    weak = train(make_config(tmp_path, *BASELINE), progress=False)
    strong = train(make_config(tmp_path), progress=False)
    assert strong.comparison is not None and strong.decision.comparison == strong.comparison.as_dict()
    assert strong.comparison.compared == strong.decision.holdout_rows

    table = penguins.sample(120, random_state=0)
    same = compare(weak.bundle, weak.bundle, table)
    assert (same.changed, same.changed_share, same.label_changes, same.max_probability_shift) == (0, 0.0, {}, 0.0)
    diff = compare(strong.bundle, weak.bundle, table)
    valid = table  # every row passes validation (missing values are imputed)
    old = weak.bundle.pipeline.predict(valid[weak.bundle.schema.feature_names]).astype(str)
    new = strong.bundle.pipeline.predict(valid[strong.bundle.schema.feature_names]).astype(str)
    expected = {f"{a} -> {b}": int(((old == a) & (new == b)).sum()) for a in set(old) for b in set(new) if a != b}
    assert diff.label_changes == {change: count for change, count in expected.items() if count}
    assert diff.changed == int((old != new).sum()) and diff.changed_share == diff.changed / diff.compared
    assert diff.metrics["accuracy"]["candidate"] == pytest.approx(float((new == valid["species"].to_numpy()).mean()))
    assert diff.metrics["accuracy"]["delta"] > 0.3

    args = [arg for item in output_overrides(tmp_path) for arg in ("--set", item)]
    gated = run_use_case("comparing_models_local", *args, "--candidate", str(strong.bundle.path), "--baseline", str(weak.bundle.path))
    assert gated.returncode == 3, gated.stderr
    assert gated.stdout.splitlines()[-2].endswith("> promotion.max_changed_share 20.00%")
    lenient = run_use_case("comparing_models_local", *args, "--set", "promotion.max_changed_share=1", "--candidate", str(strong.bundle.path), "--baseline", str(weak.bundle.path))
    assert lenient.returncode == 0, lenient.stderr
    assert lenient.stdout.splitlines()[-2].endswith("<= promotion.max_changed_share 100.00%")



def test_a_regression_retrain_on_grown_data_passes_the_back_to_back_comparison(tmp_path: Path, penguins) -> None:  # type: ignore[no-untyped-def]
    import json

    import numpy as np

    from ml_project.training import train

    from ..conftest import CONFIGS

    penguins.iloc[:-20].to_csv(tmp_path / "older.csv", index=False)  # the retrain sees 20 rows more
    ridge = ["modelling.algorithms=[ridge]", "modelling.n_trials=1"]
    config = CONFIGS / "penguins_regression.yaml"
    older = train(make_config(tmp_path, *ridge, f"data.path={tmp_path / 'older.csv'}", config=config), progress=False)
    newer = train(make_config(tmp_path, *ridge, config=config), progress=False)
    old, new = (run.bundle.pipeline.predict(penguins[run.bundle.schema.feature_names]) for run in (older, newer))
    moved = int((np.abs(new - old) > 0.01 * np.abs(old)).sum())
    assert 0 < moved <= 0.2 * len(penguins)  # every prediction moves a little, a few by more than 1%

    args = [arg for item in output_overrides(tmp_path) for arg in ("--set", item)]
    args += ["--config", str(config), "--candidate", str(newer.bundle.path), "--baseline", str(older.bundle.path)]
    passed = run_use_case("comparing_models_local", *args)
    assert passed.returncode == 0, passed.stderr
    assert f"{moved} predictions changed ({moved / len(penguins):.2%})" in passed.stdout.splitlines()[0]
    assert "a predicted value counts as changed when it moves by more than 1.00% of itself" in passed.stdout
    report = json.loads(Path(passed.stdout.splitlines()[-1].removeprefix("report: ")).read_text())
    assert (report["changed"], report["regression_tolerance"], report["passed"]) == (moved, 0.01, True)
    exact = run_use_case("comparing_models_local", *args, "--set", "promotion.regression_tolerance=0")
    assert exact.returncode == 3, exact.stderr  # counted to the last bit, every row of the retrain changed
    assert f"{len(penguins)} predictions changed (100.00%)" in exact.stdout.splitlines()[0]

def test_retraining_is_idempotent_and_never_overlaps(tmp_path: Path) -> None:
    from ml_project.training import exclusive

    args = ["--set", f"paths.output={tmp_path}", "--set", "tracking.enabled=false", "--set", "modelling.n_trials=2", "--set", "modelling.n_folds=2"]
    first = run_use_case("retraining_historic_data_local", *args)
    assert first.returncode == 0, first.stderr
    version = (tmp_path / "models" / "penguins" / "latest").resolve().name
    assert f"Champion gate: {version} promoted: no champion yet" in first.stdout.splitlines()

    again = run_use_case("retraining_historic_data_local", *args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"unchanged: the latest bundle {version} was trained on the same rows with the same settings")
    assert sorted(path.name for path in (tmp_path / "models" / "penguins").iterdir() if path.name.startswith("2")) == [version]

    with exclusive(tmp_path / "retraining_historic_data_local.lock"):
        locked = run_use_case("retraining_historic_data_local", *args, "--always")
    assert locked.returncode == 75
    assert locked.stdout.strip() == f"skipped: another retraining run holds {tmp_path / 'retraining_historic_data_local.lock'} (pid {os.getpid()})"

    changed = run_use_case("retraining_historic_data_local", *args, "--set", "modelling.seed=7")
    assert changed.returncode == 0, changed.stderr
    assert (tmp_path / "models" / "penguins" / "latest").resolve().name != version
    assert "Back-to-back on the holdout, candidate " in changed.stdout


def test_the_gate_scores_only_holdout_rows_the_champion_never_trained_on(tmp_path: Path, penguins) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from ml_project.training import train

    older = tmp_path / "older.csv"
    penguins.sample(frac=0.85, random_state=1).to_csv(older, index=False)  # the data grew since the champion
    champion = train(make_config(tmp_path, *BASELINE, f"data.path={older}", "tracking.enabled=false"), progress=False)
    candidate = train(make_config(tmp_path, "tracking.enabled=false"), progress=False)
    decision = candidate.decision
    assert decision.champion_version == champion.bundle.version
    assert decision.gate_rows is not None and 0 < decision.gate_rows < decision.holdout_rows
    assert candidate.comparison is not None and candidate.comparison.rows == decision.gate_rows

    from ml_project.promotion import unseen_rows

    reference = pd.read_parquet(champion.bundle.path / "reference.parquet")  # type: ignore[operator]
    columns = list(reference.columns)
    complete = penguins[columns].dropna()  # rows with a missing value may equal another row's content
    key = complete.astype(str).agg("|".join, axis=1)
    new_rows = complete[~key.isin(set(reference.astype(str).agg("|".join, axis=1)))].head(5)
    mixed = pd.concat([reference.head(10), new_rows.astype(reference.dtypes.to_dict())], ignore_index=True)
    assert unseen_rows(mixed, champion.bundle).index.tolist() == [10, 11, 12, 13, 14]


def test_an_unusable_champion_stops_training_early_unless_forced(tmp_path: Path) -> None:
    import shutil

    from ml_project.training import train

    first = train(make_config(tmp_path, *BASELINE, "tracking.enabled=false"), progress=False)
    shutil.rmtree(first.bundle.path)  # type: ignore[arg-type]
    args = [arg for item in [*output_overrides(tmp_path), "tracking.enabled=false", *BASELINE] for arg in ("--set", item)]
    stopped = run_use_case("modelling_historic_data_local", *args, "--no-progress")
    assert stopped.returncode == 2
    assert stopped.stderr.strip() == (
        f"bundle error: no model bundle at {tmp_path / 'models' / 'penguins' / 'champion'} (train one with ./executables/run.sh); "
        f"the champion link {tmp_path / 'models' / 'penguins' / 'champion'} cannot be used: fix or remove it, or train with --force-promote"
    )
    forced = train(make_config(tmp_path, *BASELINE, "tracking.enabled=false"), progress=False, force_promote=True)
    assert (forced.decision.promoted, forced.decision.forced) == (True, True)
    assert forced.decision.reason.startswith("forced; the champion could not be compared (bundle error: no model bundle at ")


def test_a_run_that_crashed_before_its_gate_is_not_taken_as_done(tmp_path: Path) -> None:
    from ml_project.training import train

    settings = [*BASELINE, "tracking.enabled=false"]
    first = train(make_config(tmp_path, *settings), progress=False)
    broken = make_config(tmp_path, *BASELINE, "modelling.seed=3", "tracking.uri=sqlite:////proc/no-such-dir/mlflow.db")
    with pytest.raises(Exception):
        train(broken, progress=False)  # fails at MLflow, after the bundle was written
    model_dir = tmp_path / "models" / "penguins"
    assert (model_dir / "champion").resolve().name == first.bundle.version  # the champion did not move
    assert [entry["candidate_version"] for entry in read_decisions(model_dir)] == [first.bundle.version]
    retried = train(make_config(tmp_path, *BASELINE, "modelling.seed=3", "tracking.enabled=false"), progress=False, skip_unchanged=True)
    assert retried.decision.candidate_version != first.bundle.version  # trained again, not "unchanged"
