"""Assemble a ready-to-ship folder for one deployment target: ./executables/cloud_setup.sh TARGET [flags]

TARGET is one of: docker, heroku, google_app_engine, google_cloud_function, aws_lambda, sagemaker.
The bundle may be a classification or regression model (POST /predict) or a forecasting one (POST /forecast:
docker and aws_lambda only; see `Target.forecasting`).
The folder (default <paths.output>/deployment/<TARGET>/) holds:
  model/             the verified model bundle (--model: champion by default, latest, or a folder)
  requirements.txt   the runtime packages only, hash-pinned from Pipfile.lock (no mlflow, evidently, optuna, pytest);
                     a forecasting bundle's also has mlforecast and statsforecast (deployment/requirements-forecasting.in)
  ml_project/, deployment/   the code the service runs (deployment/app.py and its routers, deployment/run_deployed.py)
  deployment.json    what was assembled: target, model, service settings
  <target files>     rendered from deployment/<TARGET>/ (Dockerfile, Procfile, app.yaml, main.py, main.tf, ...)
  deploy.sh          the commands that ship it, printed at the end too

Target files and deploy commands are jinja2 templates over the same {{name}} placeholders (`placeholders`);
an unknown name stops the assembly. The commands are rendered once (`shipping`) for deploy.sh and the printout.

Assembling needs no cloud account or credentials. Accounts, projects and regions are never written
into the folder: deploy.sh reads them from documented environment variables and stops with one line
naming a missing one. See documentation/deployment.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from deployment.run_deployed import DEPLOYMENT_FILE
from ml_project.artifacts import Bundle, load_bundle, not_served
from ml_project.artifacts import served_as as model_reference
from ml_project.cli import load_model, main_entry, make_parser
from ml_project.config import PROJECT_ROOT, Config, ConfigError, RunConfig

NAME = "cloud_setup"
RUN = RunConfig(mode="prediction", data="production", environment="deployed")
TEMPLATES = PROJECT_ROOT / "deployment"
LOCK_FILE = PROJECT_ROOT / "Pipfile.lock"
# Never in a deployed folder: training, tracking, monitoring and test tools.
FORBIDDEN = ("mlflow", "mlflow-skinny", "mlflow-tracing", "evidently", "optuna", "pandera", "pytest", "mypy")
# The runtime roots a forecasting bundle adds to deployment/requirements.in (its pickled MLForecast or StatsForecast).
FORECASTING_ROOTS = TEMPLATES / "requirements-forecasting.in"
# Dependencies a package declares that a deployed folder leaves out, each with why serving never imports it.
# Only these edges are cut: the same package needed by anything else is still refused (FORBIDDEN).
LEFT_OUT: dict[tuple[str, str], str] = {
    ("mlforecast", "optuna"): "only mlforecast.auto (hyperparameter search) imports it; the served forecaster never does",
}
# How pip installs a folder's requirements.txt: --no-deps when a dependency was left out (LEFT_OUT), since pip
# would otherwise resolve it and refuse it as unpinned in hash-checking mode. The pinned closure is complete.
PIP_FLAGS = "--require-hashes"
PIP_FLAGS_LEFT_OUT = "--require-hashes --no-deps"
# The shipped code: the service and what it imports, plus ml_project (the pickled pipeline refers to it).
RUNTIME_MODULES = (
    "__init__.py",
    "app.py",
    "prediction_api.py",
    "forecast_api.py",
    "sagemaker_api.py",
    "dashboard_api.py",
    "dashboard_figures.py",
    "workers.py",
    "run_deployed.py",
    "process.py",
)
RUNTIME_FOLDERS = ("templates", "assets")  # the dashboard's page template and its vendored plotly.js
SKIP_TEMPLATE = ("requirements.in",)
# What deploy.sh leaves in a folder that the next assembly must keep: Terraform's state (the
# resources it already created) and the Heroku git repository.
MARKER = ".cloud_setup"  # written into every assembled folder: the only folders --out may replace
CARRIED_OVER = (".terraform", ".terraform.lock.hcl", "terraform.tfstate", "terraform.tfstate.backup", ".git")


@dataclass(frozen=True)
class Target:
    """How one target is shipped: what deploy.sh needs from the environment, which tools, which commands."""

    summary: str
    needs: tuple[tuple[str, str], ...]  # (environment variable, what it is)
    tools: tuple[str, ...]
    commands: tuple[str, ...]  # jinja2 templates over `placeholders`, like the target's files
    then: str = ""
    options: tuple[tuple[str, str], ...] = ()  # optional variables with their defaults
    forecasting: str = ""  # why a forecasting bundle cannot ship to this target ("" = it can)


@dataclass(frozen=True)
class Shipping:
    """A target's deploy commands with the assembly's values filled in, once: deploy.sh and the printed
    next steps both read them."""

    options: tuple[tuple[str, str], ...]
    commands: tuple[str, ...]
    then: str


# ECR tags are immutable and name the content (model version + hash of model, code and requirements):
# an image already pushed under this tag is this very folder (a rollback, say), so it is reused.
PUSH_ONCE = (
    'if aws ecr describe-images --region "$AWS_REGION" --repository-name "${REPOSITORY#*/}"'
    " --image-ids imageTag={{image_tag}} >/dev/null 2>&1; then echo 'image {{image_tag}} is already in ECR';"
    ' else aws ecr get-login-password --region "$AWS_REGION"'
    ' | docker login --username AWS --password-stdin "${REPOSITORY%%/*}"'
    ' && docker build --platform linux/amd64 --provenance=false -t "$REPOSITORY:{{image_tag}}" .'
    ' && docker push "$REPOSITORY:{{image_tag}}"; fi'
)

# A platform that installs requirements.txt with its own `pip install -r` cannot be told --no-deps from the folder.
OWN_PIP = (
    "its build runs its own `pip install -r requirements.txt`, which cannot be given --no-deps and so would fetch optuna "
    "(mlforecast declares it; a deployed folder leaves it out)"
)

TARGETS: dict[str, Target] = {
    "docker": Target(
        summary="a Docker image: multi-stage build, slim runtime, non-root, HEALTHCHECK on /health",
        needs=(),
        tools=("docker",),
        options=(("IMAGE", "{{service_name}}:{{image_tag}}"),),
        commands=('docker build -t "$IMAGE" .',),
        then='docker run --rm -p 8000:8000 "$IMAGE"   # then: curl http://127.0.0.1:8000/health',
    ),
    "heroku": Target(
        summary="a Heroku app: Procfile web process on $PORT, Python pinned in .python-version",
        needs=(("HEROKU_APP", "the Heroku app to push to (heroku create <name> makes one)"),),
        tools=("git", "heroku"),
        commands=(
            "[ -d .git ] || git init -q -b main",
            "git add -A",
            'git commit -q -m "model {{model_name}} version {{model_version}}" --allow-empty',
            'heroku git:remote -a "$HEROKU_APP"',
            "git push --force heroku main",
        ),
        then='curl "$(heroku info -s -a "$HEROKU_APP" | sed -n s/^web_url=//p)health"',
        forecasting=OWN_PIP,
    ),
    "google_app_engine": Target(
        summary="an App Engine standard service: app.yaml with the service's entrypoint",
        needs=(("GOOGLE_CLOUD_PROJECT", "the GCP project id to deploy into"),),
        tools=("gcloud",),
        commands=('gcloud app deploy app.yaml --project "$GOOGLE_CLOUD_PROJECT" --version {{gae_version}} --quiet',),
        then="curl \"https://$(gcloud app describe --project \"$GOOGLE_CLOUD_PROJECT\" --format='value(defaultHostname)')/health\"",
        forecasting=OWN_PIP,
    ),
    "google_cloud_function": Target(
        summary="a Cloud Function (2nd gen): main.py entry point `predict`, function.zip, Terraform main.tf",
        needs=(
            ("GOOGLE_CLOUD_PROJECT", "the GCP project id to deploy into"),
            ("GOOGLE_CLOUD_REGION", "the GCP region, e.g. europe-west1"),
        ),
        tools=("terraform",),
        commands=(
            "terraform init -input=false",
            'terraform apply -var "project=$GOOGLE_CLOUD_PROJECT" -var "region=$GOOGLE_CLOUD_REGION"',
        ),
        then='curl -H "Authorization: bearer $(gcloud auth print-identity-token)" "$(terraform output -raw url)/health"',
        forecasting=OWN_PIP,
    ),
    "aws_lambda": Target(
        summary="a container-image AWS Lambda (Mangum) behind an API Gateway HTTP API, Terraform main.tf",
        needs=(("AWS_REGION", "the AWS region, e.g. eu-west-1"),),
        tools=("terraform", "aws", "docker"),
        commands=(
            "terraform init -input=false",
            'terraform apply -var "region=$AWS_REGION" -target=aws_ecr_repository.model',
            'REPOSITORY="$(terraform output -raw repository_url)"',
            PUSH_ONCE,
            'terraform apply -var "region=$AWS_REGION" -var "image_tag={{image_tag}}"',
        ),
        then='curl "$(terraform output -raw url)/health"',
    ),
    "sagemaker": Target(
        summary="a SageMaker inference container (serve, /ping, /invocations on 8080) and model.tar.gz",
        needs=(
            ("AWS_REGION", "the AWS region, e.g. eu-west-1"),
            ("SAGEMAKER_ROLE_ARN", "the IAM role SageMaker assumes to pull the image and the model"),
            ("SAGEMAKER_BUCKET", "the S3 bucket that receives model.tar.gz"),
        ),
        tools=("aws", "docker"),
        options=(("SAGEMAKER_INSTANCE_TYPE", "ml.m5.large"),),
        commands=(
            'ACCOUNT="$(aws sts get-caller-identity --query Account --output text)"',
            'REPOSITORY="$ACCOUNT.dkr.ecr.$AWS_REGION.amazonaws.com/{{service_name}}"',
            'aws ecr describe-repositories --region "$AWS_REGION" --repository-names {{service_name}} >/dev/null 2>&1'
            ' || aws ecr create-repository --region "$AWS_REGION" --repository-name {{service_name}} >/dev/null',
            PUSH_ONCE,
            'aws s3 cp model.tar.gz "s3://$SAGEMAKER_BUCKET/{{service_name}}/{{image_tag}}/model.tar.gz"',
            'aws sagemaker describe-model --region "$AWS_REGION" --model-name {{service_name}}-{{image_tag}} >/dev/null 2>&1'
            ' || aws sagemaker create-model --region "$AWS_REGION" --model-name {{service_name}}-{{image_tag}}'
            ' --execution-role-arn "$SAGEMAKER_ROLE_ARN"'
            ' --primary-container "Image=$REPOSITORY:{{image_tag}},'
            'ModelDataUrl=s3://$SAGEMAKER_BUCKET/{{service_name}}/{{image_tag}}/model.tar.gz"',
            'aws sagemaker describe-endpoint-config --region "$AWS_REGION" --endpoint-config-name {{service_name}}-{{image_tag}}'
            " >/dev/null 2>&1"
            ' || aws sagemaker create-endpoint-config --region "$AWS_REGION" --endpoint-config-name {{service_name}}-{{image_tag}}'
            ' --production-variants "VariantName=AllTraffic,ModelName={{service_name}}-{{image_tag}},'
            'InstanceType=$SAGEMAKER_INSTANCE_TYPE,InitialInstanceCount=1"',
            'if aws sagemaker describe-endpoint --region "$AWS_REGION" --endpoint-name {{service_name}} >/dev/null 2>&1;'
            ' then aws sagemaker update-endpoint --region "$AWS_REGION" --endpoint-name {{service_name}}'
            " --endpoint-config-name {{service_name}}-{{image_tag}};"
            ' else aws sagemaker create-endpoint --region "$AWS_REGION" --endpoint-name {{service_name}}'
            " --endpoint-config-name {{service_name}}-{{image_tag}}; fi",
        ),
        then="aws sagemaker wait endpoint-in-service --region \"$AWS_REGION\" --endpoint-name {{service_name}}",
        forecasting="SageMaker calls GET /ping and POST /invocations with records to score, and a forecast has no records",
    ),
}


@dataclass(frozen=True)
class Pin:
    """One line of requirements.txt: a package pinned to its Pipfile.lock version, with the lock's hashes."""

    name: str
    version: str
    hashes: tuple[str, ...]

    def line(self) -> str:
        hashes = "".join(f" \\\n    --hash={value}" for value in self.hashes)
        return f"{self.name}=={self.version}{hashes}"


