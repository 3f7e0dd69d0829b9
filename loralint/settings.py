"""Settings: `[tool.loralint]` in pyproject.toml, or `.loralint.toml`, found by walking up.

Validated with pydantic so a typo in a key or a wrong type is a clear error (exit 2), not a
silently ignored setting.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralint.safe_read import (
    DEFAULT_MAX_DATA_FILE_SIZE,
    DEFAULT_MAX_FILE_SIZE,
    InputRefused,
    format_size,
    parse_size,
    read_limited,
)

SETTINGS_FILES = (".loralint.toml", "loralint.toml", "pyproject.toml")


class SettingsError(Exception):
    """Settings that cannot be used; the CLI prints each problem on a line of its own and exits 2."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(slots=True, repr=False, eq=False)
class CustomRule:
    """A user-defined rule on one of the shipped checks (an organisation's policy)."""

    code: str
    name: str
    check: str
    severity: str = "warning"
    params: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    message: str | None = None  # overrides the check's message; may use {value}, {field}, {limit}


@dataclass(slots=True, repr=False, eq=False)
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
    # Network use: only ever from the user (LORALINT_ONLINE, the user-level config), never from a
    # repository's settings file; `--online` is added by the CLI.
    online: bool = False
    cache: bool = True
    max_file_size: int = DEFAULT_MAX_FILE_SIZE  # bytes; a larger source, YAML or JSON file is skipped (LORA905)
    max_data_file_size: int = DEFAULT_MAX_DATA_FILE_SIZE  # bytes; data files are read by streaming
    # Where the settings came from; relative globs are relative to `root`.
    root: Path = field(default_factory=Path.cwd)
    source: Path | None = None
    notes: list[str] = field(default_factory=list)  # for the CLI to print to stderr: ignored keys, ...
    written: frozenset[str] = frozenset()  # the keys the settings file sets, with dashes (--show-settings)


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
                data = _read_bytes(candidate)
                if _may_name_loralint(data) and _loralint_table(_read_toml(candidate, data)) is not None:
                    return candidate
            except SettingsError:
                return candidate  # report the broken file rather than skip it silently
    return None


def _may_name_loralint(data: bytes) -> bool:
    """Whether a pyproject.toml's bytes may hold a `[tool.loralint]` table. Spelt any way TOML allows
    (`[tool.loralint]`, `[ tool . "loralint" ]`, `tool.loralint.x = 1`, `tool = {loralint = {}}`) the key is
    the word itself, unless written with a basic string's \\u or \\U escape. The others (most projects'
    pyproject.toml) are then not parsed: the TOML parser's import and the parse were ~4 ms of a warm run.
    Nor reported when broken: a file that holds no settings of loralint's is not loralint's to judge."""
    return b"loralint" in data or b"\\u" in data or b"\\U" in data


def _read_bytes(path: Path) -> bytes:
    # Regular files only, 10 MB at most: a settings file may come with a cloned repository.
    try:
        return read_limited(path)
    except InputRefused as exc:
        raise SettingsError(f"{_shown(path)}: cannot read: {exc}") from exc
    except OSError as exc:
        raise SettingsError(f"{_shown(path)}: cannot read: {exc.strerror}") from exc


def _read_toml(path: Path, data: bytes | None = None) -> dict[str, Any]:
    """The settings file at `path` parsed (`data`: its bytes, when already read)."""
    if data is None:
        data = _read_bytes(path)
    # Imported here: a run with no settings file on the way up never pays for the TOML parser.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{_shown(path)}: invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{_shown(path)}: invalid TOML: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from exc
    except RecursionError as exc:
        raise SettingsError(f"{_shown(path)}: invalid TOML: nesting too deep") from exc


def _loralint_table(data: dict[str, Any]) -> dict[str, Any] | None:
    """`[tool.loralint]` of a parsed TOML file, when it has one."""
    tool = data.get("tool")
    return tool.get("loralint") if isinstance(tool, dict) and "loralint" in tool else None


def load_settings(path: Path | None) -> Settings:
    if path is None:
        return Settings()
    data: Any = _read_toml(path)
    table: tuple[str, ...] = ()  # where the settings sit in the file, for messages
    if path.name == "pyproject.toml" or _loralint_table(data) is not None:
        data, table = _loralint_table(data), ("tool", "loralint")
        data = {} if data is None else data
    from pydantic import ValidationError

    from loralint.settings_schema import SettingsFile, describe_errors

    try:
        validated = SettingsFile.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(*(f"{_shown(path)}: {problem}" for problem in describe_errors(exc, table))) from exc
    values = validated.model_dump()
    values["rules"] = [CustomRule(**rule) for rule in values["rules"]]
    notes = []
    # A checked repository is a stranger's: its settings may narrow what loralint does, never widen
    # what it touches. The key stays valid (no exit 2 on old files) but has no effect.
    if values.pop("online"):
        notes.append(f"{_shown(path)}: `online` is ignored in repository settings; pass --online or set {ONLINE_ENV}=1")
    return Settings(**values, root=path.parent.resolve(), source=path, notes=notes,
                    written=frozenset(key.replace("_", "-") for key in data))  # extend_select is extend-select too


