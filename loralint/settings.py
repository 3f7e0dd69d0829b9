"""Settings: `[tool.loralint]` in pyproject.toml, or `.loralint.toml`, found by walking up.

Validated with pydantic so a typo in a key or a wrong type is a clear error (exit 2), not a
silently ignored setting.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SETTINGS_FILES = (".loralint.toml", "loralint.toml", "pyproject.toml")
SeverityName = Literal["error", "warning", "info"]


class SettingsError(Exception):
    """Settings that cannot be used; the CLI prints it and exits 2."""


class CustomRule(BaseModel):
    """A user-defined rule on one of the shipped checks (an organisation's policy)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    code: str = Field(pattern=r"^[A-Z][A-Z0-9]*[0-9]+$")
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    check: str
    severity: SeverityName = "warning"
    params: dict[str, Any] = Field(default_factory=dict)
    summary: str = ""
    message: str | None = None  # overrides the check's message; may use {value}, {field}, {limit}


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    select: list[str] | None = None
    ignore: list[str] = Field(default_factory=list)
    extend_select: list[str] = Field(default_factory=list, alias="extend-select")
    per_file_ignores: dict[str, list[str]] = Field(default_factory=dict, alias="per-file-ignores")
    severity: dict[str, SeverityName] = Field(default_factory=dict)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    rules: list[CustomRule] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    extend_exclude: list[str] = Field(default_factory=list, alias="extend-exclude")
    include: list[str] = Field(default_factory=list)
    respect_gitignore: bool = Field(default=True, alias="respect-gitignore")
    fail_level: SeverityName = Field(default="warning", alias="fail-level")
    dataset_size: int | None = Field(default=None, alias="dataset-size", ge=0)
    per_file_dataset_size: dict[str, int] = Field(default_factory=dict, alias="per-file-dataset-size")
    model: str | None = None
    online: bool = False
    cache: bool = True

    # Where the settings came from; relative globs are relative to `root`.
    root: Path = Field(default_factory=Path.cwd, exclude=True)
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("select", "ignore", "extend_select")
    @classmethod
    def _codes_upper(cls, value):
        return None if value is None else [c.strip().upper() for c in value]

    @field_validator("per_file_ignores")
    @classmethod
    def _pfi_upper(cls, value):
        return {glob: [c.strip().upper() for c in codes] for glob, codes in value.items()}


def find_settings_file(start: Path) -> Path | None:
    """The nearest settings file at or above `start` that configures loralint."""
    current = start.resolve()
    if current.is_file():
        current = current.parent
    for directory in (current, *current.parents):
        for name in SETTINGS_FILES:
            candidate = directory / name
            if not candidate.is_file():
                continue
            if name != "pyproject.toml":
                return candidate
            try:
                if "loralint" in _read_toml(candidate).get("tool", {}):
                    return candidate
            except SettingsError:
                return candidate  # report the broken file rather than skip it silently
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror}") from exc


def load_settings(path: Path | None) -> Settings:
    if path is None:
        return Settings()
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("loralint", {})
    elif "tool" in data and "loralint" in data["tool"]:
        data = data["tool"]["loralint"]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"{path}: invalid loralint settings: {problems}") from exc
    settings.root = path.parent.resolve()
    settings.source = path
    return settings


def discover_settings(paths: list[Path], explicit: Path | None = None) -> Settings:
    if explicit is not None:
        if not explicit.is_file():
            raise SettingsError(f"{explicit}: settings file not found")
        return load_settings(explicit)
    start = paths[0] if paths else Path.cwd()
    return load_settings(find_settings_file(start if start.exists() else Path.cwd()))
