"""The champion gate: a new model goes live only if it beats the current champion on the same holdout.

The decision is a plain function of two scores; the gate scores the champion bundle on the
candidate's holdout rows, so both are measured on exactly the same data. The champion is kept on
disk as a `champion` link beside `latest` in the model folder (serving reads it without mlflow),
every decision is appended to `promotions.jsonl` there (the audit trail), and, when tracking is on,
mirrored in the MLflow registry as the `champion` alias with tags (ml_project.tracking).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ml_project import evaluation
from ml_project.artifacts import CHAMPION, Bundle, BundleError, load_bundle

logger = logging.getLogger(__name__)

AUDIT_FILE = "promotions.jsonl"


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
    comparison: dict[str, Any] | None = None  # comparison.Comparison of candidate vs champion on the holdout

    def line(self) -> str:
        """One line for the console and the run log."""
        verdict = "promoted" + (" (forced)" if self.forced else "") if self.promoted else "not promoted"
        if self.champion_score is None:
            return f"champion gate: {self.candidate_version} {verdict}: {self.reason}"
        return (
            f"champion gate: candidate {self.candidate_version} {self.metric} {self.candidate_score:.4f} vs champion "
            f"{self.champion_version} {self.champion_score:.4f} on the same {self.holdout_rows} holdout rows, "
            f"required improvement {self.min_improvement:g}: {verdict} ({self.reason})"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    metric: str,
    candidate_score: float,
    champion_score: float | None,
    min_improvement: float,
    greater_is_better: bool,
    force: bool = False,
) -> tuple[bool, str]:
    """Promote when there is no champion, or the candidate beats it by more than `min_improvement`.

    Equal is not better: with a margin of 0 the candidate must still score strictly better.
    """
    if champion_score is None:
        return True, "no champion yet"
    gain = candidate_score - champion_score if greater_is_better else champion_score - candidate_score
    if gain > min_improvement:
        return True, f"better by {gain:.4g}"
    if force:
        return True, f"forced although the gain is {gain:.4g}"
    return False, f"gain {gain:.4g} is not more than {min_improvement:g}"


def champion_score(
    champion_path: Path, X_holdout: pd.DataFrame, y_holdout: pd.Series, task: str, metric: str
) -> tuple[Bundle, float] | None:
    """The current champion and its score on these holdout rows; None when there is none.

    A champion that cannot be scored on these rows (other features, target or task) raises
    BundleError: the gate never compares a candidate with nothing by accident.
    """
    if not champion_path.is_symlink() and not champion_path.exists():
        return None
    champion = load_bundle(champion_path)
    missing = [name for name in champion.schema.feature_names if name not in X_holdout.columns]
    if missing or champion.schema.task != task:
        raise BundleError(
            f"bundle error: the champion {champion.version} cannot be scored on this holdout "
            f"({'missing features ' + ', '.join(missing) if missing else 'another task'}); "
            "compare by hand and use --force-promote"
        )
    scores = evaluation.evaluate(champion.pipeline, X_holdout[champion.schema.feature_names], y_holdout, task)
    return champion, float(scores.get(metric, float("nan")))


def point_champion(model_dir: Path, version: str) -> None:
    """Swap the `champion` link in one rename, as `latest` is swapped."""
    temporary = model_dir / f".{CHAMPION}.{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(version, target_is_directory=True)
    os.replace(temporary, model_dir / CHAMPION)


def record_decision(model_dir: Path, decision: Decision) -> None:
    """Append the decision to the model folder's audit trail (one JSON object per line)."""
    with open(model_dir / AUDIT_FILE, "a") as audit:
        audit.write(json.dumps(decision.as_dict()) + "\n")


def read_decisions(model_dir: Path) -> list[dict[str, Any]]:
    """The audit trail, oldest first: which version was champion when, and why."""
    path = model_dir / AUDIT_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def now() -> str:
    return datetime.now(timezone.utc).isoformat()
