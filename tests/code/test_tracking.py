"""The modelling run is recorded in the real MLflow sqlite store: params, metrics, artifacts, model."""

from __future__ import annotations


def test_run_is_in_the_mlflow_store(trained) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    config, report = trained
    client = MlflowClient(tracking_uri=config.tracking.uri)
    experiment = client.get_experiment_by_name("penguins")
    runs = client.search_runs([experiment.experiment_id])
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


def test_the_logged_model_loads_and_predicts_like_the_bundle(trained, penguins) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    config, report = trained
    mlflow.set_tracking_uri(config.tracking.uri)
    model = mlflow.sklearn.load_model(f"runs:/{report.run_id}/model")
    features = penguins[report.bundle.schema.feature_names].head(20)
    assert model.predict(features).tolist() == report.bundle.pipeline.predict(features).tolist()
