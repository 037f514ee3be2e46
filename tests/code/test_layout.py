"""The tree a newcomer relies on: every module of the package has its own test module beside the others."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_module_of_ml_project_has_its_own_test_module() -> None:
    modules = sorted(path.stem for path in (ROOT / "ml_project").glob("*.py") if path.stem != "__init__")
    missing = [name for name in modules if not (ROOT / "tests" / "code" / f"test_{name}.py").is_file()]
    assert missing == [], f"ml_project modules without tests/code/test_<module>.py: {', '.join(missing)}"
