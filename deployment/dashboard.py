"""The dashboard: one server-rendered page of the model and its production life, and the JSON behind it.

Routes (added to the prediction service by `create_app`, or served alone by `./executables/run.sh dashboard`):

    GET /dashboard                   the page (query: window, since, until, version)
    GET /dashboard/api               every panel's data as JSON (same query)
    GET /dashboard/api/<panel>       one panel: model, volume, predictions, labels, drift
    GET /dashboard/assets/plotly-basic.min.js   plotly.js (deployment/assets/, vendored: no CDN, works offline)
    GET /dashboard/reports/<file>    an evidently HTML report the drift panel links to

The data comes from `ml_project.dashboard` (aggregated in SQL); the charts are plotly.js figures described
here as data and drawn in the browser. A bad query parameter is a 422 naming it, never a 5xx.

Standalone: `./executables/run.sh dashboard [--config FILE] [--set k=v] [--model champion|latest|PATH]
[--host H] [--port N]` reads the prediction log, the registry (paths.output/models) and the reports
(paths.output/reports) of the config; it needs no trained model (the panels say what is missing).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field

from ml_project.dashboard import (
    PANELS,
    PARAMETERS,
    REPORT,
    WINDOWS,
    DashboardError,
    Selection,
    Sources,
    panels,
    parse_selection,
)
from ml_project.errors import jsonable

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATE = "dashboard.html"
ASSETS = HERE / "assets"
PLOTLY = "plotly-basic.min.js"  # see deployment/assets/README.md
PLOTLY_SHA256 = "99784e3abfb07b142a15e521a439e6d9addceadb3f79553fd24c72774f0649ba"
QUERY_PARAMETERS = [
    {
        "name": "window",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": list(WINDOWS), "default": "all"},
        "description": "how far back from now (or from `until`); `all` starts at the first logged prediction",
    },
    {
        "name": "since",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date-time"},
        "description": "first logged_at shown, ISO 8601 (UTC without an offset); overrides window",
    },
    {
        "name": "until",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date-time"},
        "description": "logged_at to stop before, ISO 8601 (default: now)",
    },
    {
        "name": "version",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": 128},
        "description": "one model version (default: every version; the card shows the served one)",
    },
]


class Problem(BaseModel):
    detail: str = Field(description="one line naming the query parameter at fault")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "a query parameter the dashboard cannot use (named in detail)"}
}
COLORS = {"accent": "#2f6fb3", "second": "#d9822b", "ok": "#2e8540", "alert": "#c0392b"}


def dashboard_router(sources: Sources) -> APIRouter:
    """The dashboard's routes over `sources`; include it in any FastAPI app."""
    import anyio.to_thread
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
    )
    templates.filters["number"] = _number
    router = APIRouter()

    async def gather(names: list[str], request: Request) -> tuple[Selection, dict[str, dict[str, Any]]]:
        selection = parse_selection(request.query_params)
        found = await anyio.to_thread.run_sync(panels, names, sources, selection)
        return selection, found

    @router.get("/dashboard", include_in_schema=False)
    async def page(request: Request) -> Response:
        """The page: each panel rendered on the server, its chart drawn by plotly.js."""
        try:
            selection, found = await gather(list(PANELS), request)
        except DashboardError as error:
            body = templates.get_template(TEMPLATE).render(error=str(error), model_name=sources.model_name, **_form())
            return HTMLResponse(body, status_code=422)
        html = templates.get_template(TEMPLATE).render(
            error=None,
            model_name=sources.model_name,
            selection=selection.as_dict(),
            query=urlencode({key: value for key, value in request.query_params.items() if key in PARAMETERS}),
            panels=found,
            figures=figures(found),
            plotly=f"{PLOTLY}?v={PLOTLY_SHA256[:12]}",  # a new file, a new URL: browsers cache it for a day
            versions=_versions(found),
            **_form(),
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @router.get(
        "/dashboard/api",
        openapi_extra={"parameters": QUERY_PARAMETERS},
        responses=ERROR_RESPONSES,
        tags=["dashboard"],
    )
    async def all_panels(request: Request) -> Response:
        """Every panel's data: what /dashboard draws, for another front end."""
        try:
            selection, found = await gather(list(PANELS), request)
        except DashboardError as error:
            return _error(error)
        return _json({"model_name": sources.model_name, "selection": selection.as_dict(), "panels": found})

    def one_panel(name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                selection, found = await gather([name], request)
            except DashboardError as error:
                return _error(error)
            return _json({"model_name": sources.model_name, "selection": selection.as_dict(), "panel": name, **found[name]})

        endpoint.__doc__ = PANEL_DOCS[name]
        return endpoint

    for name in PANELS:
        router.add_api_route(
            f"/dashboard/api/{name}",
            one_panel(name),
            methods=["GET"],
            name=f"dashboard_{name}",
            summary=f"Dashboard panel: {name}",
            openapi_extra={"parameters": QUERY_PARAMETERS},
            responses=ERROR_RESPONSES,
            tags=["dashboard"],
        )

    @router.get("/dashboard/", include_in_schema=False)
    async def with_slash(request: Request) -> Response:
        """To the page, keeping a path prefix (root_path) that a trailing-slash redirect would lose."""
        return _to_page(request)

    @router.get(f"/dashboard/assets/{PLOTLY}", include_in_schema=False)
    async def plotly_asset() -> Response:
        """The vendored plotly.js, cached for a day (the page asks for it with its hash in the query)."""
        return FileResponse(ASSETS / PLOTLY, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    @router.get("/dashboard/reports/{name}", include_in_schema=False)
    async def report(name: str) -> Response:
        """An evidently report of the reports folder, by file name only (drift-*.html, quality-*.html)."""
        folder = sources.reports
        path = (folder / name).resolve() if folder is not None and REPORT.match(name) else None
        if folder is None or path is None or path.parent != folder.resolve() or not path.is_file():
            return _json({"detail": f"report '{name[:80]}' is not in the reports folder"}, 404)
        return FileResponse(path, media_type="text/html")

    return router


PANEL_DOCS = {
    "model": "The model card: name, version, champion or not, trained at, holdout metrics, top of the leaderboard.",
    "volume": "Predictions per time bucket and model version in the window (counted in SQL).",
    "predictions": "Class mix (classification) or a histogram of predicted values (regression) in the window.",
    "labels": "Actual vs predicted per time bucket where labels arrived: mean actual and predicted, or accuracy.",
    "drift": "The newest monitoring summary: drift verdict, per-column tests, quality beside the holdout, report files.",
}


def figures(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """plotly.js figures (data + layout) by chart element id, for the panels that have something to draw."""
    charts: dict[str, dict[str, Any]] = {}
    model, volume, predicted, labelled = found["model"], found["volume"], found["predictions"], found["labels"]
    if model.get("state") == "ok" and model.get("leaderboard"):
        charts["chart-leaderboard"] = _leaderboard_figure(model)
    if volume.get("state") == "ok":
        charts["chart-volume"] = _volume_figure(volume)
    if predicted.get("state") == "ok":
        charts["chart-predictions"] = _predictions_figure(predicted)
    if labelled.get("state") == "ok":
        charts["chart-labels"] = _labels_figure(labelled)
    return charts


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "height": 320,
        "legend": {"orientation": "h", "y": -0.25},
        **extra,
    }


def _leaderboard_figure(model: dict[str, Any]) -> dict[str, Any]:
    """Mean and spread over the CV folds of the top trials: dots with error bars, so close scores stay apart."""
    metric = model["metric"]
    rows = [row for row in model["leaderboard"] if row.get(f"mean_{metric}") is not None]
    better = "higher" if model["greater_is_better"] else "lower"
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "y": [f"#{row.get('rank')} {row.get('algorithm')}" for row in rows],
                "x": [row[f"mean_{metric}"] for row in rows],
                "error_x": {"type": "data", "array": [row.get(f"std_{metric}") or 0 for row in rows], "visible": True},
                "hovertext": [f"trial {row.get('trial')}: {row.get('params')}" for row in rows],
                "hovertemplate": "%{y}<br>%{x:.4f}<br>%{hovertext}<extra></extra>",
                "marker": {"color": COLORS["accent"], "size": 9},
            }
        ],
        "layout": _layout(
            f"leaderboard: cross-validated {metric} ({better} is better)",
            f"mean {metric} ± std over the folds",
            "",
            yaxis={"autorange": "reversed", "automargin": True},
        ),
    }


