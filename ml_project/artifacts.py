"""The model bundle: one folder per version, written atomically, verified by SHA-256 before unpickling.

Layout: `<paths.output>/models/<model_name>/<version>/` with `latest` -> newest version. The
bundle holds the fitted pipeline, the input schema, the config snapshot, metrics, leaderboard,
training-data fingerprint, package versions, a training reference sample and `manifest.json`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import yaml

from ml_project.errors import BundleError
from ml_project.validation import InputSchema

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PIPELINE_FILE = "pipeline.joblib"
LATEST = "latest"
CHAMPION = "champion"
REQUIRED_FILES = (PIPELINE_FILE, "schema.json", "metrics.json", "fingerprint.json", "config.yaml", "model.json", "versions.json")
# Files a served model never reads. A serving copy (what executables/cloud_setup.sh ships) leaves them
# out, so training rows and the training config (which may name databases) do not travel to a
# platform; every file that is present is still verified against the manifest. The leaderboard
# (trial parameters and CV scores) travels: the dashboard's model card shows it.
NOT_SERVED = ("config.yaml", "reference.parquet", "training_quarantine.csv", "plots")
HASH_ROWS = 1_000_000  # rows hashed at a time by fingerprint_frame
AUDIT_FILE = "promotions.jsonl"  # the champion gate's decisions, one JSON object a line (ml_project.promotion)
RECORDED_PACKAGES = ("scikit-learn", "pandas", "numpy", "pandera", "pydantic", "joblib", "pyarrow")


@dataclass(frozen=True)
class Bundle:
    """Everything needed to predict and to explain a model version."""

    pipeline: Any
    schema: InputSchema
    model_name: str
    metrics: dict[str, dict[str, float]]
    fingerprint: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    leaderboard: pd.DataFrame | None = None
    version: str = ""
    path: Path | None = None
    compiled: Any = field(default=None, compare=False, repr=False)  # the verified numpy fast path, if any

    @property
    def classes(self) -> list[str]:
        return list(self.schema.classes or [])


def model_card(config: Any, algorithm: str, params: dict[str, Any], rows: dict[str, int]) -> dict[str, Any]:
    """The card every bundle holds (model.json): what was trained, on what, ranked by which metric, when."""
    return {
        "model_name": config.tracking.model_name,
        "task": config.data.task,
        "target": config.data.target,
        "algorithm": algorithm,
        "params": params,
        "metric": config.modelling.metric,
        "trained_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "rows": rows,
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_frame(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """A content hash of the training data (of `columns`, default all): same rows, columns and values give
    the same hash.

    Each row's hash depends on that row only, so the rows are hashed HASH_ROWS at a time into one sha256:
    the same digest as hashing the whole selection at once, without a copy of it.
    """
    names = [str(column) for column in (frame.columns if columns is None else columns)]
    digest = hashlib.sha256()
    for start in range(0, len(frame), HASH_ROWS):
        rows = frame.iloc[start : start + HASH_ROWS][names]
        digest.update(pd.util.hash_pandas_object(rows, index=True).to_numpy().tobytes())
    digest.update(json.dumps(names).encode())
    return {"sha256": digest.hexdigest(), "rows": int(len(frame)), "columns": names}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def new_version(models_dir: Path) -> str:
    """A sortable UTC timestamp; a suffix keeps two exports in the same second apart."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    version, n = stamp, 1
    while (models_dir / version).exists():
        n += 1
        version = f"{stamp}-{n}"
    return version


def _write_files(
    bundle: Bundle, folder: Path, tables: dict[str, pd.DataFrame], plots: dict[str, Any]
) -> None:
    import joblib

    joblib.dump(bundle.pipeline, folder / PIPELINE_FILE, compress=0)
    (folder / "schema.json").write_text(bundle.schema.model_dump_json(indent=2))
    (folder / "config.yaml").write_text(yaml.safe_dump(bundle.config, sort_keys=False))
    (folder / "metrics.json").write_text(json.dumps(bundle.metrics, indent=2, sort_keys=True))
    (folder / "fingerprint.json").write_text(json.dumps(bundle.fingerprint, indent=2))
    (folder / "versions.json").write_text(json.dumps(bundle.versions, indent=2))
    (folder / "model.json").write_text(json.dumps(bundle.card, indent=2, default=str))
    if bundle.leaderboard is not None:
        bundle.leaderboard.to_csv(folder / "leaderboard.csv", index=False)
    for name, table in tables.items():
        if name.endswith(".parquet"):
            table.to_parquet(folder / name, index=False)
        else:
            table.to_csv(folder / name, index=False)
    if plots:
        (folder / "plots").mkdir()
        for name, figure in plots.items():
            figure.savefig(folder / "plots" / f"{name}.png", dpi=110)


