"""The SageMaker container contract's routes: GET /ping and POST /invocations, one named function each.

Included by the app factory (deployment/app.py) when `sagemaker=True`. /invocations takes text/csv rows
(values in feature order, or under a header row of column names) or the /predict JSON, and is answered
by the same code as /predict (`prediction_api.answer`); `Accept: text/csv` answers CSV. Importing this
module imports no mlflow, optuna, evidently or pandera.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from deployment.prediction_api import (
    Decoder,
    Health,
    PredictionService,
    PredictResponse,
    Refused,
    answer,
    health,
    json_decoder,
    media_type,
    prediction_service,
)
from ml_project.online_scoring import Scored


def _decoded_text(body: bytes, charset: str) -> str:
    try:
        return body.decode("utf-8-sig" if charset.lower().replace("_", "-") in ("utf-8", "utf8") else charset)
    except LookupError:
        raise Refused(415, f"charset '{charset}' is not known; send UTF-8") from None
    except UnicodeDecodeError:
        raise Refused(400, f"request body is not {charset} text") from None


def csv_records(
    body: bytes, features: list[str], known: set[str], max_records: int, charset: str = "utf-8"
) -> list[Any]:
    """CSV rows as records: values in `features` order, or under a first row of `known` column names.

    An empty cell is a missing value. A row with the wrong number of values refuses the request.
    """
    text = _decoded_text(body, charset)
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as error:
        raise Refused(400, f"request body is not valid CSV: {error}") from None
    header = features
    if rows and all(cell.strip() in known for cell in rows[0]):
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise Refused(422, f"CSV header names column '{repeated[0]}' more than once")
    if not rows:
        raise Refused(422, "request body holds no CSV rows; send one line of feature values per record")
    if len(rows) > max_records:
        raise Refused(422, f"request holds {len(rows)} records; service.max_batch_records = {max_records}")
    for line, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise Refused(422, f"CSV row {line} has {len(row)} values; expected {len(header)}: {','.join(header)}")
    return [{name: (cell if cell != "" else None) for name, cell in zip(header, row)} for row in rows]


def accepts_csv(accept: str) -> bool:
    """Whether the Accept header prefers text/csv (q > 0 and at least application/json's q)."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, parameters = media_type(part)
        try:
            quality = float(parameters.get("q", "1"))
        except ValueError:
            quality = 0.0
        weights[media] = max(quality, weights.get(media, 0.0))
    csv_weight = weights.get("text/csv", 0.0)
    return csv_weight > 0 and csv_weight >= weights.get("application/json", 0.0)


def csv_answer(outcomes: list[Scored], classes: list[str] | None) -> str:
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


def csv_decoder(service: PredictionService) -> Decoder:
    """The text/csv decoder: the bundle's feature order, its id column as a known header name, the charset."""
    schema = service.bundle.schema
    names = schema.feature_names
    known = set(names) | ({str(schema.id_column)} if schema.id_column is not None else set())

    def decode(body: bytes, content_type: str) -> list[Any]:
        charset = media_type(content_type)[1].get("charset", "utf-8")
        return csv_records(body, names, known, service.settings.max_batch_records, charset)

    return decode


router = APIRouter()


@router.get("/ping", response_model=Health)
async def ping(service: PredictionService = Depends(prediction_service)) -> Response:
    """SageMaker's health check: 200 once the model is loaded."""
    return await health(service)


@router.post("/invocations", response_model=PredictResponse)
async def invocations(request: Request, service: PredictionService = Depends(prediction_service)) -> Response:
    """SageMaker's inference call: text/csv rows (feature order, or a header row) or the /predict JSON.

    `Accept: text/csv` answers CSV without a header, one line per record: request_id, prediction,
    proba_<class>... (classes in model order), error. JSON (as /predict) otherwise.
    """
    classes = service.bundle.schema.classes
    as_csv = accepts_csv(request.headers.get("accept", ""))
    decoders = {"text/csv": csv_decoder(service), "application/json": json_decoder(service)}
    as_text = (lambda outcomes: csv_answer(outcomes, classes)) if as_csv else None
    return await answer(request, service, decoders, as_text)