@dataclass(frozen=True)
class Assembly:
    """What cloud_setup produced."""

    target: str
    folder: Path
    bundle: Bundle
    served_as: str
    requirements: tuple[Pin, ...]
    values: dict[str, str]
    shipping: Shipping
    files: int
    size_bytes: int


@lru_cache(maxsize=4)
def _lock(lock_file: Path) -> dict[str, Any]:
    """Pipfile.lock, read once per process (an assembly asks it for packages, hash and Python)."""
    try:
        data: dict[str, Any] = json.loads(lock_file.read_text())
        data["default"], data["_meta"]["hash"]["sha256"], data["_meta"]["requires"]["python_version"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"cloud_setup: cannot read {lock_file}: {error}") from None
    return data


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _roots_of(file: Path) -> list[tuple[str, str]]:
    roots = []
    if file.exists():
        for line in file.read_text().splitlines():
            text = line.split("#", 1)[0].strip()
            if text:
                roots.append((text, str(file.relative_to(PROJECT_ROOT))))
    return roots


def read_roots(target: str) -> list[tuple[str, str]]:
    """The runtime packages asked for, each with the file that asks: deployment/requirements.in and the target's own."""
    return _roots_of(TEMPLATES / "requirements.in") + _roots_of(TEMPLATES / target / "requirements.in")


