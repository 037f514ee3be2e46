"""Train on historic data: validate, search algorithms × hyperparameters by CV, refit the best,
score it once on the holdout, export the bundle, pass it through the champion gate (it becomes
champion only if it beats the current one on the same holdout) and record the run in MLflow."""

from __future__ import annotations

import argparse

from ml_project.cli import main_entry, make_parser
from ml_project.config import Config, RunConfig
from ml_project.training import join_study, print_report, train

NAME = "modelling_historic_data_local"
RUN = RunConfig(mode="modelling", data="historic", environment="local")


def main(config: Config, args: argparse.Namespace) -> int:
    if args.join_study:
        print(join_study(config, progress=not args.no_progress).line())
        return 0
    report = train(config, progress=not args.no_progress, force_promote=args.force_promote, finish_study=args.finish_study)
    print_report(report, config)
    return 0


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    result.add_argument("--no-progress", action="store_true", help="hide the progress bar over HPO trials")
    result.add_argument(
        "--force-promote",
        action="store_true",
        help="make this model champion even if it does not beat the current one (recorded as forced)",
    )
    study = result.add_mutually_exclusive_group()
    study.add_argument(
        "--join-study",
        action="store_true",
        help="only add trials to the shared study of modelling.study_storage (run it on as many machines as you like)",
    )
    study.add_argument(
        "--finish-study",
        action="store_true",
        help="run no trial: build the leaderboard from every trial of the shared study, refit the best and export",
    )
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