def _volume_figure(volume: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": [
            {"type": "bar", "name": f"version {series['model_version']}", "x": volume["bucket_starts"], "y": series["counts"]}
            for series in volume["series"]
        ],
        "layout": _layout(
            f"{volume['total']} predictions, per {_duration(volume['bucket_seconds'])}",
            "logged at (UTC)",
            "predictions",
            barmode="stack",
        ),
    }


def _predictions_figure(predicted: dict[str, Any]) -> dict[str, Any]:
    if predicted["task"] == "regression":
        edges = predicted["edges"]
        centers = [(low + high) / 2 for low, high in zip(edges, edges[1:])]
        width = edges[1] - edges[0] if len(edges) > 1 else 1.0
        data = [{"type": "bar", "x": centers, "y": predicted["counts"], "width": width, "marker": {"color": COLORS["accent"]}}]
        skipped = f", {predicted['not_numeric']} not numbers" if predicted.get("not_numeric") else ""
        title = f"predicted values (mean {_number(predicted['mean'], '%.4g')}{skipped})"
        return {"data": data, "layout": _layout(title, "prediction", "predictions", bargap=0)}
    classes = predicted["classes"]
    data = [
        {
            "type": "bar",
            "x": [item["class"] for item in classes],
            "y": [item["count"] for item in classes],
            "text": [f"{item['share']:.1%}" for item in classes],
            "textposition": "auto",
            "marker": {"color": COLORS["accent"]},
        }
    ]
    return {"data": data, "layout": _layout("class mix of the predictions", "predicted class", "predictions")}


