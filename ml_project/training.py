"""The modelling run as a library verb: validate, split, search algorithms x hyperparameters by CV,
refit the best, score it once on the holdout, export the bundle, record it in MLflow and pass it
through the champion gate (it becomes champion only if it beats the current one on the same holdout).

`use_cases/modelling_historic_data_local.py` and `use_cases/retraining_historic_data_local.py` are
thin commands over `train`; `exclusive` is the retraining run's lock (one run at a time per output
folder, released by the OS if the process dies).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from ml_project import evaluation, promotion
from ml_project.artifacts import (
    LATEST,
    Bundle,
    fingerprint_frame,
    load_bundle,
    model_card,
    package_versions,
    save_bundle,
)
from ml_project.comparison import Comparison
from ml_project.config import Config, ConfigError
from ml_project.ingestion import load_modelling_data
from ml_project.modelling import SCORERS, build_pipeline, check_feasible, split_features_target, split_holdout
from ml_project.promotion import Decision, load_champion, read_decisions
from ml_project.search import Joined, Role, Searched, search, study_name
from ml_project.validation import (
    InputSchema,
    ValidationResult,
    infer_schema,
    schema_from_config,
    validate,
    warn_set_aside,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModellingReport:
    bundle: Bundle
    quarantined_rows: int
    run_id: str | None
    decision: Decision
    comparison: Comparison | None = None
    reports: dict[str, Path] = field(default_factory=dict)


class Unchanged(Exception):
    """The latest bundle was trained on the same rows with the same settings: nothing to retrain."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.version = version


def train(
    config: Config, progress: bool = True, force_promote: bool = False, skip_unchanged: bool = False, finish_study: bool = False
) -> ModellingReport:
    """The modelling run: validate → split → search → refit → evaluate → export → gate → track.

    With `skip_unchanged`, raises Unchanged before any trial when the latest bundle already holds
    a model of these very modelling rows and modelling/preprocessing/validation settings. With
    `finish_study`, runs no trial: the leaderboard is built from the trials other processes added to
    the shared study (`modelling.study_storage`, see `join_study`).
    """
    if config.data.task == "forecasting":
        return _forecasting_run(config, progress, force_promote, skip_unchanged)
    data = config.data
    raw = validated(config)
    modelling_rows, holdout_rows, fingerprint = _split(config, raw)
    schema = infer_schema(raw.valid, data, config.validation)  # ranges from every valid training row
    # Each valid row is in one of the two splits: not kept thrice (a copy, as a slice would keep them all).
    raw = raw.model_copy(update={"valid": raw.valid.iloc[:0].copy()})
    if skip_unchanged:
        raise_if_unchanged(config, fingerprint["sha256"])
    model_dir = config.paths.models / config.tracking.model_name
    load_champion(model_dir, data.features.all, data.task, force_promote)  # an unusable champion stops us before HPO
    X, y = split_features_target(modelling_rows, data)
    rows = len(modelling_rows)
    del modelling_rows  # X and y hold all it is used for: one copy of the modelling rows, not two
    result = _searched(config, (X, y), fingerprint, progress, "finish" if finish_study else "all")
    assert isinstance(result, Searched)
    began = time.monotonic()
    holdout, baseline, plots = evaluated(config, result, (X, y), holdout_rows)
    result.summary["evaluation_s"] = round(time.monotonic() - began, 3)
    bundle = exported_bundle(config, result, schema, raw.quarantined_rows, (rows, len(holdout_rows)), fingerprint, holdout, baseline)
    # The modelling rows' features and target, as drift reads them: the target joins X (no copy of every row).
    reference = X
    reference[data.target] = y
    del X, y
    tables = {"reference.parquet": reference, "training_quarantine.csv": raw.quarantine}
    reports: dict[str, Path] = {}

    def publish(saved: Bundle, decision: Decision) -> str | None:
        reports.update(_holdout_reports(config, saved, reference, holdout_rows))
        return tracked(config, saved, decision, reports)

    save = partial(save_bundle, bundle, config.paths.models, tables=tables, plots=plots, link_latest=False)
    gated = promotion.gate(config, save, holdout_rows, force_promote, publish)
    return ModellingReport(gated.bundle, raw.quarantined_rows, gated.published, gated.decision, gated.comparison, reports)


