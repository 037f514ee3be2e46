"""The champion gate: its decision rule, and the gate as one step (save, judge, publish, move the link, record)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from ml_project.artifacts import CHAMPION, LATEST, Bundle, save_bundle
from ml_project.modelling import split_holdout
from ml_project.promotion import Decision, Rule, decide, gate, read_decisions
from ml_project.training import validated

from ..conftest import make_config


@pytest.mark.parametrize(
    ("candidate", "champion", "margin", "greater", "force", "expected"),
    [
        (0.5, None, 0.0, True, False, (True, "no champion yet")),
        (0.91, 0.90, 0.0, True, False, (True, "better by 0.01")),
        (0.90, 0.90, 0.0, True, False, (False, "gain 0 is not more than 0")),
        (0.905, 0.90, 0.01, True, False, (False, "gain 0.005 is not more than 0.01")),
        (0.89, 0.90, 0.0, True, True, (True, "forced although the gain is -0.01")),
        (4.0, 5.0, 0.5, False, False, (True, "better by 1")),
        (5.5, 5.0, 0.0, False, False, (False, "gain -0.5 is not more than 0")),
        (float("nan"), 0.9, 0.0, True, False, (False, "gain nan is not more than 0")),
    ],
)
def test_a_candidate_must_beat_the_champion_by_more_than_the_margin(
    candidate: float, champion: float | None, margin: float, greater: bool, force: bool, expected: tuple[bool, str]
) -> None:
    promoted, reason = decide("metric", candidate, champion, Rule(margin, greater), force)
    assert (promoted, reason) == expected


@pytest.mark.parametrize(
    ("candidate", "champion", "interval", "gate_rows", "baseline", "force", "expected"),
    [
        (0.93, 0.90, (0.01, 0.05), 150, (0.95, 0.3), False, (True, "better by 0.03 (at least 0.01 with the confidence asked)")),
        (0.91, 0.90, (-0.01, 0.03), 150, (0.95, 0.3), False, (False, "gain 0.01 is not more than 0 beyond noise (interval [-0.01, 0.03])")),
        (0.91, 0.90, (-0.01, 0.03), 150, (0.95, 0.3), True, (True, "forced although the gain is 0.01 (interval [-0.01, 0.03])")),
        (0.99, 0.90, (0.05, 0.12), 69, (0.95, 0.3), False, (
            False, "69 gate rows are fewer than promotion.min_gate_rows 100: too few to tell a gain of 0.09 from noise "
            "(promote with --force-promote)"
        )),
        (0.99, 0.90, (0.05, 0.12), 69, (0.95, 0.3), True, (
            True, "forced although 69 gate rows are fewer than promotion.min_gate_rows 100: too few to tell a gain of 0.09 from noise"
        )),
        (0.20, None, None, 69, (0.20, 0.33), False, (False, "metric 0.2 loses to the no-skill baseline's 0.33 on the holdout")),
        # the baseline is judged on every holdout row, not the gate's subset: 0.2 there, 0.5 on the gate rows
        (0.50, 0.10, (0.35, 0.45), 150, (0.20, 0.33), False, (False, "metric 0.2 loses to the no-skill baseline's 0.33 on the holdout")),
        (0.25, 0.10, (0.10, 0.20), 150, (0.40, 0.33), False, (True, "better by 0.15 (at least 0.1 with the confidence asked)")),
        (0.33, None, None, 69, (0.33, 0.33), False, (True, "no champion yet")),  # the baseline itself does not lose to itself
    ],
)
def test_a_gain_must_clear_the_noise_of_enough_gate_rows_and_never_lose_to_the_baseline(
    candidate: float, champion: float | None, interval: tuple[float, float] | None, gate_rows: int,
    baseline: tuple[float, float], force: bool, expected: tuple[bool, str],
) -> None:
    rule = Rule(0.0, True, min_gate_rows=100)
    assert decide("metric", candidate, champion, rule, force, interval=interval, gate_rows=gate_rows, versus_baseline=baseline) == expected


def test_a_lower_is_better_candidate_loses_to_the_baseline_with_a_higher_loss() -> None:
    decision = decide("rmse", 820.0, None, Rule(0.0, False, 100), versus_baseline=(820.0, 800.0))
    assert decision == (False, "rmse 820 loses to the no-skill baseline's 800 on the holdout")


def _gate_inputs(trained, output: Path):  # type: ignore[no-untyped-def]
    """A config writing under `output`, a maker of `save` steps for a bundle, and the trained run's holdout rows."""
    config, _ = trained
    here = make_config(output)
    modelling_rows, holdout_rows = split_holdout(validated(config).valid, config.data, config.modelling)
    tables = {"reference.parquet": modelling_rows[[*config.data.features.all, config.data.target]]}
    return here, partial(_save, here.paths.models, tables), holdout_rows