def forecasting_roots() -> list[tuple[str, str]]:
    """What a forecasting bundle adds: deployment/requirements-forecasting.in."""
    return _roots_of(FORECASTING_ROOTS)


def target_environment(lock_file: Path = LOCK_FILE) -> dict[str, str]:
    """Marker values of every platform here: x86_64 Linux with the Python of Pipfile.lock."""
    version = python_version(lock_file)
    return {
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "python_version": version,
        "python_full_version": f"{version}.0",
        "implementation_version": f"{version}.0",
    }


def runtime_requirements(target: str, lock_file: Path = LOCK_FILE, forecasting: bool = False) -> tuple[Pin, ...]:
    """Every package the target's runtime roots need (walked through installed metadata), pinned from the lock.

    `forecasting` adds the forecasting roots (`forecasting_roots`). Markers are evaluated for the platforms
    (`target_environment`: x86_64 Linux, the locked Python) with the extras asked for. A dependency in
    LEFT_OUT is not followed. A package missing from the lock's default section, installed at another
    version than locked, or among FORBIDDEN stops the assembly with one line.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    locked = {_canonical(name): entry for name, entry in _lock(lock_file)["default"].items()}
    environment = target_environment(lock_file)
    extras_of: dict[str, set[str]] = {}
    pending = []
    for text, file in read_roots(target) + (forecasting_roots() if forecasting else []):
        try:
            root = Requirement(text)
        except InvalidRequirement as error:
            raise ConfigError(f"cloud_setup: {file}: '{text}' is not a package name: {error}") from None
        if root.marker is None or root.marker.evaluate({**environment, "extra": ""}):
            pending.append((root, file))
    while pending:
        requirement, wanted_by = pending.pop()
        name = _canonical(requirement.name)
        extras = set(requirement.extras)
        if name in extras_of and extras <= extras_of[name]:
            continue
        extras_of.setdefault(name, set()).update(extras)
        if name in FORBIDDEN:
            raise ConfigError(f"cloud_setup: {name} (needed by {wanted_by}) must not be in a deployed folder")
        if name not in locked:
            raise ConfigError(
                f"cloud_setup: {name} (needed by {wanted_by}) is not in Pipfile.lock's default packages; "
                "add it to Pipfile [packages] and run pipenv lock"
            )
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ConfigError(f"cloud_setup: {name} is locked but not installed; run ./executables/run.sh once") from None
        for text in distribution.requires or []:
            dependency = Requirement(text)
            if (name, _canonical(dependency.name)) in LEFT_OUT:
                continue
            if dependency.marker is None or any(
                dependency.marker.evaluate({**environment, "extra": extra}) for extra in [*sorted(extras_of[name]), ""]
            ):
                pending.append((dependency, name))
    pins = []
    for name in sorted(extras_of):
        version = str(locked[name].get("version", "")).removeprefix("==")
        installed = metadata.version(name)
        if version != installed:
            raise ConfigError(
                f"cloud_setup: {name} is {installed} here but {version or 'unpinned'} in Pipfile.lock; "
                "run ./executables/run.sh once to resync the environment"
            )
        pins.append(Pin(name, version, tuple(locked[name].get("hashes", ()))))
    return tuple(pins)


def left_out(pins: tuple[Pin, ...]) -> list[tuple[str, str, str]]:
    """The LEFT_OUT dependencies of these pins: (package, dependency, why serving never needs it)."""
    names = {pin.name for pin in pins}
    return [(package, dependency, why) for (package, dependency), why in LEFT_OUT.items() if package in names]


def pip_flags(pins: tuple[Pin, ...]) -> str:
    """The flags a folder's requirements.txt is installed with (PIP_FLAGS_LEFT_OUT once a dependency is left out)."""
    return PIP_FLAGS_LEFT_OUT if left_out(pins) else PIP_FLAGS