def join_study(config: Config, progress: bool = True) -> Joined:
    """Add trials to the shared study of this config and data (`--join-study`): no leaderboard, no bundle."""
    if config.data.task == "forecasting":
        raise ConfigError("config error: --join-study is for classification and regression; a forecasting search runs in one process")
    modelling_rows, _, fingerprint = _split(config, validated(config))
    joined = _searched(config, split_features_target(modelling_rows, config.data), fingerprint, progress, "join")
    assert isinstance(joined, Joined)
    return joined


def _split(config: Config, raw: ValidationResult) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Modelling and holdout rows, and the fingerprint of the modelling rows (what names the model and its study)."""
    modelling_rows, holdout_rows = split_holdout(raw.valid, config.data, config.modelling)
    return modelling_rows, holdout_rows, fingerprint_frame(modelling_rows, [*config.data.features.all, config.data.target])


def _searched(
    config: Config, modelling: tuple[pd.DataFrame, pd.Series], fingerprint: dict[str, Any], progress: bool, role: Role
) -> Searched | Joined:
    X, y = modelling
    name = study_name(config.tracking.model_name, fingerprint["sha256"], config.modelling)
    return search(X, y, config.data, config.preprocessing, config.modelling, progress=progress, role=role, name=name)


def _forecasting_run(config: Config, progress: bool, force_promote: bool, skip_unchanged: bool) -> ModellingReport:
    """The same run for data.task = forecasting: prepare → hold out the last horizon → backtest → refit → gate."""
    from ml_project import forecasting  # mlforecast and statsforecast: only for a forecasting run

    run = forecasting.prepared_run(config)
    if skip_unchanged:
        raise_if_unchanged(config, run.fingerprint["sha256"])
    model_dir = config.paths.models / config.tracking.model_name
    load_champion(model_dir, config.data.features.all, config.data.task, force_promote)  # before any backtest
    bundle, tables, plots = forecasting.candidate(config, run, progress)
    save = partial(save_bundle, bundle, config.paths.models, tables=tables, plots=plots, link_latest=False)

    def publish(saved: Bundle, decision: Decision) -> str | None:
        return tracked(config, saved, decision, {})

    gated = promotion.gate(config, save, forecasting.holdout_table(config, run), force_promote, publish)
    return ModellingReport(gated.bundle, run.prepared.raw.quarantined_rows, gated.published, gated.decision)


def validated(config: Config) -> ValidationResult:
    """The training file split into valid rows and quarantined ones (a warning names the top reasons)."""
    data = config.data
    spelt = config.validation.missing_values
    table = load_modelling_data(data, spelt)
    raw = validate(table, schema_from_config(data, spelt), with_target=True, source=data.path)
    warn_set_aside(raw, "training_quarantine.csv")
    check_feasible(raw.valid[data.target], data, config.modelling)
    return raw


def evaluated(
    config: Config, result: Searched, modelling: tuple[pd.DataFrame, pd.Series], holdout_rows: pd.DataFrame
) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """Holdout metrics of the refitted best pipeline and of the no-skill baseline (fitted on the same
    modelling features and target), and the plots the bundle keeps."""
    data = config.data
    X_holdout, y_holdout = split_features_target(holdout_rows, data)
    prediction, proba = evaluation.predicted(result.pipeline, X_holdout, data.task)  # once, for metrics and plot
    holdout = evaluation.scored(result.pipeline, y_holdout, prediction, proba, data.task)
    importance = evaluation.feature_importance(
        result.pipeline, X_holdout, y_holdout, SCORERS[config.modelling.metric], config.modelling.seed
    )
    plots = {
        "leaderboard": evaluation.leaderboard_figure(result.leaderboard, config.modelling.metric),
        "feature_importance": evaluation.feature_importance_figure(importance),
    }
    if data.task == "classification":
        classes = [str(label) for label in result.pipeline.classes_]
        plots["confusion_matrix"] = evaluation.confusion_matrix_figure(classes, y_holdout, prediction)
    else:
        plots["residuals"] = evaluation.residuals_figure(y_holdout, prediction)
    settings = config.modelling
    # The no-skill estimator reads the target only (prior / mean): fitted without its pipeline's preprocessing,
    # which would encode every modelling and holdout row for nothing (the same metrics, seconds saved at 1M rows).
    no_skill = build_pipeline("baseline", {}, data, config.preprocessing, settings.seed, settings.class_weight)[-1]
    baseline = evaluation.evaluate(no_skill.fit(*modelling), X_holdout, y_holdout, data.task)
    return holdout, baseline, plots


def exported_bundle(
    config: Config,
    result: Searched,
    schema: InputSchema,
    quarantined_rows: int,
    rows: tuple[int, int],
    fingerprint: dict[str, Any],
    holdout: dict[str, float],
    baseline: dict[str, float],
) -> Bundle:
    """The bundle to save: pipeline, schema (ranges from every valid training row), metrics and card;
    `rows` counts the modelling and holdout rows."""
    modelling_rows, holdout_rows = rows
    return Bundle(
        pipeline=result.pipeline,
        schema=schema,
        model_name=config.tracking.model_name,
        metrics={"holdout": holdout, "cv": result.cv_metrics, "baseline_holdout": baseline},
        fingerprint=fingerprint,
        config=config.model_dump(mode="json"),
        card=model_card(
            config,
            result.algorithm,
            result.params,
            {
                "modelling": modelling_rows,
                "search": int(result.summary.get("search_rows", modelling_rows)),
                "holdout": holdout_rows,
                "quarantined": quarantined_rows,
            },
        )
        | {"search": result.summary},
        versions=package_versions(),
        leaderboard=result.leaderboard,
    )


def _holdout_reports(
    config: Config, saved: Bundle, modelling_rows: pd.DataFrame, holdout_rows: pd.DataFrame
) -> dict[str, Path]:
    if not config.monitoring.holdout_report:
        return {}  # (forecasting runs have no evidently holdout report: their holdout is a plot in the bundle)
    from ml_project.monitoring import holdout_reports  # evidently: only when the reports are asked for

    return holdout_reports(saved, modelling_rows, holdout_rows, config.paths.reports)


def tracked(config: Config, saved: Bundle, decision: Decision, reports: dict[str, Path]) -> str | None:
    """The MLflow run id of the recorded run, or None when tracking is off."""
    if not config.tracking.enabled:
        return None
    from ml_project.tracking import log_modelling_run  # mlflow: only when tracking is on

    return log_modelling_run(config, saved, decision, reports)


SETTINGS_THAT_CHANGE_A_MODEL = ("data", "preprocessing", "validation", "modelling")


def raise_if_unchanged(config: Config, sha256: str) -> None:
    latest = config.paths.models / config.tracking.model_name / LATEST
    if not latest.exists():
        return
    bundle = load_bundle(latest)
    if not any(entry.get("candidate_version") == bundle.version for entry in read_decisions(latest.parent)):
        return  # that run never finished its gate (it crashed or was stopped): train again
    wanted = config.model_dump(mode="json")
    same_settings = all(bundle.config.get(key) == wanted[key] for key in SETTINGS_THAT_CHANGE_A_MODEL)
    if bundle.fingerprint.get("sha256") == sha256 and same_settings:
        raise Unchanged(bundle.version)


def print_report(report: ModellingReport, config: Config) -> None:
    bundle, metric = report.bundle, config.modelling.metric
    assert bundle.leaderboard is not None
    top = min(10, len(bundle.leaderboard))
    windows = [name for name in bundle.leaderboard.columns if name.startswith(f"{metric}_window_")]
    how = "backtest" if windows else "CV"
    print(f"\nLeaderboard (top {top} of {len(bundle.leaderboard)} trials, ranked by {how} {metric}):")
    print(leaderboard_text(bundle.leaderboard.head(10), metric))
    search = bundle.card.get("search") or {}
    if search:
        print(search_line(search))
    print(f"\nBest: {bundle.card['algorithm']} {bundle.card['params']}")
    print("Holdout metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(bundle.metrics["holdout"].items())))
    no_skill = bundle.metrics.get("baseline_holdout", {}).get(metric)
    if no_skill is not None:
        print(f"Holdout {metric}: {bundle.metrics['holdout'][metric]:.4f} against the no-skill baseline's {no_skill:.4f}")
    print(f"Bundle: {bundle.path}  (latest -> {bundle.version})")
    for name, path in report.reports.items():
        print(f"Holdout report ({name}): {path}")
    print(report.decision.line()[0].upper() + report.decision.line()[1:])
    if report.comparison is not None:
        print("Back-to-back on the holdout, " + "\n  ".join(report.comparison.lines()))
    if report.run_id:
        print(f"MLflow run {report.run_id}; open the UI with:")
        print(f"  ./executables/run.sh mlflow ui --backend-store-uri {config.tracking.uri}")


WIDTH = 120  # the console leaderboard fits this many columns


def leaderboard_text(board: pd.DataFrame, metric: str, width: int = WIDTH) -> str:
    """The leaderboard as text of at most `width` columns: per-window scores while they fit, params cut short."""
    from ml_project.search import short_params

    windows = [name for name in board.columns if name.startswith(f"{metric}_window_")]
    state = [name for name in ("state", "folds") if name in board.columns]
    if "rows" in board.columns and board["rows"].nunique() > 1:  # successive halving: the rung of each score
        state.append("rows")
    table = board.copy()
    table["params"] = [short_params(json.loads(text), 200) for text in table["params"]]
    while True:
        shown = ["rank", "trial", "algorithm", *state, f"mean_{metric}", f"std_{metric}", *windows, "fit_time_s", "params"]
        text = table[shown].to_string(index=False, float_format=lambda value: f"{value:.4f}", na_rep="-")
        used = max(len(line) for line in text.splitlines())
        if used <= width:
            return text
        if windows:  # each window's score is in leaderboard.csv
            windows = windows[:-1]
            continue
        cut = max(10, int(table["params"].str.len().max()) - (used - width))
        table["params"] = [value if len(value) <= cut else value[: cut - 1] + "…" for value in table["params"]]
        if cut == 10:
            return "\n".join(line[:width] for line in table[shown].to_string(index=False).splitlines())


def search_line(search: dict[str, Any]) -> str:
    """Trials run and pruned, the budget, the rows searched and the time of each stage."""
    budget = search.get("budget_s")
    parts = [f"{search['trials']} trials ({search['scored']} scored, {search['pruned']} pruned)"]
    if budget is not None:
        parts.append(f"budget {budget:.0f} s " + ("used up" if search.get("budget_exhausted") else "not reached"))
    if len(search.get("rungs", [])) > 1:
        parts.append("successive halving on " + ", ".join(f"{rows:,}" for rows in search["rungs"]) + " rows")
    if search.get("search_rows") != search.get("modelling_rows"):
        parts.append(f"searched on {search['search_rows']} of {search['modelling_rows']} rows")
    parts.append(f"{search['n_jobs']} folds at a time x {search['threads_per_fold']} threads")
    timing = f"search {search['search_s']:.1f} s, refit {search['refit_s']:.1f} s"
    if "evaluation_s" in search:
        timing += f", evaluation {search['evaluation_s']:.1f} s"
    return "Search: " + "; ".join(parts) + "; " + timing


class Locked(Exception):
    """Another retraining run holds the lock."""


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on `lock_path` (released by the OS even if the process dies)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise Locked(f"another retraining run holds {lock_path} (pid {holder})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
