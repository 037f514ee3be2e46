"""Paired bootstrap of a metric's difference between two models scored on the same rows.

The champion gate asks whether a candidate beats the champion by more than the noise of its gate
rows: both models' predictions of the same rows are resampled together (rows drawn with
replacement, the same draw for both), the metric of each is computed on every resample, and the
central `confidence` interval of the gain is read off the resampled gains (percentile bootstrap).

Written here rather than taken from scipy.stats.bootstrap: that resamples through the metric
function once per resample, and the gate's default metrics are functions of counts (a confusion
matrix) or of per-row losses, so every resample is one weighted sum over the rows — 1,000 resamples
of 200,000 holdout rows took 2.4 s (accuracy, log loss) to 5 s (F1 macro) on 2 busy cores. Metrics that are not (ROC AUC) are computed per
resample with scikit-learn, on fewer resamples (SLOW_RESAMPLES).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

RESAMPLES = 1_000  # resamples for the metrics computed from weighted sums
SLOW_RESAMPLES = 200  # resamples for the metrics scikit-learn computes per resample (ROC AUC)
CHUNK_CELLS = 5_000_000  # resamples x rows drawn at a time: the draw, the counts and their float copy, about 160 MB
LABEL_METRICS = ("accuracy", "balanced_accuracy", "f1_macro")


@dataclass(frozen=True)
class Scored:
    """One model's predictions of the gate rows: labels (or values) and, for classification, probabilities."""

    prediction: np.ndarray
    proba: np.ndarray | None = None


def gain_interval(
    metric: str,
    y: np.ndarray,
    candidate: Scored,
    champion: Scored,
    *,
    classes: list[str] | None,
    greater_is_better: bool,
    confidence: float,
    seed: int,
) -> tuple[float, float]:
    """The central `confidence` interval of the candidate's gain over the champion (positive = better).

    Both models are scored on the same resamples of the rows (a paired bootstrap); NaN ends when
    the metric cannot be computed on the resamples (e.g. a class missing from every one).
    """
    statistic = _statistic(metric, np.asarray(y), classes)
    gains = statistic(candidate, champion, seed)
    gains = gains if greater_is_better else -gains
    gains = gains[np.isfinite(gains)]
    if not len(gains):
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(gains, [tail, 1.0 - tail])
    return float(low), float(high)


def resample_weights(rows: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """How often each row is drawn in each resample (resamples x rows, each row summing to `rows`),
    in chunks of at most CHUNK_CELLS cells."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_CELLS // max(rows, 1))
    for start in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - start)
        drawn = rng.integers(0, rows, size=(count, rows)) + (np.arange(count) * rows)[:, None]
        yield np.bincount(drawn.ravel(), minlength=count * rows).reshape(count, rows).astype(np.float64)


Statistic = Callable[[Scored, Scored, int], np.ndarray]


def _statistic(metric: str, y: np.ndarray, classes: list[str] | None) -> Statistic:
    if metric in LABEL_METRICS:
        return _from_counts(lambda candidate, champion: _pair_codes(y, candidate, champion), _LABEL_FUNCTIONS[metric])
    if metric == "log_loss":
        assert classes is not None

        def losses(scored: Scored) -> np.ndarray:
            return np.column_stack([np.ones(len(y)), _log_losses(y, scored, classes)])

        return _from_counts(lambda candidate, champion: (losses(candidate), losses(champion)), _mean)
    if metric in _REGRESSION_FUNCTIONS:

        def terms(scored: Scored) -> np.ndarray:
            return _regression_terms(y, scored.prediction)

        return _from_counts(lambda candidate, champion: (terms(candidate), terms(champion)), _REGRESSION_FUNCTIONS[metric])
    return _per_resample(metric, y, classes)


Terms = Callable[[Scored, Scored], tuple[Any, Any]]


def _from_counts(terms: Terms, finish: Callable[[np.ndarray], np.ndarray]) -> Statistic:
    """A metric that is `finish` of the weighted column sums of a per-row matrix (dense, or sparse for
    confusion counts) of `terms`, one matrix per model."""

    def statistic(candidate: Scored, champion: Scored, seed: int) -> np.ndarray:
        matrices = terms(candidate, champion)
        rows = matrices[0].shape[0]
        gains = []
        for weights in resample_weights(rows, RESAMPLES, seed):
            sums = [np.asarray((matrix.T @ weights.T).T) for matrix in matrices]  # resamples x columns
            gains.append(finish(sums[0]) - finish(sums[1]))
        return np.concatenate(gains)

    return statistic


def _pair_codes(y: np.ndarray, candidate: Scored, champion: Scored) -> tuple[Any, Any]:
    """Per model, one sparse column per (true label, predicted label) pair, 1 where the row is that pair:
    the confusion matrix of any resample is then a weighted column sum. The labels are those of the
    truth and of both models' predictions, so both matrices have the same columns."""
    from scipy import sparse

    truth = y.astype(str)
    predictions = [np.asarray(scored.prediction).astype(str) for scored in (candidate, champion)]
    labels = np.unique(np.concatenate([truth, *predictions]))
    k, rows = len(labels), np.arange(len(y))
    matrices = []
    for predicted in predictions:
        codes = np.searchsorted(labels, truth) * k + np.searchsorted(labels, predicted)
        matrices.append(sparse.csr_matrix((np.ones(len(y)), (rows, codes)), shape=(len(y), k * k)))
    return matrices[0], matrices[1]


def _confusions(sums: np.ndarray) -> np.ndarray:
    k = int(round(np.sqrt(sums.shape[1])))
    return sums.reshape(len(sums), k, k)  # resample, true, predicted


def _accuracy(sums: np.ndarray) -> np.ndarray:
    matrix = _confusions(sums)
    return np.trace(matrix, axis1=1, axis2=2) / matrix.sum(axis=(1, 2))


def _balanced_accuracy(sums: np.ndarray) -> np.ndarray:
    """The mean recall of the classes present in the resample's truth (scikit-learn's definition)."""
    matrix = _confusions(sums)
    diagonal, true = np.diagonal(matrix, axis1=1, axis2=2), matrix.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(true > 0, diagonal / true, np.nan)
    return np.nanmean(recall, axis=1)


def _f1_macro(sums: np.ndarray) -> np.ndarray:
    """The mean F1 of the labels present in the resample's truth or predictions (scikit-learn's average)."""
    matrix = _confusions(sums)
    diagonal, true, predicted = np.diagonal(matrix, axis1=1, axis2=2), matrix.sum(axis=2), matrix.sum(axis=1)
    present = (true + predicted) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * diagonal / (true + predicted), np.nan)
    return np.nanmean(f1, axis=1)


