"""The FastAPI prediction service: a thin HTTP skin over `ml_project.online_scoring.Scorer`.

`create_app(bundle, settings, log)` takes a bundle that is already loaded and verified, so the
port never opens before the model is ready. Every deployment target (local, docker, heroku,
app engine, cloud function, lambda, sagemaker) serves this one app.

Contract: GET /health, GET /model, POST /predict (one record or a list), and the dashboard:
GET /dashboard and the JSON of its panels under /dashboard/api (deployment/dashboard.py). Bad input is a 4xx whose
`detail` names the field; within a list, valid records are predicted and invalid ones carry
their errors. With `sagemaker=True` the SageMaker container contract is served too: GET /ping and
POST /invocations (text/csv or application/json), answered by the same code as /predict.
Importing this module imports no mlflow, optuna, evidently or pandera.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.routing import Route

from deployment.dashboard import dashboard_router
from ml_project.artifacts import Bundle
from ml_project.config import ServiceConfig
from ml_project.dashboard import BundleInfo, Sources
from ml_project.online_scoring import (
    REQUEST_ID_PATTERN,
    MicroBatcher,
    ParsedRecord,
    Prediction,
    Scored,
    Scorer,
    new_request_id,
)
from ml_project.prediction_log import PredictionLog, PredictionLogError

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
FLUSH_TIMEOUT_S = 5.0


class FieldError(BaseModel):
    field: str | None = Field(description="the feature at fault; null when the record as a whole is")
    message: str
    value: Any = None


class RecordResult(BaseModel):
    request_id: str = Field(description="unique per record; join later labels on it")
    id: str | int | None = Field(default=None, description="the record's id column, when the model has one")
    prediction: str | float | None = None
    probabilities: dict[str, float] | None = Field(default=None, description="per class (classification)")
    model_version: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="why this record was not predicted")


class PredictResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str
    results: list[RecordResult]


class ErrorResponse(BaseModel):
    detail: str = Field(description="one line naming the field or limit at fault")
    request_id: str | None = None
    results: list[RecordResult] | None = None


class Health(BaseModel):
    status: str
    model_name: str
    model_version: str


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _json(status: int, body: dict[str, Any], request_id: str | None = None) -> Response:
    headers = {"X-Request-ID": request_id} if request_id else None
    return Response(json.dumps(body, allow_nan=False), status_code=status, media_type="application/json", headers=headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    """A number too large for a float (1e400) would become infinity: refused like NaN."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is too large for a 64-bit float")
    return value


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it exceeds `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, f"request body of {declared} bytes exceeds service.max_body_bytes = {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"request body exceeds service.max_body_bytes = {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def _records(body: bytes, max_records: int) -> list[Any]:
    if not body.strip():
        raise _Refused(422, "request body is empty; send one record (a JSON object) or a list of records")
    try:
        payload = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise _Refused(400, "request body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _Refused(400, f"request body is not valid JSON: {str(error).splitlines()[0]}") from None
    if isinstance(payload, dict):
        return [payload]
    if not isinstance(payload, list):
        raise _Refused(422, f"request body must be a JSON object (one record) or a list of records, not {type(payload).__name__}")
    if not payload:
        raise _Refused(422, "request body is an empty list; send at least one record")
    if len(payload) > max_records:
        # 422, not 413: the list breaks the documented schema (maxItems); 413 is for the body's bytes.
        raise _Refused(422, f"request holds {len(payload)} records; service.max_batch_records = {max_records}")
    return payload


def _csv_records(body: bytes, features: list[str], known: set[str], max_records: int, charset: str = "utf-8") -> list[Any]:
    """CSV rows as records: values in `features` order, or under a first row of `known` column names.

    An empty cell is a missing value. A row with the wrong number of values refuses the request.
    """
    try:
        text = body.decode("utf-8-sig" if charset.lower().replace("_", "-") in ("utf-8", "utf8") else charset)
    except LookupError:
        raise _Refused(415, f"charset '{charset}' is not known; send UTF-8") from None
    except UnicodeDecodeError:
        raise _Refused(400, f"request body is not {charset} text") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as error:
        raise _Refused(400, f"request body is not valid CSV: {error}") from None
    header = features
    if rows and all(cell.strip() in known for cell in rows[0]):
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise _Refused(422, f"CSV header names column '{repeated[0]}' more than once")
    if not rows:
        raise _Refused(422, "request body holds no CSV rows; send one line of feature values per record")
    if len(rows) > max_records:
        raise _Refused(422, f"request holds {len(rows)} records; service.max_batch_records = {max_records}")
    for line, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise _Refused(
                422, f"CSV row {line} has {len(row)} values; expected {len(header)}: {','.join(header)}"
            )
    return [{name: (cell if cell != "" else None) for name, cell in zip(header, row)} for row in rows]


async def _flush_before_answer(log: PredictionLog) -> None:
    """Serverless hosts may freeze the process once the answer is out: commit the log rows first.

    Off the event loop, bounded; a slow or failing database costs a warning, never the answer.
    """
    import anyio.to_thread

    try:
        await anyio.to_thread.run_sync(log.flush, FLUSH_TIMEOUT_S)
    except PredictionLogError as error:
        logger.warning("prediction log not flushed before answering: %s", error)


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    """'Type/Sub; Key="v"' -> ('type/sub', {'key': 'v'}): the grammar of Content-Type and each Accept entry."""
    media, *parameters = value.split(";")
    pairs = (parameter.partition("=") for parameter in parameters)
    return media.strip().lower(), {key.strip().lower(): item.strip().strip('"') for key, _, item in pairs}


def _accepts_csv(accept: str) -> bool:
    """Whether the Accept header prefers text/csv (q > 0 and at least application/json's q)."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, parameters = _media_type(part)
        try:
            quality = float(parameters.get("q", "1"))
        except ValueError:
            quality = 0.0
        weights[media] = max(quality, weights.get(media, 0.0))
    csv_weight = weights.get("text/csv", 0.0)
    return csv_weight > 0 and csv_weight >= weights.get("application/json", 0.0)


def _csv_answer(outcomes: list[Scored], classes: list[str] | None) -> str:
    """Results as CSV, one line per record in input order and no header (Batch Transform joins lines
    to input lines): request_id, prediction, proba_<class>... (classes in model order), error."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for outcome in outcomes:
        probabilities = outcome.probabilities or {}
        writer.writerow(
            [
                outcome.request_id,
                "" if outcome.errors else outcome.prediction,
                *(probabilities.get(name, "") for name in classes or []),
                str(outcome.errors[0]) if outcome.errors else "",
            ]
        )
    return out.getvalue()


def _openapi(app: FastAPI, scorer: Scorer, settings: ServiceConfig) -> dict[str, Any]:
    """The generated document, plus the request body: one Record or a list, Record built from the schema."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    record_schema = scorer.model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(record_schema.pop("$defs", {}))
    components["Record"] = record_schema
    record_ref = {"$ref": "#/components/schemas/Record"}
    body_schema = {
        "oneOf": [
            record_ref,
            {"type": "array", "items": record_ref, "minItems": 1, "maxItems": settings.max_batch_records},
        ]
    }
    document["paths"]["/predict"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": body_schema}},
    }
    app.openapi_schema = document
    return document


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
    scorer = Scorer(bundle, log, source="service")
    batcher = MicroBatcher(scorer.predict, settings.micro_batch_records, settings.micro_batch_wait_ms / 1000)
    with_id = bundle.schema.id_column is not None
    names = bundle.schema.feature_names
    known_columns = set(names) | ({str(bundle.schema.id_column)} if with_id else set())
    model_info = {
        "model_name": bundle.model_name,
        "model_version": bundle.version,
        "algorithm": bundle.card.get("algorithm"),
        "task": bundle.schema.task,
        "trained_at": bundle.card.get("trained_at"),
        "metric": bundle.card.get("metric"),
        "metrics": bundle.metrics.get("holdout", {}),
        "schema": bundle.schema.model_dump(),
        "bundle": str(bundle.path) if bundle.path else None,
        "served_as": served_as,
        "prediction_path": "compiled numpy" if bundle.compiled is not None else "scikit-learn pipeline",
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not serverless:
            await batcher.start()
            # The model and the imports are long-lived: moved out of the collector's sight, a full
            # collection no longer walks ~200k objects (pauses of up to ~130 ms under load otherwise).
            gc.collect()
            gc.freeze()
        logger.info("serving %s version %s", bundle.model_name, bundle.version)
        try:
            yield
        finally:
            await batcher.stop()  # uvicorn has drained the connections: answer what is queued
            if log is not None:
                log.close()
                logger.info("prediction log flushed: %d rows written", log.written)

    async def predictions(valid: list[tuple[ParsedRecord, Scored]]) -> list[Prediction]:
        records = [record for record, _ in valid]
        return scorer.predict(records) if serverless else await batcher.submit(records)

    def json_items(body: bytes, content_type: str) -> list[Any]:
        return _records(body, settings.max_batch_records)

    def csv_items(body: bytes, content_type: str) -> list[Any]:
        charset = _media_type(content_type)[1].get("charset", "utf-8")
        return _csv_records(body, names, known_columns, settings.max_batch_records, charset)

    async def answer(
        request: Request, decoders: dict[str, Callable[[bytes, str], list[Any]]], as_csv: bool = False
    ) -> Response:
        """Read and check the body, predict its valid records together, answer, then log what was answered."""
        given = request.headers.get("x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else new_request_id()
        with batcher.arrival():
            try:
                content_type = request.headers.get("content-type", "")
                media = _media_type(content_type)[0]
                decode = decoders.get(media) or (decoders.get("application/json") if media.endswith("+json") else None)
                if decode is None:
                    raise _Refused(415, f"content-type '{content_type or 'none'}' is not {' or '.join(decoders)}")
                items = decode(await _read_body(request, settings.max_body_bytes), content_type)
            except _Refused as refused:
                return _json(refused.status, {"detail": refused.detail, "request_id": request_id}, request_id)
            outcomes, valid = scorer.split(items, request_id)
        if valid:
            scorer.fill(valid, await predictions(valid))
        body: dict[str, Any] = {
            "request_id": request_id,
            "model_name": bundle.model_name,
            "model_version": bundle.version,
            "results": [outcome.as_dict(bundle.version, with_id) for outcome in outcomes],
        }
        if valid:
            # built first: only what is answered gets logged
            if as_csv:
                response = Response(
                    _csv_answer(outcomes, bundle.schema.classes),
                    media_type="text/csv",
                    headers={"X-Request-ID": request_id},
                )
            else:
                response = _json(200, body, request_id)
            scorer.record_log(valid)
            if serverless and log is not None:
                await _flush_before_answer(log)
            return response
        first = outcomes[0]
        where = "record 0: " if len(outcomes) > 1 else ""
        detail = f"{where}{first.errors[0]}" + (f" (and {len(outcomes) - 1} more records refused)" if len(outcomes) > 1 else "")
        return _json(422, {"detail": detail, **body}, request_id)

    app = FastAPI(
        title=f"{bundle.model_name} prediction service",
        version=bundle.version,
        description=(
            f"Predicts `{bundle.schema.target}` ({bundle.schema.task}) with model {bundle.model_name} "
            f"version {bundle.version}. POST one record or a list of up to {settings.max_batch_records}."
        ),
        lifespan=lifespan,
    )

    @app.get("/health", response_model=Health)
    async def health() -> Response:
        """200 when the model is loaded and the service takes requests."""
        body = {"status": "ok", "model_name": bundle.model_name, "model_version": bundle.version}
        return _json(200, body)

    @app.get("/model")
    async def model() -> Response:
        """Name, version, training time, holdout metrics and the feature schema of the served model."""
        return _json(200, model_info)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={
            400: {"model": ErrorResponse, "description": "body is not valid JSON"},
            413: {"model": ErrorResponse, "description": "body larger than service.max_body_bytes"},
            415: {"model": ErrorResponse, "description": "body is not application/json"},
            422: {"model": ErrorResponse, "description": "not one record or a list of 1..max records, or none valid"},
        },
    )
    async def predict(request: Request) -> Response:
        """Predict one record or a list; a record that fails validation gets its errors instead."""
        return await answer(request, {"application/json": json_items})

    # The route above documents /predict in OpenAPI; this plain Starlette route, matched first,
    # serves it without FastAPI's per-request dependency machinery (which cost ~25% of throughput:
    # the handler reads and checks the body itself anyway). Same function, same answers.
    app.router.routes.insert(0, Route("/predict", predict, methods=["POST"]))

    if sagemaker:

        @app.get("/ping", response_model=Health)
        async def ping() -> Response:
            """SageMaker's health check: 200 once the model is loaded."""
            return await health()

        @app.post("/invocations", response_model=PredictResponse)
        async def invocations(request: Request) -> Response:
            """SageMaker's inference call: text/csv rows (feature order, or a header row) or the /predict JSON.

            `Accept: text/csv` answers CSV without a header, one line per record: request_id, prediction,
            proba_<class>... (classes in model order), error. JSON (as /predict) otherwise.
            """
            as_csv = _accepts_csv(request.headers.get("accept", ""))
            return await answer(request, {"text/csv": csv_items, "application/json": json_items}, as_csv=as_csv)

    sources = Sources(
        model_name=bundle.model_name,
        served=BundleInfo.from_bundle(bundle),
        served_as=served_as,
        log_url=log.url if log is not None else None,
        models=registry,
        reports=reports,
    )
    if settings.dashboard:
        app.include_router(dashboard_router(sources))
    app.openapi = lambda: _openapi(app, scorer, settings)  # type: ignore[method-assign]
    return app
