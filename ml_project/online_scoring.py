"""Online scoring without a web framework: records checked against the bundle's schema, scored in micro-batches.

The HTTP service (deployment/app.py) and the in-process production stream both call `Scorer`,
so a record is validated, predicted and logged the same way wherever it comes from. The record
model is generated from the bundle's `InputSchema` (types, nullability, ranges, categories): the
service's OpenAPI document lists every feature without a column being restated by hand. Each
field's check is `column_rules`' rule for its kind, so a refusal reads as batch scoring's quarantine.
Nothing here imports mlflow, optuna, evidently or pandera: cold start is part of the contract.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from ml_project import column_rules as rules
from ml_project.artifacts import Bundle
from ml_project.prediction import predict_columns
from ml_project.prediction_log import LoggedPrediction, PredictionLog
from ml_project.validation import ColumnSchema, InputSchema, coerce_datetime

logger = logging.getLogger(__name__)

# A client may name its request; 48 characters leave room for "-<index>" within the log's 64.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,48}$"
Prediction = tuple[Any, dict[str, float] | None]  # (label or value, class probabilities) of one record


def _rule(column: ColumnSchema, missing_values: frozenset[str]) -> Callable[[Any], Any]:
    """The column's check from column_rules, one Python call per value: the reason is the batch path's."""

    def absent() -> None:
        if not column.nullable:
            raise rules.Refused(rules.MISSING)
        return None

    if column.kind == "numerical":

        def numerical(value: Any) -> Any:
            if rules.is_missing(value, missing_values):
                return absent()
            return rules.number(value, column.minimum, column.maximum)

        return numerical
    if column.kind == "categorical":
        categories = frozenset(column.categories) if column.categories else None

        def categorical(value: Any) -> Any:
            if rules.is_missing(value, missing_values):
                return absent()
            return rules.text(value, categories, column.categories)

        return categorical

    def moment(value: Any) -> Any:
        """Text parsed exactly as batch validation parses a cell (same function): UTC, naive, in ns range."""
        if rules.is_missing(value, missing_values):
            return absent()
        text = rules.datetime_text(value)
        fast = rules.iso_datetime(text)
        if fast is not None:
            return fast
        parsed = coerce_datetime(pd.Series([text], dtype=object)).iloc[0]
        if pd.isna(parsed):
            raise rules.Refused(rules.NOT_A_DATETIME)
        return parsed.to_pydatetime()

    return moment


def _annotation(column: ColumnSchema, missing_values: frozenset[str]) -> Any:
    """The field's type (for OpenAPI) behind the rule's check, which already gives every refusal its words."""
    check = BeforeValidator(_rule(column, missing_values))
    if column.kind == "numerical":
        number = Annotated[float, Field(ge=column.minimum, le=column.maximum, allow_inf_nan=False)]
        return Annotated[(number | None) if column.nullable else number, check]
    if column.kind == "categorical":
        text: Any = Literal[tuple(column.categories)] if column.categories else str  # type: ignore[misc]
        return Annotated[(text | None) if column.nullable else text, check]
    moment = (datetime | None) if column.nullable else datetime
    return Annotated[moment, check]


def _description(column: ColumnSchema) -> str:
    parts = [f"{column.kind} feature"]
    if column.kind == "numerical" and column.minimum is not None:
        parts.append(f"accepted range [{column.minimum:.6g}, {column.maximum:.6g}]")
    if column.categories:
        parts.append("one of: " + ", ".join(column.categories))
    parts.append("null allowed (imputed as in training)" if column.nullable else "required, not null")
    return "; ".join(parts)


def record_model(schema: InputSchema) -> type[BaseModel]:
    """A pydantic model of one input record, generated from the bundle's schema.

    Every feature is a required key (null is allowed where the schema allows it, and imputed);
    unknown keys are refused, so a misspelt feature is an error rather than a silent null. Keys are
    the column names, whatever characters they hold.
    """
    fields: dict[str, Any] = {}
    missing_values = frozenset(schema.missing_values)
    for index, column in enumerate(schema.columns):
        fields[f"feature_{index}"] = (
            _annotation(column, missing_values),
            Field(..., alias=column.name, description=_description(column)),
        )
    if schema.id_column:
        fields["record_id"] = (
            str | int | None,
            Field(None, alias=schema.id_column, description="optional identifier, echoed back as `id`"),
        )
    config = ConfigDict(extra="forbid", populate_by_name=False, title="Record")
    model: type[BaseModel] = create_model("Record", __config__=config, **fields)
    return model


@dataclass(frozen=True)
class RecordError:
    """Why one record was refused: the field (None for the record as a whole), the message, the value."""

    field: str | None
    message: str
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "value": _echo(self.value)}

    def __str__(self) -> str:
        return rules.refusal(self.field, _echo(self.value), self.message)


def _echo(value: Any) -> Any:
    """The offending value as sent, if small; a list or object is described, not echoed back."""
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "…"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    size = len(value) if hasattr(value, "__len__") else 0
    return f"<{'an object' if isinstance(value, dict) else 'a list'} of {size} items>"


def _errors(error: ValidationError) -> list[RecordError]:
    found: list[RecordError] = []
    for item in error.errors(include_url=False):
        location = [str(part) for part in item["loc"]]
        name = location[0] if location else None
        kind = item["type"]
        if kind == "missing":
            found.append(RecordError(name, "required field is missing"))
        elif kind == "extra_forbidden":
            found.append(RecordError(name, "unknown field; this model has no such feature", item.get("input")))
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            found.append(RecordError(None, "a record must be a JSON object of feature: value"))
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            found.append(RecordError(name, message, item.get("input")))
    seen: set[tuple[str | None, str]] = set()
    unique = []
    for entry in found:  # a value refused by both arms of `x | None` is reported once
        if (entry.field, entry.message) not in seen:
            seen.add((entry.field, entry.message))
            unique.append(entry)
    return unique


@dataclass(frozen=True)
class ParsedRecord:
    """A record that passed validation: its values in schema order, and its id if it has one."""

    values: tuple[Any, ...]
    record_id: Any = None


@dataclass
class Scored:
    """The outcome for one record: prediction and probabilities, or the errors that refused it."""

    request_id: str
    prediction: Any = None
    probabilities: dict[str, float] | None = None
    errors: list[RecordError] = field(default_factory=list)
    record_id: Any = None

    def as_dict(self, model_version: str, with_id: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"request_id": self.request_id}
        if with_id:
            out["id"] = self.record_id
        if self.errors:
            out["errors"] = [error.as_dict() for error in self.errors]
            return out
        out["prediction"] = self.prediction
        if self.probabilities is not None:
            out["probabilities"] = self.probabilities
        out["model_version"] = model_version
        return out


def new_request_id() -> str:
    return uuid.uuid4().hex


class Scorer:
    """Validate records with the bundle's record model, predict the valid ones together, log them."""

    def __init__(self, bundle: Bundle, log: PredictionLog | None = None, source: str = "service") -> None:
        self.bundle = bundle
        self.log = log
        self.source = source
        self.model = record_model(bundle.schema)
        self._fields = [f"feature_{index}" for index in range(len(bundle.schema.columns))]
        self._kinds = [column.kind for column in bundle.schema.columns]
        self._names = bundle.schema.feature_names
        self._has_id = bundle.schema.id_column is not None

    def parse(self, item: Any) -> ParsedRecord | list[RecordError]:
        """One record: its validated values, or every error found in it (all fields are checked)."""
        try:
            record = self.model.model_validate(item)
        except ValidationError as error:
            return _errors(error)
        values = tuple(getattr(record, name) for name in self._fields)
        return ParsedRecord(values, getattr(record, "record_id", None) if self._has_id else None)

    def columns(self, records: Sequence[ParsedRecord]) -> dict[str, np.ndarray]:
        """Validated records as one typed array per feature, the form the model is called with."""
        out: dict[str, np.ndarray] = {}
        for position, (name, kind) in enumerate(zip(self._names, self._kinds)):
            values = [record.values[position] for record in records]
            if kind == "numerical":
                out[name] = np.array([np.nan if value is None else value for value in values], dtype="float64")
            elif kind == "datetime":
                out[name] = np.array(
                    [np.datetime64("NaT") if value is None else np.datetime64(value, "ns") for value in values],
                    dtype="datetime64[ns]",
                )
            else:
                out[name] = np.array(values, dtype=object)
        return out

    def predict(self, records: Sequence[ParsedRecord]) -> list[Prediction]:
        """One model call for all `records`: (prediction, probabilities) per record, in order."""
        if not records:
            return []
        labels, proba, classes = predict_columns(self.bundle, self.columns(records))
        if proba is None:
            return [(float(value), None) for value in labels]
        names = [str(label) for label in classes]
        return [
            (str(label), dict(zip(names, (float(p) for p in row)))) for label, row in zip(labels, proba.tolist())
        ]

    def logged_features(self, record: ParsedRecord) -> dict[str, Any]:
        """The record as validated (numbers as floats, times in UTC ISO text), plus its id if it has one."""
        features = {
            name: (value.isoformat() if isinstance(value, datetime) else value)
            for name, value in zip(self._names, record.values)
        }
        if self._has_id and record.record_id is not None:
            features[str(self.bundle.schema.id_column)] = record.record_id
        return features

    @staticmethod
    def fill(valid: Sequence[tuple[ParsedRecord, Scored]], results: Sequence[Prediction]) -> None:
        """Put each model result into its record's outcome (results are in the order of `valid`)."""
        for (_, outcome), (prediction, probabilities) in zip(valid, results):
            outcome.prediction, outcome.probabilities = prediction, probabilities

    def record_log(self, valid: Sequence[tuple[ParsedRecord, Scored]]) -> None:
        """Queue the predicted records for the prediction log (written in the background, in batches)."""
        if self.log is None or not valid:
            return
        now = datetime.now(timezone.utc)
        self.log.write(
            [
                LoggedPrediction(
                    request_id=outcome.request_id,
                    model_name=self.bundle.model_name,
                    model_version=self.bundle.version,
                    features=self.logged_features(record),
                    prediction=outcome.prediction,
                    probabilities=outcome.probabilities,
                    source=self.source,
                    logged_at=now,
                )
                for record, outcome in valid
            ]
        )

    def score(self, items: Sequence[Any], request_id: str | None = None) -> list[Scored]:
        """Synchronous path for in-process callers: validate, predict the valid, log, in input order."""
        outcomes, valid = self.split(items, request_id or new_request_id())
        self.fill(valid, self.predict([record for record, _ in valid]))
        self.record_log(valid)
        return outcomes

    def split(self, items: Sequence[Any], request_id: str) -> tuple[list[Scored], list[tuple[ParsedRecord, Scored]]]:
        """Validate every item: an outcome per item (own request id `<request>-<index>`), and the valid ones.

        The valid pairs (record, its outcome) are what goes to the model; the outcomes, in input
        order, are what the caller answers with once `fill` has put the predictions in.
        """
        single = len(items) == 1
        valid: list[tuple[ParsedRecord, Scored]] = []
        outcomes: list[Scored] = []
        for index, item in enumerate(items):
            record_request = request_id if single else f"{request_id}-{index}"
            result = self.parse(item)
            if isinstance(result, ParsedRecord):
                outcomes.append(Scored(record_request, record_id=result.record_id))
                valid.append((result, outcomes[-1]))
            else:
                record_id = item.get(self.bundle.schema.id_column) if self._has_id and isinstance(item, dict) else None
                outcomes.append(Scored(record_request, errors=result, record_id=record_id))
        return outcomes, valid


