"""The paired bootstrap of the gate: each metric from weighted sums equals scikit-learn's on the rows as they are,
identical models gain exactly nothing, one changed prediction in 69 rows is noise, a real gain is not."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from ml_project import bootstrap
from ml_project.bootstrap import Scored, gain_interval, resample_weights
from ml_project.evaluation import score

CLASSES = ["a", "b", "c"]
RNG = np.random.default_rng(3)
Y = RNG.choice(CLASSES, 300, p=[0.5, 0.3, 0.2])
Y_VALUES = RNG.gamma(4.0, 10.0, 300)


def _classifier(skill: float, seed: int) -> Scored:
    """Probabilities that put `skill` more weight on the true class than chance, and their argmax labels."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), len(Y)) * (1 - skill)
    proba[np.arange(len(Y)), np.searchsorted(CLASSES, Y)] += skill
    return Scored(np.asarray(CLASSES)[proba.argmax(axis=1)], proba)


def _regressor(noise: float, seed: int) -> Scored:
    return Scored(Y_VALUES + np.random.default_rng(seed).normal(0, noise, len(Y_VALUES)))


def _unresampled(rows: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    yield np.ones((1, rows))


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "f1_macro", "log_loss"])
def test_each_classification_metric_from_sums_is_scikit_learns(metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "resample_weights", _unresampled)
    candidate, champion = _classifier(0.3, 1), _classifier(0.1, 2)
    expected = [score("classification", pd.Series(Y), s.prediction, s.proba, CLASSES)[metric] for s in (candidate, champion)]
    low, high = gain_interval(metric, Y, candidate, champion, classes=CLASSES, greater_is_better=True, confidence=0.95, seed=0)
    assert low == high == pytest.approx(expected[0] - expected[1], abs=1e-12)


@pytest.mark.parametrize("metric", ["mae", "rmse", "mape", "r2"])
def test_each_regression_metric_from_sums_is_scikit_learns(metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "resample_weights", _unresampled)
    candidate, champion = _regressor(2.0, 1), _regressor(5.0, 2)
    expected = [score("regression", pd.Series(Y_VALUES), s.prediction, None, None)[metric] for s in (candidate, champion)]
    low, _ = gain_interval(metric, Y_VALUES, candidate, champion, classes=None, greater_is_better=True, confidence=0.95, seed=0)
    assert low == pytest.approx(expected[0] - expected[1], rel=1e-9)


def test_identical_models_gain_exactly_nothing_on_every_resample() -> None:
    same = _classifier(0.3, 1)
    for metric in ("f1_macro", "log_loss", "roc_auc_ovr"):
        assert gain_interval(metric, Y, same, same, classes=CLASSES, greater_is_better=metric != "log_loss", confidence=0.95, seed=0) == (0.0, 0.0)


def test_one_changed_prediction_in_69_rows_is_noise_and_a_real_gain_is_not() -> None:
    y = Y[:69]
    champion = Scored(y.copy())  # right on every row
    candidate = Scored(np.where(np.arange(69) == 5, "c" if y[5] != "c" else "a", y))  # one row wrong
    better = Scored(champion.prediction)
    worse = Scored(np.where(np.arange(69) % 3 == 0, "a", y))  # about a third wrong
    low, high = gain_interval("accuracy", y, champion, candidate, classes=None, greater_is_better=True, confidence=0.95, seed=0)
    assert low <= 0.0 < high  # 1/69 better: within the noise of 69 rows
    low, _ = gain_interval("accuracy", y, better, worse, classes=None, greater_is_better=True, confidence=0.95, seed=0)
    assert low > 0.1


def test_lower_is_better_metrics_count_a_lower_loss_as_a_gain() -> None:
    good, poor = _regressor(1.0, 1), _regressor(10.0, 2)
    low, high = gain_interval("rmse", Y_VALUES, good, poor, classes=None, greater_is_better=False, confidence=0.95, seed=0)
    assert 0 < low < high


def test_the_interval_is_reproducible_and_does_not_depend_on_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    candidate, champion = _classifier(0.3, 1), _classifier(0.25, 2)
    args = dict(classes=CLASSES, greater_is_better=True, confidence=0.9, seed=7)
    whole = gain_interval("f1_macro", Y, candidate, champion, **args)  # type: ignore[arg-type]
    monkeypatch.setattr(bootstrap, "CHUNK_CELLS", 7 * len(Y))  # 7 resamples a chunk
    assert gain_interval("f1_macro", Y, candidate, champion, **args) == whole  # type: ignore[arg-type]
    assert gain_interval("f1_macro", Y, candidate, champion, **{**args, "seed": 8}) != whole  # type: ignore[arg-type]


def test_resample_weights_draw_every_row_count_times_in_all() -> None:
    chunks = list(resample_weights(10, 25, seed=0))
    weights = np.vstack(chunks)
    assert weights.shape == (25, 10) and (weights.sum(axis=1) == 10).all() and (weights >= 0).all()
    assert len({row.tobytes() for row in weights}) == 25  # every resample its own draw


def test_a_class_only_one_model_predicts_and_the_truth_lacks_is_counted_for_both() -> None:
    y = np.array(["a", "b"] * 50)
    candidate = Scored(np.where(np.arange(100) < 5, "c", y))  # 5 rows called c, a class absent from the truth
    champion = Scored(y.copy())
    for metric in ("accuracy", "f1_macro", "balanced_accuracy"):
        low, high = gain_interval(metric, y, candidate, champion, classes=None, greater_is_better=True, confidence=0.95, seed=0)
        assert np.isfinite([low, high]).all() and high <= 0.0  # the champion is never worse


def test_r2_from_sums_keeps_its_precision_on_a_large_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "resample_weights", _unresampled)
    y = 1e8 + np.random.default_rng(0).normal(0, 1, 500)
    candidate, champion = Scored(y + np.random.default_rng(1).normal(0, 0.1, 500)), Scored(np.full(500, y.mean()))
    expected = [score("regression", pd.Series(y), s.prediction, None, None)["r2"] for s in (candidate, champion)]
    low, _ = gain_interval("r2", y, candidate, champion, classes=None, greater_is_better=True, confidence=0.95, seed=0)
    assert low == pytest.approx(expected[0] - expected[1], abs=1e-6) and expected[0] > 0.98
