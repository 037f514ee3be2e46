"""The search on the real penguins table: budget, pruning, a subsampled search, capped threads, n_jobs
that change nothing, and trials shared through a real SQLite study."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier

from ml_project import modelling
from ml_project.config import Config, ConfigError, load_config
from ml_project.modelling import Algorithm, split_features_target, split_holdout
from ml_project.search import COMPLETE, PRUNED, Joined, Searched, sample_rows, search, short_params, study_name


def penguin_rows(*overrides: str) -> tuple[Config, pd.DataFrame, pd.Series]:
    config = load_config(overrides=["modelling.n_folds=3", *overrides])
    valid = pd.read_csv(config.data.path).dropna().reset_index(drop=True)
    rows, _ = split_holdout(valid, config.data, config.modelling)
    X, y = split_features_target(rows, config.data)
    return config, X, y


def run(config: Config, X: pd.DataFrame, y: pd.Series, **kwargs: Any) -> Searched:
    result = search(X, y, config.data, config.preprocessing, config.modelling, progress=False, **kwargs)
    assert isinstance(result, Searched)
    return result


def test_pruned_trials_are_recorded_as_pruned_and_ranked_after_every_scored_one() -> None:
    config, X, y = penguin_rows("modelling.n_trials=16", "modelling.algorithms=[baseline,random_forest,logistic_regression]")
    board = run(config, X, y).leaderboard
    assert board["trial"].tolist() != list(range(16)) and sorted(board["trial"]) == list(range(16))  # each trial once
    assert set(board["state"]) == {COMPLETE, PRUNED}
    pruned, scored = board[board["state"] == PRUNED], board[board["state"] == COMPLETE]
    assert board["rank"].tolist() == list(range(1, 17)) and pruned["rank"].min() > scored["rank"].max()
    assert pruned["mean_f1_macro"].isna().all() and scored["mean_f1_macro"].notna().all()
    for folds, scores, reason in zip(pruned["folds"], pruned["fold_scores"], pruned["pruned_because"]):
        done = len(json.loads(scores))
        assert folds == f"{done}/3" and 2 <= done < 3  # never on its first fold alone, never after its last
        assert reason == f"worse than the median trial after fold {done}"
    for mean, scores in zip(scored["mean_f1_macro"], scored["fold_scores"]):
        assert mean == pytest.approx(np.mean(json.loads(scores)), abs=1e-12)
    assert board.loc[board["trial"] == 0, "algorithm"].item() == "baseline"
    assert scored["mean_f1_macro"].is_monotonic_decreasing


def test_without_pruning_every_trial_is_scored() -> None:
    config, X, y = penguin_rows("modelling.n_trials=8", "modelling.pruning=false")
    board = run(config, X, y).leaderboard
    assert set(board["state"]) == {COMPLETE} and set(board["folds"]) == {"3/3"}


class Slow(BaseEstimator, ClassifierMixin):  # type: ignore[misc]
    """A real random forest that takes at least `seconds` to fit: a slow candidate for the budget."""

    def __init__(self, seconds: float = 0.1, seed: int = 0) -> None:
        self.seconds, self.seed = seconds, seed

    def fit(self, X: Any, y: Any) -> Slow:
        time.sleep(self.seconds)
        self.forest_ = RandomForestClassifier(n_estimators=5, random_state=self.seed).fit(X, y)
        self.classes_ = self.forest_.classes_
        return self

    def predict(self, X: Any) -> Any:
        return self.forest_.predict(X)

    def predict_proba(self, X: Any) -> Any:
        return self.forest_.predict_proba(X)


def _space(trial: Any) -> dict[str, Any]:
    return {"seconds": trial.suggest_float("slow.seconds", 0.1, 0.15)}


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> None:
    spaces = {**modelling.SEARCH_SPACES["classification"], "slow": Algorithm(lambda p, seed: Slow(**p, seed=seed), "ordinal", {"seconds": 0.1}, _space)}
    monkeypatch.setitem(modelling.SEARCH_SPACES, "classification", spaces)


def test_the_budget_stops_the_search_and_prunes_the_trial_running_at_its_end(slow: None) -> None:
    config, X, y = penguin_rows("modelling.n_trials=40", "modelling.time_budget_s=4", "modelling.n_jobs=1", "modelling.pruning=false")
    config.modelling.algorithms[:] = ["baseline", "slow"]
    began = time.monotonic()
    result = run(config, X, y)
    took = time.monotonic() - began
    board, summary = result.leaderboard, result.summary
    assert summary["budget_exhausted"] is True and summary["budget_s"] == 4
    assert 3 <= summary["trials"] < 40  # 0.4 s a trial (0.9 s on a loaded machine): a handful, far from the 40 asked
    assert took < 4 + 1.5  # no trial starts after the deadline; the one running stops at its next fold
    stopped = board[board["state"] == PRUNED]
    assert stopped["pruned_because"].str.startswith("the time budget").all() and len(stopped) <= 1
    assert summary["search_s"] <= took and summary["refit_s"] >= 0.1  # the refit is after the budget, timed apart


def test_search_rows_searches_a_stratified_sample_and_refits_on_every_row() -> None:
    config, X, y = penguin_rows("modelling.n_trials=1", "modelling.algorithms=[baseline]", "modelling.search_rows=100")
    sample_X, sample_y = sample_rows(X, y, "classification", config.modelling)
    positions = X.index.get_indexer(sample_X.index)
    assert len(sample_X) == 100 and (np.diff(positions) > 0).all()  # in the modelling rows' order, each once
    shares = (sample_y.value_counts() / 100 - y.value_counts(normalize=True)).abs()
    assert shares.max() < 0.01  # stratified
    result = run(config, X, y)
    assert (result.summary["search_rows"], result.summary["modelling_rows"]) == (100, len(X))
    priors = dict(zip(result.pipeline[-1].classes_, result.pipeline[-1].class_prior_))
    assert priors == pytest.approx(y.value_counts(normalize=True).to_dict())  # fitted on every row, not the sample
    latest, _ = sample_rows(X, y, "classification", config.modelling.model_copy(update={"holdout_split": "latest"}))
    assert latest.index.tolist() == X.index[-100:].tolist()  # in time order: the newest rows


class ThreadProbe(BaseEstimator, ClassifierMixin):  # type: ignore[misc]
    """Records the thread pools' limits while it fits, inside a trial."""

    seen: list[dict[str, int]] = []

    def fit(self, X: Any, y: Any) -> ThreadProbe:
        from threadpoolctl import threadpool_info

        ThreadProbe.seen.append({pool["user_api"]: pool["num_threads"] for pool in threadpool_info()})
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> Any:
        return np.repeat(self.classes_[0], len(X))

    def predict_proba(self, X: Any) -> Any:
        return np.tile(np.eye(len(self.classes_))[0], (len(X), 1))