@dataclass
class _Pending:
    records: list[ParsedRecord]
    future: asyncio.Future[list[Prediction]]


class MicroBatcher:
    """Adaptive micro-batching: concurrent requests share one model call.

    While a batch is being predicted, new requests queue up and form the next batch, so under load
    batches grow by themselves and an idle server answers at once. A batch also waits up to
    `max_wait` seconds for requests that are known to be on their way (`arriving`: their body is
    being read and checked), never for requests that may not come, up to `max_records` records.
    Predictions run in one worker thread, so the event loop keeps reading requests meanwhile.
    """

    def __init__(
        self,
        predict: Callable[[Sequence[ParsedRecord]], list[Prediction]],
        max_records: int,
        max_wait: float,
    ) -> None:
        self.predict = predict
        self.max_records = max_records
        self.max_wait = max_wait
        self.batches = 0
        self.records = 0
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.arriving = 0  # requests being read and validated, about to be submitted

    @contextmanager
    def arrival(self) -> Iterator[None]:
        """Mark a request as on its way for as long as its body is read and checked."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Finish every queued request, then stop (called after the server stopped taking requests)."""
        if self._queue is None or self._worker is None:
            return
        await self._queue.put(None)
        await self._worker
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._queue = None

    async def submit(self, records: list[ParsedRecord]) -> list[Prediction]:
        if self._queue is None:
            raise RuntimeError("the micro-batcher is not running")
        future: asyncio.Future[list[Prediction]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(records, future))
        return await future

    async def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """The requests of one batch; the flag says a stop was requested meanwhile."""
        assert self._queue is not None
        batch, count = [first], len(first.records)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while count < self.max_records:
            try:
                pending = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0 or self.arriving == 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if pending is None:
                return batch, True
            if count + len(pending.records) > self.max_records:
                await self._predict(batch)
                batch, count = [], 0
            batch.append(pending)
            count += len(pending.records)
        return batch, False

    async def _predict(self, batch: list[_Pending]) -> None:
        records = [record for pending in batch for record in pending.records]
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self.predict, records)
        except Exception as error:  # a bug, not bad input: every waiting request gets it
            logger.exception("prediction failed for a batch of %d records", len(records))
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        self.batches += 1
        self.records += len(records)
        start = 0
        for pending in batch:
            end = start + len(pending.records)
            if not pending.future.done():
                pending.future.set_result(results[start:end])
            start = end

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch, stopping = await self._gather(first)
            if batch:
                await self._predict(batch)
            if stopping:
                while not self._queue.empty():  # anything queued behind the stop still gets an answer
                    pending = self._queue.get_nowait()
                    if pending is not None:
                        await self._predict([pending])
                return
