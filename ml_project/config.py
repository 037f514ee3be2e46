"""The one validated configuration of a run: project_config.yaml, a use-case YAML and --set overrides.

Everything a stage needs to know comes from here; stages receive the sub-config they use
(`DataConfig`, `ModellingConfig`, ...), never the whole tree. Loading is the only I/O.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ml_project.column_rules import MISSING_VALUES
from ml_project.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROJECT_CONFIG = PROJECT_ROOT / "project_config.yaml"
DEFAULT_USE_CASE_CONFIG = PROJECT_ROOT / "use_cases" / "configs" / "penguins_classification.yaml"

Task = Literal["classification", "regression", "forecasting"]

METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "roc_auc_ovr", "log_loss"),
    "regression": ("rmse", "mae", "r2", "mape"),
    "forecasting": ("mape", "mase", "smape", "rmse", "mae"),
}
# Metrics that only a two-class target has (roc_auc scores the second class, in sorted order, as positive).
BINARY_METRICS = frozenset({"roc_auc"})
# The one place that says which way a metric points; the search, the leaderboard, the gate and the dashboard ask it.
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape", "mase", "smape"})
# The algorithm names a config may choose, per task; modelling.SEARCH_SPACES (tables) and forecasters.FORECASTERS
# (forecasting) hold each one's estimator and search space (kept apart so that validating a config does not import
# scikit-learn; a test keeps them equal).
ALGORITHM_NAMES: dict[str, tuple[str, ...]] = {
    "classification": ("baseline", "random_forest", "hist_gradient_boosting", "logistic_regression", "lightgbm"),
    "regression": ("baseline", "random_forest", "hist_gradient_boosting", "ridge", "lightgbm"),
    "forecasting": (
        "seasonal_naive", "auto_ets", "auto_arima", "mstl", "ridge", "hist_gradient_boosting", "random_forest",
    ),
}
DEFAULT_METRIC = {"classification": "f1_macro", "regression": "rmse", "forecasting": "mase"}
# Without modelling.algorithms: every candidate of the task, in the order their defaults are tried: the no-skill
# line, then the ones that stay fast on a large table (under a time budget the first get the time; random_forest,
# the slowest on a million rows, comes last); for forecasting the no-skill line first and the statistical models
# that stay fast on long seasonal series (auto_arima and mstl are asked for by name).
DEFAULT_ALGORITHMS = {
    "classification": ("baseline", "lightgbm", "hist_gradient_boosting", "logistic_regression", "random_forest"),
    "regression": ("baseline", "lightgbm", "hist_gradient_boosting", "ridge", "random_forest"),
    "forecasting": ("seasonal_naive", "auto_ets", "ridge", "hist_gradient_boosting"),
}
MLFLOW_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "file", "http", "https", "databricks")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def greater_is_better(metric: str) -> bool:
    """True when a higher value of `metric` (one of METRICS) is a better model."""
    return metric not in LOWER_IS_BETTER


class StrictModel(BaseModel):
    """Frozen and strict: an unknown key is an error, not a silent no-op."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class FeaturesConfig(StrictModel):
    numerical: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    datetime: list[str] = Field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [*self.numerical, *self.categorical, *self.datetime]

    @model_validator(mode="after")
    def _distinct(self) -> FeaturesConfig:
        seen: set[str] = set()
        for column in self.all:
            if column in seen:
                raise ValueError(f"data.features: column '{column}' is listed more than once")
            seen.add(column)
        return self


