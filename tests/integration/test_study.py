"""Trials spread over processes: two real `--join-study` processes at once on one study (a SQLite file and
a real PostgreSQL server), then `--finish-study` ranks every trial once and exports the model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ml_project.artifacts import load_bundle

from ..conftest import ROOT, output_overrides

pytestmark = pytest.mark.slow

TRIALS = 12


def command(tmp_path: Path, storage: str, flag: str) -> list[str]:
    sets = [*output_overrides(tmp_path), "tracking.enabled=false", "monitoring.holdout_report=false", "modelling.n_folds=3",
            f"modelling.n_trials={TRIALS}", f"modelling.study_storage={storage}", "modelling.n_jobs=1",
            "modelling.algorithms=[baseline,logistic_regression]"]  # quick trials: the test is about the study
    return [sys.executable, "-m", "use_cases.modelling_historic_data_local", "--no-progress", flag,
            *[part for item in sets for part in ("--set", item)]]


def test_two_joined_processes_then_one_finish_make_one_leaderboard_with_every_trial_once(tmp_path: Path, database: str) -> None:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    workers = [subprocess.Popen(command(tmp_path, database, "--join-study"), cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    ran = []
    for out, _ in outputs:
        found = re.search(r"this process ran (\d+) trials, (\d+) are in the study", out)
        assert found, out
        ran.append(int(found.group(1)))
    # 11 tuned trials wanted (the baseline is scored by the finishing run); each worker may start one more
    assert TRIALS - 1 <= sum(ran) <= TRIALS + 1 and min(ran) >= 1  # both did work
    finished = subprocess.run(command(tmp_path, database, "--finish-study"), cwd=ROOT, env=env, text=True, capture_output=True, timeout=240)
    assert finished.returncode == 0, finished.stderr[-2000:]
    bundle = load_bundle(tmp_path / "models" / "penguins" / "latest")
    board = bundle.leaderboard
    assert board is not None
    assert len(board) == sum(ran) + 1 and board["trial"].is_unique  # every trial of both workers once, and the baseline
    assert (board["trial"] == 0).sum() == 1 and board.loc[board["trial"] == 0, "algorithm"].item() == "baseline"
    assert bundle.card["search"]["trials"] == len(board) and bundle.card["search"]["study"].startswith("penguins-")
    assert json.loads(board.iloc[0]["params"]) == bundle.card["params"]
    trial_lines = [line for line in finished.stderr.splitlines() if " INFO trial " in line]
    assert len(trial_lines) == 1 and " baseline " in trial_lines[0]  # --finish-study runs no trial but the baseline
