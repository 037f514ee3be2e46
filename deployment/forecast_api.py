"""The forecast API's route: POST /forecast, for a bundle trained with data.task = forecasting.

The app factory (deployment/app.py) puts one `ForecastService` in `app.state.prediction`, so GET /health
and GET /model (deployment/prediction_api.py) answer for it as for any bundle. POST /forecast answers the
next `horizon` periods of the asked series, after the bundle's stored history or after the history the
request sends (resampled on the model's grid by `series.regular`, replacing the stored observations of
the series it names). Bad input is a 4xx with a one-line `detail`, and a field at fault is named by its
path (`history[3].value`) in `errors`, in the shape /predict's per-field errors have. Every forecast
point answered is logged as one prediction (documentation/serving.md, "Forecasts: POST /forecast").
Importing this module imports no mlflow, optuna, evidently or pandera.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from deployment.prediction_api import (
    FieldError,
    Refused,
    _flush_before_answer,
    _read_body,
    json_response,
    media_type,
)
from ml_project import column_rules as rules
from ml_project.artifacts import Bundle
from ml_project.config import ConfigError, ForecastConfig, ServiceConfig
from ml_project.errors import DataError, one_line
from ml_project.online_scoring import REQUEST_ID_PATTERN, new_request_id
from ml_project.prediction_log import LoggedPrediction, PredictionLog
from ml_project.series import ID, TIME, VALUE, regular

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
ISO_EXAMPLE = "2026-01-01T00:00:00"
HORIZON_FACTOR, HORIZON_FLOOR = 10, 1000  # the most periods one request may ask: max(10 x card horizon, 1000)


def _iso_timestamp(value: str) -> str:
    """ISO 8601 text (an offset is turned to UTC), read by the rule /predict reads datetime features with."""
    if rules.iso_datetime(value) is None:
        raise ValueError(f"expected an ISO 8601 date/time, e.g. {ISO_EXAMPLE}")
    return value


Timestamp = Annotated[str, Field(description=f"ISO 8601, e.g. {ISO_EXAMPLE}; an offset is read as UTC"), AfterValidator(_iso_timestamp)]
SeriesName = Annotated[str, Field(min_length=1, max_length=200)]


class Observation(BaseModel):
    """One observed value of one series."""

    model_config = ConfigDict(extra="forbid", strict=True)

    timestamp: Timestamp
    series: SeriesName | None = Field(default=None, description="may be omitted when the model forecasts one series")
    value: float = Field(allow_inf_nan=False, description="a finite number")


class ForecastRequest(BaseModel):
    """What to forecast; every key is optional (an empty object forecasts every series from the stored history)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="ForecastRequest")

    horizon: int | None = Field(default=None, description="periods ahead; default: the model's forecast.horizon")
    series: list[SeriesName] | None = Field(default=None, min_length=1, description="default: every series of the model")
    history: list[Observation] | None = Field(
        default=None,
        description="newer observations; they replace the stored history of the series they name",
    )


class ForecastPoint(BaseModel):
    series: str
    timestamp: str = Field(description="the period forecast, ISO 8601")
    forecast: float
    forecast_lower: float
    forecast_upper: float


class ForecastResponse(BaseModel):
    model: str
    model_version: str
    request_id: str
    forecasts: list[ForecastPoint] = Field(description="`horizon` consecutive periods per asked series, in the asked order")


class ForecastError(BaseModel):
    detail: str = Field(description="one line naming the field or limit at fault")
    request_id: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="the fields at fault, by path: history[3].value")


class Rejected(Refused):
    """A request refused for its content: 422, the one-line detail and the field errors behind it."""

    def __init__(self, errors: list[FieldError]) -> None:
        first = errors[0]
        where = f"{first.field}: " if first.field else ""
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        super().__init__(422, f"{where}{first.message}{more}")
        self.errors = errors


def rejected(path: str | None, message: str, value: Any = None) -> Rejected:
    return Rejected([FieldError(field=path, message=message, value=value)])