def test_threads_are_capped_inside_a_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    spaces = {**modelling.SEARCH_SPACES["classification"], "baseline": Algorithm(lambda p, seed: ThreadProbe(), "ordinal", {}, lambda trial: {})}
    monkeypatch.setitem(modelling.SEARCH_SPACES, "classification", spaces)
    config, X, y = penguin_rows("modelling.n_trials=1", "modelling.algorithms=[baseline]", "modelling.n_jobs=2")
    ThreadProbe.seen.clear()
    result = run(config, X, y)
    assert len(ThreadProbe.seen) == 4  # 3 folds and the refit
    cap = result.summary["threads_per_fold"]
    assert cap == max(1, result.summary["cores"] // 2)
    for pools in ThreadProbe.seen[:3]:
        assert pools and all(threads == cap for threads in pools.values()), pools


def test_the_same_seed_gives_the_same_leaderboard_and_model_for_any_n_jobs() -> None:
    boards, probabilities = [], []
    for jobs in (1, 2):
        config, X, y = penguin_rows("modelling.n_trials=10", f"modelling.n_jobs={jobs}")
        result = run(config, X, y)
        boards.append(result.leaderboard.drop(columns="fit_time_s"))
        probabilities.append(result.pipeline.predict_proba(X))
    pd.testing.assert_frame_equal(boards[0], boards[1])
    np.testing.assert_array_equal(probabilities[0], probabilities[1])


def test_two_processes_worth_of_trials_in_one_sqlite_study_are_one_leaderboard(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    config, X, y = penguin_rows("modelling.n_trials=9", f"modelling.study_storage={storage}", "modelling.algorithms=[baseline,logistic_regression,random_forest]")
    name = study_name("penguins", "abc", config.modelling)
    first = search(X, y, config.data, config.preprocessing, config.modelling, progress=False, role="join", name=name)
    assert isinstance(first, Joined) and first.ran == first.in_study == 8  # the 9 trials less the baseline
    again = search(X, y, config.data, config.preprocessing, config.modelling, progress=False, role="join", name=name)
    assert isinstance(again, Joined) and (again.ran, again.in_study) == (0, 8)  # the study is full
    board = run(config, X, y, role="finish", name=name).leaderboard
    assert sorted(board["trial"]) == list(range(9))
    import optuna

    stored = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    assert len(stored) == 8
    assert sorted(board.loc[board["algorithm"] != "baseline", "params"]) == sorted(trial.user_attrs["leaderboard_row"]["params"] for trial in stored)


def test_a_shared_study_needs_its_storage_and_settings_name_the_study() -> None:
    config, X, y = penguin_rows("modelling.n_trials=2")
    with pytest.raises(ConfigError) as error:
        search(X, y, config.data, config.preprocessing, config.modelling, progress=False, role="join")
    assert str(error.value) == "config error: --join-study needs modelling.study_storage (sqlite:///study.db or postgresql+psycopg://user@host/db)"
    more = config.modelling.model_copy(update={"n_trials": 3})
    faster = config.modelling.model_copy(update={"n_jobs": 1, "time_budget_s": 60.0})
    assert study_name("m", "abc", config.modelling) == study_name("m", "abc", faster) != study_name("m", "abc", more)
    assert study_name("m", "abc", config.modelling) != study_name("m", "abd", config.modelling)


def test_short_params_are_readable_and_cut() -> None:
    assert short_params({"b": 0.000123456, "a": 100}) == "a=100 b=0.000123"
    assert short_params({}) == "defaults"
    assert short_params({"name": "x" * 80}, 20) == "name=xxxxxxxxxxxxxx…"


def test_class_weight_reaches_every_trial_and_the_refit(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    original = modelling.build_pipeline

    def recording(*args: Any, **kwargs: Any) -> Any:
        pipeline = original(*args, **kwargs)
        built.append(pipeline[-1])
        return pipeline

    monkeypatch.setattr("ml_project.search.build_pipeline", recording)
    config, X, y = penguin_rows("modelling.n_trials=3", "modelling.algorithms=[baseline,logistic_regression,random_forest]", "modelling.class_weight=balanced")
    result = run(config, X, y)
    assert [type(model).__name__ for model in built] == ["DummyClassifier", "LogisticRegression", "RandomForestClassifier", type(result.pipeline[-1]).__name__]
    assert [model.get_params().get("class_weight") for model in built[1:]] == ["balanced"] * 3


def test_finishing_a_study_without_trials_is_one_line(tmp_path: Path) -> None:
    config, X, y = penguin_rows("modelling.n_trials=3", f"modelling.study_storage=sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ConfigError) as error:
        search(X, y, config.data, config.preprocessing, config.modelling, progress=False, role="finish", name="penguins-empty")
    assert str(error.value) == (
        "config error: --finish-study: study penguins-empty at modelling.study_storage holds no finished trial; add trials with --join-study first"
    )


def test_rungs_grow_by_four_from_ten_thousand_rows_to_every_row() -> None:
    from ml_project.search import rung_sizes

    assert rung_sizes(800_000, pruning=True) == [12_500, 50_000, 200_000, 800_000]
    assert rung_sizes(40_000, pruning=True) == [10_000, 40_000]
    assert rung_sizes(39_999, pruning=True) == [39_999]  # too few rows to halve: pruned fold by fold
    assert rung_sizes(800_000, pruning=False) == [800_000]


def test_every_prefix_of_the_rung_order_is_a_fair_sample() -> None:
    from ml_project.search import rung_order

    config, X, y = penguin_rows()
    order = rung_order(y, "classification", config.modelling)
    assert sorted(order) == list(range(len(y)))
    shares = y.value_counts(normalize=True)
    for size in (20, 55, 110):
        prefix = y.iloc[order[:size]].value_counts()
        assert ((prefix - shares * size).abs() <= 1).all(), size  # each class within one row of its share
    latest = rung_order(y, "classification", config.modelling.model_copy(update={"holdout_split": "latest"}))
    assert latest[:5].tolist() == list(range(len(y) - 1, len(y) - 6, -1))  # the newest first


def test_successive_halving_climbs_rungs_of_rows_and_ranks_the_largest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from ml_project import search as search_module

    monkeypatch.setattr(search_module, "RUNG_MIN_ROWS", 50)  # penguins' modelling rows in two rungs
    config, X, y = penguin_rows("modelling.n_trials=14", "modelling.algorithms=[baseline,logistic_regression,random_forest]")
    small, every = len(X) // 4, len(X)
    result = run(config, X, y)
    board, summary = result.leaderboard, result.summary
    assert summary["rungs"] == [small, every] and sorted(board["trial"]) == list(range(14))
    assert set(board["rows"]) == {small, every} and set(board["folds"]) == {"3/3"}  # a rung is climbed in full
    assert board.loc[board["trial"] == 0, "rows"].item() == small  # the no-skill line on the first rung only
    assert board.loc[board["trial"] == 1, "rows"].item() == every  # the first tuned trial is the best so far: it climbs
    scored, pruned = board[board["state"] == COMPLETE], board[board["state"] == PRUNED]
    assert len(pruned) > 0 and set(pruned["rows"]) == {small}
    assert set(pruned["pruned_because"]) == {f"not in the best 1/4 of the trials at {small:,} rows"}
    assert scored["rows"].is_monotonic_decreasing  # the largest rung first, then by the metric within it
    for rows in (small, every):
        assert scored.loc[scored["rows"] == rows, "mean_f1_macro"].is_monotonic_decreasing
    assert (board.iloc[0]["rows"], result.algorithm) == (every, board.iloc[0]["algorithm"])


class RowPaced(Slow):
    """The slow forest, taking `seconds` per 100 training rows: a larger rung takes longer, as a real fit does."""

    def fit(self, X: Any, y: Any) -> RowPaced:
        time.sleep(self.seconds * len(X) / 100)
        self.forest_ = RandomForestClassifier(n_estimators=5, random_state=self.seed).fit(X, y)
        self.classes_ = self.forest_.classes_
        return self


def _paced_space(trial: Any) -> dict[str, Any]:
    return {"seconds": trial.suggest_float("paced.seconds", 0.9, 1.1)}


def test_a_rung_that_would_end_after_the_budget_is_not_begun_and_the_trial_keeps_its_last_rung(monkeypatch: pytest.MonkeyPatch) -> None:
    from ml_project import search as search_module

    monkeypatch.setattr(search_module, "RUNG_MIN_ROWS", 50)
    spaces = {**modelling.SEARCH_SPACES["classification"], "paced": Algorithm(lambda p, seed: RowPaced(**p, seed=seed), "ordinal", {"seconds": 1.0}, _paced_space)}
    monkeypatch.setitem(modelling.SEARCH_SPACES, "classification", spaces)
    config, X, y = penguin_rows("modelling.n_trials=5", "modelling.time_budget_s=3", "modelling.n_jobs=1")
    config.modelling.algorithms[:] = ["baseline", "paced"]
    small, every = len(X) // 4, len(X)
    result = run(config, X, y)  # the first rung: 3 folds of about 0.44 s; the second would be about 4 x that per fold
    first = result.leaderboard.set_index("trial").loc[1]
    assert (first["state"], first["rows"], first["folds"]) == (COMPLETE, small, "3/3")
    never_begun = r"the time budget would end during (fold 1|this rung) \(about \d+ s( a fold)?, \d+ s left\)"
    assert re.fullmatch(rf"{never_begun} at {every:,} rows; scored at {small:,}", first["pruned_because"])
    assert result.summary["budget_exhausted"] is True and result.algorithm == "paced"


@pytest.mark.parametrize("algorithm", ["lightgbm", "logistic_regression"])
def test_the_refit_learns_the_same_model_as_pipeline_fit(algorithm: str) -> None:
    from ml_project.search import _refit

    config, X, y = penguin_rows()
    settings = config.modelling
    built = [modelling.build_pipeline(algorithm, {}, config.data, config.preprocessing, settings.seed, None) for _ in range(2)]
    stepwise, whole = _refit(built[0], X, y), built[1].fit(X, y)
    assert np.array_equal(stepwise.predict_proba(X), whole.predict_proba(X))
    assert list(stepwise.classes_) == list(whole.classes_) == sorted(y.unique())


def test_the_refit_refuses_an_engineered_matrix_with_a_non_finite_value() -> None:
    from sklearn.preprocessing import FunctionTransformer

    from ml_project.search import _refit

    config, X, y = penguin_rows()
    pipeline = modelling.build_pipeline("logistic_regression", {}, config.data, config.preprocessing, 0, None)
    pipeline.steps.insert(-1, ("to_infinity", FunctionTransformer(lambda matrix: np.where(matrix == matrix.max(), np.inf, matrix))))
    with pytest.raises(ValueError, match="feature engineering produced a non-finite value in output column"):
        _refit(pipeline, X, y)


def test_each_trial_the_search_s_end_and_the_refit_are_one_info_line_each(caplog: pytest.LogCaptureFixture) -> None:
    config, X, y = penguin_rows("modelling.n_trials=4", "modelling.algorithms=[baseline,logistic_regression]", "modelling.pruning=false")
    with caplog.at_level("INFO", logger="ml_project.search"):
        result = run(config, X, y)
    lines = [record.getMessage() for record in caplog.records if record.name == "ml_project.search"]
    trials = [line for line in lines if line.startswith("trial ")]
    assert [int(line.split()[1]) for line in trials] == sorted(result.leaderboard["trial"])
    assert [line.split()[2] for line in trials] == [f"({done}/4)" for done in range(1, 5)]
    assert all(re.search(r"f1_macro \d\.\d{4} ± \d\.\d{4} \(3/3 folds\), \d+\.\d s; elapsed \d+ s, ", line) for line in trials)
    best = result.leaderboard.iloc[0]
    done = next(line for line in lines if line.startswith("search done"))
    assert re.fullmatch(
        rf"search done in \d+ s: 4 trials \(4 scored, 0 pruned\); best {best['algorithm']} .* \(f1_macro {best['mean_f1_macro']:.4f}\); "
        rf"refitting it on {len(X)} modelling rows",
        done,
    )
    assert re.fullmatch(rf"refit \w+ on {len(X)} rows x \d+ engineered columns in \d+ s", lines[-1])
