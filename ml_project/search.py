"""The hyperparameter search of a table's model: Optuna TPE over algorithms and their parameters, each
trial scored by k-fold CV, built to scale.

- **Budget** (`modelling.time_budget_s`): no trial starts after the deadline; a trial running at the
  deadline is pruned at its next fold boundary (the folds it finished are kept on the leaderboard as
  pruned), and so are folds that would end after it, judged by the slowest folds of the same
  algorithm so far (before an algorithm's first folds: a fit of its defaults on 5,000 rows, scaled
  linearly); when not even a new trial's first folds fit in what is left, the search ends. The refit on all modelling rows comes after the budget and is timed separately.
- **Pruning** (`modelling.pruning`), on a table of fewer than 40,000 search rows: a trial reports its
  running mean after each fold and Optuna's `MedianPruner` stops it when it is worse than the median of
  the trials before it at that fold, from its second fold on. Each algorithm's defaults (the first
  trials, at least 3) are never pruned. A pruned trial is on the leaderboard as pruned, with the folds
  it finished, and is never ranked among the scored ones.
- **Successive halving on rows** (`modelling.pruning` on a larger table): a trial climbs rungs of
  growing samples, each 4 x the one before, from at least 10,000 rows up to every search row (800,000
  rows: 12,500, 50,000, 200,000, 800,000), with the k folds of each rung; each rung's sample holds the
  one before (`rung_order`: stratified, newest-first in time order, or seeded). After each rung but the
  last, Optuna's `SuccessiveHalvingPruner` (asynchronous successive halving, reduction factor 4) lets
  it go on only while it is in the best quarter of the trials that finished that rung (the first to
  finish a rung always goes on). The leaderboard's `rows` says which rung a trial's scores are from, and
  scored trials rank by `rows` first, then by the metric: as scikit-learn's `HalvingRandomSearchCV`
  picks its best among the candidates of the last rung it reached. When the budget stops a trial on a
  rung above its first, it keeps the score of its last full rung (scored, at fewer rows, with the reason
  in `pruned_because`); cheap trials on small samples find the region, and only the good ones pay for
  all the rows. The no-skill baseline is scored on the first rung.
- **Subsampled search** (`modelling.search_rows`): trials see at most this many modelling rows (a
  stratified sample for classification, the newest rows for `holdout_split: latest`, else a seeded
  random sample); the winner is refit on every modelling row.
- **Cores** (`modelling.n_jobs`, default every core): the folds of a trial are fitted `n_jobs` at a time
  in threads, each estimator capped at cores / n_jobs threads (threadpoolctl), so histogram boosting
  never fights itself for the cores. Folds are reported to the pruner in fold order whatever finishes
  first, so without a time budget the same seed gives the same leaderboard for any `n_jobs`.
- **Many processes** (`modelling.study_storage`): the trials live in an Optuna RDB study (SQLite or
  PostgreSQL). Any number of processes `join` it and add trials until `n_trials` are in the study (at
  most one extra per process that was already running one) or the shared budget ends; one `finish`
  builds the leaderboard from every trial, once each. This is Optuna's own distributed mode.

The fold loop is written here rather than taken from scikit-learn's `cross_validate`: the pruner
needs each fold's score as it comes and the budget needs a boundary between folds.
`HalvingRandomSearchCV` prunes on growing subsamples but cannot share a study, a sampler or a budget
with other processes; Optuna's RDB storage and its pruners can, so the rungs are Optuna's and only
the samples are built here.

Algorithms without hyperparameters (the baseline) are scored once, outside the study, by the process
that builds the leaderboard: the no-skill line is always there.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import check_scoring
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit, train_test_split
from sklearn.pipeline import Pipeline

from ml_project.config import (
    ConfigError,
    DataConfig,
    ModellingConfig,
    PreprocessingConfig,
    available_cores,
    greater_is_better,
)
from ml_project.evaluation import available_metrics, inapplicable_metric_reason
from ml_project.modelling import SCORERS, SEARCH_SPACES, build_pipeline
from ml_project.validation import validate_engineered

logger = logging.getLogger(__name__)

Role = Literal["all", "join", "finish"]  # run trials and build the leaderboard / only add trials / only build
COMPLETE, PRUNED = "complete", "pruned"
STUDY_ROW = "leaderboard_row"  # the trial's user attribute holding its leaderboard row
STARTED_AT = "started_at"
MIN_STARTUP = 3  # trials scored in full before the pruner compares (at least each algorithm's defaults)
ESTIMATE_ROWS = 5_000  # rows of the sample fit that estimates an algorithm's first folds under a budget
WARMUP_FOLDS = 1  # a trial is never pruned on its first fold alone: one fold is a noisy estimate
RUNG_MIN_ROWS = 10_000  # the smallest sample of successive halving on rows
REDUCTION = 4  # each rung has 4 x the rows of the one before, and a quarter of a rung's trials go on
# A rung's folds are estimated from the rung before's as (rows ratio) ** GROWTH: boosting with early stopping
# grows more trees on more rows, and scoring the fold with them costs as much as fitting it (LightGBM's 5
# folds, 2 at a time: about 12 s a chunk on 200,000 rows, 107 s on 800,000, 9 x for 4 x the rows; 4 ** 1.6 = 9.2).
GROWTH = 1.6


@dataclass(frozen=True)
class Searched:
    """What the search found: the ranked leaderboard and the best pipeline refit on all modelling rows."""

    leaderboard: pd.DataFrame
    algorithm: str
    params: dict[str, Any]
    pipeline: Pipeline
    cv_metrics: dict[str, float]
    summary: dict[str, Any] = field(default_factory=dict)  # trials run/pruned, budget, rows, seconds (see `summary`)


@dataclass(frozen=True)
class Joined:
    """A process that only added trials to a shared study (`--join-study`)."""

    study: str
    storage: str
    ran: int
    in_study: int

    def line(self) -> str:
        return (
            f"study {self.study}: this process ran {self.ran} trials, {self.in_study} are in the study; "
            "build the leaderboard and the model with --finish-study"
        )


def folds_of(task: str, modelling: ModellingConfig) -> KFold | StratifiedKFold | TimeSeriesSplit:
    """Shuffled (stratified) k-fold, or, with `holdout_split: latest`, folds in time order: each validation
    fold lies after every row its model trained on (split_holdout returns the rows sorted by time)."""
    if modelling.holdout_split == "latest":
        return TimeSeriesSplit(n_splits=modelling.n_folds)
    if task == "classification":
        return StratifiedKFold(n_splits=modelling.n_folds, shuffle=True, random_state=modelling.seed)
    return KFold(n_splits=modelling.n_folds, shuffle=True, random_state=modelling.seed)


def sample_rows(X: pd.DataFrame, y: pd.Series, task: str, modelling: ModellingConfig) -> tuple[pd.DataFrame, pd.Series]:
    """At most `search_rows` rows for the trials: stratified (classification), the newest (time order), or random."""
    wanted = modelling.search_rows
    if wanted is None or wanted >= len(X):
        return X, y
    if modelling.holdout_split == "latest":
        return X.iloc[-wanted:], y.iloc[-wanted:]  # the rows are in time order: the newest ones
    stratify = y if task == "classification" else None
    kept, _ = train_test_split(np.arange(len(X)), train_size=wanted, random_state=modelling.seed, stratify=stratify)
    kept = np.sort(kept)
    return X.iloc[kept], y.iloc[kept]


def rung_sizes(rows: int, pruning: bool) -> list[int]:
    """The rows of each rung of successive halving: every row last, each rung before it a quarter of the
    next, none below RUNG_MIN_ROWS. One rung (every row, pruned fold by fold) without pruning or for a
    table of fewer than REDUCTION x RUNG_MIN_ROWS rows."""
    sizes = [rows]
    while pruning and sizes[0] // REDUCTION >= RUNG_MIN_ROWS:
        sizes.insert(0, sizes[0] // REDUCTION)
    return sizes


def rung_order(y: pd.Series, task: str, modelling: ModellingConfig) -> np.ndarray:
    """Row positions in an order whose every prefix is a fair sample, so each rung's rows hold the one
    before's: the newest first (time order), classes interleaved in proportion (classification; each
    class's rows shuffled, seeded), or a seeded shuffle."""
    count = len(y)
    if modelling.holdout_split == "latest":
        return np.arange(count)[::-1].copy()
    rng = np.random.default_rng(modelling.seed)
    if task != "classification":
        return rng.permutation(count)
    codes = pd.factorize(y)[0]
    place = np.empty(count)
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        place[rng.permutation(members)] = (np.arange(len(members)) + 0.5) / len(members)  # its share of the class
    return np.argsort(place, kind="stable")