def requirements_text(target: str, pins: tuple[Pin, ...], lock_file: Path = LOCK_FILE, forecasting: bool = False) -> str:
    lock_hash = _lock(lock_file)["_meta"]["hash"]["sha256"]
    head = (
        f"# Runtime requirements of the {target} deployment, exported by executables/cloud_setup.sh from\n"
        f"# Pipfile.lock (sha256 {lock_hash[:12]}): deployment/requirements.in"
        + (f" + deployment/{target}/requirements.in" if (TEMPLATES / target / "requirements.in").exists() else "")
        + (f" + {FORECASTING_ROOTS.relative_to(PROJECT_ROOT)}" if forecasting else "")
        + "\n# and everything they need, nothing else (no mlflow, evidently, optuna or test tools).\n"
    )
    for package, dependency, why in left_out(pins):
        head += f"# {dependency} is left out although {package} declares it: {why}.\n"
    if left_out(pins):
        head += f"# This list is complete: install it with pip install {pip_flags(pins)} -r requirements.txt\n"
    return head + "".join(pin.line() + "\n" for pin in pins)


def python_version(lock_file: Path = LOCK_FILE) -> str:
    """The Python of Pipfile's [requires], which every target's runtime is pinned to."""
    return str(_lock(lock_file)["_meta"]["requires"]["python_version"])