def _write_manifest(folder: Path, bundle: Bundle) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {
        "model_name": bundle.model_name,
        "version": bundle.version,
        "files": {str(p.relative_to(folder)): sha256_file(p) for p in files},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def point_link(model_dir: Path, name: str, version: str) -> None:
    """Swap the `name` link (latest, champion) in one rename: readers see the old or the new version, never neither."""
    temporary = model_dir / f".{name}.{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(version, target_is_directory=True)
    os.replace(temporary, model_dir / name)


def save_bundle(
    bundle: Bundle,
    models_dir: Path,
    tables: dict[str, pd.DataFrame] | None = None,
    plots: dict[str, Any] | None = None,
    link_latest: bool = True,
) -> Bundle:
    """Write the bundle to a temporary folder, then rename it into place and (`link_latest`) move `latest`.

    `tables` are extra data files by name (e.g. `reference.parquet`, `training_quarantine.csv`). The
    champion gate saves with `link_latest=False` and moves `latest` itself once the run's every step
    has succeeded.
    """
    model_dir = models_dir / bundle.model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = bundle.version or new_version(model_dir)
    staged = replace(bundle, version=version, card={**bundle.card, "version": version})
    temporary = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=model_dir))
    try:
        temporary.chmod(0o755)  # mkdtemp makes it owner-only; a serving account must be able to read it
        _write_files(staged, temporary, tables or {}, plots or {})
        _write_manifest(temporary, staged)
        final = model_dir / version
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if link_latest:
        point_link(model_dir, LATEST, version)
    return replace(staged, path=final)


def locate_bundle(models_dir: Path, model_name: str, given: Path | str | None) -> Path:
    """What `--model` names: `champion` (the default), `latest`, a version folder name of `model_name`,
    or a bundle folder. With no `--model` and no champion yet, `latest`, and one warning says so."""
    model_dir = models_dir / model_name
    if given is None:
        if (model_dir / CHAMPION).is_symlink():
            return model_dir / CHAMPION
        if (model_dir / LATEST).is_symlink():
            latest = os.readlink(model_dir / LATEST)
            refused = _refusal(model_dir, latest)
            if refused is not None:
                raise BundleError(
                    f"bundle error: model {model_name} has no champion: its latest bundle {latest} was not promoted "
                    f"({refused}); pass --model latest to use it anyway"
                )
            logger.warning("model %s has no champion yet: using latest (%s)", model_name, latest)
        return model_dir
    if str(given) == LATEST:
        return model_dir
    if str(given) == CHAMPION:
        if not (model_dir / CHAMPION).is_symlink():
            raise BundleError(f"bundle error: model {model_name} has no champion yet under {model_dir} (train one first)")
        return model_dir / CHAMPION
    path = Path(given)
    if len(path.parts) == 1 and not path.exists() and (model_dir / path / MANIFEST).is_file():
        return model_dir / path  # a version folder's name
    if not path.exists():
        raise BundleError(f"bundle error: no model bundle '{given}' for {model_name}; {known_bundles(model_dir)}")
    return path


def read_decisions(model_dir: Path) -> list[dict[str, Any]]:
    """The champion gate's audit trail (ml_project.promotion writes it), oldest first: which version was
    champion when, and why."""
    path = model_dir / AUDIT_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _refusal(model_dir: Path, version: str) -> str | None:
    """The gate's reason when it decided not to promote `version` (its audit line), else None."""
    for decision in read_decisions(model_dir):
        if decision.get("candidate_version") == version and not decision.get("promoted", True):
            return str(decision.get("reason", "no reason recorded"))
    return None


def served_as(models_dir: Path, model_name: str, given: Path | str | None) -> str:
    """How `--model` named the bundle, as `GET /model` and the logs report it: champion, latest or path."""
    if given is None:
        return CHAMPION if (models_dir / model_name / CHAMPION).is_symlink() else LATEST
    return str(given) if str(given) in (CHAMPION, LATEST) else "path"


def known_bundles(model_dir: Path) -> str:
    """What `--model` can name for this model, for an error line."""
    links = [f"{name} ({os.readlink(model_dir / name)})" for name in (CHAMPION, LATEST) if (model_dir / name).is_symlink()]
    versions = sorted(entry.name for entry in model_dir.iterdir() if (entry / MANIFEST).is_file() and not entry.is_symlink()) if model_dir.is_dir() else []
    if not links and not versions:
        return f"{model_dir} holds no bundle (train one with ./executables/run.sh)"
    shown = ", ".join(versions[-5:]) + (f" and {len(versions) - 5} older" if len(versions) > 5 else "")
    return f"known: {', '.join(links) or 'no champion or latest link'}; versions {shown or 'none'}; or a bundle folder path"


