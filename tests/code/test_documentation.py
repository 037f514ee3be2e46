"""The reference pages keep up with the code: every config key, use case and module is documented."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ml_project.config import PROJECT_ROOT, Config

DOCUMENTATION = PROJECT_ROOT / "documentation"


def config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every field of `model` and of the pydantic models it nests, as dotted keys (`data.features.numerical`)."""
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if prefix:  # a nested section such as data.features is a key of its own
                keys.append(key)
            keys.extend(config_keys(annotation, f"{key}."))
        else:
            keys.append(key)
    return keys


def modules(folder: Path) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")


def missing_from(page: str, names: list[str]) -> list[str]:
    """The names that `page` never writes as code, `name` between backticks (a bare word would match anything)."""
    text = (DOCUMENTATION / page).read_text()
    return [name for name in names if f"`{name}`" not in text]


def test_the_walk_finds_every_section_and_nested_keys() -> None:
    keys = config_keys(Config)
    assert {key.split(".")[0] for key in keys} == set(Config.model_fields)
    assert "data.features.numerical" in keys and "data.features" in keys
    assert "monitoring.holdout_report" in keys
    assert all("." in key for key in keys)


def test_every_config_key_is_in_configuration_md() -> None:
    missing = missing_from("configuration.md", config_keys(Config))
    assert not missing, f"keys of ml_project/config.py missing from documentation/configuration.md: {', '.join(missing)}"


def test_every_use_case_is_in_use_cases_md() -> None:
    names = modules(PROJECT_ROOT / "use_cases")
    assert len(names) >= 9
    missing = missing_from("use_cases.md", names)
    assert not missing, f"use cases missing from documentation/use_cases.md: {', '.join(missing)}"


def test_every_module_is_in_architecture_md() -> None:
    names = modules(PROJECT_ROOT / "ml_project")
    assert "config" in names
    missing = missing_from("architecture.md", names)
    assert not missing, f"ml_project modules missing from documentation/architecture.md: {', '.join(missing)}"