class DataConfig(StrictModel):
    path: str = Field(description="CSV or parquet file, or an SQLAlchemy URL together with `query`.")
    query: str | None = Field(default=None, description="SQL query, used when `path` is an SQLAlchemy URL.")
    target: str
    task: Task
    features: FeaturesConfig = FeaturesConfig()
    id_column: str | None = Field(default=None, description="Column copied to prediction outputs as `id`.")
    time_column: str | None = Field(default=None, description="Forecasting: the timestamp of each observation.")
    series_column: str | None = Field(default=None, description="Forecasting: the column naming each series.")
    time_format: str | None = Field(
        default=None, description="strftime format of time_column; null: any format pandas reads unambiguously."
    )

    @property
    def is_sql(self) -> bool:
        return "://" in self.path and not self.path.startswith("file://")

    @model_validator(mode="after")
    def _target_is_not_a_feature(self) -> DataConfig:
        if self.target in self.features.all:
            raise ValueError(f"data.target = '{self.target}' is also listed in data.features")
        if self.id_column is not None and self.id_column in (*self.features.all, self.target):
            raise ValueError(f"data.id_column = '{self.id_column}' is also a feature or the target")
        if self.is_sql and not self.query:
            raise ValueError(f"data.query is required when data.path is an SQLAlchemy URL ('{self.path}')")
        if self.task == "forecasting":
            return self._forecasting_columns()
        if not self.features.all:
            raise ValueError("data.features lists no column: give at least one numerical, categorical or datetime feature")
        for key in ("time_column", "series_column", "time_format"):
            if getattr(self, key) is not None:
                raise ValueError(f"data.{key} is for data.task = forecasting, not {self.task}")
        return self

    def _forecasting_columns(self) -> DataConfig:
        if self.time_column is None:
            raise ValueError("data.time_column is required for data.task = forecasting: name the timestamp column")
        if self.features.datetime:
            raise ValueError(
                "data.features.datetime is not used for forecasting: calendar features come from data.time_column"
            )
        named = {"data.target": self.target, "data.time_column": self.time_column}
        if self.series_column is not None:
            named["data.series_column"] = self.series_column
        if self.id_column is not None:
            raise ValueError("data.id_column is not used for forecasting: forecasts are keyed by series and timestamp")
        for key, column in named.items():
            others = [other for other, name in named.items() if name == column and other != key]
            if others or column in self.features.all:
                raise ValueError(f"{key} = '{column}' is also {others[0] if others else 'listed in data.features'}")
        return self

    @property
    def forecast_columns(self) -> list[str]:
        """Forecasting: the columns read from the table (series, time, exogenous features, target)."""
        assert self.time_column is not None
        series = [self.series_column] if self.series_column else []
        return [*series, self.time_column, *self.features.all, self.target]


class PreprocessingConfig(StrictModel):
    rare_label_min_frequency: float = Field(default=0.02, ge=0.0, lt=1.0)
    scale_numerical: bool = True


class ValidationConfig(StrictModel):
    range_margin: float = Field(
        default=0.1, ge=0.0, le=10.0, description="Allowed overshoot of the trained range, as a share of its width."
    )
    missing_values: list[str] = Field(
        default=list(MISSING_VALUES),
        description="Text read as a missing value, exactly as spelt, in every path (JSON null always is); holds ''.",
    )

    @model_validator(mode="after")
    def _empty_cell_is_missing(self) -> ValidationConfig:
        # Spark's CSV reader and the service's text/csv rows cannot tell an empty cell from a missing one.
        if "" not in self.missing_values:
            raise ValueError(
                f"validation.missing_values = {self.missing_values!r} must include '' (an empty cell is always missing)"
            )
        return self


class ModellingConfig(StrictModel):
    algorithms: list[str]
    n_trials: int = Field(default=20, ge=1)
    n_folds: int = Field(default=5, ge=2)
    metric: str
    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    holdout_split: Literal["random", "latest"] = Field(
        default="random",
        description="random (stratified for classification) or latest: the most recent rows by the first datetime feature.",
    )
    seed: int = Field(default=42, ge=0, lt=2**32)
    n_jobs: int | None = Field(
        default=None,
        ge=1,
        description="Folds fitted at once in a trial; null: every core. Each fold's estimator gets cores / n_jobs "
        "threads (threadpoolctl), so cores are never oversubscribed.",
    )
    time_budget_s: float | None = Field(
        default=None, gt=0, description="Wall-clock budget of the search in seconds; null: no limit (n_trials only)."
    )
    search_rows: int | None = Field(
        default=None, ge=10, description="Search on a sample of at most this many modelling rows; the best is refit on all."
    )
    pruning: bool = Field(default=True, description="Prune hopeless trials fold by fold (Optuna's median rule).")
    study_storage: str | None = Field(
        default=None,
        description="An Optuna RDB URL (sqlite:///..., postgresql+psycopg://...) that several processes share "
        "(--join-study, --finish-study); null: the study lives in memory.",
    )

    class_weight: Literal["balanced"] | None = Field(
        default=None,
        description="Classification: balanced weighs each class by the inverse of its share of the rows, in every "
        "candidate that takes weights (not the baseline); null: every row counts the same.",
    )

    @property
    def jobs(self) -> int:
        """n_jobs, with null resolved to the cores this process may use."""
        return self.n_jobs if self.n_jobs is not None else available_cores()

    @field_validator("study_storage")
    @classmethod
    def _storage_is_a_database_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(sqlite|postgresql|mysql)(\+\w+)?://", value):
            raise ValueError(
                f"modelling.study_storage = {value!r} is not an Optuna RDB URL: sqlite:///study.db or postgresql+psycopg://user@host/db"
            )
        return value

    @property
    def greater_is_better(self) -> bool:
        return greater_is_better(self.metric)


