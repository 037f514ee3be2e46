"""The prediction service's app factory: `create_app` builds the state and includes the routers, nothing else.

`create_app(bundle, settings, log)` takes a bundle that is already loaded and verified, so the port never
opens before the model is ready. Every deployment target (local, docker, heroku, app engine, cloud
function, lambda, sagemaker) serves this one app. The routes live in one module per area, each handler
a named function:

- deployment/prediction_api.py: GET /health, GET /model, POST /predict (one record or a list);
- deployment/sagemaker_api.py: GET /ping, POST /invocations (with `sagemaker=True`);
- deployment/dashboard_api.py: GET /dashboard and the JSON of its panels under /dashboard/api;
- deployment/forecast_api.py: POST /forecast, which a forecasting bundle serves with GET /health,
  GET /model and the dashboard (its forecast view) in place of /predict and the SageMaker routes.

They read what this factory puts in `app.state`: `prediction` (a `prediction_api.PredictionService`,
or for a forecasting bundle a `forecast_api.ForecastService`) and `dashboard` (a `dashboard_api.DashboardState`). Importing this module imports no mlflow, optuna,
evidently or pandera.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from deployment import dashboard_api, forecast_api, prediction_api, sagemaker_api
from deployment.forecast_api import ForecastService
from deployment.prediction_api import PredictionService
from ml_project.artifacts import Bundle
from ml_project.config import ServiceConfig
from ml_project.dashboard import ALL_PANELS, BundleInfo, Sources
from ml_project.prediction_log import PredictionLog

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the micro-batcher (not serverless) before the first request; at shutdown answer what is
    queued, then flush and close the prediction log. A forecasting service has no micro-batcher."""
    service: PredictionService | ForecastService = app.state.prediction
    batcher = service.batcher if isinstance(service, PredictionService) else None
    if not service.serverless:
        if batcher is not None:
            await batcher.start()
        # The model and the imports are long-lived: moved out of the collector's sight, a full
        # collection no longer walks ~200k objects (pauses of up to ~130 ms under load otherwise).
        gc.collect()
        gc.freeze()
    logger.info("serving %s version %s", service.bundle.model_name, service.bundle.version)
    try:
        yield
    finally:
        if batcher is not None:
            await batcher.stop()  # uvicorn has drained the connections: answer what is queued
        if service.log is not None:
            service.log.close()
            logger.info("prediction log flushed: %d rows written", service.log.written)