def slug(text: str) -> str:
    """A name cloud resources accept: lowercase letters, digits and hyphens, starting with a letter."""
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return value if value[:1].isalpha() else f"m-{value}"


def content_id(folder: Path, names: tuple[str, ...], settings: dict[str, object], templates: Path) -> str:
    """SHA-256 (12 hex) over the files under `names`, the target's templates and the service settings.

    That is everything a deployed folder runs, so an image tag built from it changes with any of it.
    """
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in sorted(templates.iterdir()):
        if path.is_file():
            digest.update(b"template:" + path.name.encode() + b"\0" + path.read_bytes())
    for name in names:
        for path in sorted((folder / name).rglob("*")) if (folder / name).is_dir() else [folder / name]:
            if path.is_file():
                digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def placeholders(
    bundle: Bundle, target: str, content: str, lock_file: Path = LOCK_FILE, pins: tuple[Pin, ...] = ()
) -> dict[str, str]:
    version = python_version(lock_file)
    return {
        "target": target,
        "model_name": bundle.model_name,
        "model_version": bundle.version,
        "service_name": slug(f"{bundle.model_name}-predict"),
        "content_id": content,
        "image_tag": re.sub(r"[^a-z0-9_.-]+", "-", bundle.version.lower()) + f"-{content[:8]}",
        "gae_version": slug(f"v{bundle.version}"),
        "python_version": version,
        "python_tag": version.replace(".", ""),
        "pip_flags": pip_flags(pins),
    }


