"""The dashboard alone, in the foreground: ./executables/run.sh dashboard [--config FILE] [--set k=v ...]

[--model champion|latest|PATH] [--host H] [--port N] reads the prediction log, the registry
(paths.output/models) and the reports (paths.output/reports) of the config and serves the dashboard's
routes (deployment/dashboard_api.py) with GET /health, on port 8050 by default; it needs no trained
model (the panels say what is missing). The prediction service serves the same routes at /dashboard.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from deployment.dashboard_api import DashboardState, dashboard, dashboard_json, dashboard_state
from deployment.dashboard_api import router as dashboard_router
from deployment.dashboard_api import to_page
from ml_project.dashboard import DashboardError, Sources

logger = logging.getLogger(__name__)

router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health(state: DashboardState = Depends(dashboard)) -> Response:
    return dashboard_json({"status": "ok", "model_name": state.sources.model_name})


@router.get("/", include_in_schema=False)
async def root(request: Request) -> Response:
    return to_page(request)


def create_dashboard_app(sources: Sources) -> FastAPI:
    """A FastAPI app serving only the dashboard (and /health), for `./executables/run.sh dashboard`."""
    app = FastAPI(title=f"{sources.model_name} dashboard", description="The dashboard of ml_project's model.")
    app.state.dashboard = dashboard_state(sources)
    app.include_router(router)
    app.include_router(dashboard_router)
    return app


def standalone_sources(config: Any, model: str | None) -> Sources:
    """Sources from the config: its prediction log, registry and reports; the card of --model (default:
    champion if there is one, else latest), read from its files without unpickling the pipeline."""
    from ml_project.artifacts import BundleError, locate_bundle, resolve_bundle_path
    from ml_project.artifacts import served_as as model_reference
    from ml_project.dashboard import BundleInfo

    name = config.tracking.model_name
    models = config.paths.models
    served: BundleInfo | None = None
    try:
        served = BundleInfo.from_folder(resolve_bundle_path(locate_bundle(models, name, model)))
    except BundleError as error:
        if model is not None:  # asked for by name: a wrong --model is the user's to fix
            raise
        logger.warning("%s; the dashboard shows no model card until one is trained", error)
    except DashboardError as error:
        raise BundleError(f"bundle error: {error}") from None
    served_as = model_reference(models, name, model)
    return Sources(
        model_name=name,
        served=served,
        served_as=served_as,
        log_url=config.prediction_log_url,
        models=models,
        reports=config.paths.reports,
    )


def main(config: Any, args: argparse.Namespace) -> int:
    """Serve the dashboard of `config` on --host:--port until SIGTERM or Ctrl-C (exit 0)."""
    import uvicorn

    from deployment.process import exit_0_on_sigterm, port_problem
    from ml_project.config import ConfigError

    host = args.host or config.service.host
    port = args.port
    problem = port_problem(host, port)
    if problem:
        raise ConfigError(f"config error: --host/--port {host}:{port} cannot be used: {problem}")
    sources = standalone_sources(config, args.model)
    print(f"dashboard of model {sources.model_name}: http://{host}:{port}/dashboard", flush=True)
    print(f"prediction log: {sources.log_url or 'off'}; registry: {sources.models}; reports: {sources.reports}", flush=True)
    exit_0_on_sigterm()
    uvicorn.run(create_dashboard_app(sources), host=host, port=port, log_level="warning", access_log=False)
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number 1..65535")
    return int(text)


def parser() -> argparse.ArgumentParser:
    from ml_project.cli import make_parser

    result = make_parser("dashboard", __doc__ or "dashboard")
    result.prog = "./executables/run.sh dashboard"
    result.add_argument("--model", help="the card's model: champion, latest or a bundle folder (default: champion, else latest)")
    result.add_argument("--host", help="interface to bind (default: service.host)")
    result.add_argument("--port", type=_port, default=8050, help="port (default: %(default)s; the service keeps service.port)")
    return result


if __name__ == "__main__":
    from ml_project.cli import main_entry
    from ml_project.config import RunConfig

    main_entry("dashboard", parser(), RunConfig(mode="prediction", data="production", environment="local"), main)