def rank(leaderboard: pd.DataFrame, modelling: ModellingConfig) -> pd.DataFrame:
    """Scored trials from the largest rung down (more rows, a surer score), by the metric within a rung
    (ties: the earlier trial); then the pruned ones in trial order."""
    scored = leaderboard["state"] == COMPLETE
    ordered = pd.concat(
        [
            leaderboard[scored].sort_values(
                ["rows", f"mean_{modelling.metric}", "trial"],
                ascending=[False, not modelling.greater_is_better, True],
                kind="stable",
            ),
            leaderboard[~scored].sort_values("trial", kind="stable"),
        ]
    ).reset_index(drop=True)
    ordered.insert(0, "rank", np.arange(1, len(ordered) + 1))
    return ordered


@dataclass
class Outcome:
    """One trial: the per-fold scores of every metric it finished, and whether it was scored or pruned."""

    algorithm: str
    params: dict[str, Any]
    scores: dict[str, list[float]]
    fit_time_s: float
    state: str = COMPLETE
    reason: str = ""
    rows: int = 0  # the rows (rung) its scores are from
    budget_stopped: bool = False  # the time budget ended it (pruned, or scored on a smaller rung than it reached)

    def row(self, trial: int, metric_names: tuple[str, ...], folds: int) -> dict[str, Any]:
        done = len(self.scores[metric_names[0]])
        row: dict[str, Any] = {
            "trial": trial,
            "algorithm": self.algorithm,
            "state": self.state,
            "folds": f"{done}/{folds}",
            "rows": self.rows,
        }
        for name in metric_names:
            values = self.scores[name]
            scored = self.state == COMPLETE
            row[f"mean_{name}"] = float(np.mean(values)) if scored else math.nan
            row[f"std_{name}"] = float(np.std(values)) if scored else math.nan
        row["fit_time_s"] = self.fit_time_s
        row["params"] = json.dumps(self.params, sort_keys=True)
        row["fold_scores"] = json.dumps(self.scores[metric_names[0]])  # modelling.metric per finished fold
        row["pruned_because"] = self.reason
        return row


