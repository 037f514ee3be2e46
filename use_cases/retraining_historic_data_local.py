"""Scheduled retraining: the modelling run, the champion gate and the back-to-back report in one command.

Safe to run from cron: a lock file under paths.output makes a second run that starts while one is
going skip at once (exit 75, EX_TEMPFAIL), and a run on the same modelling rows with the same
settings as the latest bundle trains nothing (exit 0, "unchanged"), so repeating it is harmless.
--always retrains anyway. The champion moves only if the new model is better (see promotion.md)."""

from __future__ import annotations

import argparse

from ml_project.cli import main_entry, make_parser
from ml_project.config import Config, RunConfig
from ml_project.training import Locked, Unchanged, exclusive, print_report, train

NAME = "retraining_historic_data_local"
RUN = RunConfig(mode="modelling", data="historic", environment="local")
EXIT_LOCKED = 75


def main(config: Config, args: argparse.Namespace) -> int:
    lock_path = config.paths.output / f"{NAME}.lock"
    try:
        with exclusive(lock_path):
            report = train(config, progress=False, force_promote=args.force_promote, skip_unchanged=not args.always)
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
