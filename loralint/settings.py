"""Settings: `[tool.loralint]` in pyproject.toml, or `.loralint.toml`, found by walking up.

Validated with pydantic so a typo in a key or a wrong type is a clear error (exit 2), not a
silently ignored setting.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SETTINGS_FILES = (".loralint.toml", "loralint.toml", "pyproject.toml")


class SettingsError(Exception):
    """Settings that cannot be used; the CLI prints it and exits 2."""


@dataclass(slots=True)
class CustomRule:
    """A user-defined rule on one of the shipped checks (an organisation's policy)."""

    code: str
    name: str
    check: str
    severity: str = "warning"
    params: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    message: str | None = None  # overrides the check's message; may use {value}, {field}, {limit}


@dataclass(slots=True)
class Settings:
    """Effective settings. Defaults need no file and no pydantic (a fast start); a settings file
    is validated by the pydantic schema in loralint/settings_schema.py."""

    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    extend_select: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[CustomRule] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    extend_exclude: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    respect_gitignore: bool = True
    fail_level: str = "warning"
    dataset_size: int | None = None
    per_file_dataset_size: dict[str, int] = field(default_factory=dict)
    model: str | None = None
    online: bool = False
    cache: bool = True
    # Where the settings came from; relative globs are relative to `root`.
    root: Path = field(default_factory=Path.cwd)
    source: Path | None = None


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
    from pydantic import ValidationError

    from loralint.settings_schema import SettingsFile

    try:
        validated = SettingsFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"{path}: invalid loralint settings: {problems}") from exc
    values = validated.model_dump()
    values["rules"] = [CustomRule(**rule) for rule in values["rules"]]
    return Settings(**values, root=path.parent.resolve(), source=path)


def discover_settings(paths: list[Path], explicit: Path | None = None) -> Settings:
    if explicit is not None:
        if not explicit.is_file():
            raise SettingsError(f"{explicit}: settings file not found")
        return load_settings(explicit)
    start = paths[0] if paths else Path.cwd()
    return load_settings(find_settings_file(start if start.exists() else Path.cwd()))