def setting_location(settings: Settings, key: str) -> str:
    """Where `key` of these settings is written, for messages: `pyproject.toml: tool.loralint.ignore`."""
    if settings.source is None:
        return f"settings: {key}"
    table = "tool.loralint." if settings.source.name == "pyproject.toml" else ""
    return f"{_shown(settings.source)}: {table}{key}"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


ONLINE_ENV = "LORALINT_ONLINE"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def user_config_path() -> Path | None:
    """`$XDG_CONFIG_HOME/loralint/loralint.toml` (an absolute one), else `~/.config/loralint/loralint.toml`."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "loralint" / "loralint.toml"
    try:
        return Path.home() / ".config" / "loralint" / "loralint.toml"
    except (RuntimeError, KeyError, OSError):  # no home directory
        return None


_USER_KEYS = ("online", "max-file-size", "max-data-file-size")


def _user_config_hint() -> str:
    path = user_config_path()
    return str(path) if path is not None else "the user-level config"


def user_config() -> dict[str, Any]:
    """The user-level config: what widens what loralint touches (the network, size limits), which a
    checked repository's settings cannot. SettingsError when it is malformed."""
    path = user_config_path()
    if path is None or not path.is_file():
        return {}
    data = _read_toml(path)
    unknown = sorted(set(data) - set(_USER_KEYS))
    if unknown:
        from loralint.settings_schema import unknown_key

        takes = f" (the user-level config takes {', '.join(_USER_KEYS)})"
        raise SettingsError(*(f"{path}: {unknown_key((key,), _USER_KEYS, takes)}" for key in unknown))
    if not isinstance(data.get("online", False), bool):
        from loralint.toml_text import toml_value

        raise SettingsError(f"{path}: online: must be true or false, not {toml_value(data['online'])}")
    for key in _USER_KEYS[1:]:
        if key in data:
            try:
                data[key] = parse_size(str(data[key])) if not isinstance(data[key], bool) else None
            except ValueError as exc:
                raise SettingsError(f"{path}: {key}: {exc}") from None
            if data[key] is None:
                raise SettingsError(f"{path}: {key} must be a size such as 20000000 or \"20 MB\"")
    return data


def user_allows_online(config: dict[str, Any] | None = None) -> bool:
    """Network use the user allowed outside any repository: LORALINT_ONLINE (wins), else `online`
    in the user-level config. SettingsError when either is malformed."""
    raw = os.environ.get(ONLINE_ENV, "")
    if raw.strip():  # set and not empty
        value = raw.strip().lower()
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        raise SettingsError(f"{ONLINE_ENV}={raw!r}: expected 1 or 0 (true/false, yes/no, on/off)")
    return bool((user_config() if config is None else config).get("online", False))


def discover_settings(paths: list[Path], explicit: Path | None = None) -> Settings:
    if explicit is not None:
        if not explicit.is_file():
            raise SettingsError(f"{explicit}: settings file not found")
        settings = load_settings(explicit)
    else:
        start = paths[0] if paths else Path.cwd()
        # os.path.exists: False (not an exception) for a path behind a link loop or an unreadable directory
        settings = load_settings(find_settings_file(start if os.path.exists(start) else Path.cwd()))
    user = user_config()
    settings.online = user_allows_online(user)  # the user's word only, never the project's file
    # Size limits bound the memory a run may take: the user sets the ceiling (the defaults unless the
    # user-level config raises them); a repository may go below it, never above.
    for key, default in (("max-file-size", DEFAULT_MAX_FILE_SIZE), ("max-data-file-size", DEFAULT_MAX_DATA_FILE_SIZE)):
        attribute = key.replace("-", "_")
        ceiling = user.get(key, default)
        if key not in settings.written:
            setattr(settings, attribute, ceiling)
        elif getattr(settings, attribute) > ceiling:
            where = _shown(settings.source) if settings.source else "settings"
            settings.notes.append(f"{where}: `{key}` above {format_size(ceiling)} is ignored in repository settings; "
                                  f"raise it in {_user_config_hint()}")
            setattr(settings, attribute, ceiling)
    return settings