def _save(models: Path, tables: dict[str, pd.DataFrame], bundle: Bundle) -> Callable[[], Bundle]:
    return partial(save_bundle, bundle, models, tables=tables, link_latest=False)  # as training saves: the gate moves latest


def test_the_gate_saves_judges_publishes_then_moves_the_champion_and_records(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, save, holdout_rows = _gate_inputs(trained, tmp_path)
    model_dir = config.paths.models / config.tracking.model_name
    seen: list[tuple[str, bool, bool, bool]] = []

    def publish(bundle: Bundle, decision: Decision) -> str:
        seen.append((bundle.version, decision.promoted, (model_dir / CHAMPION).is_symlink(), (model_dir / LATEST).exists()))
        return "run-1"

    first = gate(config, save(trained[1].bundle), holdout_rows, publish=publish)
    version = first.bundle.version
    assert (first.decision.promoted, first.decision.reason, first.published) == (True, "no champion yet", "run-1")
    assert seen == [(version, True, False, False)]  # published before the champion and latest links exist
    assert os.readlink(model_dir / CHAMPION) == version and os.readlink(model_dir / LATEST) == version
    assert [entry["promoted"] for entry in read_decisions(model_dir)] == [True]

    retrained = replace(trained[1].bundle, version=f"{version}-again")  # the same model under a new version
    again = gate(config, save(retrained), holdout_rows)
    decision = again.decision
    assert (decision.promoted, decision.champion_version) == (False, version)
    assert decision.reason == (
        f"{len(holdout_rows)} gate rows are fewer than promotion.min_gate_rows 100: too few to tell a gain of 0 from noise "
        "(promote with --force-promote)"
    )
    lenient_config = config.model_copy(update={"promotion": config.promotion.model_copy(update={"min_gate_rows": 50})})
    lenient = gate(lenient_config, save(replace(retrained, version=f"{version}-lenient")), holdout_rows)
    assert lenient.decision.reason == "gain 0 is not more than 0 beyond noise (interval [0, 0])"
    assert (lenient.decision.gain_interval, lenient.decision.confidence, lenient.decision.min_gate_rows) == ([0.0, 0.0], 0.95, 50)
    assert decision.gate_rows == decision.holdout_rows == len(holdout_rows)  # no holdout row trained the champion
    assert again.comparison is not None and again.comparison.changed == 0
    assert [entry["promoted"] for entry in read_decisions(model_dir)] == [True, False, False]
    assert read_decisions(model_dir)[-1]["gain_interval"] == [0.0, 0.0]


def test_a_publish_that_fails_leaves_the_champion_and_the_audit_untouched(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, save, holdout_rows = _gate_inputs(trained, tmp_path)
    model_dir = config.paths.models / config.tracking.model_name

    def publish(bundle: Bundle, decision: Decision) -> None:
        raise RuntimeError("tracking server down")

    with pytest.raises(RuntimeError, match="tracking server down"):
        gate(config, save(trained[1].bundle), holdout_rows, publish=publish)
    saved = [path.name for path in model_dir.iterdir() if path.is_dir() and not path.is_symlink()]
    assert saved == [trained[1].bundle.version]  # the version folder was written first, and stays to look at
    assert not (model_dir / LATEST).exists() and not (model_dir / CHAMPION).exists()  # but neither link moved
    assert read_decisions(model_dir) == []
