"""Values written as TOML: what `check --show-settings` prints and settings errors quote."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

# What a TOML basic string may not hold raw (control characters, DEL), and what the terminal must not
# get raw either (C1, line separators, bidi controls: loralint.report.escape): written as \uXXXX.
_TOML_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def toml_string(text: str) -> str:
    """`text` as a TOML basic string that reads back as `text` and prints safely."""
    body = json.dumps(text, ensure_ascii=False)  # JSON's escapes (\", \\, \n, \uXXXX) are TOML's
    return _TOML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", body)


def toml_value(value: Any) -> str:
    """`value` as TOML writes it (strings, numbers, booleans, dates, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # inf, nan and 1e-05 are TOML as Python prints them
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()  # RFC 3339, as TOML's dates and times
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }" \
            if value else "{}"
    return toml_string(str(value))


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it can be, quoted otherwise (`"src/*.py"`)."""
    return key if _BARE_KEY.match(key) else toml_string(key)


def toml_path(parts: tuple[str | int, ...]) -> str:
    """Where a value sits, in TOML's dotted-key form: `tool.loralint.per-file-ignores."src/*.py"`,
    with `[n]` for the n-th entry (0-based) of an array (`rules[0].check`)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + toml_key(part)
    return out