class Folds:
    """The trials' rows, rungs, folds and scorers: fits a candidate fold by fold, `jobs` folds at a time."""

    def __init__(self, X: pd.DataFrame, y: pd.Series, data: DataConfig, preprocessing: PreprocessingConfig, modelling: ModellingConfig) -> None:
        self.X, self.y, self.data, self.preprocessing, self.modelling = X, y, data, preprocessing, modelling
        self.metric_names = available_metrics(data.task, y)
        # The modelling metric first: it is the one reported to the pruner and kept per fold.
        self.metric_names = (modelling.metric, *[name for name in self.metric_names if name != modelling.metric])
        self.scoring = {name: SCORERS[name] for name in self.metric_names}
        self.sizes = rung_sizes(len(X), modelling.pruning)
        order = rung_order(y, data.task, modelling) if len(self.sizes) > 1 else np.arange(len(X))
        self.rungs = [self._splits(np.sort(order[:size])) for size in self.sizes]  # each rung's folds, as positions in X
        self.splits = self.rungs[-1]  # every row's folds
        self.jobs = min(modelling.jobs, len(self.splits))
        self.threads = max(1, available_cores() // self.jobs)
        self.chunk_seconds: dict[tuple[str, int], list[float]] = {}  # wall time of each `jobs` folds, per algorithm and rung
        self.estimates: dict[str, float] = {}  # seconds a fold would take, from a fit on a sample (see `estimate`)

    @property
    def halving(self) -> bool:
        """Whether trials climb rungs of growing samples (successive halving) instead of pruning fold by fold."""
        return len(self.sizes) > 1

    def _splits(self, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The folds of the rows at positions `rows` (sorted), as positions in X; no rows are copied."""
        folds = folds_of(self.data.task, self.modelling).split(np.empty((len(rows), 0)), self.y.iloc[rows])
        return [(rows[train], rows[test]) for train, test in folds]

    def run(
        self, algorithm: str, params: dict[str, Any], report: Callable[[int, float], bool], deadline: float | None, rungs: int | None = None
    ) -> Outcome:
        """Fit and score each fold of each rung; `report(step, running mean)` answers True to prune: after
        each fold of a single rung, or after each rung but the last (step REDUCTION ** rung) when halving.
        Past `deadline` no fold starts: the trial is pruned, or keeps the score of its last full rung.
        With `rungs`, only the first that many rungs are climbed."""
        pipeline = build_pipeline(algorithm, params, self.data, self.preprocessing, self.modelling.seed, self.modelling.class_weight)
        outcome = Outcome(algorithm, params, {name: [] for name in self.metric_names}, 0.0)
        for rung, size in enumerate(self.sizes[:rungs]):
            scores: dict[str, list[float]] = {name: [] for name in self.metric_names}
            for start in range(0, len(self.splits), self.jobs):
                stop = None if deadline is None else self.stop_reason(algorithm, deadline, start, rung)
                if stop is not None:
                    outcome.budget_stopped = True
                    if rung == 0:  # no full rung: pruned, with the folds it finished
                        outcome.scores, outcome.rows, outcome.state, outcome.reason = scores, size, PRUNED, stop
                    else:  # scored on the last rung it finished
                        outcome.reason = f"{stop} at {size:,} rows; scored at {outcome.rows:,}"
                    return outcome
                fold_scores, seconds = self._chunk(algorithm, rung, pipeline, start)
                outcome.fit_time_s += seconds
                for offset, values in enumerate(fold_scores):  # in fold order, whichever finished first
                    for name, value in values.items():
                        scores[name].append(value)
                    done = start + offset + 1
                    if not self.halving and report(done - 1, float(np.mean(scores[self.modelling.metric]))) and done < len(self.splits):
                        outcome.scores, outcome.rows, outcome.state = scores, size, PRUNED
                        outcome.reason = f"worse than the median trial after fold {done}"
                        return outcome
            outcome.scores, outcome.rows = scores, size
            if self.halving and rung + 1 < len(self.sizes) and report(REDUCTION**rung, float(np.mean(scores[self.modelling.metric]))):
                outcome.state = PRUNED
                outcome.reason = f"not in the best 1/{REDUCTION} of the trials at {size:,} rows"
                return outcome
        return outcome

    def _chunk(self, algorithm: str, rung: int, pipeline: Pipeline, start: int) -> tuple[list[dict[str, float]], float]:
        """The `jobs` folds of `rung` from `start`, fitted at once in threads: their scores and fit seconds."""
        from joblib import Parallel, delayed

        chunk = self.rungs[rung][start : start + self.jobs]
        began = time.monotonic()
        results = Parallel(n_jobs=len(chunk), backend="threading")(delayed(self._fold)(pipeline, *split) for split in chunk)
        self.chunk_seconds.setdefault((algorithm, rung), []).append(time.monotonic() - began)
        return [scores for scores, _ in results], sum(seconds for _, seconds in results)

    def stop_reason(self, algorithm: str, deadline: float, start: int, rung: int = 0) -> str | None:
        """Why the folds of `rung` from `start` on are not fitted: the deadline has passed, or they would end
        after it, judged by the slowest such folds of this algorithm on this rung so far; before its first
        folds on a rung, by the rung before's scaled by (rows ratio) ** GROWTH, and on the first rung by a
        fit of its defaults on a sample (None: fit them). Under halving a rung is begun only when all its
        folds fit: a rung not finished adds nothing."""
        left = deadline - time.monotonic()
        if left <= 0:
            return f"the time budget ended after fold {start}"
        seen = self.chunk_seconds.get((algorithm, rung))
        if seen and max(seen) > left:
            return f"the time budget would end during fold {start + 1} ({max(seen):.0f} s a fold, {left:.0f} s left)"
        if not seen and start == 0:
            before = self.chunk_seconds.get((algorithm, rung - 1))
            grown = (self.sizes[rung] / self.sizes[rung - 1]) ** GROWTH if before else 1.0
            estimate = max(before) * grown if before else self.estimate(algorithm, rung)
            if estimate > left:
                return f"the time budget would end during fold 1 (about {estimate:.0f} s a fold, {left:.0f} s left)"
            chunks = math.ceil(len(self.splits) / self.jobs)
            if self.halving and estimate * chunks > left:  # a rung not climbed in full adds nothing: not begun
                return f"the time budget would end during this rung (about {estimate * chunks:.0f} s, {left:.0f} s left)"
        return None

    def estimate(self, algorithm: str, rung: int = 0) -> float:
        """Seconds one fold of `algorithm`'s defaults on `rung` would take, from a fit on at most ESTIMATE_ROWS
        of its first fold's training rows scaled linearly to all of them (0 when the fold is that small: it
        just runs)."""
        train = self.rungs[rung][0][0]
        if len(train) <= 2 * ESTIMATE_ROWS:
            return 0.0
        if algorithm not in self.estimates:
            spec = SEARCH_SPACES[self.data.task][algorithm]
            pipeline = build_pipeline(algorithm, spec.defaults, self.data, self.preprocessing, self.modelling.seed, self.modelling.class_weight)
            sample = np.random.default_rng(self.modelling.seed).choice(train, ESTIMATE_ROWS, replace=False)
            began = time.perf_counter()
            pipeline.fit(self.X.iloc[sample], self.y.iloc[sample])
            self.estimates[algorithm] = (time.perf_counter() - began) / ESTIMATE_ROWS  # seconds a row
        return self.estimates[algorithm] * len(train)

    def _fold(self, pipeline: Pipeline, train: np.ndarray, test: np.ndarray) -> tuple[dict[str, float], float]:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.threads, user_api="openmp"):  # OpenMP's limit is per thread
            model = clone(pipeline)
            began = time.perf_counter()
            model.fit(self.X.iloc[train], self.y.iloc[train])
            seconds = time.perf_counter() - began
            scorer = check_scoring(model, scoring=self.scoring)
            values = scorer(model, self.X.iloc[test], self.y.iloc[test])
        return {name: float(values[name]) * (1.0 if greater_is_better(name) else -1.0) for name in self.metric_names}, seconds


class Progress:
    """One INFO line per trial (console and log file): its number on the leaderboard, then how many of
    n_trials are done; and the terminal's bar over n_trials."""

    def __init__(self, total: int, metric: str, budget: float | None, shown: bool, halving: bool = False) -> None:
        from tqdm.auto import tqdm

        self.total, self.metric, self.budget, self.halving = total, metric, budget, halving
        self.started = time.monotonic()
        self.bar = tqdm(total=total, desc="trials", unit="trial", disable=not shown, leave=False)
        self.done = 0

    def trial(self, number: int, outcome: Outcome, folds: int) -> None:
        self.done += 1
        self.bar.update(1)
        elapsed = time.monotonic() - self.started
        values = outcome.scores[self.metric]
        at = f" at {outcome.rows:,} rows" if self.halving else ""
        if outcome.state == COMPLETE:
            result = f"{self.metric} {np.mean(values):.4f} ± {np.std(values):.4f} ({len(values)}/{folds} folds{at})"
            result += f" ({outcome.reason})" if outcome.reason else ""
        else:
            result = f"pruned after {len(values)}/{folds} folds{at} ({outcome.reason})"
        logger.info(
            "trial %d (%d/%d) %s %s: %s, %.1f s; elapsed %.0f s, %s",
            number, self.done, self.total, outcome.algorithm, short_params(outcome.params), result, outcome.fit_time_s, elapsed, self._eta(elapsed),
        )

    def _eta(self, elapsed: float) -> str:
        left = self.total - self.done
        if self.budget is not None:
            return f"{max(0.0, self.budget - elapsed):.0f} s of the {self.budget:.0f} s budget left"
        if not left:
            return "done"
        return f"ETA {elapsed / self.done * left:.0f} s for {left} more trials"

    def close(self) -> None:
        self.bar.close()


def short_params(params: dict[str, Any], width: int = 60) -> str:
    """Parameters as `name=value` with short numbers, cut to `width` characters."""
    parts = [f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}" for name, value in sorted(params.items())]
    text = " ".join(parts) or "defaults"
    return text if len(text) <= width else text[: width - 1] + "…"


def study_name(model_name: str, fingerprint: str, modelling: ModellingConfig) -> str:
    """The shared study of one model, data and search settings: processes with the same config join it."""
    import hashlib

    settings = modelling.model_dump(mode="json", exclude={"n_jobs", "study_storage", "time_budget_s"})
    digest = hashlib.sha256(json.dumps([fingerprint, settings], sort_keys=True).encode()).hexdigest()[:12]
    return f"{model_name}-{digest}"


@contextmanager
def _capped(threads: int) -> Iterator[None]:
    """BLAS pools capped process-wide for the whole search (their limit is global, so it is set once here)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def _refit(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series) -> Pipeline:
    """Fit `pipeline` on every modelling row step by step, as Pipeline.fit does, checking the engineered
    matrix the estimator learns from (every row kept, only finite numbers) on the way: checking it after
    the fit took a second transform of every modelling row."""
    began = time.monotonic()
    matrix = pipeline[:-1].fit_transform(X, y)
    validate_engineered(matrix, len(X))
    pipeline[-1].fit(matrix, y)
    logger.info(
        "refit %s on %s rows x %d engineered columns in %.0f s",
        type(pipeline[-1]).__name__, f"{len(X):,}", matrix.shape[1], time.monotonic() - began,
    )
    return pipeline


def search(
    X: pd.DataFrame,
    y: pd.Series,
    data: DataConfig,
    preprocessing: PreprocessingConfig,
    modelling: ModellingConfig,
    progress: bool = True,
    role: Role = "all",
    name: str = "search",
) -> Searched | Joined:
    """Run the trials (unless `role` is "finish") and, unless `role` is "join", rank them and refit the best."""
    unfit = inapplicable_metric_reason(data.task, modelling.metric, y)  # as modelling.check_feasible refuses it
    if unfit is not None:
        raise ConfigError(f"config error: modelling.metric = '{modelling.metric}' {unfit}")
    if role != "all" and modelling.study_storage is None:
        flag = "--join-study" if role == "join" else "--finish-study"
        raise ConfigError(f"config error: {flag} needs modelling.study_storage (sqlite:///study.db or postgresql+psycopg://user@host/db)")
    began = time.monotonic()
    X_search, y_search = sample_rows(X, y, data.task, modelling)
    folds = Folds(X_search, y_search, data, preprocessing, modelling)
    trials = Trials(folds, modelling, name, progress)
    with _capped(folds.threads):
        fixed = trials.fixed_rows() if role != "join" else []  # the no-skill line first, as trial 0
        ran = trials.run() if role != "finish" else 0
        if role == "join":
            trials.close()
            assert modelling.study_storage is not None
            return Joined(name, modelling.study_storage, ran, trials.in_study())
        studied = trials.study_rows()
        if role == "finish" and trials.tuned and trials.wanted() and not studied:
            trials.close()
            raise ConfigError(
                f"config error: --finish-study: study {name} at modelling.study_storage holds no finished trial; "
                "add trials with --join-study first"
            )
        leaderboard = rank(pd.DataFrame(fixed + studied), modelling)
        trials.close()
    searched_s = time.monotonic() - began
    scored = leaderboard[leaderboard["state"] == COMPLETE]
    best = scored.iloc[0]
    params = json.loads(best["params"])
    logger.info(
        "search done in %.0f s: %d trials (%d scored, %d pruned); best %s %s (%s %.4f); refitting it on %s modelling rows",
        searched_s, len(leaderboard), len(scored), int((leaderboard["state"] == PRUNED).sum()), best["algorithm"],
        short_params(params), modelling.metric, float(best[f"mean_{modelling.metric}"]), f"{len(X):,}",
    )
    refit_began = time.monotonic()
    pipeline = _refit(build_pipeline(best["algorithm"], params, data, preprocessing, modelling.seed, modelling.class_weight), X, y)
    summary: dict[str, Any] = {
        "trials": len(leaderboard),
        "scored": len(scored),
        "pruned": int((leaderboard["state"] == PRUNED).sum()),
        "budget_s": modelling.time_budget_s,
        "budget_exhausted": trials.budget_exhausted,
        "search_rows": len(X_search),
        "rungs": folds.sizes,
        "modelling_rows": len(X),
        "n_jobs": folds.jobs,
        "threads_per_fold": folds.threads,
        "cores": available_cores(),
        "search_s": round(searched_s, 3),
        "refit_s": round(time.monotonic() - refit_began, 3),
    }
    if modelling.study_storage is not None:
        summary["study"] = name
    cv_metrics = {metric: float(best[f"mean_{metric}"]) for metric in folds.metric_names}
    return Searched(leaderboard, str(best["algorithm"]), params, pipeline, cv_metrics, summary)


def _storage(url: str, attempts: int = 5) -> Any:
    """Optuna's RDB storage of `url`. Processes started together race to create its tables; the loser
    of that race finds them made and retries. The heartbeat marks a trial of a process that died as failed
    instead of running for ever."""
    import optuna
    from sqlalchemy.exc import DatabaseError

    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180)
        except DatabaseError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


class Trials:
    """The study and the fixed (parameterless) candidates of one search."""

    def __init__(self, folds: Folds, modelling: ModellingConfig, name: str, progress: bool) -> None:
        self.folds, self.modelling, self.name = folds, modelling, name
        task = folds.data.task
        if modelling.n_trials < len(modelling.algorithms):
            logger.warning(
                "modelling.n_trials = %d is below the %d algorithms: only the first %d are tried",
                modelling.n_trials, len(modelling.algorithms), modelling.n_trials,
            )
        candidates = modelling.algorithms[: modelling.n_trials]
        self.fixed = [algorithm for algorithm in candidates if not SEARCH_SPACES[task][algorithm].defaults]
        self.tuned = [algorithm for algorithm in modelling.algorithms if SEARCH_SPACES[task][algorithm].defaults]
        self.first = [algorithm for algorithm in candidates if algorithm in self.tuned]  # tried with their defaults
        self.budget_exhausted = False
        self.began = time.time()  # the budget counts from here (a shared study's: from its first process)
        self.progress = Progress(modelling.n_trials, modelling.metric, modelling.time_budget_s, progress, folds.halving)
        self._study: Any = None

    @property
    def study(self) -> Any:
        if self._study is None:
            self._study = self._open()
        return self._study

    def _open(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        modelling = self.modelling
        shared = modelling.study_storage is not None
        # Processes joining one study must not suggest the same parameters from the same history.
        seed = modelling.seed if not shared else (modelling.seed + os.getpid()) % 2**32
        pruner: Any = optuna.pruners.NopPruner()
        if modelling.pruning and self.folds.halving:  # asynchronous successive halving; steps are REDUCTION ** rung
            pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION)
        elif modelling.pruning:
            pruner = optuna.pruners.MedianPruner(n_startup_trials=max(MIN_STARTUP, len(self.first)), n_warmup_steps=WARMUP_FOLDS)
        storage: Any = None
        if modelling.study_storage is not None:
            storage = _storage(modelling.study_storage)
        study = optuna.create_study(
            study_name=self.name,
            storage=storage,
            direction="maximize" if modelling.greater_is_better else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=pruner,
            load_if_exists=True,
        )
        if STARTED_AT not in study.user_attrs:
            study.set_user_attr(STARTED_AT, self.began)
            for algorithm in self.first:
                defaults = SEARCH_SPACES[self.folds.data.task][algorithm].defaults
                study.enqueue_trial({"algorithm": algorithm, **{f"{algorithm}.{key}": value for key, value in defaults.items()}})
        return study

    def deadline(self) -> float | None:
        """The budget's end on this process's monotonic clock (a shared study's budget began with its first process)."""
        if self.modelling.time_budget_s is None:
            return None
        started = float(self.study.user_attrs.get(STARTED_AT, time.time()))
        return time.monotonic() + (started + self.modelling.time_budget_s - time.time())

    def nothing_fits(self, deadline: float | None) -> bool:
        """Whether no tuned algorithm's next folds fit in what is left of the budget: the search ends."""
        if deadline is None:
            return False
        return all(self.folds.stop_reason(algorithm, deadline, 0) is not None for algorithm in self.tuned)

    def wanted(self) -> int:
        return max(0, self.modelling.n_trials - len(self.fixed))

    def run(self) -> int:
        """Add trials to the study until it holds n_trials (less the fixed ones) or the budget ends."""
        import optuna

        if not self.tuned or not self.wanted():
            return 0
        deadline, ran = self.deadline(), 0
        task = self.folds.data.task

        def objective(trial: Any) -> float:
            nonlocal ran
            algorithm = trial.suggest_categorical("algorithm", self.tuned)
            params = SEARCH_SPACES[task][algorithm].sample(trial)

            def report(step: int, mean: float) -> bool:
                trial.report(mean, step)
                return bool(trial.should_prune())

            outcome = self.folds.run(algorithm, params, report, deadline)
            if outcome.budget_stopped:
                self.budget_exhausted = True
                if not outcome.scores[self.modelling.metric]:  # not one fold fitted: the trial is on no leaderboard
                    if self.nothing_fits(deadline):
                        trial.study.stop()
                    raise optuna.TrialPruned(outcome.reason)
            ran += 1
            trial.set_user_attr(STUDY_ROW, outcome.row(0, self.folds.metric_names, len(self.folds.splits)))
            self.progress.trial(len(self.fixed) + trial.number, outcome, len(self.folds.splits))
            if outcome.state == PRUNED:
                raise optuna.TrialPruned(outcome.reason)
            return float(np.mean(outcome.scores[self.modelling.metric]))

        shared = self.modelling.study_storage is not None
        callbacks = [optuna.study.MaxTrialsCallback(self.wanted(), states=None)] if shared else []
        done = len(self.study.get_trials(deepcopy=False)) if shared else 0
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if timeout == 0.0:
            self.budget_exhausted = True
            return 0
        if done < self.wanted():
            self.study.optimize(
                objective, n_trials=None if shared else self.wanted(), timeout=timeout, callbacks=callbacks, gc_after_trial=False
            )
        if deadline is not None and time.monotonic() >= deadline and self.in_study() < self.wanted():
            self.budget_exhausted = True
        return ran

    def in_study(self) -> int:
        """Trials of the study that finished (scored or pruned)."""
        return len(self._finished())

    def _finished(self) -> list[Any]:
        import optuna

        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        return [trial for trial in self.study.get_trials(deepcopy=False, states=states) if STUDY_ROW in trial.user_attrs]

    def fixed_rows(self) -> list[dict[str, Any]]:
        """The parameterless candidates, scored once each (never pruned: they are the no-skill line), on the
        first rung: ranked by rows, a no-skill line on every row would head trials that climbed less far."""
        rows = []
        for number, algorithm in enumerate(self.fixed):
            outcome = self.folds.run(algorithm, {}, lambda fold, mean: False, None, rungs=1)
            self.progress.trial(number, outcome, len(self.folds.splits))
            rows.append(outcome.row(number, self.folds.metric_names, len(self.folds.splits)))
        return rows

    def study_rows(self) -> list[dict[str, Any]]:
        """Every finished trial of the study once, numbered after the fixed ones in the order they began."""
        if not self.tuned or not self.wanted():
            return []
        rows = []
        for trial in sorted(self._finished(), key=lambda trial: trial.number):
            row = dict(trial.user_attrs[STUDY_ROW])
            row["trial"] = len(self.fixed) + trial.number
            rows.append(row)
        return rows

    def close(self) -> None:
        self.progress.close()