_LABEL_FUNCTIONS = {"accuracy": _accuracy, "balanced_accuracy": _balanced_accuracy, "f1_macro": _f1_macro}


def _log_losses(y: np.ndarray, scored: Scored, classes: list[str]) -> np.ndarray:
    """Each row's log loss as scikit-learn computes it (probabilities clipped to [eps, 1 - eps])."""
    assert scored.proba is not None
    proba = np.asarray(scored.proba, dtype=np.float64)
    eps = np.finfo(proba.dtype).eps
    proba = np.clip(proba, eps, 1 - eps)
    index = np.searchsorted(np.asarray(classes, dtype=str), y.astype(str))
    return -np.log(proba[np.arange(len(y)), index])


def _mean(sums: np.ndarray) -> np.ndarray:
    """The weighted mean of a per-row term (column 1) over the resample's weight (column 0, of ones)."""
    return sums[:, 1] / sums[:, 0]


def _regression_terms(y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Per row: 1, |error|, error², |error| / |truth| and the truth and its square, centred on its mean
    (R² is unchanged by a shift, and the total sum of squares then does not cancel away on a large mean)."""
    truth, predicted = y.astype(np.float64), np.asarray(prediction, dtype=np.float64)
    error = truth - predicted
    ape = np.abs(error) / np.maximum(np.abs(truth), np.finfo(np.float64).eps)
    centred = truth - truth.mean()
    return np.column_stack([np.ones(len(y)), np.abs(error), error**2, ape, centred, centred**2])


def _rmse(sums: np.ndarray) -> np.ndarray:
    return np.sqrt(sums[:, 2] / sums[:, 0])


def _r2(sums: np.ndarray) -> np.ndarray:
    total = sums[:, 5] - sums[:, 4] ** 2 / sums[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1.0 - sums[:, 2] / total, np.nan)


_REGRESSION_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mae": lambda sums: sums[:, 1] / sums[:, 0],
    "rmse": _rmse,
    "mape": lambda sums: sums[:, 3] / sums[:, 0],
    "r2": _r2,
}


def _per_resample(metric: str, y: np.ndarray, classes: list[str] | None) -> Statistic:
    """Metrics that are no function of sums (ROC AUC): scikit-learn on each of SLOW_RESAMPLES resamples."""
    from ml_project.evaluation import score  # scikit-learn's metrics, as the holdout is scored

    task = "regression" if classes is None else "classification"

    def statistic(candidate: Scored, champion: Scored, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        gains = np.full(SLOW_RESAMPLES, np.nan)
        for number in range(SLOW_RESAMPLES):
            rows = rng.integers(0, len(y), len(y))
            values = []
            for scored in (candidate, champion):
                proba = scored.proba[rows] if scored.proba is not None else None
                values.append(score(task, pd.Series(y[rows]), scored.prediction[rows], proba, classes).get(metric, np.nan))
            gains[number] = values[0] - values[1]
        return gains

    return statistic

