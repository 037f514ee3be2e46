"""Shared fixtures: a small real training run (real MLflow sqlite store) reused by many tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ml_project.config import Config, RunConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
PENGUINS = ROOT / "data" / "penguins.csv"
CONFIGS = ROOT / "use_cases" / "configs"
# Tiny but real HPO budget: every algorithm is tried once with its defaults, then TPE.
FAST = ["modelling.n_trials=5", "modelling.n_folds=3"]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def output_overrides(output: Path) -> list[str]:
    return [f"paths.output={output}", f"tracking.uri=sqlite:///{output / 'mlflow.db'}"]


def make_config(output: Path, *overrides: str, config: Path | None = None) -> Config:
    return load_config(config, [*FAST, *output_overrides(output), *overrides], run=RunConfig())


def run_use_case(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m use_cases.<name>` as a user would, from the project root."""
    return subprocess.run(
        [sys.executable, "-m", f"use_cases.{name}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    return pd.read_csv(PENGUINS)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The default penguins classification run, trained once for the session."""
    from use_cases.modelling_historic_data_local import run_modelling

    output = tmp_path_factory.mktemp("trained")
    config = make_config(output)
    report = run_modelling(config, progress=False)
    return config, report