def _labels_figure(labelled: dict[str, Any]) -> dict[str, Any]:
    times = labelled["bucket_starts"]
    per = _duration(labelled["bucket_seconds"])
    if labelled["task"] == "regression":
        data = [
            {"type": "scatter", "mode": "lines+markers", "name": "actual (mean)", "x": times, "y": labelled["actual_mean"], "connectgaps": False, "line": {"color": COLORS["ok"]}},
            {"type": "scatter", "mode": "lines+markers", "name": "predicted (mean)", "x": times, "y": labelled["predicted_mean"], "connectgaps": False, "line": {"color": COLORS["accent"]}},
        ]
        title = f"actual vs predicted per {per} ({labelled['labelled_total']} labelled, MAE {labelled['mae_total']:.4g})"
        return {"data": data, "layout": _layout(title, "logged at (UTC)", "value")}
    data = [
        {"type": "scatter", "mode": "markers", "name": f"accuracy per {per}", "x": times, "y": labelled["accuracy"], "marker": {"color": COLORS["second"]}},
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"rolling accuracy ({labelled['rolling_buckets']} buckets)",
            "x": times,
            "y": labelled["rolling_accuracy"],
            "line": {"color": COLORS["accent"]},
        },
    ]
    title = f"accuracy where labels arrived ({labelled['labelled_total']} labelled: {labelled['accuracy_total']:.1%})"
    return {"data": data, "layout": _layout(title, "logged at (UTC)", "accuracy", yaxis={"range": [0, 1.05], "title": {"text": "accuracy"}})}


def _duration(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} s"


def _versions(found: dict[str, dict[str, Any]]) -> list[str]:
    """Versions the selector offers: the registry's and those seen in the log, newest first."""
    model, volume = found["model"], found["volume"]
    known = set(model.get("registry_versions") or [])
    known.update(series["model_version"] for series in volume.get("series") or [])
    for key in ("served_version", "version"):
        if model.get(key):
            known.add(str(model[key]))
    return sorted(known, reverse=True)


def _form() -> dict[str, Any]:
    return {"windows": list(WINDOWS)}


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(jsonable(body), allow_nan=False, default=str), status_code=status, media_type="application/json")


def _number(value: Any, spec: str = "%.4f") -> str:
    """A number as the page prints it; anything else (a metric that is None, say) as "n/a"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a" if value is None else ""
    return spec % value


def _to_page(request: Request) -> Response:
    """A redirect to the page under the app's path prefix, with the query kept."""
    query = f"?{request.url.query}" if request.url.query else ""
    return Response(status_code=307, headers={"Location": f"{request.scope.get('root_path', '')}/dashboard{query}"})


def _error(error: DashboardError) -> Response:
    return _json({"detail": str(error)}, 422)


# --- standalone -------------------------------------------------------------------------------------------------


def create_dashboard_app(sources: Sources) -> Any:
    """A FastAPI app serving only the dashboard (and /health), for `./executables/run.sh dashboard`."""
    from fastapi import FastAPI

    app = FastAPI(title=f"{sources.model_name} dashboard", description="The dashboard of ml_project's model.")

    @app.get("/health", include_in_schema=False)
    async def health() -> Response:
        return _json({"status": "ok", "model_name": sources.model_name})

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Response:
        return _to_page(request)

    app.include_router(dashboard_router(sources))
    return app


def standalone_sources(config: Any, model: str | None) -> Sources:
    """Sources from the config: its prediction log, registry and reports; the card of --model (default:
    champion if there is one, else latest), read from its files without unpickling the pipeline."""
    from ml_project.artifacts import BundleError, locate_bundle, resolve_bundle_path
    from ml_project.dashboard import BundleInfo

    name = config.tracking.model_name
    models = config.paths.models
    given = model or ("champion" if (models / name / "champion").is_symlink() else "latest")
    served: BundleInfo | None = None
    try:
        served = BundleInfo.from_folder(resolve_bundle_path(locate_bundle(models, name, given)))
    except BundleError as error:
        if model is not None:  # asked for by name: a wrong --model is the user's to fix
            raise
        logger.warning("%s; the dashboard shows no model card until one is trained", error)
    except DashboardError as error:
        raise BundleError(f"bundle error: {error}") from None
    served_as = given if given in ("champion", "latest") else "path"
    return Sources(
        model_name=name,
        served=served,
        served_as=served_as,
        log_url=config.prediction_log_url,
        models=models,
        reports=config.paths.reports,
    )


def main(config: Any, args: argparse.Namespace) -> int:
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
