"""The bundle: complete, verified by SHA-256 before unpickling, `latest` swapped atomically."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from ml_project.artifacts import LATEST, MANIFEST, BundleError, load_bundle, save_bundle
from ml_project.features import RareLabelGrouper
from ml_project.modelling import split_features_target
from ml_project.validation import validate

BUNDLE_FILES = {
    "config.yaml", "fingerprint.json", "leaderboard.csv", "metrics.json", "model.json", "pipeline.joblib",
    "reference.parquet", "schema.json", "training_quarantine.csv", "versions.json", "plots/confusion_matrix.png",
    "plots/feature_importance.png", "plots/leaderboard.png",
}


def test_bundle_holds_every_artifact_with_its_hash(trained) -> None:  # type: ignore[no-untyped-def]
    config, report = trained
    folder = report.bundle.path
    assert folder.parent == config.paths.models / "penguins"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert set(manifest["files"]) == BUNDLE_FILES
    assert manifest["version"] == report.bundle.version == folder.name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics) == {"holdout", "cv", "baseline_holdout"}
    assert set(metrics["holdout"]) == {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr", "log_loss"}
    assert (folder.parent / LATEST).resolve() == folder


def test_load_round_trips(trained) -> None:  # type: ignore[no-untyped-def]
    config, report = trained
    loaded = load_bundle(config.paths.models / "penguins")  # the model folder means its latest version
    assert loaded.version == report.bundle.version
    assert loaded.schema == report.bundle.schema
    assert loaded.metrics == report.bundle.metrics
    assert loaded.fingerprint == report.bundle.fingerprint
    assert loaded.leaderboard is not None and len(loaded.leaderboard) == len(report.bundle.leaderboard)


def test_a_tampered_file_is_refused_before_unpickling(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    copy = tmp_path / "bundle"
    shutil.copytree(report.bundle.path, copy)
    with (copy / "pipeline.joblib").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError) as raised:
        load_bundle(copy)
    assert str(raised.value) == (
        f"bundle error: {copy / 'pipeline.joblib'} does not match its SHA-256 in manifest.json: "
        "it was changed after export; refusing to load it"
    )


def test_a_manifest_that_skips_the_pipeline_is_refused(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    copy = tmp_path / "bundle"
    shutil.copytree(report.bundle.path, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    del manifest["files"]["pipeline.joblib"]
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"manifest.json does not list pipeline.joblib; refusing to load an unverified bundle$"):
        load_bundle(copy)


def test_a_missing_file_or_bundle_is_named(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    copy = tmp_path / "bundle"
    shutil.copytree(report.bundle.path, copy)
    (copy / "schema.json").unlink()
    with pytest.raises(BundleError, match=r"is missing schema.json, listed in manifest.json$"):
        load_bundle(copy)
    with pytest.raises(BundleError, match=r"^bundle error: no model bundle at .*/nowhere"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="has no manifest.json; it is not a model bundle"):
        load_bundle(tmp_path / "empty")


def test_a_new_version_moves_latest_and_keeps_the_old_one(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    first = save_bundle(replace(report.bundle, version="", path=None), tmp_path)
    second = save_bundle(replace(report.bundle, version="", path=None), tmp_path)
    assert first.version != second.version
    assert first.path is not None and first.path.is_dir()
    assert (tmp_path / "penguins" / LATEST).resolve() == second.path
    assert sorted(p.name for p in (tmp_path / "penguins").iterdir() if not p.name.startswith(".")) == sorted(
        [first.version, second.version, LATEST]
    )
    assert not [p for p in (tmp_path / "penguins").iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("{bad", "is not a valid manifest; refusing to load the bundle$"),
        ("[]", "is not a valid manifest; refusing to load the bundle$"),
        ('{"version": "v", "model_name": "m", "files": {"../../etc/hostname": "0"}}', "lists '../../etc/hostname', outside the bundle; refusing to load it$"),
    ],
)
def test_a_broken_manifest_is_a_bundle_error(trained, tmp_path: Path, manifest: str, message: str) -> None:  # type: ignore[no-untyped-def]
    _, report = trained
    copy = tmp_path / "bundle"
    shutil.copytree(report.bundle.path, copy)
    (copy / MANIFEST).write_text(manifest)
    with pytest.raises(BundleError, match=message):
        load_bundle(copy)


def _legacy_pipeline(config: Any, encoding: str) -> Pipeline:
    """A penguins pipeline as build_preprocessor made it before the encoders grouped rare labels."""
    features = config.data.features
    encoder: Any = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    if encoding == "ordinal":
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    impute = SimpleImputer(strategy="median", add_indicator=True)
    numerical = Pipeline([("impute", impute), ("scale", StandardScaler())])
    grouper = RareLabelGrouper(config.preprocessing.rare_label_min_frequency)
    categorical = Pipeline([("rare", grouper), ("encode", encoder)])
    preprocess = ColumnTransformer(
        [("numerical", numerical, list(features.numerical)), ("categorical", categorical, list(features.categorical))]
    )
    return Pipeline([("preprocess", preprocess), ("model", LogisticRegression(max_iter=2000))])


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_a_bundle_holding_the_legacy_rare_label_grouper_loads_and_serves_the_same(  # type: ignore[no-untyped-def]
    trained, penguins: pd.DataFrame, tmp_path: Path, encoding: str
) -> None:
    config, report = trained
    valid = validate(penguins, report.bundle.schema, with_target=True).valid
    X, y = split_features_target(valid, config.data)
    X.loc[X.index[:3], "island"] = "Tiny"  # under 2%: the grouper's __rare__ label
    pipeline = _legacy_pipeline(config, encoding).fit(X, y)
    legacy = replace(report.bundle, pipeline=pipeline, version="", path=None, compiled=None)
    loaded = load_bundle(save_bundle(legacy, tmp_path).path)
    assert type(loaded.pipeline[0].named_transformers_["categorical"][0]) is RareLabelGrouper
    assert loaded.compiled is not None  # compiled and verified on the schema's synthetic sample
    rows = X.assign(island=["Atlantis", None, "Tiny", *X["island"][3:]])  # unknown, missing, rare, then the rest
    np.testing.assert_array_equal(loaded.pipeline.predict_proba(rows), pipeline.predict_proba(rows))
    np.testing.assert_array_equal(loaded.compiled.predict_proba(rows), pipeline.predict_proba(rows))
    np.testing.assert_array_equal(loaded.compiled.predict(rows), pipeline.predict(rows))


def test_a_new_bundle_loads_with_its_compiled_path(  # type: ignore[no-untyped-def]
    trained, penguins: pd.DataFrame
) -> None:
    _, report = trained
    loaded = load_bundle(report.bundle.path)
    encoder = loaded.pipeline[0].named_transformers_["categorical"]["encode"]
    assert encoder._infrequent_enabled  # the encoders' own min_frequency, not RareLabelGrouper
    assert loaded.compiled is not None  # compiled and verified on the schema's synthetic sample
    rows = validate(penguins, loaded.schema).valid
    np.testing.assert_array_equal(loaded.compiled.predict_proba(rows), loaded.pipeline.predict_proba(rows))


def test_the_fingerprint_hashed_in_chunks_is_the_hash_of_the_whole_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from ml_project.artifacts import fingerprint_frame

    frame = pd.DataFrame({"a": np.arange(10.0), "b": list("abcdefghij"), "unused": 0})
    whole = hashlib.sha256(pd.util.hash_pandas_object(frame[["a", "b"]], index=True).to_numpy().tobytes())
    whole.update(json.dumps(["a", "b"]).encode())
    monkeypatch.setattr("ml_project.artifacts.HASH_ROWS", 3)
    chunked = fingerprint_frame(frame, ["a", "b"])
    assert chunked == {"sha256": whole.hexdigest(), "rows": 10, "columns": ["a", "b"]}
    assert fingerprint_frame(frame[["a", "b"]]) == chunked
    assert fingerprint_frame(frame.assign(a=frame["a"].where(frame.index != 7, 7.5)), ["a", "b"])["sha256"] != chunked["sha256"]


def test_model_names_resolve_to_the_champion_by_default_and_an_unknown_one_says_which_exist(
    trained, tmp_path: Path, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    from ml_project.artifacts import CHAMPION, locate_bundle, point_link, served_as

    config, report = trained
    models = tmp_path / "models"
    shutil.copytree(config.paths.models / "penguins", models / "penguins", symlinks=True)
    model_dir, version = models / "penguins", report.bundle.version
    other = f"{version}-other"
    shutil.copytree(model_dir / version, model_dir / other)
    point_link(model_dir, LATEST, other)  # a newer bundle the gate did not promote
    assert _folder(locate_bundle(models, "penguins", None)) == version  # the champion, not latest
    assert served_as(models, "penguins", None) == "champion"
    assert _folder(locate_bundle(models, "penguins", "latest")) == other
    assert _folder(locate_bundle(models, "penguins", other)) == other  # a version folder's name
    assert (served_as(models, "penguins", other), served_as(models, "penguins", "latest")) == ("path", "latest")
    with pytest.raises(BundleError) as error:
        locate_bundle(models, "penguins", "20990101T000000Z")
    assert str(error.value) == (
        f"bundle error: no model bundle '20990101T000000Z' for penguins; known: champion ({version}), latest ({other}); "
        f"versions {', '.join(sorted([version, other]))}; or a bundle folder path"
    )
    (model_dir / CHAMPION).unlink()
    with caplog.at_level("WARNING", logger="ml_project.artifacts"):
        assert _folder(locate_bundle(models, "penguins", None)) == other
    assert [record.getMessage() for record in caplog.records] == [f"model penguins has no champion yet: using latest ({other})"]
    assert served_as(models, "penguins", None) == "latest"
    with open(model_dir / "promotions.jsonl", "a") as audit:  # the gate turned the latest down: not served unasked
        audit.write(json.dumps({"candidate_version": other, "promoted": False, "reason": "loses to the no-skill baseline"}) + "\n")
    with pytest.raises(BundleError) as refused:
        locate_bundle(models, "penguins", None)
    assert str(refused.value) == (
        f"bundle error: model penguins has no champion: its latest bundle {other} was not promoted "
        "(loses to the no-skill baseline); pass --model latest to use it anyway"
    )
    assert _folder(locate_bundle(models, "penguins", "latest")) == other


def _folder(located: Path) -> str:
    """The version folder a located bundle is (a model folder means its latest)."""
    return (located / LATEST if (located / LATEST).is_symlink() else located).resolve().name
