"""The pydantic schema of a settings file: unknown keys and wrong types are clear errors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loralint.safe_read import DEFAULT_MAX_DATA_FILE_SIZE, DEFAULT_MAX_FILE_SIZE, parse_size

SeverityName = Literal["error", "warning", "info"]


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


class SettingsFile(BaseModel):
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
    online: bool = False  # accepted, never obeyed: network use is the user's call (settings.load_settings)
    cache: bool = True
    # Bytes, or a size with a unit: 10_000_000, "10 MB", "512 KiB".
    max_file_size: int = Field(default=DEFAULT_MAX_FILE_SIZE, alias="max-file-size", ge=1)
    max_data_file_size: int = Field(default=DEFAULT_MAX_DATA_FILE_SIZE, alias="max-data-file-size", ge=1)

    @field_validator("max_file_size", "max_data_file_size", mode="before")
    @classmethod
    def _size(cls, value):
        return parse_size(value) if isinstance(value, str) else value

    @field_validator("select", "ignore", "extend_select")
    @classmethod
    def _codes_upper(cls, value):
        return None if value is None else [c.strip().upper() for c in value]

    @field_validator("per_file_ignores")
    @classmethod
    def _pfi_upper(cls, value):
        return {glob: [c.strip().upper() for c in codes] for glob, codes in value.items()}
