"""Imports are free of side effects, and the prediction path stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT

MODULES = sorted(
    f"{path.parent.name}.{path.stem}"
    for folder in ("ml_project", "use_cases", "deployment")
    for path in (ROOT / folder).glob("*.py")
    if path.stem != "__init__"
)
HEAVY = ("mlflow", "optuna", "evidently")


def _import_in_fresh_process(module: str, cwd: Path) -> dict[str, object]:
    code = (
        "import json, logging, sys; sys.path.insert(0, sys.argv[1]); import importlib; "
        f"importlib.import_module('{module}'); "
        "print(json.dumps({'heavy': sorted(m for m in sys.modules if m.split('.')[0] in %r), "
        "'handlers': len(logging.getLogger().handlers)}))" % (HEAVY,)
    )
    result = subprocess.run([sys.executable, "-c", code, str(ROOT)], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize(
    "module",
    [
        "ml_project.prediction",
        "ml_project.artifacts",
        "ml_project.validation",
        "use_cases.predicting_historic_data_local",
        "use_cases.predicting_production_data_local",
        "use_cases.predicting_production_data_deployed_server",
        "use_cases.predicting_production_data_local_fastapi",
        "deployment.run_deployed",
        "deployment.workers",
        "deployment.forecast_api",
        "ml_project.monitoring",  # evidently only inside the functions that build reports
        "use_cases.monitoring_production_data_local",
    ],
)
def test_prediction_path_imports_no_mlflow_optuna_or_evidently(module: str, tmp_path: Path) -> None:
    assert _import_in_fresh_process(module, tmp_path)["heavy"] == []


def test_the_service_and_its_start_imports_no_mlflow_optuna_evidently_nor_pandera(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Cold start is part of the contract: pandera alone costs a second, and records are checked without it."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); "
        "from pathlib import Path; from deployment.app import create_app; import deployment.run_service; import deployment.run_deployed; "
        "import deployment.workers; import deployment.run_dashboard; "
        "from ml_project.artifacts import load_bundle; from ml_project.config import ServiceConfig; "
        "create_app(load_bundle(Path(sys.argv[2])), ServiceConfig()); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'optuna', 'evidently', 'pandera'})))"
    )
    bundle = trained[1].bundle.path
    result = subprocess.run([sys.executable, "-c", code, str(ROOT), str(bundle)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_importing_any_module_writes_nothing_and_configures_no_logging(tmp_path: Path) -> None:
    for module in MODULES:
        state = _import_in_fresh_process(module, tmp_path)
        assert state["handlers"] == 0, module
    assert list(tmp_path.iterdir()) == []
    assert "ml_project.tracking" in MODULES and "use_cases.modelling_historic_data_local" in MODULES


def _project_imports(path: Path) -> set[str]:
    """The project modules a file imports, at any depth of the file (lazy imports inside functions too)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:  # `from ml_project import evaluation` names a module too
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name.split(".")[0] in ("ml_project", "deployment", "use_cases"))
    return found


def test_project_imports_form_no_cycle() -> None:
    """Imports point down: no module reaches itself through others, lazy imports included."""
    graph = {
        module: {name for name in _project_imports(ROOT / (module.replace(".", "/") + ".py")) if name in MODULES}
        for module in MODULES
    }

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return seen

    assert sorted(module for module in MODULES if module in reach(module)) == []
    assert "deployment.process" in graph["deployment.run_dashboard"] and "deployment.dashboard_api" in graph["deployment.app"]
