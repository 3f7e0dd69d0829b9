"""Bounds on the work extraction does for one file, whatever the file holds.

Front-end agnostic on purpose (the Python front end will move from libcst to `ast`): a check on the
source before any parser of ours sees it, a size guard for the values the static evaluator builds,
and a per-file record of the bounds reached. Every bound is a named constant below, far above what
a real training script or configuration needs and far below what would exhaust memory or time.

A bound reached on part of a file is recorded with `note` (one LORA906 per kind and file, the rest
of the file is checked, the value behind it is Unknown); a bound that stops the whole file raises
`LimitReached` (LORA906, the file is not checked).
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from loralint.extract.source import SourceSyntaxError
from loralint.sites import Unknown

# --- Python sources ----------------------------------------------------------------------------

# Checked before anything parses the file: `ast.parse` needs up to ~500 MB for 1 MB of dense code
# (1 GB for 6.2 MB). Training scripts are under 100 KB.
MAX_PYTHON_SOURCE_CHARS = 500_000

# Syntax-tree nodes of one file (counted on `ast`'s tree, before libcst parses it): libcst needs
# 2.5-4 KB of memory per node (a 490,000-node list literal exhausted 1.5 GB) and ~60 µs. Training
# scripts have a few thousand.
MAX_PYTHON_NODES = 100_000

# Syntax-tree nodes between a statement and its deepest expression (`f(f(f(...)))`, `not not ...`,
# `a.b.c...`, `x and y and ...`). Real code stays under ~25. libcst's native parser segfaults
# between 3,000 and 10,000 levels and needs ~1.6 GB for one 3,000-deep lambda or conditional chain.
MAX_EXPRESSION_DEPTH = 100

# Statements nested in statements, each `elif` counting as one level: libcst nests them (it
# segfaults near 10,000), and so do the visitors that walk its tree (Python's recursion limit
# stops them near 300). CPython itself allows 100 levels of indentation.
MAX_STATEMENT_DEPTH = 200

# A file CPython rejects is handed to libcst only for its error message, and only when no logical
# line has more operators than this (each one is a possible level of recursion in libcst's parser).
MAX_OPERATORS_PER_LINE = 500

# --- static evaluation -------------------------------------------------------------------------

# One evaluated value: characters of a string plus elements of containers, counted through
# nesting. Every module name of a 100-layer model in one list is ~20,000.
MAX_VALUE_SIZE = 100_000

# All values the evaluator builds for one file together (the same units): bounds its memory
# however often the code repeats a large value.
MAX_BUILT_PER_FILE = 5_000_000

# Bits of an integer (a literal, a YAML/JSON number, a result): `2**100000` and `10**10**10` are
# refused before they are computed. No LoRA setting needs more than 64; the rules turn values into
# floats (at most 2**1024) and multiply them by model sizes, so 256 leaves room for both.
MAX_INT_BITS = 256

# Items of `range(...)` the evaluator expands into a list.
MAX_RANGE_ITEMS = 4_096

# Expressions evaluated for one file (a name's value is evaluated once, then reused).
MAX_EVAL_STEPS = 1_000_000

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


@dataclass(frozen=True, slots=True)
class LimitNote:
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


# --- Python: before any parser of ours --------------------------------------------------------

_CPYTHON_LIMITS = ("too many nested parentheses", "too many levels of indentation", "too complex")


def check_python_source(text: str) -> bool:
    """Refuse what must not reach the Python front end. CPython's parser (`ast.parse`: it only
    parses, nothing is compiled or run) decides validity within its own bounds; a valid file
    larger or deeper than loralint analyses raises LimitReached; an invalid one raises
    SourceSyntaxError, unless it is shallow enough for libcst to report the error in its words
    (then False is returned: the file is invalid). True: CPython accepts the file."""
    if len(text) > MAX_PYTHON_SOURCE_CHARS:
        raise LimitReached(
            f"{len(text):,} characters of Python, more than the {MAX_PYTHON_SOURCE_CHARS:,} loralint analyses in one file"
        )
    try:
        with warnings.catch_warnings():  # `"\d"` would print a SyntaxWarning per file (Python 3.12+)
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except SyntaxError as exc:
        message = exc.msg or "invalid syntax"
        if any(limit in message for limit in _CPYTHON_LIMITS) or not _shallow(text):
            raise SourceSyntaxError(
                f"invalid Python syntax ({message})", exc.lineno or 1, max(exc.offset or 1, 1)
            ) from None
        return False  # libcst says where and why, as it always has
    except (MemoryError, RecursionError):  # CPython's parser stack or its AST construction
        raise SourceSyntaxError("invalid Python syntax (nested too deeply for Python's parser)") from None
    except ValueError as exc:  # a NUL byte
        raise SourceSyntaxError(f"invalid Python syntax ({exc})") from None
    _check_depth(tree)
    return True


def _check_depth(tree: ast.AST) -> None:
    """Iteratively (no recursion of ours): how many nodes, and the deepest expression and statement nesting."""
    stack: list[tuple[ast.AST, int, int, ast.AST]] = [(tree, 0, 0, tree)]
    count = 0
    while stack:
        node, statements, expressions, where = stack.pop()
        count += 1
        if count > MAX_PYTHON_NODES:
            raise _beyond(tree, f"more than {MAX_PYTHON_NODES:,} syntax-tree nodes in one file")
        if isinstance(node, ast.stmt):
            statements, expressions, where = statements + 1, 0, node
            if statements > MAX_STATEMENT_DEPTH:
                raise _beyond(where, f"statements nested deeper than {MAX_STATEMENT_DEPTH:,} levels")
        elif node is not tree:
            expressions += 1
            if isinstance(node, ast.BoolOp):
                expressions += len(node.values) - 2  # `a and b and c`: libcst nests each operator
            if expressions > MAX_EXPRESSION_DEPTH:
                raise _beyond(
                    node if hasattr(node, "lineno") else where,
                    f"an expression nested deeper than {MAX_EXPRESSION_DEPTH} levels",
                )
        for _, value in ast.iter_fields(node):
            if isinstance(value, list):
                for child in value:
                    if isinstance(child, ast.AST):
                        stack.append((child, statements, expressions, where))
            elif isinstance(value, ast.AST) and not isinstance(value, ast.expr_context):
                stack.append((value, statements, expressions, where))


def _beyond(node: ast.AST, what: str) -> LimitReached:
    line = getattr(node, "lineno", 1) or 1
    column = (getattr(node, "col_offset", 0) or 0) + 1
    return LimitReached(f"{what}, more than loralint analyses", line, column)


_NESTING_WORDS = frozenset({"not", "lambda", "if", "else", "and", "or", "await", "yield", "in", "is", "for"})
_NOT_NESTING = frozenset({",", ";", ":", ")", "]", "}"})


def _shallow(text: str) -> bool:
    """Whether an invalid file is safe to hand to libcst: at most MAX_PYTHON_NODES tokens (each
    makes at least one libcst node), at most MAX_OPERATORS_PER_LINE operators and keywords on any
    logical line, and short `elif` chains. Tokenizes only."""
    operators = elifs = tokens = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            tokens += 1
            if token.type == tokenize.NEWLINE:
                operators = 0
            elif (token.type == tokenize.OP and token.string not in _NOT_NESTING) or (
                token.type == tokenize.NAME and token.string in _NESTING_WORDS
            ):
                operators += 1
            elif token.type == tokenize.NAME and token.string == "elif":
                elifs += 1
            if operators > MAX_OPERATORS_PER_LINE or elifs > MAX_STATEMENT_DEPTH or tokens > MAX_PYTHON_NODES:
                return False
    except tokenize.TokenError:
        return True  # the end of the text inside a bracket or string: everything was counted
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False  # tokenizing stopped early: the rest is unknown
    return True


# --- static evaluation: the values built --------------------------------------------------------


class ValueTooLarge(Exception):
    """A value the evaluator refuses to build: it becomes Unknown, and the file gets one LORA906."""

    kind = "value-size"

    def note_text(self) -> str:
        return f"value too large to evaluate ({self}); treated as unknown"


class EvaluationStopped(ValueTooLarge):
    """The file's evaluation steps are spent: every later value is Unknown."""

    kind = "evaluation-steps"

    def note_text(self) -> str:
        return f"evaluation stopped after {MAX_EVAL_STEPS:,} expressions in this file; later values are treated as unknown"


