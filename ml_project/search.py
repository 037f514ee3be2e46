"""The hyperparameter search of a table's model: Optuna TPE over algorithms and their parameters, each
trial scored by k-fold CV, built to scale.

- **Budget** (`modelling.time_budget_s`): no trial starts after the deadline; a trial running at the
  deadline is pruned at its next fold boundary (the folds it finished are kept on the leaderboard as
  pruned), and so are folds that would end after it, judged by the slowest folds of the same
  algorithm so far (before an algorithm's first folds: a fit of its defaults on 5,000 rows, scaled
  linearly); when not even a new trial's first folds fit in what is left, the search ends. The refit on all modelling rows comes after the budget and is timed separately.
- **Pruning** (`modelling.pruning`): a trial reports its running mean after each fold and Optuna's
  `MedianPruner` stops it when it is worse than the median of the trials before it at that fold, from
  its second fold on. Each algorithm's defaults (the first trials, at least 3) are never pruned. A pruned trial is on the leaderboard as
  pruned, with the folds it finished, and is never ranked among the scored ones.
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
with other processes; Optuna's RDB storage can.

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

logger = logging.getLogger(__name__)

Role = Literal["all", "join", "finish"]  # run trials and build the leaderboard / only add trials / only build
COMPLETE, PRUNED = "complete", "pruned"
STUDY_ROW = "leaderboard_row"  # the trial's user attribute holding its leaderboard row
STARTED_AT = "started_at"
MIN_STARTUP = 3  # trials scored in full before the pruner compares (at least each algorithm's defaults)
ESTIMATE_ROWS = 5_000  # rows of the sample fit that estimates an algorithm's first folds under a budget
WARMUP_FOLDS = 1  # a trial is never pruned on its first fold alone: one fold is a noisy estimate  # the study's user attribute: when its first process began (the shared budget's start)


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


def rank(leaderboard: pd.DataFrame, modelling: ModellingConfig) -> pd.DataFrame:
    """Scored trials by the metric (ties: the earlier trial), then the pruned ones in trial order."""
    scored = leaderboard["state"] == COMPLETE
    ordered = pd.concat(
        [
            leaderboard[scored].sort_values(
                [f"mean_{modelling.metric}", "trial"], ascending=[not modelling.greater_is_better, True], kind="stable"
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

    def row(self, trial: int, metric_names: tuple[str, ...], folds: int) -> dict[str, Any]:
        done = len(self.scores[metric_names[0]])
        row: dict[str, Any] = {
            "trial": trial,
            "algorithm": self.algorithm,
            "state": self.state,
            "folds": f"{done}/{folds}",
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
    """The trials' rows, folds and scorers: fits a candidate fold by fold, `jobs` folds at a time."""

    def __init__(self, X: pd.DataFrame, y: pd.Series, data: DataConfig, preprocessing: PreprocessingConfig, modelling: ModellingConfig) -> None:
        self.X, self.y, self.data, self.preprocessing, self.modelling = X, y, data, preprocessing, modelling
        self.metric_names = available_metrics(data.task, y)
        # The modelling metric first: it is the one reported to the pruner and kept per fold.
        self.metric_names = (modelling.metric, *[name for name in self.metric_names if name != modelling.metric])
        self.scoring = {name: SCORERS[name] for name in self.metric_names}
        self.splits = list(folds_of(data.task, modelling).split(X, y))
        self.jobs = min(modelling.jobs, len(self.splits))
        self.threads = max(1, available_cores() // self.jobs)
        self.chunk_seconds: dict[str, list[float]] = {}  # wall time of each `jobs` folds, per algorithm
        self.estimates: dict[str, float] = {}  # seconds a fold would take, from a fit on a sample (see `estimate`)

    def run(self, algorithm: str, params: dict[str, Any], report: Callable[[int, float], bool], deadline: float | None) -> Outcome:
        """Fit and score each fold; `report(fold, running mean)` answers True to prune; past `deadline` the
        trial is pruned at its next fold boundary."""
        from joblib import Parallel, delayed

        pipeline = build_pipeline(algorithm, params, self.data, self.preprocessing, self.modelling.seed, self.modelling.class_weight)
        outcome = Outcome(algorithm, params, {name: [] for name in self.metric_names}, 0.0)
        for start in range(0, len(self.splits), self.jobs):
            stop = None if deadline is None else self.stop_reason(algorithm, deadline, start)
            if stop is not None:
                outcome.state, outcome.reason = PRUNED, stop
                return outcome
            chunk = self.splits[start : start + self.jobs]
            began = time.monotonic()
            results = Parallel(n_jobs=len(chunk), backend="threading")(delayed(self._fold)(pipeline, *split) for split in chunk)
            self.chunk_seconds.setdefault(algorithm, []).append(time.monotonic() - began)
            for offset, (scores, seconds) in enumerate(results):  # in fold order, whichever finished first
                for name, value in scores.items():
                    outcome.scores[name].append(value)
                outcome.fit_time_s += seconds
                mean = float(np.mean(outcome.scores[self.modelling.metric]))
                if report(start + offset, mean) and start + offset + 1 < len(self.splits):
                    outcome.state, outcome.reason = PRUNED, f"worse than the median trial after fold {start + offset + 1}"
                    return outcome
        return outcome

    def stop_reason(self, algorithm: str, deadline: float, start: int) -> str | None:
        """Why the folds from `start` on are not fitted: the deadline has passed, or they would end after it,
        judged by the slowest such folds of this algorithm so far (None: fit them)."""
        left = deadline - time.monotonic()
        if left <= 0:
            return f"the time budget ended after fold {start}"
        seen = self.chunk_seconds.get(algorithm)
        if seen and max(seen) > left:
            return f"the time budget would end during fold {start + 1} ({max(seen):.0f} s a fold, {left:.0f} s left)"
        if not seen and start == 0:  # this algorithm's first folds: judge them by a fit on a sample
            estimate = self.estimate(algorithm)
            if estimate > left:
                return f"the time budget would end during fold 1 (about {estimate:.0f} s a fold, {left:.0f} s left)"
        return None

    def estimate(self, algorithm: str) -> float:
        """Seconds one fold of `algorithm`'s defaults would take, from a fit on at most ESTIMATE_ROWS of the first
        fold's training rows scaled linearly to all of them (0 when the fold is that small: it just runs)."""
        train = self.splits[0][0]
        if len(train) <= 2 * ESTIMATE_ROWS:
            return 0.0
        if algorithm not in self.estimates:
            spec = SEARCH_SPACES[self.data.task][algorithm]
            pipeline = build_pipeline(algorithm, spec.defaults, self.data, self.preprocessing, self.modelling.seed, self.modelling.class_weight)
            sample = np.random.default_rng(self.modelling.seed).choice(train, ESTIMATE_ROWS, replace=False)
            began = time.perf_counter()
            pipeline.fit(self.X.iloc[sample], self.y.iloc[sample])
            self.estimates[algorithm] = (time.perf_counter() - began) * len(train) / ESTIMATE_ROWS
        return self.estimates[algorithm]

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

    def __init__(self, total: int, metric: str, budget: float | None, shown: bool) -> None:
        from tqdm.auto import tqdm

        self.total, self.metric, self.budget = total, metric, budget
        self.started = time.monotonic()
        self.bar = tqdm(total=total, desc="trials", unit="trial", disable=not shown, leave=False)
        self.done = 0

    def trial(self, number: int, outcome: Outcome, folds: int) -> None:
        self.done += 1
        self.bar.update(1)
        elapsed = time.monotonic() - self.started
        values = outcome.scores[self.metric]
        if outcome.state == COMPLETE:
            result = f"{self.metric} {np.mean(values):.4f} ± {np.std(values):.4f} ({len(values)}/{folds} folds)"
        else:
            result = f"pruned after {len(values)}/{folds} folds ({outcome.reason})"
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
    refit_began = time.monotonic()
    pipeline = build_pipeline(best["algorithm"], params, data, preprocessing, modelling.seed, modelling.class_weight).fit(X, y)
    summary: dict[str, Any] = {
        "trials": len(leaderboard),
        "scored": len(scored),
        "pruned": int((leaderboard["state"] == PRUNED).sum()),
        "budget_s": modelling.time_budget_s,
        "budget_exhausted": trials.budget_exhausted,
        "search_rows": len(X_search),
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
        self.progress = Progress(modelling.n_trials, modelling.metric, modelling.time_budget_s, progress)
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
        pruner = (
            optuna.pruners.MedianPruner(n_startup_trials=max(MIN_STARTUP, len(self.first)), n_warmup_steps=WARMUP_FOLDS)
            if modelling.pruning
            else optuna.pruners.NopPruner()
        )
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

            def report(fold: int, mean: float) -> bool:
                trial.report(mean, fold)
                return bool(trial.should_prune())

            outcome = self.folds.run(algorithm, params, report, deadline)
            if outcome.state == PRUNED and outcome.reason.startswith("the time budget"):
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
        """The parameterless candidates, scored once each (never pruned: they are the no-skill line)."""
        rows = []
        for number, algorithm in enumerate(self.fixed):
            outcome = self.folds.run(algorithm, {}, lambda fold, mean: False, None)
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