class ForecastConfig(StrictModel):
    """Forecasting (data.task = forecasting): the grid the data is put on, the horizon and the backtests."""

    frequency: str | None = Field(default=None, description="pandas offset alias (1h, 1D, 1MS); data is resampled to it.")
    aggregation: Literal["mean", "median", "min", "max", "sum", "last"] = Field(
        default="mean", description="How observations falling in one period are combined when resampling."
    )
    fill: Literal["interpolate", "ffill", "zero"] = Field(
        default="interpolate", description="How periods with no observation are filled (each is counted and logged)."
    )
    horizon: int = Field(default=24, ge=1, le=10_000, description="Periods ahead to forecast.")
    season_length: int | None = Field(default=None, ge=1, description="null: inferred from frequency.")
    backtest_windows: int = Field(default=3, ge=1, le=100, description="Rolling-origin windows of `horizon` periods.")
    lags: Literal["auto"] | list[int] = Field(default="auto", description="Target lags of the ML candidates.")
    differences: list[int] = Field(
        default_factory=lambda: [1], description="ML candidates learn the target differenced at these lags; [] for none."
    )
    scaling: Literal["none", "standard"] = Field(
        default="none",
        description="standard: ML candidates learn each series standardised by its own mean and deviation "
        "(after the differences), so one global model fits series of any level; none: as they are.",
    )
    holidays: str | None = Field(default=None, description="Country code (US, DE, ...) for the holiday feature.")
    interval: float = Field(default=0.9, gt=0.0, lt=1.0, description="Coverage of forecast_lower..forecast_upper.")

    @model_validator(mode="after")
    def _lags_are_positive(self) -> ForecastConfig:
        if isinstance(self.lags, list):
            if not self.lags or any(lag < 1 for lag in self.lags) or len(set(self.lags)) != len(self.lags):
                raise ValueError(f"forecast.lags = {self.lags!r} must be 'auto' or distinct integers >= 1")
        if any(lag < 1 for lag in self.differences):
            raise ValueError(f"forecast.differences = {self.differences!r} must be integers >= 1 (or [] for none)")
        return self


class PredictionConfig(StrictModel):
    chunk_size: int = Field(default=100_000, ge=1)


class SparkConfig(StrictModel):
    """The Spark scale-out path (use_cases/predicting_historic_data_spark.py; needs the [spark] packages)."""

    master: str = Field(default="local[*]", min_length=1, description="Spark master URL: local[N], spark://, yarn, k8s://.")
    driver_memory: str = Field(
        default="2g", pattern=r"^[0-9]+([kKmMgGtT][bB]?)?$", description="spark.driver.memory, e.g. 2g or 4096m."
    )
    batch_records: int = Field(
        default=50_000, ge=1, le=1_000_000, description="Rows per pandas batch handed to the model inside Spark."
    )


