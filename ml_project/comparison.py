"""Differential (back-to-back) comparison of two model versions on the same rows.

Both bundles score the same table through the one prediction path; the comparison reports how
many predictions change, how labels move between classes, how far probabilities shift and, when
the table holds the target, how each metric moves. The modelling run attaches it to the champion
gate's decision, and `comparing_models_local` runs it on any table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml_project import evaluation
from ml_project.artifacts import Bundle
from ml_project.prediction import predict_frame


@dataclass(frozen=True)
class Comparison:
    """What changes when `candidate` replaces `baseline` on one table."""

    candidate_version: str
    baseline_version: str
    rows: int
    compared: int
    labelled: int
    changed: int
    changed_share: float
    label_changes: dict[str, int] = field(default_factory=dict)  # "<baseline label> -> <candidate label>": count
    max_probability_shift: float | None = None
    max_value_shift: float | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # metric: baseline, candidate, delta
    regression_tolerance: float | None = None  # relative move of a regression prediction that counts as a change

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [
            f"candidate {self.candidate_version} vs {self.baseline_version}: {self.compared} of {self.rows} rows "
            f"scored by both; {self.changed} predictions changed ({self.changed_share:.2%})"
        ]
        for change, count in sorted(self.label_changes.items(), key=lambda item: -item[1]):
            out.append(f"  {change}: {count}")
        if self.max_probability_shift is not None:
            out.append(f"largest probability shift: {self.max_probability_shift:.4f}")
        if self.max_value_shift is not None:
            out.append(f"largest change of a predicted value: {self.max_value_shift:.6g}")
        if self.regression_tolerance is not None:
            out.append(f"a predicted value counts as changed when it moves by more than {self.regression_tolerance:.2%} of itself")
        if self.metrics:
            out.append(f"metrics on the {self.labelled} rows with a known label:")
        for metric, values in sorted(self.metrics.items()):
            out.append(
                f"  {metric}: {values['baseline']:.4f} -> {values['candidate']:.4f} (delta {values['delta']:+.4f})"
            )
        return out


def compare(candidate: Bundle, baseline: Bundle, frame: pd.DataFrame, regression_tolerance: float = 0.01) -> Comparison:
    """Score `frame` with both bundles and describe the differences on the rows both accepted.

    A regression prediction counts as changed when it moves by more than `regression_tolerance`
    (promotion.regression_tolerance) of its old value: a retrain never reproduces floating-point
    predictions to the last bit, so an exact test would count every row of it as changed.
    """
    new, _ = predict_frame(candidate, frame)
    old, _ = predict_frame(baseline, frame)
    both = new.index.intersection(old.index)
    new, old = new.loc[both], old.loc[both]
    task = candidate.schema.task
    label_changes: dict[str, int] = {}
    probability_shift = value_shift = None
    if task == "classification":
        changed_mask = new["prediction"].astype(str).to_numpy() != old["prediction"].astype(str).to_numpy()
        moved = pd.DataFrame({"old": old["prediction"].astype(str), "new": new["prediction"].astype(str)})[changed_mask]
        label_changes = {f"{a} -> {b}": int(n) for (a, b), n in moved.value_counts().sort_index().items()}
        shared = [label for label in candidate.classes if label in baseline.classes]
        if len(both) and shared:
            columns = [f"proba_{label}" for label in shared]
            probability_shift = float(np.abs(new[columns].to_numpy() - old[columns].to_numpy()).max())
    else:
        difference = np.abs(new["prediction"].to_numpy(dtype=float) - old["prediction"].to_numpy(dtype=float))
        changed_mask = difference > regression_tolerance * np.abs(old["prediction"].to_numpy(dtype=float))
        value_shift = float(difference.max()) if len(difference) else None
    changed = int(changed_mask.sum())
    metrics: dict[str, dict[str, float]] = {}
    target = candidate.schema.target
    labelled = np.zeros(len(both), dtype=bool)
    if target in frame.columns and len(both):
        truth = frame.loc[both, target]
        labelled = truth.notna().to_numpy()
        if task == "classification":  # a label neither model knows cannot be scored: counted, not scored
            known = set(candidate.classes) & set(baseline.classes)
            labelled &= truth.astype(str).isin(known).to_numpy()
        if labelled.any():
            scores = [
                _score(bundle, predictions[labelled], truth[labelled])
                for bundle, predictions in ((baseline, old), (candidate, new))
            ]
            for metric in sorted(set(scores[0]) & set(scores[1])):
                metrics[metric] = {
                    "baseline": scores[0][metric],
                    "candidate": scores[1][metric],
                    "delta": scores[1][metric] - scores[0][metric],
                }
    return Comparison(
        candidate_version=candidate.version,
        baseline_version=baseline.version,
        rows=len(frame),
        compared=len(both),
        labelled=int(labelled.sum()),
        changed=changed,
        changed_share=changed / len(both) if len(both) else 0.0,
        label_changes=label_changes,
        max_probability_shift=probability_shift,
        max_value_shift=value_shift,
        metrics=metrics,
        regression_tolerance=regression_tolerance if task != "classification" else None,
    )


def _score(bundle: Bundle, predictions: pd.DataFrame, truth: pd.Series) -> dict[str, float]:
    """The holdout metrics, computed from the predictions already made (no second model call)."""
    task = bundle.schema.task
    if task == "classification":
        proba = predictions[[f"proba_{label}" for label in bundle.classes]].to_numpy()
        return evaluation.score(task, truth.astype(str), predictions["prediction"].to_numpy(), proba, bundle.classes)
    return evaluation.score(task, pd.to_numeric(truth), predictions["prediction"].to_numpy(), None, None)
