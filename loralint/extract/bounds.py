"""Bounds on the work extraction does for one file, whatever the file holds.

A check on the size of a Python source before `ast` parses it, caps on configurations and pattern
keys per file, the bounds of the YAML/JSON readers, and a per-file record of the bounds reached.
(The values the Python evaluator builds are bounded in loralint/program/values.py.) Every bound is a named constant below, far above what
a real training script or configuration needs and far below what would exhaust memory or time.

A bound reached on part of a file is recorded with `note` (one LORA906 per kind and file, the rest
of the file is checked, the value behind it is Unknown); a bound that stops the whole file raises
`LimitReached` (LORA906, the file is not checked).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from loralint.sites import Unknown

# --- Python sources ----------------------------------------------------------------------------

# Checked before `ast.parse` sees the file: CPython's parser needs up to ~500 MB for 1 MB of dense
# code (1 GB for 6.2 MB). Training scripts are under 100 KB; the largest real modules (transformers'
# modeling files, peft's test suites) are a few hundred KB.
MAX_PYTHON_SOURCE_CHARS = 1_000_000

# YAML/JSON values: characters of a string plus elements of containers (integers: limits.MAX_INT_BITS).
MAX_VALUE_SIZE = 100_000

# --- configurations ----------------------------------------------------------------------------

# Configurations extracted from one file (Python calls, YAML documents); real files hold a few.
MAX_SITES_PER_FILE = 10_000

# Keys of `rank_pattern` / `alpha_pattern` read per configuration: each is a regular expression
# matched against every module name of the model.
MAX_PATTERN_KEYS = 1_000
PATTERN_FIELDS = ("rank_pattern", "alpha_pattern")

# --- YAML and JSON -----------------------------------------------------------------------------

# Nesting of mappings and sequences (libyaml itself stops at 1,000, `json` at the recursion limit).
MAX_DATA_DEPTH = 200

# Nodes (keys, values, items) of one YAML document or JSON file that loralint positions, counting
# the entries YAML merge keys (`<<: *anchor`) copy.
MAX_DATA_NODES = 200_000


# --- recording the bounds reached --------------------------------------------------------------


class LimitReached(Exception):
    """A bound that stops the analysis of a whole file: LORA906, the file is not checked."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


@dataclass(frozen=True, slots=True, eq=False)
class LimitNote:
    """A bound reached on part of a file, and where: one LORA906 for its kind."""

    message: str
    line: int
    column: int


# The notes of the file being extracted (a context variable: right per thread and per asyncio task).
_NOTES: ContextVar[dict[str, LimitNote] | None] = ContextVar("loralint_limit_notes", default=None)


@contextmanager
def recording() -> Iterator[dict[str, LimitNote]]:
    """Collect the bounds reached while one file is extracted: kind → its first occurrence."""
    notes: dict[str, LimitNote] = {}
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def note(kind: str, message: str, line: int = 1, column: int = 1) -> None:
    """Record that a bound of `kind` was reached; a file reports each kind once, where first met."""
    notes = _NOTES.get()
    if notes is not None and kind not in notes:
        notes[kind] = LimitNote(message, max(line, 1), max(column, 1))


# --- Python: before the parser -------------------------------------------------------------


def check_python_size(text: str) -> None:
    """LimitReached for a source larger than loralint parses. Deeper bounds come from CPython's own
    parser (nesting of brackets and indentation) and the program model (loralint/program)."""
    if len(text) > MAX_PYTHON_SOURCE_CHARS:
        raise LimitReached(
            f"{len(text):,} characters of Python, more than the {MAX_PYTHON_SOURCE_CHARS:,} loralint analyses in one file"
        )


def bound_pattern_keys(name: str, value: Any, line: int = 1, column: int = 1) -> Any:
    """`rank_pattern` / `alpha_pattern` with more keys than loralint matches becomes Unknown."""
    if name in PATTERN_FIELDS and isinstance(value, dict) and len(value) > MAX_PATTERN_KEYS:
        message = (
            f"{name} has {len(value):,} keys; loralint reads at most {MAX_PATTERN_KEYS:,} per configuration"
        )
        note("pattern-keys", message + " (that configuration's patterns are not checked)", line, column)
        return Unknown(message)
    return value
