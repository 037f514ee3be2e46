"""use_cases/ holds thin commands: none imports another, none carries a long function."""

from __future__ import annotations

import ast
from pathlib import Path

from ..conftest import ROOT

USE_CASES = sorted(path for path in (ROOT / "use_cases").glob("*.py") if path.stem != "__init__")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_no_use_case_imports_another() -> None:
    imports = {
        path.stem: sorted(
            node.module
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "use_cases"
        )
        + sorted(
            alias.name
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name.split(".")[0] == "use_cases"
        )
        for path in USE_CASES
    }
    assert {name: found for name, found in imports.items() if found} == {}
    assert len(imports) == 10


def test_no_function_in_a_use_case_is_over_60_lines() -> None:
    long = [
        f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in USE_CASES
        for node in ast.walk(_tree(path))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == []


def test_the_modelling_commands_are_thin_over_the_training_verb() -> None:
    for name in ("modelling_historic_data_local", "retraining_historic_data_local"):
        source = (ROOT / "use_cases" / f"{name}.py").read_text()
        assert "from ml_project.training import" in source, name
        assert len(source.splitlines()) <= 60, name