@dataclass
class ForecastService:
    """What the forecast routes share: the loaded forecasting bundle, its grid, the settings and the log.

    `serverless`: the prediction log is flushed before each answer returns (hosts that freeze the process).
    """

    bundle: Bundle
    settings: ServiceConfig
    log: PredictionLog | None
    served_as: str
    serverless: bool
    grid: ForecastConfig = field(init=False)
    lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        card = self.card
        self.grid = ForecastConfig(
            frequency=card["frequency"], aggregation=card.get("aggregation", "mean"), fill=card.get("fill", "interpolate")
        )

    @property
    def card(self) -> dict[str, Any]:
        forecast: dict[str, Any] = self.bundle.card["forecast"]
        return forecast

    @property
    def series(self) -> list[str]:
        return [str(name) for name in self.card["series"]]

    @property
    def single(self) -> str | None:
        """The one series' name (the target's) when the model was trained without a series column."""
        return None if self.card.get("series_column") else self.series[0]

    @property
    def max_horizon(self) -> int:
        return max(HORIZON_FACTOR * int(self.card["horizon"]), HORIZON_FLOOR)

    def model_info(self) -> dict[str, Any]:
        """GET /model's body: the card's facts, and what /forecast forecasts."""
        bundle, card = self.bundle, self.card
        return {
            "model_name": bundle.model_name,
            "model_version": bundle.version,
            "algorithm": bundle.card.get("algorithm"),
            "task": bundle.schema.task,
            "target": bundle.schema.target,
            "trained_at": bundle.card.get("trained_at"),
            "metric": bundle.card.get("metric"),
            "metrics": bundle.metrics.get("holdout", {}),
            "forecast": {
                "frequency": card["frequency"],
                "horizon": int(card["horizon"]),
                "max_horizon": self.max_horizon,
                "interval": card.get("interval"),
                "series": self.series,
                "history_end": card.get("history_end", {}),
                "exogenous": list(self.bundle.pipeline.exogenous),
            },
            "bundle": str(bundle.path) if bundle.path else None,
            "served_as": self.served_as,
        }


async def forecast_service(request: Request) -> ForecastService:
    """The dependency of POST /forecast: the service the app factory built."""
    service: ForecastService = request.app.state.prediction
    return service