class ServiceConfig(StrictModel):
    """The HTTP prediction service (`./executables/run.sh serve`) and the client use cases."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Interface to bind; 0.0.0.0 for every one.")
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="Server processes, each with its own copy of the model.")
    max_batch_records: int = Field(default=1000, ge=1, le=100_000, description="Most records one request may carry.")
    max_body_bytes: int = Field(default=4_194_304, ge=1024, description="Largest request body accepted, in bytes.")
    micro_batch_records: int = Field(
        default=64, ge=1, le=100_000, description="Most records predicted together across concurrent requests."
    )
    micro_batch_wait_ms: float = Field(
        default=2.0, ge=0.0, le=1000.0, description="Longest wait for requests already arriving before a model call."
    )
    url: str | None = Field(default=None, description="Base URL of a running service, for the deployed-server client.")
    dashboard: bool = Field(
        default=True,
        description="Serve GET /dashboard and its JSON under /dashboard/api. No authentication: put the service "
        "behind your gateway's, or switch it off where prediction volumes and class mix are not for every caller.",
    )

    @model_validator(mode="after")
    def _url_is_http(self) -> ServiceConfig:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"service.url = '{self.url}' must start with http:// or https://")
        return self


class PredictionLogConfig(StrictModel):
    """Where every production prediction is stored (SQLAlchemy URL; SQLite under paths.output by default)."""

    enabled: bool = True
    url: str | None = Field(default=None, description="SQLAlchemy URL; null means sqlite:///<paths.output>/prediction_log.db")


class PromotionConfig(StrictModel):
    """The champion gate: a candidate replaces the champion only if it is better on the same holdout rows by
    more than their noise (a paired bootstrap), and never when it loses to the no-skill baseline."""

    min_improvement: float = Field(
        default=0.0,
        ge=0.0,
        description="How much better (in modelling.metric units) a candidate must score, beyond noise: the lower "
        "end of the gain's interval must exceed it.",
    )
    confidence: float = Field(
        default=0.95,
        gt=0.0,
        lt=1.0,
        description="Confidence of the paired bootstrap interval of the candidate's gain over the champion on the gate rows.",
    )
    min_gate_rows: int = Field(
        default=100,
        ge=0,
        description="Fewest gate rows (holdout rows the champion never trained on) on which the gate promotes "
        "automatically; below it only --force-promote promotes.",
    )
    max_changed_share: float = Field(
        default=0.2, ge=0.0, le=1.0, description="Largest share of changed predictions a comparison accepts."
    )
    regression_tolerance: float = Field(
        default=0.01,
        ge=0.0,
        description="In a comparison, a regression prediction counts as changed when it moves by more than this "
        "share of its old value (|new - old| > tolerance x |old|).",
    )


class MonitoringConfig(StrictModel):
    """Drift checks of logged production inputs against the training reference."""

    drift_share_threshold: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Monitoring alerts (exit 3) when the share of drifted feature columns exceeds this."
    )
    min_rows: int = Field(default=30, ge=1, description="Fewest logged rows a drift check is run on.")
    holdout_report: bool = Field(
        default=True, description="The modelling run writes evidently drift/quality reports of its holdout."
    )


class PathsConfig(StrictModel):
    output: Path = Path("output")

    @model_validator(mode="after")
    def _not_the_project_root(self) -> PathsConfig:
        if self.output.resolve() == PROJECT_ROOT:
            raise ValueError("paths.output must name a folder for generated files, not the project root")
        return self

    @property
    def models(self) -> Path:
        return self.output / "models"

    @property
    def logs(self) -> Path:
        return self.output / "logs"

    @property
    def reports(self) -> Path:
        return self.output / "reports"


class TrackingConfig(StrictModel):
    enabled: bool = True
    uri: str = "sqlite:///mlflow.db"
    experiment: str
    model_name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")

    @model_validator(mode="after")
    def _uri_is_an_mlflow_store(self) -> TrackingConfig:
        """Caught at load, not after training: a wrong URI must not cost a run."""
        scheme = self.uri.split("://", 1)[0].split("+", 1)[0] if "://" in self.uri else ""
        if scheme and scheme not in MLFLOW_SCHEMES:
            raise ValueError(
                f"tracking.uri = '{self.uri}' is not an MLflow store; expected one of: "
                + ", ".join(f"{name}://" for name in MLFLOW_SCHEMES)
                + ", or a folder path"
            )
        return self

    @model_validator(mode="after")
    def _model_name_is_a_folder_name(self) -> TrackingConfig:
        if set(self.model_name) == {"."}:
            raise ValueError(f"tracking.model_name = '{self.model_name}' is not a folder name; use letters, digits, _ . -")
        return self


class RunConfig(StrictModel):
    """The design card's three run-mode axes; each use case sets them for itself."""

    mode: Literal["modelling", "prediction"] = "modelling"
    data: Literal["historic", "production"] = "historic"
    environment: Literal["local", "deployed"] = "local"


