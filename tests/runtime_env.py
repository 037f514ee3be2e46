"""A Python environment holding only the packages of a deployed folder's requirements.txt.

The packages are linked from this project's .venv (which was synced from the same Pipfile.lock, so
the versions are the pinned ones) into a new, empty virtual environment: whatever else .venv holds
(mlflow, evidently, optuna, pytest ...) cannot be imported there. A deployed folder started with
this environment's python proves its requirements.txt is complete without downloading anything.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path


def requirement_names(requirements: Path) -> set[str]:
    """Canonical names of the `name==version` lines of a requirements file."""
    names = set()
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            names.add(canonical(match.group(1)))
    return names


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_owners() -> dict[str, set[str]]:
    """Which distributions put files under each top-level entry of site-packages."""
    owners: dict[str, set[str]] = defaultdict(set)
    for distribution in metadata.distributions():
        name = canonical(distribution.metadata["Name"])
        for line in (distribution.read_text("RECORD") or "").splitlines():
            top = line.split(",", 1)[0].split("/", 1)[0]
            if top and top != "..":
                owners[top].add(name)
    return owners


def build(requirements: Path, folder: Path) -> Path:
    """An empty venv at `folder` with exactly the distributions `requirements` names; returns its python."""
    names = requirement_names(requirements)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next((folder / "lib").glob("python*/site-packages"))
    owners = _top_level_owners()
    for name in sorted(names):
        distribution = metadata.distribution(name)
        for file in distribution.files or []:
            if not file.parts or file.parts[0] == "..":
                continue  # console scripts: they would run .venv's python; use `python -m` instead
            top = file.parts[0]
            source = Path(str(distribution.locate_file(file)))
            if owners[top] <= names:  # the whole entry belongs to runtime packages: one link
                target = site / top
                if not target.exists() and not target.is_symlink():
                    target.symlink_to(Path(str(distribution.locate_file(top))))
            else:  # shared with packages left out (a namespace like google/): file by file
                target = site / Path(*file.parts)
                if source.exists() and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(source)
    return folder / "bin" / "python"


def environment(python: Path, **extra: str) -> dict[str, str]:
    """Process environment that runs `python` (as `python` on PATH) with nothing but its own packages."""
    keep = {key: value for key, value in os.environ.items() if key in ("HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")}
    return {
        **keep,
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }
