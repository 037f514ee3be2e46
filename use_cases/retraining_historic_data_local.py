"""Scheduled retraining: the modelling run, the champion gate and the back-to-back report in one command.

Safe to run from cron: a lock file under paths.output makes a second run that starts while one is
going skip at once (exit 75, EX_TEMPFAIL), and a run on the same modelling rows with the same
settings as the latest bundle trains nothing (exit 0, "unchanged"), so repeating it is harmless.
--always retrains anyway. The champion moves only if the new model is better (see promotion.md)."""

from __future__ import annotations

import argparse
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ml_project.cli import main_entry, make_parser
from ml_project.config import Config, RunConfig
from use_cases.modelling_historic_data_local import Unchanged, print_report, run_modelling

NAME = "retraining_historic_data_local"
RUN = RunConfig(mode="modelling", data="historic", environment="local")
EXIT_LOCKED = 75


class Locked(Exception):
    """Another retraining run holds the lock."""


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on `lock_path` (released by the OS even if the process dies)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise Locked(f"another retraining run holds {lock_path} (pid {holder})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(config: Config, args: argparse.Namespace) -> int:
    lock_path = config.paths.output / f"{NAME}.lock"
    try:
        with exclusive(lock_path):
            report = run_modelling(config, progress=False, force_promote=args.force_promote, skip_unchanged=not args.always)
    except Locked as locked:
        print(f"skipped: {locked}")
        return EXIT_LOCKED
    except Unchanged as unchanged:
        print(f"unchanged: the latest bundle {unchanged.version} was trained on the same rows with the same settings; "
              "nothing to retrain (--always retrains anyway)")
        return 0
    print_report(report, config)
    return 0


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    result.add_argument("--always", action="store_true", help="retrain even if data and settings are unchanged")
    result.add_argument("--force-promote", action="store_true", help="make the new model champion even if not better (recorded)")
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