def render(text: str, values: dict[str, str], source: Path | str) -> str:
    """Fill the {{name}} placeholders of a jinja2 template; an unknown name is an error, not a silent blank."""
    import jinja2

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    try:
        return environment.from_string(text).render(values)
    except jinja2.UndefinedError as error:
        name = str(error).split("'")[1] if "'" in str(error) else str(error)
        raise ConfigError(
            f"cloud_setup: {source} uses unknown placeholder {{{{{name}}}}}; known: {', '.join(values)}"
        ) from None
    except jinja2.TemplateSyntaxError as error:
        raise ConfigError(f"cloud_setup: {source} line {error.lineno}: {error.message}") from None


def shipping(target: str, values: dict[str, str]) -> Shipping:
    """The target's deploy commands, option defaults and follow-up rendered with `values`."""
    spec = TARGETS[target]
    where = f"TARGETS['{target}']"
    return Shipping(
        options=tuple((name, render(default, values, where)) for name, default in spec.options),
        commands=tuple(render(command, values, where) for command in spec.commands),
        then=render(spec.then, values, where),
    )


def deploy_script(target: str, values: dict[str, str], ship: Shipping) -> str:
    """deploy.sh: check the environment variables and tools, then run the target's commands."""
    spec = TARGETS[target]
    lines = [
        "#!/usr/bin/env bash",
        f"# Ships this folder: {target} deployment of model {values['model_name']} version {values['model_version']},",
        "# assembled by executables/cloud_setup.sh. Run it from anywhere: it works in its own folder.",
    ]
    lines += [f"#   {name}: {meaning} (required)" for name, meaning in spec.needs]
    lines += [f"#   {name}: optional, default {default}" for name, default in ship.options]
    lines += ["set -euo pipefail", 'cd "$(dirname "$0")"']
    for name, meaning in spec.needs:
        lines.append(f'[ -n "${{{name}:-}}" ] || {{ echo "deploy.sh: set {name}: {meaning}" >&2; exit 2; }}')
    for name, default in ship.options:
        lines.append(f'{name}="${{{name}:-{default}}}"')
    for tool in spec.tools:
        lines.append(
            f'command -v {tool} >/dev/null || {{ echo "deploy.sh: {tool} is not installed; it is needed to ship to {target}" >&2; exit 127; }}'
        )
    lines.append("set -x")
    lines += list(ship.commands)
    if ship.then:
        lines += ["set +x", "echo 'Shipped. Try it:'", "cat <<'NEXT'", ship.then, "NEXT"]
    return "\n".join(lines) + "\n"


def _copy_serving_files(bundle: Path, model: Path) -> None:
    """The bundle minus what serving never reads (artifacts.NOT_SERVED: training rows, training config, plots)."""
    model.mkdir()
    for entry in sorted(bundle.iterdir()):
        if not_served(entry.name) or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            shutil.copytree(entry, model / entry.name)
        else:
            shutil.copy2(entry, model / entry.name)


def _copy_code(staging: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PROJECT_ROOT / "ml_project", staging / "ml_project", ignore=ignore)
    (staging / "deployment").mkdir()
    for name in RUNTIME_MODULES:
        shutil.copy2(TEMPLATES / name, staging / "deployment" / name)
    for name in RUNTIME_FOLDERS:
        shutil.copytree(TEMPLATES / name, staging / "deployment" / name, ignore=ignore)


