"""A real PostgreSQL server for the tests: Debian's binaries (executables/setup_postgres.sh installs them),
a new cluster in a temporary folder, on a free loopback port, stopped after.

Written here rather than taken from pytest-postgresql because the tests run as root in CI, and PostgreSQL
refuses to run as root: as root the cluster belongs to Debian's `postgres` user and its commands run
through `runuser`, which pytest-postgresql's process executor does not do.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .conftest import free_port

ROLE = "postgres"


def binaries() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin holding initdb."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    if not found:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql: run executables/setup_postgres.sh (cicd_pipeline.sh does)")
    return Path(found[-1]).parent


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", ROLE, "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a cluster on 127.0.0.1 and yield its SQLAlchemy URL (database `postgres`, trust auth).

    The cluster lives in a new folder under the system's temporary folder (pytest's own is private to
    root, which the `postgres` user could not enter), removed after the server stops.
    """
    bin_dir, folder = binaries(), Path(tempfile.mkdtemp(prefix="ml_project-postgres-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, ROLE)
        shutil.chown(sockets, ROLE)
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "-E", "UTF8"]), **run)
        port = free_port()
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_owner([*pg_ctl, "-o", options, "-l", str(folder / "server.log"), "-w", "start"]), **run)
        try:
            yield f"postgresql+psycopg://{ROLE}@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(_as_owner([*pg_ctl, "-m", "fast", "-w", "stop"]), **run)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