def _decoded(body: bytes) -> Any:
    """The JSON body; NaN and Infinity are read as numbers, so the field that holds one is named."""
    if not body.strip():
        return {}
    try:
        return json.loads(body, parse_constant=float)
    except RecursionError:
        raise Refused(400, "request body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Refused(400, f"request body is not valid JSON: {str(error).splitlines()[0]}") from None


def _path(location: tuple[int | str, ...]) -> str | None:
    """pydantic's ('history', 3, 'value') as history[3].value."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _field_errors(error: ValidationError) -> list[FieldError]:
    found: list[FieldError] = []
    for item in error.errors(include_url=False):
        path, kind = _path(tuple(item["loc"])), item["type"]
        if kind == "extra_forbidden":
            found.append(FieldError(field=path, message="unknown field", value=shown_value(item.get("input"))))
        elif kind == "model_type" and not item["loc"]:
            found.append(FieldError(field=None, message="request body must be a JSON object", value=None))
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            found.append(FieldError(field=path, message=message, value=shown_value(item.get("input"))))
    return found


def shown_value(value: Any) -> Any:
    """The offending value as sent, if it is a small scalar; a list or object is described."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # the answer is strict JSON
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "…"
    return f"<{'an object' if isinstance(value, dict) else 'a list'} of {len(value) if hasattr(value, '__len__') else 0} items>"


async def parsed_request(request: Request, service: ForecastService) -> ForecastRequest:
    """The body as a ForecastRequest: 415 for a body that is not JSON, 400 for bad JSON, 422 naming the field."""
    content_type = request.headers.get("content-type", "")
    media = media_type(content_type)[0]
    if content_type and media != "application/json" and not media.endswith("+json"):
        raise Refused(415, f"content-type '{content_type}' is not application/json")
    payload = _decoded(await _read_body(request, service.settings.max_body_bytes))
    try:
        asked = ForecastRequest.model_validate(payload)
    except ValidationError as error:
        raise Rejected(_field_errors(error)) from None
    if asked.horizon is not None and not 1 <= asked.horizon <= service.max_horizon:
        raise rejected(
            "horizon",
            f"must be between 1 and {service.max_horizon} (max(10 x the model's horizon of "
            f"{service.card['horizon']}, {HORIZON_FLOOR}))",
            asked.horizon,
        )
    return asked


def sent_history(asked: ForecastRequest, service: ForecastService) -> pd.DataFrame | None:
    """The sent observations in the long layout, resampled on the model's grid; None when none were sent."""
    if not asked.history:
        return None
    names = []
    for index, point in enumerate(asked.history):
        name = point.series or service.single
        if name is None:
            shown = ", ".join(service.series[:5]) + (", ..." if len(service.series) > 5 else "")
            raise rejected(f"history[{index}].series", f"required: this model forecasts several series ({shown})")
        names.append(name)
    stamps = [rules.iso_datetime(point.timestamp) for point in asked.history]
    long = pd.DataFrame({ID: names, TIME: pd.to_datetime(stamps), VALUE: [point.value for point in asked.history]})
    check_span(long, service.grid)
    try:
        frame, _ = regular(long, service.grid)
    except ConfigError as error:  # a history too sparse for the grid
        raise rejected("history", str(error).removeprefix("config error: ")) from None
    return frame


def check_span(long: pd.DataFrame, grid: ForecastConfig) -> None:
    """Refuse, before resampling, a history whose periods would be mostly empty (as `regular` would, after).

    Only for fixed-length periods (1h, 1D): two observations centuries apart must not build millions of rows.
    """
    offset = pd.tseries.frequencies.to_offset(grid.frequency)
    if not isinstance(offset, pd.offsets.Tick):
        return
    spans = long.groupby(ID)[TIME].agg(["min", "max", "size"])
    nanos = spans["max"].astype("int64").astype("float64") - spans["min"].astype("int64").astype("float64")
    periods = nanos // offset.nanos + 1  # floats: five centuries overflow a Timedelta
    sparse = spans[periods > 2 * spans["size"]]
    if len(sparse):
        name = str(sparse.index[0])
        raise rejected(
            "history",
            f"series {name}: {int(sparse['size'].iloc[0])} observations over {int(periods[name])} periods of "
            f"{grid.frequency}; most periods would have no observation",
        )


def asked_series(asked: ForecastRequest, service: ForecastService, history: pd.DataFrame | None) -> list[str]:
    """The series to answer, in the asked order: each must be in the bundle or in the sent history."""
    if asked.series is None:
        return service.series
    known = set(service.series) | (set(history[ID]) if history is not None else set())
    for index, name in enumerate(asked.series):
        if name not in known:
            shown = ", ".join(service.series[:10]) + (", ..." if len(service.series) > 10 else "")
            raise rejected(
                f"series[{index}]",
                f"series '{name}' is neither in the model ({shown}) nor in the sent history",
                name,
            )
    return list(dict.fromkeys(asked.series))


def points(service: ForecastService, horizon: int, history: pd.DataFrame | None, names: list[str]) -> pd.DataFrame:
    """The forecaster's points of the asked series (ID, TIME, forecast, forecast_lower, forecast_upper)."""
    forecaster = service.bundle.pipeline
    if forecaster.exogenous:
        raise rejected(
            None,
            "this model uses exogenous columns (" + ", ".join(forecaster.exogenous) + "), which POST /forecast does "
            "not take; forecast with ./executables/run.sh forecasting_historic_data_local",
        )
    if history is not None:
        history = history[[column for column in forecaster.history.columns if column in history]]
    with service.lock:  # one forecast at a time: the engine is not known to be thread-safe
        try:
            found = forecaster.forecast(horizon, history=history)
        except DataError as error:
            raise rejected("history", str(error).removeprefix("data error: ")) from None
        except Exception as error:  # a statistical model refusing the sent series (too short for its season, say)
            if history is None:
                raise
            raise rejected("history", f"the model cannot forecast from the sent history: {one_line(error)}") from None
    found = found[found[ID].isin(names)]
    order = {name: position for position, name in enumerate(names)}
    found = found.sort_values([ID, TIME], key=lambda column: column.map(order) if column.name == ID else column, kind="stable")
    finite = found[["forecast", "forecast_lower", "forecast_upper"]].apply(lambda column: column.abs() < float("inf"))
    if not finite.all(axis=None):
        name = found.loc[~finite.all(axis=1), ID].iloc[0]
        raise rejected(
            "history",
            f"the forecast of series {name} is not a finite number: is its history shorter than the model's season "
            f"({forecaster.setting.season} periods), or are its values out of range?",
        )
    return found.reset_index(drop=True)


def forecast_rows(found: pd.DataFrame) -> list[dict[str, Any]]:
    """The answer's rows: series, ISO timestamp, forecast and its interval."""
    return [
        {
            "series": str(row[ID]),
            "timestamp": pd.Timestamp(row[TIME]).isoformat(),
            "forecast": float(row["forecast"]),
            "forecast_lower": float(row["forecast_lower"]),
            "forecast_upper": float(row["forecast_upper"]),
        }
        for row in found.to_dict("records")
    ]


def logged(service: ForecastService, rows: list[dict[str, Any]], request_id: str) -> list[LoggedPrediction]:
    """One prediction per forecast point: the value forecast, and for which series, period and step ahead."""
    now = datetime.now(timezone.utc)
    steps: dict[str, int] = {}
    records = []
    for row in rows:
        steps[row["series"]] = steps.get(row["series"], 0) + 1
        features = {
            "series": row["series"],
            "timestamp": row["timestamp"],
            "step": steps[row["series"]],
            "forecast_lower": row["forecast_lower"],
            "forecast_upper": row["forecast_upper"],
        }
        records.append(
            LoggedPrediction(
                request_id=request_id,
                model_name=service.bundle.model_name,
                model_version=service.bundle.version,
                features=features,
                prediction=row["forecast"],
                logged_at=now,
            )
        )
    return records


def request_id_of(request: Request) -> str:
    """The client's X-Request-ID when it is a valid one (as /predict takes it), else a new one."""
    given = request.headers.get("x-request-id")
    return given if given and _REQUEST_ID.match(given) else new_request_id()


def refusal(refused: Refused, request_id: str) -> Response:
    body: dict[str, Any] = {"detail": refused.detail, "request_id": request_id}
    if isinstance(refused, Rejected):
        body["errors"] = [error.model_dump() for error in refused.errors]
    return json_response(refused.status, body, request_id)


router = APIRouter()


@router.post(
    "/forecast",
    response_model=ForecastResponse,
    responses={
        400: {"model": ForecastError, "description": "body is not valid JSON"},
        413: {"model": ForecastError, "description": "body larger than service.max_body_bytes"},
        415: {"model": ForecastError, "description": "body is not application/json"},
        422: {"model": ForecastError, "description": "a field at fault (named by its path), or too short a history"},
    },
)
async def forecast(request: Request, service: ForecastService = Depends(forecast_service)) -> Response:
    """The next `horizon` periods of the asked series, after the stored history or the one sent."""
    import anyio.to_thread

    request_id = request_id_of(request)
    try:
        asked = await parsed_request(request, service)
        history = sent_history(asked, service)
        names = asked_series(asked, service, history)
        horizon = asked.horizon or int(service.card["horizon"])
        found = await anyio.to_thread.run_sync(points, service, horizon, history, names)
    except Refused as refused:
        return refusal(refused, request_id)
    rows = forecast_rows(found)
    body = {"model": service.bundle.model_name, "model_version": service.bundle.version, "request_id": request_id, "forecasts": rows}
    response = json_response(200, body, request_id)  # built first: only what is answered gets logged
    if service.log is not None:
        service.log.write(logged(service, rows, request_id))
        if service.serverless:
            await _flush_before_answer(service.log)
    return response


def request_schema(max_horizon: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """ForecastRequest's JSON schema with this model's horizon bounds, and the schemas it refers to."""
    schema = ForecastRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    schema["properties"]["horizon"]["anyOf"][0].update({"minimum": 1, "maximum": max_horizon})
    return schema, definitions