def resolve_bundle_path(path: Path) -> Path:
    """Accept a version folder, a `latest` link, or a model folder (meaning its latest version)."""
    if not path.exists():
        raise BundleError(f"bundle error: no model bundle at {path} (train one with ./executables/run.sh)")
    if not (path / MANIFEST).exists() and (path / LATEST).exists():
        path = path / LATEST
    return path.resolve()


def not_served(name: str) -> bool:
    """Whether a bundle file (manifest name) is one that serving never reads (see NOT_SERVED)."""
    return name.split("/", 1)[0] in NOT_SERVED


def verify_manifest(folder: Path, serving: bool = False) -> dict[str, Any]:
    """Check every file listed in the manifest against its SHA-256; refuse the bundle on any mismatch.

    `serving=True` accepts a serving copy: files that serving never reads may be absent.
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"bundle error: {folder} has no {MANIFEST}; it is not a model bundle")
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        files = manifest["files"]
        if not isinstance(files, dict) or not isinstance(manifest["version"], str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"bundle error: {manifest_path} is not a valid manifest; refusing to load the bundle") from None
    for name in files:
        if not (folder / name).resolve().is_relative_to(folder.resolve()):
            raise BundleError(f"bundle error: {manifest_path} lists '{name}', outside the bundle; refusing to load it")
    for required in REQUIRED_FILES:
        if required not in files:
            raise BundleError(f"bundle error: {manifest_path} does not list {required}; refusing to load an unverified bundle")
    for name, expected in files.items():
        file = folder / name
        if not file.is_file():
            if serving and not_served(name):
                continue
            raise BundleError(f"bundle error: {folder} is missing {name}, listed in {MANIFEST}")
        if sha256_file(file) != expected:
            raise BundleError(
                f"bundle error: {file} does not match its SHA-256 in {MANIFEST}: it was changed after export; refusing to load it"
            )
    return manifest


def _read_schema(path: Path) -> InputSchema:
    from pydantic import ValidationError

    try:
        return InputSchema.model_validate_json(path.read_text())
    except ValidationError as error:
        first = error.errors()[0]
        raise BundleError(f"bundle error: {path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def load_bundle(path: Path, serving: bool = False) -> Bundle:
    """Verify, then load. Nothing is unpickled before the manifest checks out.

    `serving=True` also loads a serving copy, which lacks the NOT_SERVED files (config is then empty).
    """
    import joblib

    folder = resolve_bundle_path(Path(path))
    manifest = verify_manifest(folder, serving)
    config_file = folder / "config.yaml"
    leaderboard_file = folder / "leaderboard.csv"
    bundle = Bundle(
        pipeline=joblib.load(folder / PIPELINE_FILE),
        schema=_read_schema(folder / "schema.json"),
        model_name=manifest["model_name"],
        version=manifest["version"],
        metrics=json.loads((folder / "metrics.json").read_text()),
        fingerprint=json.loads((folder / "fingerprint.json").read_text()),
        config=yaml.safe_load(config_file.read_text()) if config_file.exists() else {},
        card=json.loads((folder / "model.json").read_text()),
        versions=json.loads((folder / "versions.json").read_text()),
        leaderboard=pd.read_csv(leaderboard_file) if leaderboard_file.exists() else None,
        path=folder,
    )
    return with_fast_path(bundle)


def with_fast_path(bundle: Bundle) -> Bundle:
    """Attach the compiled numpy path when it reproduces the sklearn pipeline on a schema sample.

    Checked at every load, so a pipeline step the compiler does not know, or any disagreement,
    falls back to the sklearn pipeline instead of serving different numbers.
    """
    if bundle.schema.task == "forecasting":
        return bundle  # a forecaster, not a scikit-learn pipeline: nothing to compile
    from ml_project.compiled import compile_pipeline, verify_compiled

    compiled = compile_pipeline(bundle.pipeline)
    if compiled is None:
        logger.info("model %s: a pipeline step has no compiled form; predicting through scikit-learn", bundle.version)
        return bundle
    reason = verify_compiled(compiled, bundle.pipeline, bundle.schema)
    if reason is not None:
        logger.warning("model %s: compiled path disagrees with scikit-learn (%s); not used", bundle.version, reason)
        return bundle
    return replace(bundle, compiled=compiled)