def _render_templates(staging: Path, target: str, values: dict[str, str]) -> None:
    for source in sorted((TEMPLATES / target).iterdir()):
        if source.name in SKIP_TEMPLATE or not source.is_file():
            continue
        destination = staging / source.name
        destination.write_text(render(source.read_text(), values, source.relative_to(PROJECT_ROOT)))
        shutil.copymode(source, destination)


def _zip_folder(folder: Path, destination: Path, exclude: set[str]) -> None:
    """A reproducible zip (fixed times, sorted): the same folder gives the same bytes, so the same hash."""
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if relative.parts[0] in exclude or not path.is_file():
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(2000, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IMODE(path.stat().st_mode) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def _tar_model(model: Path, destination: Path) -> None:
    """model.tar.gz for SageMaker's ModelDataUrl: the bundle files at the archive root (-> /opt/ml/model)."""
    with tarfile.open(destination, "w:gz") as archive:
        for path in sorted(model.rglob("*")):
            archive.add(path, arcname=path.relative_to(model).as_posix(), recursive=False)


def _check_out_folder(out: Path, bundle: Bundle) -> None:
    """Only an earlier assembly (its MARKER file says so) is replaced: an unrelated folder is never deleted."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise ConfigError(
            f"cloud_setup: --out {out} exists and is not a folder cloud_setup assembled; choose another or remove it"
        )
    assert bundle.path is not None
    for inside in (bundle.path.resolve(), PROJECT_ROOT / "ml_project", TEMPLATES):
        if out == inside or inside in out.parents or out in inside.parents:
            raise ConfigError(f"cloud_setup: --out {out} overlaps {inside}; choose a folder outside the model and the code")


def _deployment_record(
    target: str, bundle: Bundle, served_as: str, config: Config, values: dict[str, str]
) -> dict[str, Any]:
    """deployment.json: what was assembled, and the service settings the folder starts with."""
    return {
        "target": target,
        "model": "model",
        "model_name": bundle.model_name,
        "model_version": bundle.version,
        "served_as": served_as,
        "service": config.service.model_dump(exclude={"url", "host"}),
        "prediction_log": {"enabled": config.prediction_log.enabled},
        "python_version": values["python_version"],
        "content_id": values["content_id"],
        "assembled_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _fill_staging(
    staging: Path, target: str, bundle: Bundle, served_as: str, config: Config, pins: tuple[Pin, ...]
) -> tuple[dict[str, str], Shipping]:
    """Every file of the folder, in `staging`; the placeholders' values and the rendered deploy commands."""
    assert bundle.path is not None
    # A serving copy: no training rows, no training config; verified against the manifest like any load.
    _copy_serving_files(bundle.path, staging / "model")
    load_bundle(staging / "model", serving=True)
    _copy_code(staging)
    forecasting = bundle.schema.task == "forecasting"
    (staging / "requirements.txt").write_text(requirements_text(target, pins, forecasting=forecasting))
    settings = config.service.model_dump(exclude={"url", "host"})
    content = content_id(staging, ("model", "ml_project", "deployment", "requirements.txt"), settings, TEMPLATES / target)
    values = placeholders(bundle, target, content, pins=pins)
    deployment = _deployment_record(target, bundle, served_as, config, values)
    (staging / DEPLOYMENT_FILE).write_text(json.dumps(deployment, indent=2) + "\n")
    _render_templates(staging, target, values)
    ship = shipping(target, values)
    script = staging / "deploy.sh"
    script.write_text(deploy_script(target, values, ship))
    script.chmod(0o755)
    if target == "google_cloud_function":
        _zip_folder(staging, staging / "function.zip", exclude={"main.tf", "deploy.sh", "function.zip"})
    if target == "sagemaker":
        _tar_model(staging / "model", staging / "model.tar.gz")
    (staging / MARKER).write_text(json.dumps({"target": target, "assembled_at": deployment["assembled_at"]}) + "\n")
    return values, ship


def _swap_in(staging: Path, out: Path) -> None:
    """Replace `out` by `staging`, keeping what deploy.sh left in it (CARRIED_OVER)."""
    carried = [name for name in CARRIED_OVER if out.exists() and (out / name).exists()]
    try:
        for name in carried:
            (out / name).rename(staging / name)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:  # put the carried state back rather than lose it with the staging folder
        out.mkdir(parents=True, exist_ok=True)
        for name in carried:
            if (staging / name).exists():
                (staging / name).rename(out / name)
        raise


def assemble(target: str, bundle: Bundle, served_as: str, out: Path, config: Config) -> Assembly:
    """Build the folder next to `out`, verify the copied bundle, then swap it in."""
    forecasting = bundle.schema.task == "forecasting"
    if forecasting and TARGETS[target].forecasting:
        can = [name for name, spec in TARGETS.items() if not spec.forecasting]
        raise ConfigError(
            f"cloud_setup: {target} cannot ship a forecasting bundle ({bundle.model_name} {bundle.version}): "
            f"{TARGETS[target].forecasting}; assemble {', '.join(can[:-1])} or {can[-1]} instead"
        )
    _check_out_folder(out, bundle)
    pins = runtime_requirements(target, forecasting=forecasting)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.assembling-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        values, ship = _fill_staging(staging, target, bundle, served_as, config, pins)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_in(staging, out)
    files = [path for path in out.rglob("*") if path.is_file()]
    size = sum(path.stat().st_size for path in files)
    return Assembly(target, out, bundle, served_as, pins, values, ship, len(files), size)


def next_steps(assembly: Assembly) -> str:
    """The exact commands that ship the folder (deploy.sh runs the same), with what they need."""
    spec = TARGETS[assembly.target]
    folder = shlex.quote(str(assembly.folder))
    assignments = "".join(f"{name}=<{name.lower()}> " for name, _ in spec.needs)
    lines = [f"Next, ship it: cd {folder} && {assignments}./deploy.sh"]
    if spec.needs:
        missing = [name for name, _ in spec.needs if not os.environ.get(name)]
        lines.append(
            "  needs " + ", ".join(f"{name} ({meaning})" for name, meaning in spec.needs)
            + (f"; not set in this shell: {', '.join(missing)}" if missing else "")
        )
    lines.append("deploy.sh runs, in that folder:")
    ship = assembly.shipping
    lines += [f"  {name}=\"${{{name}:-{default}}}\"" for name, default in ship.options]
    lines += [f"  {command}" for command in ship.commands]
    if ship.then:
        lines.append(f"then: {ship.then}")
    return "\n".join(lines)


def main(config: Config, args: argparse.Namespace) -> int:
    target = args.target
    bundle = load_model(config, args.model, forecasting=None)  # /predict or /forecast: both ship
    served_as = model_reference(config.paths.models, config.tracking.model_name, args.model)
    out = (args.out or config.paths.output / "deployment" / target).resolve()
    assembly = assemble(target, bundle, served_as, out, config)
    print(
        f"Assembled {target} ({TARGETS[target].summary}) for model {bundle.model_name} version {bundle.version} "
        f"({served_as}) in {assembly.folder}: {assembly.files} files, {assembly.size_bytes / 1e6:.1f} MB, "
        f"{len(assembly.requirements)} runtime requirements."
    )
    print(next_steps(assembly))
    return 0


def parser() -> argparse.ArgumentParser:
    result = make_parser(NAME, __doc__ or NAME)
    result.prog = "./executables/cloud_setup.sh"
    result.add_argument("target", choices=list(TARGETS), metavar="TARGET", help=f"one of: {', '.join(TARGETS)}")
    result.add_argument(
        "--model",
        type=Path,
        help="bundle folder, or champion / latest of tracking.model_name (default: champion)",
    )
    result.add_argument("--out", type=Path, help="folder to assemble into (default: <paths.output>/deployment/TARGET)")
    return result


if __name__ == "__main__":
    main_entry(NAME, parser(), RUN, main)
