"""The prediction API's routes: GET /health, GET /model and POST /predict, one named function each.

Every handler reads the one service the app factory (deployment/app.py) built and put in
`app.state.prediction`: through `Depends(prediction_service)`, or from `request.app.state` for /predict,
which is also served as a plain Starlette route (see `fast_predict_route`). GET /health and GET /model
(`model_router`) only need a `ServedModel`, so they answer for a forecasting bundle's
`forecast_api.ForecastService` too; POST /predict (`router`) is served for classification and regression. Bad input is a 4xx whose
`detail` names the field; within a list, valid records are predicted and invalid ones carry their errors.
`answer` is the one request -> predictions -> response path; SageMaker's /invocations (sagemaker_api.py)
calls it too. Importing this module imports no mlflow, optuna, evidently or pandera.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.routing import Route

from ml_project.artifacts import Bundle
from ml_project.config import ServiceConfig
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
# A body decoder: (body bytes, Content-Type header) -> the records it holds, or Refused.
Decoder = Callable[[bytes, str], list[Any]]


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


class ServedModel(Protocol):
    """What GET /health and GET /model read: the served bundle and the body of GET /model."""

    bundle: Bundle

    def model_info(self) -> dict[str, Any]: ...


@dataclass
class PredictionService:
    """What the prediction routes share: the loaded bundle, its scorer and micro-batcher, the settings and log.

    `serverless`: predictions run inline instead of in the micro-batcher's background task, and the
    prediction log is flushed before each answer returns (hosts that freeze the process between requests).
    """

    bundle: Bundle
    settings: ServiceConfig
    log: PredictionLog | None
    served_as: str
    serverless: bool
    scorer: Scorer = field(init=False)
    batcher: MicroBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.scorer = Scorer(self.bundle, self.log, source="service")
        wait_s = self.settings.micro_batch_wait_ms / 1000
        self.batcher = MicroBatcher(self.scorer.predict, self.settings.micro_batch_records, wait_s)

    @property
    def with_id(self) -> bool:
        return self.bundle.schema.id_column is not None

    def model_info(self) -> dict[str, Any]:
        """GET /model's body."""
        bundle = self.bundle
        return {
            "model_name": bundle.model_name,
            "model_version": bundle.version,
            "algorithm": bundle.card.get("algorithm"),
            "task": bundle.schema.task,
            "trained_at": bundle.card.get("trained_at"),
            "metric": bundle.card.get("metric"),
            "metrics": bundle.metrics.get("holdout", {}),
            "schema": bundle.schema.model_dump(),
            "bundle": str(bundle.path) if bundle.path else None,
            "served_as": self.served_as,
            "prediction_path": "compiled numpy" if bundle.compiled is not None else "scikit-learn pipeline",
        }

    async def predictions(self, valid: list[tuple[ParsedRecord, Scored]]) -> list[Prediction]:
        records = [record for record, _ in valid]
        return self.scorer.predict(records) if self.serverless else await self.batcher.submit(records)


async def prediction_service(request: Request) -> PredictionService:
    """The dependency every prediction route takes: the service the app factory built."""
    service: PredictionService = request.app.state.prediction
    return service


async def served_model(request: Request) -> ServedModel:
    """The dependency of GET /health and GET /model: whichever service the app factory built."""
    service: ServedModel = request.app.state.prediction
    return service


