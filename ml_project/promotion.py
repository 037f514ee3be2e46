"""The champion gate: a new model goes live only if it beats the current champion on the same holdout.

The decision is a plain function of two scores; the gate scores the champion bundle on the
candidate's holdout rows, so both are measured on exactly the same data. The champion is kept on
disk as a `champion` link beside `latest` in the model folder (serving reads it without mlflow),
every decision is appended to `promotions.jsonl` there (the audit trail), and, when tracking is on,
mirrored in the MLflow registry as the `champion` alias with tags (ml_project.tracking).
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml_project.artifacts import (
    AUDIT_FILE,
    CHAMPION,
    LATEST,
    Bundle,
    BundleError,
    load_bundle,
    point_link,
    read_decisions,
)
from ml_project.config import Config

if TYPE_CHECKING:
    from ml_project.comparison import Comparison

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class Decision:
    """Both scores, the margin and the verdict; `champion_version` is None for the first model."""

    metric: str
    candidate_version: str
    candidate_score: float
    champion_version: str | None
    champion_score: float | None
    min_improvement: float
    greater_is_better: bool
    promoted: bool
    forced: bool
    reason: str
    holdout_rows: int
    decided_at: str = ""
    gate_rows: int | None = None  # holdout rows new to the champion, on which both were scored
    comparison: dict[str, Any] | None = None  # comparison.Comparison of candidate vs champion on the holdout
    confidence: float | None = None  # promotion.confidence of the gain's interval
    gain_interval: list[float] | None = None  # [low, high]: the paired bootstrap's interval of the gain on the gate rows
    min_gate_rows: int | None = None  # promotion.min_gate_rows
    baseline_score: float | None = None  # the no-skill baseline's holdout score, which the candidate must not lose to

    def line(self) -> str:
        """One line for the console and the run log."""
        verdict = "promoted" + (" (forced)" if self.forced else "") if self.promoted else "not promoted"
        if self.champion_score is None:
            return f"champion gate: {self.candidate_version} {verdict}: {self.reason}"
        interval = ""
        if self.gain_interval is not None and self.confidence is not None:
            low, high = self.gain_interval
            interval = f", gain {self.confidence:.0%} interval [{low:.4g}, {high:.4g}]"
        return (
            f"champion gate: candidate {self.candidate_version} {self.metric} {self.candidate_score:.4f} vs champion "
            f"{self.champion_version} {self.champion_score:.4f} on the same {self.gate_rows} holdout rows "
            f"(of {self.holdout_rows}; the others trained the champion){interval}, "
            f"required improvement {self.min_improvement:g}: {verdict} ({self.reason})"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Gated:
    """What the gate did with a candidate: the bundle as saved, the decision, the comparison, what publish returned."""

    bundle: Bundle
    decision: Decision
    comparison: Comparison | None
    published: Any = None


def gate(
    config: Config,
    save: Callable[[], Bundle],
    holdout_rows: pd.DataFrame,
    force: bool = False,
    publish: Callable[[Bundle, Decision], Any] | None = None,
) -> Gated:
    """The champion gate as one step: save the candidate, judge it against the champion, publish, record.

    Under the model's promotion lock, in an order a crash cannot make disagree: `save()` writes the
    bundle's version folder, the decision is taken on the holdout rows the champion never trained
    on (`holdout_rows` are the rows the candidate's holdout metrics were computed on: when the champion
    never saw any of them, the candidate's score is that metric, not a second pass of the model), `publish(bundle, decision)` records it elsewhere (MLflow: the run and the registry alias; holdout
    reports, which skip themselves with a warning rather than fail), and only then do the `latest` and
    `champion` links move and the audit line get written: a run that fails anywhere leaves both links
    where they were (its version folder stays, unlinked, for a look at what it made).
    """
    data = config.data
    model_dir = config.paths.models / config.tracking.model_name
    with promotion_lock(model_dir):
        champion, note = load_champion(model_dir, data.features.all, data.task, force)
        saved = save()
        decision, comparison = judge(config, saved, champion, note, holdout_rows, force)
        logger.debug(decision.line())
        published = publish(saved, decision) if publish is not None else None
        point_link(model_dir, LATEST, saved.version)
        if decision.promoted:
            point_champion(model_dir, saved.version)
        record_decision(model_dir, decision)
    return Gated(saved, decision, comparison, published)


def judge(
    config: Config, candidate: Bundle, champion: Bundle | None, note: str, holdout_rows: pd.DataFrame, force: bool
) -> tuple[Decision, Comparison | None]:
    """Score candidate and champion on the holdout rows the champion never trained on, and decide."""
    from ml_project.comparison import compare  # scores both pipelines: loaded when a gate runs

    data, metric, settings = config.data, config.modelling.metric, config.promotion
    score = float(candidate.metrics["holdout"].get(metric, float("nan")))
    baseline = candidate.metrics.get("baseline_holdout", {}).get(metric)  # forecasting bundles have none
    versus_baseline = (score, float(baseline)) if baseline is not None else None  # both on every holdout row
    champion_value, gate_rows, comparison, interval = None, len(holdout_rows), None, None
    if champion is not None:
        rows = unseen_rows(holdout_rows, champion)
        if rows.empty:  # nothing new to the champion: compare on everything, and say it flatters the champion
            rows, note = holdout_rows, "every holdout row trained the champion; its score is optimistic"
        gate_rows = len(rows)
        if data.task == "forecasting":  # both forecast the holdout periods from the candidate's history
            from ml_project.forecasting import gate_score

            score, champion_value = gate_score(candidate, champion, rows, metric)
        else:
            score, champion_value, interval = paired_scores(config, candidate, champion, rows)
            comparison = compare(candidate, champion, rows, settings.regression_tolerance)
    # The row floor goes with the bootstrap: a forecasting holdout is one horizon per series (24 rows for
    # Seattle's hourly temperatures), gated on its point gain.
    floor = settings.min_gate_rows if data.task != "forecasting" else 0
    if champion is None and note.startswith("forced"):
        promoted, reason = True, note
    else:
        rule = Rule(settings.min_improvement, config.modelling.greater_is_better, floor)
        promoted, reason = decide(
            metric, score, champion_value, rule, force, interval=interval, gate_rows=gate_rows, versus_baseline=versus_baseline
        )
        reason = f"{reason}; {note}" if note and champion is not None else reason
    decision = Decision(
        metric=metric,
        candidate_version=candidate.version,
        candidate_score=score,
        champion_version=champion.version if champion is not None else None,
        champion_score=champion_value,
        min_improvement=settings.min_improvement,
        greater_is_better=config.modelling.greater_is_better,
        promoted=promoted,
        forced=force and promoted and reason.startswith("forced"),
        reason=reason,
        holdout_rows=len(holdout_rows),
        decided_at=now(),
        gate_rows=gate_rows,
        comparison=comparison.as_dict() if comparison is not None else None,
        confidence=settings.confidence if interval is not None else None,
        gain_interval=list(interval) if interval is not None else None,
        min_gate_rows=floor,
        baseline_score=float(baseline) if baseline is not None else None,
    )
    return decision, comparison


@dataclass(frozen=True)
class Rule:
    """What a candidate must show: a gain above `min_improvement` beyond noise, on at least `min_gate_rows` rows."""

    min_improvement: float
    greater_is_better: bool
    min_gate_rows: int = 0


def decide(
    metric: str,
    candidate_score: float,
    champion_score: float | None,
    rule: Rule,
    force: bool = False,
    *,
    interval: tuple[float, float] | None = None,
    gate_rows: int | None = None,
    versus_baseline: tuple[float, float] | None = None,
) -> tuple[bool, str]:
    """Promote when the candidate does not lose to the no-skill baseline (`versus_baseline`: the candidate's
    and the baseline's score on the same holdout rows) and there is no champion, or it
    beats the champion by more than `rule.min_improvement` beyond noise: the lower end of the gain's
    bootstrap `interval` (when given; else the gain itself) must exceed the margin, on at least
    `rule.min_gate_rows` gate rows. `force` promotes anyway and says what it overrode.

    Equal is not better: with a margin of 0 the candidate must still score strictly better.
    """
    greater = rule.greater_is_better
    if versus_baseline is not None:
        mine, baseline = versus_baseline
        if mine < baseline if greater else mine > baseline:
            why = f"{metric} {mine:.4g} loses to the no-skill baseline's {baseline:.4g} on the holdout"
            return (True, f"forced although {why}") if force else (False, why)
    if champion_score is None:
        return True, "no champion yet"
    gain = candidate_score - champion_score if greater else champion_score - candidate_score
    if gate_rows is not None and gate_rows < rule.min_gate_rows:
        why = (
            f"{gate_rows} gate rows are fewer than promotion.min_gate_rows {rule.min_gate_rows}: "
            f"too few to tell a gain of {gain:.4g} from noise"
        )
        return (True, f"forced although {why}") if force else (False, f"{why} (promote with --force-promote)")
    if interval is None:
        if gain > rule.min_improvement:
            return True, f"better by {gain:.4g}"
        return (True, f"forced although the gain is {gain:.4g}") if force else (False, f"gain {gain:.4g} is not more than {rule.min_improvement:g}")
    low, high = interval
    if low > rule.min_improvement:
        return True, f"better by {gain:.4g} (at least {low:.4g} with the confidence asked)"
    if force:
        return True, f"forced although the gain is {gain:.4g} (interval [{low:.4g}, {high:.4g}])"
    return False, f"gain {gain:.4g} is not more than {rule.min_improvement:g} beyond noise (interval [{low:.4g}, {high:.4g}])"


def paired_scores(config: Config, candidate: Bundle, champion: Bundle, rows: pd.DataFrame) -> tuple[float, float, tuple[float, float]]:
    """Both models' `modelling.metric` on the gate rows and the paired bootstrap interval of the candidate's gain."""
    from ml_project import bootstrap, evaluation  # scikit-learn: loaded when a gate runs

    data, metric = config.data, config.modelling.metric
    truth = rows[data.target]
    scored, values = [], []
    for bundle, features in ((candidate, data.features.all), (champion, champion.schema.feature_names)):
        prediction, proba = evaluation.predicted(bundle.pipeline, rows[features], data.task)
        scored.append(bootstrap.Scored(np.asarray(prediction), proba))
        try:
            values.append(float(evaluation.scored(bundle.pipeline, truth, prediction, proba, data.task).get(metric, np.nan)))
        except ValueError as error:
            logger.warning("%s could not be computed on the gate's rows: %s", metric, error)
            values.append(float("nan"))
    classes = [str(label) for label in candidate.pipeline.classes_] if data.task == "classification" else None
    probabilities = metric in ("log_loss", "roc_auc", "roc_auc_ovr")  # read per class: both must know the same ones
    same_classes = not probabilities or classes == [str(label) for label in champion.pipeline.classes_]
    interval = (float("nan"), float("nan"))
    if not same_classes:
        logger.warning("the gain's interval cannot be computed: %s reads the probabilities of classes the two models do not share", metric)
    if np.isfinite(values).all() and same_classes:
        y = truth.astype(str).to_numpy() if classes is not None else truth.to_numpy(dtype=float)
        interval = bootstrap.gain_interval(
            metric, y, scored[0], scored[1], classes=classes, greater_is_better=config.modelling.greater_is_better,
            confidence=config.promotion.confidence, seed=config.modelling.seed,
        )
    return values[0], values[1], interval


def load_champion(model_dir: Path, features: list[str], task: str, force: bool) -> tuple[Bundle | None, str]:
    """The current champion, checked usable for this run; (None, why) when there is none to compare with.

    A champion that cannot be loaded (folder gone, files changed) or scored on this run's rows
    (other features or task) stops the run with a BundleError, before any training when called
    early; with `force` the run goes on and the new model is promoted without a comparison.
    """
    link = model_dir / CHAMPION
    if not link.is_symlink():
        return None, "no champion yet"
    try:
        champion = load_bundle(link)
        missing = [name for name in champion.schema.feature_names if name not in features]
        if missing or champion.schema.task != task:
            what = "features " + ", ".join(missing) + " are not in this run's data" if missing else "it is another task"
            raise BundleError(f"bundle error: the champion {champion.version} cannot be scored on this run's rows: {what}")
    except BundleError as error:
        if force:
            return None, f"forced; the champion could not be compared ({error})"
        raise BundleError(
            f"{error}; the champion link {link} cannot be used: fix or remove it, or train with --force-promote"
        ) from None
    return champion, ""


def unseen_rows(holdout_rows: pd.DataFrame, champion: Bundle) -> pd.DataFrame:
    """The holdout rows the champion never trained on (matched by content against its reference.parquet).

    When the data grew since the champion was trained, a new random holdout overlaps the champion's
    training rows; scoring it there would flatter the champion. Identical duplicate rows count as seen.
    """
    assert champion.path is not None
    reference = pd.read_parquet(champion.path / "reference.parquet")
    columns = [name for name in reference.columns if name in holdout_rows.columns]
    seen = set(pd.util.hash_pandas_object(reference[columns], index=False).to_numpy())
    hashes = pd.util.hash_pandas_object(holdout_rows[columns], index=False).to_numpy()
    return holdout_rows[[value not in seen for value in hashes]]


@contextmanager
def promotion_lock(model_dir: Path) -> Iterator[None]:
    """One gate at a time per model: the champion read, the decision and its records happen together."""
    model_dir.mkdir(parents=True, exist_ok=True)
    with open(model_dir / ".promotion.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def point_champion(model_dir: Path, version: str) -> None:
    """Swap the `champion` link in one rename, as `latest` is swapped."""
    point_link(model_dir, CHAMPION, version)


def record_decision(model_dir: Path, decision: Decision) -> None:
    """Append the decision to the model folder's audit trail (one JSON object per line)."""
    with open(model_dir / AUDIT_FILE, "a") as audit:
        audit.write(json.dumps(decision.as_dict()) + "\n")


def now() -> str:
    return datetime.now(timezone.utc).isoformat()
