"""The command-line contract every use case shares: --config, --set, logging, exit codes.

Exit 0 on success, 2 on usage, config or data errors the user can fix (one line on stderr, no
traceback), 1 on any other failure (one line on stderr, the traceback in the log file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ml_project.config import DEFAULT_USE_CASE_CONFIG, Config, RunConfig, load_config
from ml_project.errors import BundleError, ConfigError, DataError, PredictionLogError, ServiceUnavailable

if TYPE_CHECKING:
    from ml_project.artifacts import Bundle

logger = logging.getLogger("ml_project")

USER_ERRORS = (ConfigError, DataError, BundleError, PredictionLogError, ServiceUnavailable)


def make_parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m use_cases.{name}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_USE_CASE_CONFIG,
        help="use-case YAML merged over project_config.yaml (default: %(default)s)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, value parsed as YAML; repeatable (e.g. --set modelling.n_trials=5)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="console log level; the log file under <paths.output>/logs always gets DEBUG (default: %(default)s)",
    )
    return parser


def setup_logging(logs_dir: Path, name: str, level: str) -> Path:
    """Console at `level`, and a DEBUG log file per invocation under the output folder."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    log_file = logs_dir / f"{name}-{stamp}.log"
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    file_handler = logging.FileHandler(log_file)
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    root.addHandler(file_handler)
    root.setLevel(logging.DEBUG)
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib", "PIL", "git", "httpx", "httpcore", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return log_file


def run(
    name: str,
    parser: argparse.ArgumentParser,
    run_config: RunConfig,
    main: Callable[[Config, argparse.Namespace], int],
    argv: list[str] | None = None,
) -> int:
    """Parse, load the config, set up logging, call `main`; map failures to exit codes."""
    args = parser.parse_args(argv)
    log_file: Path | None = None
    try:
        config = load_config(args.config, args.overrides, run=run_config)
        log_file = setup_logging(config.paths.logs, name, args.log_level)
        axes = config.run
        logger.debug("%s: %s on %s data, %s", name, axes.mode, axes.data, axes.environment)
        logger.debug("config: %s", config.model_dump_json())
        return main(config, args)
    except USER_ERRORS as error:
        logger.debug("user error", exc_info=True)
        print(str(error), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        logger.debug("unexpected failure", exc_info=True)
        where = f" (traceback in {log_file})" if log_file else ""
        print(f"error: {type(error).__name__}: {error}{where}", file=sys.stderr)
        return 1


def main_entry(
    name: str,
    parser: argparse.ArgumentParser,
    run_config: RunConfig,
    main: Callable[[Config, argparse.Namespace], int],
) -> None:
    sys.exit(run(name, parser, run_config, main))


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """--model, as every use case that predicts takes it; resolve it with `load_model`."""
    parser.add_argument(
        "--model",
        type=Path,
        help="champion, latest, a version folder name of tracking.model_name, or a bundle folder "
        "(default: champion; latest, with a warning, while there is none)",
    )


def load_model(config: Config, given: Path | str | None, forecasting: bool | None = False) -> Bundle:
    """The verified bundle that --model names (artifacts.locate_bundle): the champion by default.

    A forecasting bundle is refused where a classification or regression one is expected (`forecasting=False`),
    and the other way round (`True`); `None` takes a bundle of any task (the service serves both).
    """
    from ml_project.artifacts import load_bundle, locate_bundle  # pandas and pyyaml: only for a use case that predicts

    bundle = load_bundle(locate_bundle(config.paths.models, config.tracking.model_name, given))
    if forecasting is not None and (bundle.schema.task == "forecasting") != forecasting:
        wanted = "a forecasting" if forecasting else "a classification or regression"
        how = "" if forecasting else " (forecast with ./executables/run.sh forecasting_historic_data_local)"
        raise BundleError(
            f"bundle error: {bundle.model_name} {bundle.version} is a {bundle.schema.task} model; this command needs "
            f"{wanted} bundle{how}"
        )
    return bundle


def add_stream_arguments(parser: argparse.ArgumentParser, concurrency: bool) -> None:
    """Flags of the production-stream use cases: what to send, how much at a time, how fast."""
    parser.add_argument("--input", type=Path, help="CSV or parquet file of instances (default: data.path)")
    parser.add_argument("--batch-size", type=positive, default=1, help="records per request (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second; 0 = as fast as possible")
    parser.add_argument("--limit", type=positive, help="send at most this many records (default: all)")
    if concurrency:
        parser.add_argument(
            "--concurrency", type=positive, default=1, help="requests in flight at once (default: %(default)s)"
        )


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def utc_moment(text: str) -> datetime:
    """An ISO 8601 date or time as an aware UTC datetime; a time without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an ISO 8601 time such as 2026-11-23T12:00:00Z") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
