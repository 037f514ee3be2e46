"""MLflow tracking of a modelling run: params, CV and holdout metrics, leaderboard, plots, the model.

mlflow is imported inside the functions: the prediction path never imports this module.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ml_project.artifacts import Bundle
from ml_project.config import Config

logger = logging.getLogger(__name__)

# Runtime needs of the logged model, stated so MLflow does not spend seconds guessing them
# (and does not wrongly add the test tools it finds installed).
MODEL_REQUIREMENTS = ("scikit-learn", "pandas", "numpy", "skops")


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


def log_modelling_run(config: Config, bundle: Bundle) -> str:
    """Record the run in the MLflow store from `tracking.uri`; returns the run id."""
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
    tags = {
        "bundle.version": bundle.version,
        "bundle.path": str(bundle.path),
        "data.fingerprint": bundle.fingerprint["sha256"],
        "run.mode": config.run.mode,
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
        mlflow.sklearn.log_model(
            bundle.pipeline,
            name="model",
            pip_requirements=_pinned(MODEL_REQUIREMENTS, bundle.versions),
            skops_trusted_types=_trusted_types(bundle.pipeline),
            code_paths=[str(Path(__file__).resolve().parent)],
        )
        logger.info("MLflow run %s in experiment '%s' (%s)", run.info.run_id, config.tracking.experiment, config.tracking.uri)
        return str(run.info.run_id)
