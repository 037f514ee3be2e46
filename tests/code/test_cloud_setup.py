"""executables/cloud_setup.sh with a forecasting bundle: which packages its folder pins, which targets refuse it.

The folders are started for real in tests/integration/test_deployment.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from deployment.cloud_setup import FORBIDDEN, RUN, TARGETS, runtime_requirements
from ml_project.artifacts import Bundle
from ml_project.config import ConfigError, load_config
from ml_project.training import train

from .. import runtime_env
from ..conftest import ROOT
from .test_forecasting import queues, seasonal_config

LOCK = json.loads((ROOT / "Pipfile.lock").read_text())
FORECASTING_PACKAGES = {"mlforecast", "statsforecast", "holidays", "utilsforecast", "coreforecast", "statsmodels"}
NEVER = {"optuna", "mlflow", "mlflow-skinny", "evidently", "pandera", "pytest"}


def train_forecaster(folder: Path) -> Bundle:
    """The two-series daily queues model of tests/code/test_forecasting.py (a second or two)."""
    folder.mkdir(parents=True, exist_ok=True)
    return train(seasonal_config(folder, queues()), progress=False).bundle


def cloud_setup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["./executables/cloud_setup.sh", *args], cwd=ROOT, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return train_forecaster(tmp_path_factory.mktemp("forecaster"))


def test_only_a_forecasting_bundle_adds_the_forecast_packages_and_optuna_stays_out() -> None:
    tabular = {pin.name for pin in runtime_requirements("docker")}
    forecasting = {pin.name for pin in runtime_requirements("docker", forecasting=True)}
    assert not tabular & FORECASTING_PACKAGES
    assert tabular < forecasting and FORECASTING_PACKAGES <= forecasting
    assert not forecasting & (NEVER | set(FORBIDDEN))


def test_mlforecasts_optuna_is_the_one_dependency_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deployment.cloud_setup.LEFT_OUT", {})
    with pytest.raises(ConfigError) as error:
        runtime_requirements("docker", forecasting=True)
    assert str(error.value) == "cloud_setup: optuna (needed by mlforecast) must not be in a deployed folder"


def test_a_forecasting_bundle_assembles_for_docker(forecaster: Bundle, tmp_path: Path) -> None:
    out = tmp_path / "docker"
    done = cloud_setup("docker", "--model", str(forecaster.path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Assembled docker (a Docker image: multi-stage build, slim runtime, non-root, HEALTHCHECK on /health) for model queues version {forecaster.version} (path)")
    assert {"manifest.json", "pipeline.joblib", "schema.json", "model.json"} <= {path.name for path in (out / "model").iterdir()}
    assert json.loads((out / "deployment.json").read_text())["model_version"] == forecaster.version
    text = (out / "requirements.txt").read_text()
    names = runtime_env.requirement_names(out / "requirements.txt")
    assert FORECASTING_PACKAGES <= names and not names & NEVER
    pins = dict(re.findall(r"^([a-z0-9-]+)==\S+ \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, flags=re.M))
    assert set(pins) == names
    for name in ("mlforecast", "statsforecast"):
        entry = LOCK["default"][name]
        assert f"\n{name}{entry['version']} \\\n" in text
        assert sorted(re.findall(r"sha256:[0-9a-f]{64}", pins[name])) == sorted(entry["hashes"])
    assert "# optuna is left out although mlforecast declares it: only mlforecast.auto (hyperparameter search) imports it; the served forecaster never does.\n" in text
    assert "RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt\n" in (out / "Dockerfile").read_text()


def test_a_tabular_folder_installs_with_pips_own_dependency_check(forecaster: Bundle) -> None:
    from deployment.cloud_setup import pip_flags, placeholders

    assert placeholders(forecaster, "docker", "0" * 12)["pip_flags"] == "--require-hashes"  # no pins: nothing left out
    assert pip_flags(runtime_requirements("docker")) == "--require-hashes"
    assert pip_flags(runtime_requirements("docker", forecasting=True)) == "--require-hashes --no-deps"


def test_sagemaker_refuses_a_forecasting_bundle_in_one_line(forecaster: Bundle, tmp_path: Path) -> None:
    refused = cloud_setup("sagemaker", "--model", str(forecaster.path), "--out", str(tmp_path / "sagemaker"))
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"cloud_setup: sagemaker cannot ship a forecasting bundle (queues {forecaster.version}): SageMaker calls GET /ping "
        "and POST /invocations with records to score, and a forecast has no records; assemble docker or aws_lambda instead\n"
    )
    assert not (tmp_path / "sagemaker").exists()


@pytest.mark.parametrize("target", ["heroku", "google_app_engine", "google_cloud_function"])
def test_a_platform_that_runs_its_own_pip_install_refuses_a_forecasting_bundle(forecaster: Bundle, tmp_path: Path, target: str) -> None:
    from deployment.cloud_setup import assemble

    with pytest.raises(ConfigError) as error:
        assemble(target, forecaster, "path", tmp_path / target, load_config(None, [], run=RUN))
    assert str(error.value) == (
        f"cloud_setup: {target} cannot ship a forecasting bundle (queues {forecaster.version}): its build runs its own "
        "`pip install -r requirements.txt`, which cannot be given --no-deps and so would fetch optuna (mlforecast declares it; "
        "a deployed folder leaves it out); assemble docker or aws_lambda instead"
    )
    assert not (tmp_path / target).exists()
    assert [name for name, spec in TARGETS.items() if not spec.forecasting] == ["docker", "aws_lambda"]