def shown_paths(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """The document without the dashboard panels this model does not show (a tabular one's for a forecast)."""
    dashboard = getattr(app.state, "dashboard", None)
    if dashboard is not None:
        shown = dashboard.sources.shown_panels()
        for panel in ALL_PANELS:
            if panel not in shown:
                document["paths"].pop(f"/dashboard/api/{panel}", None)
    return document


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The generated document, plus the request body: one Record or a list, Record built from the schema."""
    if app.openapi_schema:
        return app.openapi_schema
    service: PredictionService = app.state.prediction
    document = shown_paths(app, get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes))
    record_schema = service.scorer.model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(record_schema.pop("$defs", {}))
    components["Record"] = record_schema
    record_ref = {"$ref": "#/components/schemas/Record"}
    many = {"type": "array", "items": record_ref, "minItems": 1, "maxItems": service.settings.max_batch_records}
    document["paths"]["/predict"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"oneOf": [record_ref, many]}}},
    }
    app.openapi_schema = document
    return document


def forecast_openapi_document(app: FastAPI) -> dict[str, Any]:
    """The generated document, plus POST /forecast's request body with this model's horizon bounds."""
    if app.openapi_schema:
        return app.openapi_schema
    service: ForecastService = app.state.prediction
    document = shown_paths(app, get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes))
    schema, definitions = forecast_api.request_schema(service.max_horizon)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update({**definitions, "ForecastRequest": schema})
    document["paths"]["/forecast"]["post"]["requestBody"] = {
        "required": False,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ForecastRequest"}}},
    }
    app.openapi_schema = document
    return document


def forecasting_app(bundle: Bundle, settings: ServiceConfig, log: PredictionLog | None, served_as: str, serverless: bool) -> FastAPI:
    """A forecasting bundle's service: GET /health, GET /model and POST /forecast.

    Not /predict, nor SageMaker's routes (they take records to predict); create_app mounts the dashboard.
    """
    service = ForecastService(bundle, settings, log, served_as, serverless)
    app = FastAPI(
        title=f"{bundle.model_name} forecast service",
        version=bundle.version,
        description=(
            f"Forecasts `{bundle.schema.target}` at {service.card['frequency']} with model {bundle.model_name} "
            f"version {bundle.version}: POST /forecast, up to {service.max_horizon} periods ahead "
            f"(default {service.card['horizon']}) of its series, optionally after a newer history."
        ),
        lifespan=lifespan,
    )
    app.state.prediction = service
    app.include_router(prediction_api.model_router)
    app.include_router(forecast_api.router)
    app.openapi = lambda: forecast_openapi_document(app)  # type: ignore[method-assign]
    return app


def mount_dashboard(
    app: FastAPI,
    bundle: Bundle,
    log: PredictionLog | None,
    served_as: str,
    registry: Path | None,
    reports: Path | None,
    actuals: dict[str, tuple[list[str], list[float]]] | None = None,
) -> None:
    """GET /dashboard and its JSON, reading the served bundle's card, the log, the registry and the reports."""
    sources = Sources(
        model_name=bundle.model_name,
        served=BundleInfo.from_bundle(bundle),
        served_as=served_as,
        log_url=log.url if log is not None else None,
        models=registry,
        reports=reports,
        actuals=actuals,
    )
    app.state.dashboard = dashboard_api.dashboard_state(sources)
    app.include_router(dashboard_api.router)


def create_app(
    bundle: Bundle,
    settings: ServiceConfig,
    log: PredictionLog | None = None,
    served_as: str = "path",
    *,
    serverless: bool = False,
    sagemaker: bool = False,
    registry: Path | None = None,
    reports: Path | None = None,
) -> FastAPI:
    """The service for one loaded bundle; `log` (if any) is flushed and closed at shutdown.

    `served_as` says how the bundle was chosen (champion, latest or a path); GET /model reports it.
    `serverless=True` is for hosts that freeze or drop the process between requests and may never
    run the app's startup (AWS Lambda, Cloud Functions): predictions run inline instead of in the
    micro-batcher's background task, and the prediction log is flushed before each answer returns.
    `sagemaker=True` adds GET /ping and POST /invocations (the SageMaker container contract).
    The dashboard reads the prediction log `log` writes to, the model registry folder `registry`
    (<paths.output>/models; None: only the served version is known) and the monitoring `reports` folder.
    """
    if bundle.schema.task == "forecasting":
        if sagemaker:
            logger.info("a forecasting model serves POST /forecast: no SageMaker routes")
        forecasting = forecasting_app(bundle, settings, log, served_as, serverless)
        if settings.dashboard:  # the forecast view: actuals from the bundle's stored history
            actuals = dashboard_api.stored_actuals(bundle.pipeline.history)
            mount_dashboard(forecasting, bundle, log, served_as, registry, reports, actuals)
        return forecasting
    app = FastAPI(
        title=f"{bundle.model_name} prediction service",
        version=bundle.version,
        description=(
            f"Predicts `{bundle.schema.target}` ({bundle.schema.task}) with model {bundle.model_name} "
            f"version {bundle.version}. POST one record or a list of up to {settings.max_batch_records}."
        ),
        lifespan=lifespan,
    )
    app.state.prediction = PredictionService(bundle, settings, log, served_as, serverless)
    app.include_router(prediction_api.model_router)
    app.include_router(prediction_api.router)
    app.router.routes.insert(0, prediction_api.fast_predict_route())
    if sagemaker:
        app.include_router(sagemaker_api.router)
    if settings.dashboard:
        mount_dashboard(app, bundle, log, served_as, registry, reports)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app
