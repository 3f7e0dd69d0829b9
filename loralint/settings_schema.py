"""The pydantic schema of a settings file: unknown keys and wrong types are clear errors, said in
loralint's words (as ruff says them: the file, the key, what is wrong, the closest valid key)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


def _keys(model: type[BaseModel]) -> list[str]:
    """The keys a settings table takes, as a file writes them (`extend-select`)."""
    return [field.alias or name for name, field in model.model_fields.items()]


def unknown_key(location: tuple[str | int, ...], valid: Iterable[str], otherwise: str = "") -> str:
    """`ignor: unknown setting; did you mean `ignore`?` (the closest valid key, when one is close;
    else `otherwise`)."""
    from loralint.toml_text import toml_path

    key = str(location[-1])
    close = difflib.get_close_matches(key.replace("_", "-"), list(valid), n=1, cutoff=0.6)
    return f"{toml_path(location)}: unknown setting{f'; did you mean `{close[0]}`?' if close else otherwise}"


# pydantic error type → what the value must be, for the types a settings file uses.
_MUST_BE = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "dict_type": "a table", "model_type": "a table",
    "model_attributes_type": "a table",
}


def describe_errors(exc: ValidationError, table: tuple[str, ...]) -> list[str]:
    """One line per problem: `tool.loralint.max-file-size: 'big' is not a size (...)`. `table` is where
    the settings sit in the file (`("tool", "loralint")` in pyproject.toml)."""
    from loralint.toml_text import toml_path, toml_value

    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = (*table, *loc)
        kind, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
        if kind == "extra_forbidden":
            in_rule = len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int)
            lines.append(unknown_key(where, _keys(CustomRule if in_rule else SettingsFile),
                                     f" (a rule takes {', '.join(_keys(CustomRule))})" if in_rule else
                                     " (`loralint check --show-settings` lists the settings)"))
            continue
        shown = toml_value(given) if given is not None else "nothing"
        if len(shown) > 60:
            shown = shown[:57] + "..."
        if kind == "value_error":
            what = str(ctx.get("error", err["msg"]))  # our own validators' messages (parse_size)
        elif kind == "literal_error":
            what = f"must be {ctx.get('expected')}, not {shown}"
        elif kind in _MUST_BE:
            what = f"must be {_MUST_BE[kind]}, not {shown}"
        elif kind in ("greater_than_equal", "greater_than"):
            bound = ctx.get("ge", ctx.get("gt"))
            what = f"must be {'at least' if kind == 'greater_than_equal' else 'more than'} {bound}, not {shown}"
        elif kind == "string_pattern_mismatch":
            what = f"must match {ctx.get('pattern')}, not {shown}"
        elif kind == "missing":
            what = "is required"
        else:
            msg = err["msg"]
            what = f"{msg[:1].lower()}{msg[1:]}, not {shown}"
        lines.append(f"{toml_path(where) or 'settings'}: {what}")
    return lines
