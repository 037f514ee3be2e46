"""The modelling run is recorded in the real MLflow sqlite store: params, metrics, artifacts, model."""

from __future__ import annotations


def test_run_is_in_the_mlflow_store(trained) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    config, report = trained
    client = MlflowClient(tracking_uri=config.tracking.uri)
    experiment = client.get_experiment_by_name("penguins")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`mlflow.parentRunId` IS NULL")
    assert [run.info.run_id for run in runs] == [report.run_id]
    run = runs[0]
    assert run.data.params["algorithm"] == report.bundle.card["algorithm"]
    assert run.data.params["modelling.n_trials"] == "5"
    assert run.data.metrics["holdout_accuracy"] == report.bundle.metrics["holdout"]["accuracy"]
    assert run.data.metrics["cv_f1_macro"] == report.bundle.metrics["cv"]["f1_macro"]
    assert run.data.tags["bundle.version"] == report.bundle.version
    assert run.data.tags["data.fingerprint"] == report.bundle.fingerprint["sha256"]
    axes = [run.data.tags[f"run.{axis}"] for axis in ("mode", "data", "environment")]
    assert axes == ["modelling", "historic", "local"]
    artifacts = {item.path for item in client.list_artifacts(report.run_id)}
    assert {"leaderboard.csv", "plots", "bundle"} <= artifacts
    plots = {item.path for item in client.list_artifacts(report.run_id, "plots")}
    assert plots == {"plots/confusion_matrix.png", "plots/feature_importance.png", "plots/leaderboard.png"}
    assert run.data.metrics["search_trials"] == 5 and run.data.tags["search.budget_exhausted"] == "False"


def test_every_trial_is_a_child_run_of_the_modelling_run(trained) -> None:  # type: ignore[no-untyped-def]
    import json

    from mlflow.tracking import MlflowClient

    config, report = trained
    client = MlflowClient(tracking_uri=config.tracking.uri)
    experiment = client.get_experiment_by_name("penguins")
    children = client.search_runs([experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{report.run_id}'")
    board = report.bundle.leaderboard
    assert sorted(child.data.tags["mlflow.runName"] for child in children) == sorted(f"trial-{trial}" for trial in board["trial"])
    for child in children:
        row = board[board["trial"] == int(child.data.tags["mlflow.runName"].removeprefix("trial-"))].iloc[0]
        assert child.data.params["algorithm"] == row["algorithm"]
        assert child.data.tags["trial.state"] == row["state"]
        folds = client.get_metric_history(child.info.run_id, "fold_f1_macro")
        assert [point.value for point in sorted(folds, key=lambda point: point.step)] == json.loads(row["fold_scores"])
        if row["state"] == "complete":
            assert child.data.metrics["mean_f1_macro"] == row["mean_f1_macro"] and child.info.status == "FINISHED"
        else:
            assert "mean_f1_macro" not in child.data.metrics and child.info.status == "KILLED"


def test_the_logged_model_loads_and_predicts_like_the_bundle(trained, penguins) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    config, report = trained
    mlflow.set_tracking_uri(config.tracking.uri)
    model = mlflow.sklearn.load_model(f"runs:/{report.run_id}/model")
    features = penguins[report.bundle.schema.feature_names].head(20)
    assert model.predict(features).tolist() == report.bundle.pipeline.predict(features).tolist()
