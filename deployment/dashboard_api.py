"""The dashboard: one server-rendered page of the model and its production life, and the JSON behind it.

Routes (`router`, included by the prediction service's factory deployment/app.py, or served alone by
`./executables/run.sh dashboard`, deployment/run_dashboard.py), one named function each:

    GET /dashboard                   the page (query: window, since, until, version)
    GET /dashboard/api               every panel's data as JSON (same query)
    GET /dashboard/api/<panel>       one panel: model, volume, predictions, labels, drift, forecast
    GET /dashboard/assets/plotly-basic.min.js   plotly.js (deployment/assets/, vendored: no CDN, works offline)
    GET /dashboard/reports/<file>    an evidently HTML report the drift panel links to

The handlers read `app.state.dashboard` (a `DashboardState`: the sources and the page template,
made by `dashboard_state`). The data comes from `ml_project.dashboard` (aggregated in SQL); the charts
are plotly.js figures (deployment/dashboard_figures.py) drawn in the browser. A bad query parameter is
a 422 naming it, never a 5xx. A forecasting model's page shows the model card, the volume and the
forecast panel (actual vs forecast per series); its tabular panels answer "off".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field

from deployment.dashboard_figures import figures, number
from ml_project.dashboard import (
    ALL_PANELS,
    MAX_ACTUALS,
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


@dataclass(frozen=True)
class DashboardState:
    """What the dashboard routes read: where the data is, and the page template's environment."""

    sources: Sources
    templates: Any  # a jinja2 Environment, imported only when a dashboard is built


def dashboard_state(sources: Sources) -> DashboardState:
    """The state an app serving `router` keeps in `app.state.dashboard`."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
    )
    templates.filters["number"] = number
    return DashboardState(sources, templates)


async def dashboard(request: Request) -> DashboardState:
    """The dependency every dashboard route takes: the state the app factory built."""
    state: DashboardState = request.app.state.dashboard
    return state


async def gather(
    names: list[str], request: Request, state: DashboardState
) -> tuple[Selection, dict[str, dict[str, Any]]]:
    """The query's selection and the named panels' data, aggregated off the event loop."""
    import anyio.to_thread

    selection = parse_selection(request.query_params)
    found = await anyio.to_thread.run_sync(panels, names, state.sources, selection)
    return selection, found


router = APIRouter()


@router.get("/dashboard", include_in_schema=False)
async def page(request: Request, state: DashboardState = Depends(dashboard)) -> Response:
    """The page: each panel rendered on the server, its chart drawn by plotly.js."""
    template = state.templates.get_template(TEMPLATE)
    model_name = state.sources.model_name
    try:
        selection, found = await gather(list(state.sources.shown_panels()), request, state)
    except DashboardError as error:
        return HTMLResponse(template.render(error=str(error), model_name=model_name, **_form()), status_code=422)
    html = template.render(
        error=None,
        model_name=model_name,
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
async def all_panels(request: Request, state: DashboardState = Depends(dashboard)) -> Response:
    """Every panel's data: what /dashboard draws, for another front end."""
    try:
        selection, found = await gather(list(state.sources.shown_panels()), request, state)
    except DashboardError as error:
        return _error(error)
    return dashboard_json({"model_name": state.sources.model_name, "selection": selection.as_dict(), "panels": found})


async def one_panel(request: Request, state: DashboardState = Depends(dashboard)) -> Response:
    """One panel's data: the panel is the last part of the route's path, /dashboard/api/<panel>."""
    name = request.scope["route"].path.rsplit("/", 1)[1]
    try:
        selection, found = await gather([name], request, state)
    except DashboardError as error:
        return _error(error)
    body = {"model_name": state.sources.model_name, "selection": selection.as_dict(), "panel": name, **found[name]}
    return dashboard_json(body)


PANEL_DOCS = {
    "model": "The model card: name, version, champion or not, trained at, holdout metrics, top of the leaderboard.",
    "volume": "Predictions per time bucket and model version in the window (counted in SQL).",
    "predictions": "Class mix (classification) or a histogram of predicted values (regression) in the window.",
    "labels": "Actual vs predicted per time bucket where labels arrived: mean actual and predicted, or accuracy.",
    "drift": "The newest monitoring summary: drift verdict, per-column tests, quality beside the holdout, report files.",
    "forecast": "A forecasting model: per series, the logged forecasts by the period they are for, their interval, and the actuals known.",
}
for _panel in ALL_PANELS:
    router.add_api_route(
        f"/dashboard/api/{_panel}",
        one_panel,
        methods=["GET"],
        name=f"dashboard_{_panel}",
        summary=f"Dashboard panel: {_panel}",
        description=PANEL_DOCS[_panel],
        openapi_extra={"parameters": QUERY_PARAMETERS},
        responses=ERROR_RESPONSES,
        tags=["dashboard"],
    )


@router.get("/dashboard/", include_in_schema=False)
async def with_slash(request: Request) -> Response:
    """To the page, keeping a path prefix (root_path) that a trailing-slash redirect would lose."""
    return to_page(request)


@router.get(f"/dashboard/assets/{PLOTLY}", include_in_schema=False)
async def plotly_asset() -> Response:
    """The vendored plotly.js, cached for a day (the page asks for it with its hash in the query)."""
    cached = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(ASSETS / PLOTLY, media_type="text/javascript", headers=cached)


@router.get("/dashboard/reports/{name}", include_in_schema=False)
async def report(name: str, state: DashboardState = Depends(dashboard)) -> Response:
    """An evidently report of the reports folder, by file name only (drift-*.html, quality-*.html)."""
    folder = state.sources.reports
    path = (folder / name).resolve() if folder is not None and REPORT.match(name) else None
    if folder is None or path is None or path.parent != folder.resolve() or not path.is_file():
        return dashboard_json({"detail": f"report '{name[:80]}' is not in the reports folder"}, 404)
    return FileResponse(path, media_type="text/html")


def stored_actuals(history: Any) -> dict[str, tuple[list[str], list[float]]]:
    """A forecasting bundle's stored history (unique_id, ds, y) as the forecast panel's actuals: per series, its
    newest MAX_ACTUALS observations as ISO times (naive UTC, as POST /forecast answers) and values."""
    actuals: dict[str, tuple[list[str], list[float]]] = {}
    for name, rows in history.sort_values(["unique_id", "ds"]).groupby("unique_id", sort=True):
        newest = rows.tail(MAX_ACTUALS)
        times = [stamp.isoformat(timespec="seconds") for stamp in newest["ds"]]
        actuals[str(name)] = (times, [float(value) for value in newest["y"]])
    return actuals


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


def dashboard_json(body: dict[str, Any], status: int = 200) -> Response:
    text = json.dumps(jsonable(body), allow_nan=False, default=str)
    return Response(text, status_code=status, media_type="application/json")


def to_page(request: Request) -> Response:
    """A redirect to the page under the app's path prefix, with the query kept."""
    query = f"?{request.url.query}" if request.url.query else ""
    return Response(status_code=307, headers={"Location": f"{request.scope.get('root_path', '')}/dashboard{query}"})


def _error(error: DashboardError) -> Response:
    return dashboard_json({"detail": str(error)}, 422)
