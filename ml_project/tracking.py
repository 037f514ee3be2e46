"""MLflow tracking of a modelling run: params, CV and holdout metrics, leaderboard, plots, the model.

mlflow is imported inside the functions: the prediction path never imports this module.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_project.config import Config

if TYPE_CHECKING:  # types only: importing them would load pandas, scikit-learn and matplotlib
    from ml_project.artifacts import Bundle
    from ml_project.promotion import Decision

logger = logging.getLogger(__name__)

# Runtime needs of the logged model, stated so MLflow does not spend seconds guessing them
# (and does not wrongly add the test tools it finds installed).
MODEL_REQUIREMENTS = ("scikit-learn", "pandas", "numpy", "skops")
FORECAST_REQUIREMENTS = (
    "scikit-learn", "pandas", "numpy", "mlforecast", "statsforecast", "holidays", "pydantic", "pyyaml", "joblib",
)
CHAMPION_ALIAS = "champion"


def _mlflow() -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    # mlflow configures its own logger on import; keep its INFO chatter off the console.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    return mlflow


def _experiment_id(mlflow: Any, config: Config) -> str:
    experiment = mlflow.get_experiment_by_name(config.tracking.experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    artifacts = (config.paths.output / "mlartifacts").resolve()
    return str(mlflow.create_experiment(config.tracking.experiment, artifact_location=artifacts.as_uri()))


def _pinned(names: tuple[str, ...], versions: dict[str, str]) -> list[str]:
    from importlib import metadata

    pins = []
    for name in names:
        version = versions.get(name)
        if version is None:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        pins.append(f"{name}=={version}")
    return pins


def _trusted_types(pipeline: Any) -> list[str]:
    """Types skops must be told to trust: all of them come from the pipeline this run just built."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))


def log_modelling_run(
    config: Config, bundle: Bundle, decision: Decision | None = None, reports: dict[str, Path] | None = None
) -> str:
    """Record the run in the MLflow store from `tracking.uri` and register its model; returns the run id.

    Every run registers a model version under `tracking.model_name`, tagged with the bundle's
    version, fingerprint, holdout metrics and the champion gate's decision; a promoted version gets
    the `champion` alias (see `register`).
    """
    mlflow = _mlflow()
    mlflow.set_tracking_uri(config.tracking.uri)
    experiment_id = _experiment_id(mlflow, config)
    params = {
        "algorithm": bundle.card.get("algorithm"),
        **{f"model.{key}": value for key, value in bundle.card.get("params", {}).items()},
        **{f"modelling.{key}": value for key, value in config.modelling.model_dump().items()},
        "data.path": config.data.path,
        "data.target": config.data.target,
        "data.task": config.data.task,
    }
    metrics = {f"cv_{name}": value for name, value in bundle.metrics["cv"].items()}
    metrics |= {f"holdout_{name}": value for name, value in bundle.metrics["holdout"].items()}
    metrics |= {f"baseline_holdout_{name}": value for name, value in bundle.metrics.get("baseline_holdout", {}).items()}
    tags = {
        "bundle.version": bundle.version,
        "bundle.path": str(bundle.path),
        "data.fingerprint": bundle.fingerprint["sha256"],
        "run.mode": config.run.mode,  # the run-mode axes the use case declared (config.RunConfig)
        "run.data": config.run.data,
        "run.environment": config.run.environment,
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{config.tracking.model_name}-{bundle.version}") as run:
        mlflow.log_params({key: str(value) for key, value in params.items()})
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        assert bundle.path is not None
        mlflow.log_artifact(str(bundle.path / "leaderboard.csv"))
        plots = bundle.path / "plots"
        if plots.is_dir():
            mlflow.log_artifacts(str(plots), artifact_path="plots")
        mlflow.log_artifacts(str(bundle.path), artifact_path="bundle")
        for path in (reports or {}).values():
            mlflow.log_artifact(str(path), artifact_path="reports")
        search = bundle.card.get("search") or {}
        if search:
            mlflow.set_tags({f"search.{key}": str(value) for key, value in search.items()})
            mlflow.log_metrics({f"search_{key}": float(search[key]) for key in ("trials", "scored", "pruned", "search_s", "refit_s") if key in search})
        if bundle.leaderboard is not None:
            log_trials(mlflow, run.info.run_id, experiment_id, bundle.leaderboard, config.modelling.metric)
        if decision is not None:
            gate = {key: value for key, value in decision.as_dict().items() if key != "comparison"}
            mlflow.set_tags({f"gate.{key}": str(value) for key, value in gate.items()})
            mlflow.log_dict(decision.as_dict(), "champion_gate.json")
        model_info = _logged_model(mlflow, config, bundle)
        register(mlflow, config.tracking.model_name, str(model_info.registered_model_version), bundle, decision)
        logger.info("MLflow run %s in experiment '%s' (%s)", run.info.run_id, config.tracking.experiment, config.tracking.uri)
        return str(run.info.run_id)


def log_trials(mlflow: Any, parent: str, experiment_id: str, leaderboard: Any, metric: str) -> None:
    """One child run per leaderboard row under the modelling run: its algorithm and parameters, the mean
    metrics, the configured metric per finished fold (as steps) and whether it was scored or pruned, so
    MLflow's compare view shows the whole search. Written in one batch per trial."""
    import json
    import math

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

    client = mlflow.MlflowClient()
    now = int(time.time() * 1000)
    for row in leaderboard.to_dict("records"):
        child = client.create_run(
            experiment_id,
            tags={MLFLOW_PARENT_RUN_ID: parent, MLFLOW_RUN_NAME: f"trial-{row['trial']}"},
        )
        params = {"algorithm": row["algorithm"], **{f"model.{key}": value for key, value in json.loads(row["params"]).items()}}
        metrics = [
            Metric(name, float(value), now, 0)
            for name, value in row.items()
            if (name.startswith("mean_") or name.startswith("std_") or name == "fit_time_s") and not math.isnan(float(value))
        ]
        metrics += [Metric(f"fold_{metric}", float(value), now, step) for step, value in enumerate(json.loads(row.get("fold_scores") or "[]"))]
        tags = [RunTag("trial.state", str(row.get("state", "complete"))), RunTag("trial.rank", str(row["rank"]))]
        if row.get("pruned_because"):
            tags.append(RunTag("trial.pruned_because", str(row["pruned_because"])))
        client.log_batch(child.info.run_id, metrics=metrics, params=[Param(key, str(value)) for key, value in params.items()], tags=tags)
        client.set_terminated(child.info.run_id, "KILLED" if row.get("state") == "pruned" else "FINISHED")


def _logged_model(mlflow: Any, config: Config, bundle: Bundle) -> Any:
    """The model as MLflow logs it: scikit-learn's flavour for a pipeline, a python function for a forecaster."""
    code = [str(Path(__file__).resolve().parent)]
    if bundle.schema.task == "forecasting":
        assert bundle.path is not None
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=_bundle_forecaster(mlflow),
            artifacts={"bundle": str(bundle.path)},
            pip_requirements=_pinned(FORECAST_REQUIREMENTS, bundle.versions),
            code_paths=code,
            registered_model_name=config.tracking.model_name,
        )
    return mlflow.sklearn.log_model(
        bundle.pipeline,
        name="model",
        pip_requirements=_pinned(MODEL_REQUIREMENTS, bundle.versions),
        skops_trusted_types=_trusted_types(bundle.pipeline),
        code_paths=code,
        registered_model_name=config.tracking.model_name,
    )


