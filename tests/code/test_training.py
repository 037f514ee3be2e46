"""ml_project.training: the modelling run's steps on the shipped penguins file, and the retraining lock."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from ml_project.ingestion import load_modelling_data
from ml_project.modelling import split_features_target
from ml_project.training import Locked, evaluated, exclusive, exported_bundle, validated
from ml_project.validation import infer_schema, schema_from_config, validate

from ..conftest import make_config


def test_validated_keeps_every_row_once(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    raw = validated(config)
    direct = validate(load_modelling_data(config.data), schema_from_config(config.data), with_target=True)
    assert (len(raw.valid), raw.quarantined_rows) == (len(direct.valid), direct.quarantined_rows)
    assert len(raw.valid) + raw.quarantined_rows == len(pd.read_csv(config.data.path))


def test_evaluated_and_exported_bundle_describe_the_trained_pipeline(trained) -> None:  # type: ignore[no-untyped-def]
    from ml_project.search import Searched

    config, report = trained
    bundle = report.bundle
    raw = validated(config)
    rows = report.bundle.card["rows"]
    result = Searched(
        pipeline=bundle.pipeline,
        algorithm=bundle.card["algorithm"],
        params=bundle.card["params"],
        cv_metrics=bundle.metrics["cv"],
        leaderboard=bundle.leaderboard,
        summary={"search_rows": 100},
    )
    holdout_rows = raw.valid.sample(n=rows["holdout"], random_state=0)
    modelling_rows = raw.valid.drop(holdout_rows.index)
    holdout, baseline, plots = evaluated(config, result, split_features_target(modelling_rows, config.data), holdout_rows)
    assert sorted(holdout) == ["accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc_ovr"]
    assert sorted(baseline) == sorted(holdout)  # the no-skill line, scored the same way
    majority = modelling_rows[config.data.target].mode()[0]  # the prior's most frequent class, always predicted
    assert baseline["accuracy"] == (holdout_rows[config.data.target] == majority).mean()
    assert baseline["balanced_accuracy"] == pytest.approx(1 / holdout_rows[config.data.target].nunique())
    assert sorted(plots) == ["confusion_matrix", "feature_importance", "leaderboard"]
    fingerprint = {"sha256": "x"}
    schema = infer_schema(raw.valid, config.data, config.validation)
    exported = exported_bundle(config, result, schema, raw.quarantined_rows, (len(raw.valid), len(holdout_rows)), fingerprint, holdout, baseline)
    assert exported.card["rows"] == {"modelling": len(raw.valid), "search": 100, "holdout": rows["holdout"], "quarantined": 0}
    assert exported.card["search"] == {"search_rows": 100}
    assert (exported.metrics["holdout"], exported.metrics["baseline_holdout"], exported.fingerprint) == (holdout, baseline, fingerprint)
    assert exported.schema == bundle.schema  # ranges from every valid row, as the trained bundle's


def test_exclusive_refuses_a_second_holder_in_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "nested" / "run.lock"
    with exclusive(lock):
        assert lock.read_text() == str(os.getpid())
        with pytest.raises(Locked, match=rf"^another retraining run holds {lock} \(pid {os.getpid()}\)$"):
            with exclusive(lock):
                pass
    assert lock.read_text() == ""
    with exclusive(lock):  # released: a later run takes it
        pass
