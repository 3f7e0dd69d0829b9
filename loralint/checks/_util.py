"""Small helpers shared by checks: reading numbers, writing literals for fixes, suggestions."""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

from loralint.lazy_re import lazy
from loralint.sites import ConfigSite, Field, Fix, Span, TextEdit, effective, format_value, is_known  # noqa: F401 (effective: the checks' helper)

_PLAIN_YAML = lazy(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_YAML_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "none", "~"}


def number(value: Any) -> float | int | None:
    """An int or float, but not a bool (True is an int in Python, never a rank)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def known_field(site: ConfigSite, name: str) -> Field | None:
    # site.fields and is_known(f.value) rather than site.get and f.known: the checks ask this ~60,000 times on
    # peft's tree
    f = site.fields.get(name)
    return f if f is not None and is_known(f.value) else None


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return format_value(value)


def literal(site: ConfigSite, value: Any) -> str:
    """`value` written as the site's file format writes it."""
    if site.syntax == "python":
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, (list, tuple)):
            inner = ", ".join(literal(site, v) for v in value)
            return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{literal(site, k)}: {literal(site, v)}" for k, v in value.items()) + "}"
        return repr(value)
    if site.syntax == "json":
        return json.dumps(value)
    # YAML
    if isinstance(value, str):
        if _PLAIN_YAML.match(value) and value.lower() not in _YAML_RESERVED:
            return value
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(site, v) for v in value) + "]"
    return json.dumps(value)


def replace_value(
    site: ConfigSite, name: str, new_value: Any, description: str, applicability: str = "safe"
) -> Fix | None:
    """A fix that rewrites the value of `name` where it is written; None when the value is not a
    literal at the argument (a constant or an argparse default is the user's to change)."""
    f = site.get(name)
    if f is None or not f.written_here:
        return None
    return Fix(description, [TextEdit(f.span, literal(site, new_value))], applicability)  # type: ignore[arg-type]


def rename_key(site: ConfigSite, f: Field, new_name: str, description: str) -> Fix | None:
    """A fix that renames an argument or key where it is written; `f.span` covers the name alone
    (an identifier, or a key without its quotes). None when the span cannot be just the name (a key
    written with escapes or concatenated); the edit carries the old name, so a span that holds
    anything else is refused when the fix is applied."""
    old = f.raw_name or f.name
    s = f.span
    if s.line != s.end_line or s.end_column - s.column != len(old):
        return None
    return Fix(description, [TextEdit(s, new_name, expected=old)], "safe")


def append_argument(
    site: ConfigSite, name: str, value: Any, description: str, applicability: str = "safe"
) -> Fix | None:
    if site.append_at is None or site.syntax != "python":
        return None
    end = site.append_at
    point = Span(end.path, end.end_line, end.end_column, end.end_line, end.end_column)
    return Fix(description, [TextEdit(point, f", {name}={literal(site, value)}")], applicability)  # type: ignore[arg-type]


def close_matches(word: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.7) -> list[str]:
    import difflib  # only a misspelling pays for it (and heapq) at start-up

    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=cutoff)


def similarity(a: str, b: str) -> float:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio()


def quote_list(items: Iterable[str], limit: int = 8) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def nice_alpha(value: float) -> int | float:
    """An alpha suggestion as users write it: an integer, or one decimal for rsLoRA's sqrt(r)."""
    return int(round(value)) if abs(value - round(value)) < 1e-9 else round(value, 1)


def item_spans(site: ConfigSite, name: str) -> dict[Any, Span]:
    """Entry -> its span (the first occurrence) for a list argument whose extractor recorded them;
    built once, so thousands of entries stay linear."""
    f = site.get(name)
    spans: dict[Any, Span] = {}
    for value, span in f.items if f is not None else ():
        try:
            spans.setdefault(value, span)
        except TypeError:  # an unhashable entry: it has no span of its own here
            continue
    return spans