def _bundle_forecaster(mlflow: Any) -> Any:
    """A forecasting bundle as an MLflow python-function model (its folder is logged as the `bundle` artifact).

    `mlflow.pyfunc.load_model(...).predict(frame)` verifies and loads that bundle and answers the next
    `horizon` periods (the frame's `horizon` column, else the bundle's own) of every series, from the
    history it was trained on, in the columns the forecasting use case writes.
    """

    class BundleForecaster(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        def load_context(self, context: Any) -> None:
            from ml_project.artifacts import load_bundle

            self.bundle = load_bundle(context.artifacts["bundle"])

        def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
            from ml_project.forecasting import forecast_table

            given = getattr(model_input, "columns", ())
            horizon = int(model_input["horizon"].iloc[0]) if "horizon" in given and len(model_input) else None
            return forecast_table(self.bundle, horizon)

    return BundleForecaster()


def register(mlflow: Any, name: str, version: str, bundle: Bundle, decision: Decision | None) -> None:
    """Tag the registered version, and move the `champion` alias when the gate promoted it.

    The audit trail lives in version tags: `champion.promoted_at` on each version that became
    champion, `champion.replaced_at` / `champion.replaced_by` on the one it replaced.
    """
    client = mlflow.MlflowClient()
    tags = {
        "bundle.version": bundle.version,
        "data.fingerprint": bundle.fingerprint["sha256"],
        **{f"holdout.{metric}": f"{value:.6g}" for metric, value in bundle.metrics["holdout"].items()},
    }
    if decision is not None:
        tags |= {
            "gate.verdict": "promoted" if decision.promoted else "not promoted",
            "gate.forced": str(decision.forced).lower(),
            "gate.reason": decision.reason,
            "gate.metric": decision.metric,
            "gate.candidate_score": f"{decision.candidate_score:.6g}",
            "gate.champion_score": "" if decision.champion_score is None else f"{decision.champion_score:.6g}",
            "gate.champion_version": decision.champion_version or "",
        }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if decision is None or not decision.promoted:
        return
    try:
        previous = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:
        previous = None
    if previous is not None and str(previous.version) != version:
        client.set_model_version_tag(name, previous.version, "champion.replaced_at", decision.decided_at)
        client.set_model_version_tag(name, previous.version, "champion.replaced_by", version)
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    client.set_model_version_tag(name, version, "champion.promoted_at", decision.decided_at)
    logger.info("registered model %s version %s is now the champion", name, version)