class Config(StrictModel):
    run: RunConfig = RunConfig()
    data: DataConfig
    preprocessing: PreprocessingConfig = PreprocessingConfig()
    validation: ValidationConfig = ValidationConfig()
    modelling: ModellingConfig
    forecast: ForecastConfig = ForecastConfig()
    prediction: PredictionConfig = PredictionConfig()
    spark: SparkConfig = SparkConfig()
    service: ServiceConfig = ServiceConfig()
    prediction_log: PredictionLogConfig = PredictionLogConfig()
    promotion: PromotionConfig = PromotionConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    paths: PathsConfig = PathsConfig()
    tracking: TrackingConfig

    @property
    def prediction_log_url(self) -> str | None:
        """The prediction log's SQLAlchemy URL, or None when logging is switched off."""
        if not self.prediction_log.enabled:
            return None
        return self.prediction_log.url or f"sqlite:///{self.paths.output / 'prediction_log.db'}"

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, values: Any) -> Any:
        """Fill the metric and algorithm list from the task when the YAML leaves them out."""
        if not isinstance(values, dict):
            return values
        data = values.get("data")
        task = data.get("task") if isinstance(data, dict) else None
        if task not in METRICS:
            return values
        modelling = values.get("modelling")
        modelling = {} if modelling is None else modelling  # `modelling:` left empty in a YAML: every default
        if not isinstance(modelling, dict):
            return values  # pydantic names the key: "modelling = 5: Input should be a valid dictionary"
        modelling = dict(modelling)
        modelling.setdefault("metric", DEFAULT_METRIC[task])
        modelling.setdefault("algorithms", list(DEFAULT_ALGORITHMS[task]))
        return {**values, "modelling": modelling}

    @model_validator(mode="after")
    def _metric_and_algorithms_fit_task(self) -> Config:
        task = self.data.task
        if self.modelling.metric not in METRICS[task]:
            raise ValueError(
                f"modelling.metric = '{self.modelling.metric}' is not one of: {', '.join(METRICS[task])} ({task})"
            )
        if not self.modelling.algorithms:
            raise ValueError("modelling.algorithms is empty: name at least one of: " + ", ".join(ALGORITHM_NAMES[task]))
        for algorithm in self.modelling.algorithms:
            if algorithm not in ALGORITHM_NAMES[task]:
                raise ValueError(
                    f"modelling.algorithms: '{algorithm}' is not one of: {', '.join(ALGORITHM_NAMES[task])} ({task})"
                )
        if self.modelling.holdout_split == "latest" and not self.data.features.datetime and task != "forecasting":
            raise ValueError("modelling.holdout_split = 'latest' needs a column in data.features.datetime to order rows by")
        if len(set(self.modelling.algorithms)) != len(self.modelling.algorithms):
            raise ValueError("modelling.algorithms lists an algorithm more than once")
        if self.modelling.class_weight is not None and task != "classification":
            raise ValueError(
                f"modelling.class_weight = '{self.modelling.class_weight}' is for data.task = classification, not {task}"
                " (set it to null)"
            )
        if task == "forecasting":
            _check_forecast(self.forecast)
            if self.modelling.study_storage is not None:
                raise ValueError("modelling.study_storage is for classification and regression; a forecasting search runs in one process")
        return self