class ValueGuard:
    """What one file's static evaluation builds: each value at most MAX_VALUE_SIZE units (characters
    of strings, elements of containers, through nesting), all of them at most MAX_BUILT_PER_FILE,
    integers at most MAX_INT_BITS bits, and at most MAX_EVAL_STEPS expressions evaluated.

    Sizes of containers are remembered by identity, so sizing a new container costs its length."""

    def __init__(self) -> None:
        self.built = 0
        self.steps = 0
        self._sizes: dict[int, tuple[Any, int]] = {}  # id → (the value, kept alive; its size)

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_EVAL_STEPS:
            raise EvaluationStopped(f"more than {MAX_EVAL_STEPS:,} expressions evaluated in one file")

    def size(self, value: Any) -> int:
        if isinstance(value, (str, bytes)):
            return len(value) + 1
        if isinstance(value, int):
            return 1 + value.bit_length() // 64
        if not isinstance(value, (list, tuple, set, frozenset, dict)):
            return 1
        known = self._sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        total = 1
        for item in value.items() if isinstance(value, dict) else value:
            total += self.size(item)
            if total > MAX_VALUE_SIZE:
                break  # big enough to refuse: no need to count the rest
        self._sizes[id(value)] = (value, total)
        return total

    def expect(self, size: int) -> None:
        """Refuse, before computing it, a value that would be `size` units."""
        if size > MAX_VALUE_SIZE:
            raise ValueTooLarge(f"a value of more than {MAX_VALUE_SIZE:,} elements or characters")
        if self.built + size > MAX_BUILT_PER_FILE:
            raise ValueTooLarge(
                f"more than {MAX_BUILT_PER_FILE:,} elements or characters of values in one file"
            )

    def expect_int_bits(self, bits: int) -> None:
        if bits > MAX_INT_BITS:
            raise ValueTooLarge(f"an integer of more than {MAX_INT_BITS:,} bits")

    def admit(self, value: Any) -> Any:
        """`value`, counted against the bounds; ValueTooLarge when it is over one."""
        if isinstance(value, int) and not isinstance(value, bool):
            self.expect_int_bits(value.bit_length())
        size = self.size(value)
        self.expect(size)
        self.built += size
        return value


def bound_pattern_keys(name: str, value: Any, line: int = 1, column: int = 1) -> Any:
    """`rank_pattern` / `alpha_pattern` with more keys than loralint matches becomes Unknown."""
    if name in PATTERN_FIELDS and isinstance(value, dict) and len(value) > MAX_PATTERN_KEYS:
        message = (
            f"{name} has {len(value):,} keys; loralint reads at most {MAX_PATTERN_KEYS:,} per configuration"
        )
        note("pattern-keys", message + " (that configuration's patterns are not checked)", line, column)
        return Unknown(message)
    return value
