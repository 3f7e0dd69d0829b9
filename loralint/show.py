"""`check --show-settings` and `check --show-files`: what a run would use, without running it.

As ruff's options of the same names. `--show-settings` prints the resolved settings as a TOML
`[tool.loralint]` table that pastes into pyproject.toml or .loralint.toml and reads back as the same
settings, each line with a comment saying where its value came from: the command line, the
environment, the user-level config, the settings file, or loralint's default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loralint.discover import Discovery
from loralint.report.escape import escape, escape_lines
from loralint.settings import ONLINE_ENV, Settings, setting_location, user_config_path
from loralint.toml_text import toml_value

# Settings keys as a file writes them → the Settings attribute; in the order ruff's users expect.
KEYS = (
    ("select", "select"),
    ("extend-select", "extend_select"),
    ("ignore", "ignore"),
    ("per-file-ignores", "per_file_ignores"),
    ("severity", "severity"),
    ("params", "params"),
    ("fail-level", "fail_level"),
    ("exclude", "exclude"),
    ("extend-exclude", "extend_exclude"),
    ("include", "include"),
    ("respect-gitignore", "respect_gitignore"),
    ("dataset-size", "dataset_size"),
    ("per-file-dataset-size", "per_file_dataset_size"),
    ("model", "model"),
    ("online", "online"),
    ("cache", "cache"),
    ("max-file-size", "max_file_size"),
    ("max-data-file-size", "max_data_file_size"),
)


@dataclass(slots=True)
class CommandLine:
    """What the command line set, by settings key: the option and the value it gives."""

    values: Mapping[str, tuple[str, Any]]
    # Keys the command line adds to instead of replacing (`--extend-select`, `--ignore`, ...).
    added: Mapping[str, tuple[str, list[str]]]


def render_settings(settings: Settings, command_line: CommandLine, enabled: list[str] | None, problem: str | None,
                    target: str) -> str:
    """The resolved settings for `target`, one `key = value  # source` line each."""
    source = None
    if settings.source is not None:
        source = os.path.relpath(settings.source) if os.path.isabs(settings.source) else str(settings.source)
        if source.startswith(".."):
            source = str(settings.source)
    lines = [
        f"# Resolved settings for: {target}",
        f"# Settings file: {source}" if source else "# Settings file: none (loralint's defaults)",
        f"# Relative globs are relative to: {settings.root}",
        "",
        "[tool.loralint]",
    ]
    rows: list[tuple[str, str]] = []
    for key, attribute in KEYS:
        value = getattr(settings, attribute)
        origin = "default"
        if key in settings.written:
            origin = setting_location(settings, key)
        if key == "online":
            origin = _online_origin(settings, origin)
        if key in command_line.values:
            option, value = command_line.values[key]
            origin = option
        elif key in command_line.added:
            option, extra = command_line.added[key]
            value = [*(value or []), *extra]
            origin = f"{origin} + {option}" if origin != "default" else option
        if key == "select" and value is None:
            value = ["ALL"]
        if value is None:
            rows.append((f"# {key} (not set)", origin))  # TOML has no null: an unset key is commented out
        elif key == "online" and value:
            # Only the user turns the network on: written in a repository's settings, it would be ignored.
            rows.append((f"# {key} = true", f"{origin}; in {user_config_path() or 'the user-level config'}, not here"))
        else:
            rows.append((f"{key} = {toml_value(value)}", origin))
    width = min(max(len(text) for text, _ in rows), 60)
    lines += [f"{text:<{width}}  # {origin}" for text, origin in rows]
    for rule in settings.rules:  # after the table's own keys, as TOML requires
        lines += ["", f"[[tool.loralint.rules]]  # {setting_location(settings, 'rules')}"]
        lines += [f"{name} = {toml_value(getattr(rule, name))}" for name in _RULE_KEYS if getattr(rule, name) is not None]
    lines.append("")
    if problem is not None:
        lines.append(f"# These settings cannot be used: {problem}")
    elif enabled is not None:
        lines.append(f"# Enabled rules ({len(enabled)}): {', '.join(enabled)}")
    return escape_lines("\n".join(lines))  # paths and values come from the checked tree


def _online_origin(settings: Settings, origin: str) -> str:
    """`online` is the user's word only (a repository's settings cannot turn it on)."""
    if os.environ.get(ONLINE_ENV, "").strip():  # an empty value counts as unset, as in settings.py
        return ONLINE_ENV
    path = user_config_path()
    if settings.online and path is not None:
        return str(path)
    return "default" if origin == "default" else f"default ({origin} is ignored: repository settings cannot turn it on)"


_RULE_KEYS = ("code", "name", "check", "severity", "params", "summary", "message")  # CustomRule's, in order
def render_files(found: Discovery) -> str:
    """The files a run would check, one a line, as the report names them."""
    return "\n".join(escape(source.display) for source in sorted(found.files, key=lambda f: f.display))