class Refused(Exception):
    """A request refused before any record is scored: the status and the one-line detail it answers."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def json_response(status: int, body: dict[str, Any], request_id: str | None = None) -> Response:
    headers = {"X-Request-ID": request_id} if request_id else None
    text = json.dumps(body, allow_nan=False)
    return Response(text, status_code=status, media_type="application/json", headers=headers)


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
        raise Refused(413, f"request body of {declared} bytes exceeds service.max_body_bytes = {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"request body exceeds service.max_body_bytes = {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def json_records(body: bytes, max_records: int) -> list[Any]:
    """The records of a JSON body: one object or a list of 1..max_records."""
    if not body.strip():
        raise Refused(422, "request body is empty; send one record (a JSON object) or a list of records")
    try:
        payload = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise Refused(400, "request body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Refused(400, f"request body is not valid JSON: {str(error).splitlines()[0]}") from None
    if isinstance(payload, dict):
        return [payload]
    if not isinstance(payload, list):
        kind = type(payload).__name__
        raise Refused(422, f"request body must be a JSON object (one record) or a list of records, not {kind}")
    if not payload:
        raise Refused(422, "request body is an empty list; send at least one record")
    if len(payload) > max_records:
        # 422, not 413: the list breaks the documented schema (maxItems); 413 is for the body's bytes.
        raise Refused(422, f"request holds {len(payload)} records; service.max_batch_records = {max_records}")
    return payload


def media_type(value: str) -> tuple[str, dict[str, str]]:
    """'Type/Sub; Key="v"' -> ('type/sub', {'key': 'v'}): the grammar of Content-Type and each Accept entry."""
    media, *parameters = value.split(";")
    pairs = (parameter.partition("=") for parameter in parameters)
    return media.strip().lower(), {key.strip().lower(): item.strip().strip('"') for key, _, item in pairs}


async def _flush_before_answer(log: PredictionLog) -> None:
    """Serverless hosts may freeze the process once the answer is out: commit the log rows first.

    Off the event loop, bounded; a slow or failing database costs a warning, never the answer.
    """
    import anyio.to_thread

    try:
        await anyio.to_thread.run_sync(log.flush, FLUSH_TIMEOUT_S)
    except PredictionLogError as error:
        logger.warning("prediction log not flushed before answering: %s", error)


async def _decoded(request: Request, decoders: dict[str, Decoder], limit: int) -> list[Any]:
    """The request's records, by the decoder of its Content-Type (a +json type counts as JSON)."""
    content_type = request.headers.get("content-type", "")
    media = media_type(content_type)[0]
    decode = decoders.get(media) or (decoders.get("application/json") if media.endswith("+json") else None)
    if decode is None:
        raise Refused(415, f"content-type '{content_type or 'none'}' is not {' or '.join(decoders)}")
    return decode(await _read_body(request, limit), content_type)


def _refused_records(outcomes: list[Scored], body: dict[str, Any], request_id: str) -> Response:
    """422 when no record was valid: the first error, and how many more records were refused."""
    first = outcomes[0]
    where = "record 0: " if len(outcomes) > 1 else ""
    more = f" (and {len(outcomes) - 1} more records refused)" if len(outcomes) > 1 else ""
    return json_response(422, {"detail": f"{where}{first.errors[0]}{more}", **body}, request_id)


async def answer(
    request: Request,
    service: PredictionService,
    decoders: dict[str, Decoder],
    csv_answer: Callable[[list[Scored]], str] | None = None,
) -> Response:
    """Read and check the body, predict its valid records together, answer, then log what was answered.

    `csv_answer` (SageMaker's Accept: text/csv) turns the outcomes into a CSV body instead of JSON.
    """
    given = request.headers.get("x-request-id")
    request_id = given if given and _REQUEST_ID.match(given) else new_request_id()
    with service.batcher.arrival():
        try:
            items = await _decoded(request, decoders, service.settings.max_body_bytes)
        except Refused as refused:
            return json_response(refused.status, {"detail": refused.detail, "request_id": request_id}, request_id)
        outcomes, valid = service.scorer.split(items, request_id)
    if valid:
        service.scorer.fill(valid, await service.predictions(valid))
    bundle = service.bundle
    body: dict[str, Any] = {
        "request_id": request_id,
        "model_name": bundle.model_name,
        "model_version": bundle.version,
        "results": [outcome.as_dict(bundle.version, service.with_id) for outcome in outcomes],
    }
    if not valid:
        return _refused_records(outcomes, body, request_id)
    # built first: only what is answered gets logged
    if csv_answer is not None:
        response = Response(csv_answer(outcomes), media_type="text/csv", headers={"X-Request-ID": request_id})
    else:
        response = json_response(200, body, request_id)
    service.scorer.record_log(valid)
    if service.serverless and service.log is not None:
        await _flush_before_answer(service.log)
    return response


def json_decoder(service: PredictionService) -> Decoder:
    """The application/json decoder under the service's max_batch_records."""
    return lambda body, content_type: json_records(body, service.settings.max_batch_records)


model_router = APIRouter()
router = APIRouter()


@model_router.get("/health", response_model=Health)
async def health(service: ServedModel = Depends(served_model)) -> Response:
    """200 when the model is loaded and the service takes requests."""
    body = {"status": "ok", "model_name": service.bundle.model_name, "model_version": service.bundle.version}
    return json_response(200, body)


@model_router.get("/model")
async def model(service: ServedModel = Depends(served_model)) -> Response:
    """Name, version, training time, holdout metrics and the feature schema of the served model."""
    return json_response(200, service.model_info())


@router.post(
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
    service: PredictionService = request.app.state.prediction
    return await answer(request, service, {"application/json": json_decoder(service)})


def fast_predict_route() -> Route:
    """/predict as a plain Starlette route, for the app factory to put before every other route.

    The router's route documents /predict in OpenAPI; this one, matched first, serves it without
    FastAPI's per-request dependency machinery (which cost ~25% of throughput: the handler reads and
    checks the body itself anyway). Same function, same answers.
    """
    return Route("/predict", predict, methods=["POST"])