def _check_forecast(forecast: ForecastConfig) -> None:
    """The forecast keys pandas and holidays must understand; imported only for a forecasting config."""
    if forecast.frequency is None:
        raise ValueError("forecast.frequency is required for data.task = forecasting (a pandas offset alias: 1h, 1D, 1MS)")
    from pandas.tseries.frequencies import to_offset

    try:
        offset = to_offset(forecast.frequency)
    except ValueError:
        raise ValueError(
            f"forecast.frequency = '{forecast.frequency}' is not a pandas offset alias (e.g. 15min, 1h, 1D, 1W, 1MS)"
        ) from None
    if offset.n < 1:
        raise ValueError(f"forecast.frequency = '{forecast.frequency}' must step forward in time")
    if forecast.holidays is not None:
        import holidays

        if forecast.holidays not in holidays.list_supported_countries():
            raise ValueError(
                f"forecast.holidays = '{forecast.holidays}' is not a country code the holidays package knows (e.g. US, GB, DE)"
            )


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config error: file not found: {path}")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config error: {path}{where} is not valid YAML") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"config error: {path} must hold a mapping of keys, not {type(content).__name__}")
    return content


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge mappings key by key; anything that is not a mapping in `override` replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """Turn `a.b=value` into {'a': {'b': value}}, the value parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(f"config error: --set '{text}' is not of the form dotted.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"config error: --set {key} value '{raw}' is not valid YAML") from None
    nested: dict[str, Any] = {}
    cursor = nested
    parts = key.strip().split(".")
    for part in parts[:-1]:
        cursor[part] = {}
        cursor = cursor[part]
    cursor[parts[-1]] = value
    return nested


def _describe(error: dict[str, Any]) -> str:
    """One line for the first pydantic error: the key, the value and what was expected."""
    key = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return f"config error: {key} is not a known key"
    if kind == "missing":
        return f"config error: {key} is required"
    if not key or kind == "value_error":
        # Raised by this module's own validators, whose messages already name the key.
        return f"config error: {message}"
    return f"config error: {key} = {error.get('input')!r}: {message}"


def _resolve_paths(values: dict[str, Any], root: Path) -> dict[str, Any]:
    """Make relative file paths and sqlite URLs absolute, relative to the project root."""
    resolved = dict(values)

    def absolute(path: str) -> str:
        return str(path if Path(path).is_absolute() else root / path)

    data = resolved.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        path = data["path"]
        if path.startswith("file://"):
            path = path.removeprefix("file://")
        if "://" not in path:
            resolved["data"] = {**data, "path": absolute(path)}
    paths = resolved.get("paths")
    if isinstance(paths, dict) and isinstance(paths.get("output"), str) and paths["output"].strip():
        resolved["paths"] = {**paths, "output": absolute(paths["output"])}
    for section, key in (("tracking", "uri"), ("prediction_log", "url"), ("modelling", "study_storage")):
        values_of = resolved.get(section)
        if isinstance(values_of, dict) and isinstance(values_of.get(key), str):
            uri = values_of[key]
            if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
                resolved[section] = {**values_of, key: "sqlite:///" + absolute(uri.removeprefix("sqlite:///"))}
    return resolved


def build_config(values: dict[str, Any]) -> Config:
    """Validate a merged mapping, turning pydantic's report into one actionable line."""
    try:
        return Config.model_validate(values)
    except ValidationError as error:
        errors = sorted(error.errors(), key=lambda item: item["type"] != "extra_forbidden")  # a typo explains the rest
        raise ConfigError(_describe(dict(errors[0]))) from None


def load_config(
    config_path: Path | None = None,
    overrides: list[str] | None = None,
    run: RunConfig | None = None,
    project_config_path: Path | None = None,
) -> Config:
    """Project YAML, then the use-case YAML, then --set overrides, then the use case's run axes."""
    project_path = project_config_path or DEFAULT_PROJECT_CONFIG
    merged = _read_yaml(project_path)
    merged = deep_merge(merged, _read_yaml(config_path or DEFAULT_USE_CASE_CONFIG))
    for text in overrides or []:
        merged = deep_merge(merged, parse_override(text))
    if run is not None:
        given = merged.get("run") or {}
        wanted = run.model_dump()
        for key, value in (given.items() if isinstance(given, dict) else []):
            if wanted.get(key, value) != value:
                raise ConfigError(
                    f"config error: run.{key} = {value!r} conflicts with this use case, which runs with "
                    f"run.{key} = {wanted[key]!r}; pick the use case instead of setting run.*"
                )
        merged = deep_merge(merged, {"run": wanted})
    return build_config(_resolve_paths(merged, project_path.resolve().parent))
