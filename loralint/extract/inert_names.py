"""Whether a parsed Python file names the prefilter's words only where they cannot make a configuration.

A library module often imports LoraConfig for its annotations (`def update_layer(self, config: LoraConfig)`):
it passes the prefilter, yet nothing in it builds, applies or loads an adapter, and its walk and extraction
find nothing (a ninth of the Python candidates of peft's own tree). A configuration needs the word where a
value is made or read: a call, an alias, an attribute, a default, a base class, `dict(type=LoraConfig)`. So
when every place the words are written is an import without `as` (which binds the same name, read nowhere
else then), inside an annotation (never evaluated for a value), in a string or in a comment, the file is
left out before the program model is built. Anything else, and any place this cannot pin down, counts as a
use. In an f-string, a word is text unless one of its replacement fields names it (before Python 3.12 the
text parts carry the whole string's position, so which occurrence is which is told by name, not place).
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_right
from collections.abc import Iterable

from loralint.extract import not_code_at

_ANNOTATIONS = {ast.arg: "annotation", ast.AnnAssign: "annotation", ast.FunctionDef: "returns",
                ast.AsyncFunctionDef: "returns"}


def only_inert(tree: ast.Module, data: bytes, starts: Iterable[int]) -> bool:
    """True when no offset of `starts` (where a word begins in `data`, UTF-8 with `\\n` or `\\r\\n` line
    breaks, which `tree` is the parse of) is a use: each is in an import without `as`, an annotation, a
    string or a comment."""
    line, counted = 1, 0  # the line of offset `counted`, 1-based as ast counts lines
    for start in starts:
        line += data.count(b"\n", counted, start)
        counted = start
        line_start = data.rfind(b"\n", 0, start) + 1
        found = _place(tree, line, start - line_start, _IDENTIFIER.match(data, start).group().decode())
        if found == "use" or found is None and not not_code_at(data, line_start, start):
            return False
    return True


_IDENTIFIER = re.compile(rb"\w+")


def _place(tree: ast.Module, line: int, column: int, word: str) -> str | None:
    """What the word (`word`: its first identifier) at (line, UTF-8 byte column) is: "inert" (an import's
    name without `as`, or in an annotation, a plain string or an f-string's text), "use", or None where no
    node holds it (a comment, a def's name)."""
    node: ast.AST = tree
    while True:
        child, field = _child_at(node, line, column)
        if child is None:
            return None if node is tree or isinstance(node, ast.stmt) else "use"
        kind = type(child)
        if field == _ANNOTATIONS.get(type(node)):
            return "inert"
        if kind is ast.alias:
            return "inert" if child.asname is None else "use"  # type: ignore[attr-defined]
        if kind is ast.Constant:
            return "inert"  # a string
        if kind is ast.JoinedStr:
            return "use" if _names(child, word) else "inert"
        node = child


def _child_at(node: ast.AST, line: int, column: int) -> tuple[ast.AST | None, str | None]:
    """The child of `node` whose span holds the position, and the field it is in. A child without a
    position (arguments, comprehension, withitem, match_case) is looked into."""
    for field in node._fields:
        value = getattr(node, field, None)
        if type(value) is list:
            if value and isinstance(value[0], ast.stmt):  # statements in order: the last one starting before
                k = bisect_right(value, (line, column), key=_start) - 1
                value = value[k:k + 1] if k >= 0 else []
            for item in value:
                if isinstance(item, ast.AST) and _holds(item, line, column):
                    return item, field
        elif isinstance(value, ast.AST) and _holds(value, line, column):
            return value, field
    return None, None


def _start(node: ast.stmt) -> tuple[int, int]:
    return node.lineno, node.col_offset


def _holds(node: ast.AST, line: int, column: int) -> bool:
    start = getattr(node, "lineno", None)
    if start is None:  # no position of its own: holds the place if one of its children does
        return _child_at(node, line, column)[0] is not None
    end_line, end_column = node.end_lineno, node.end_col_offset  # type: ignore[attr-defined]
    return (start, node.col_offset) <= (line, column) and (  # type: ignore[attr-defined]
        end_line is None or (line, column) < (end_line, end_column))


def _names(fstring: ast.AST, word: str) -> bool:
    """Whether an expression in the f-string's replacement fields (format specs included) spells `word` as
    a name, an attribute or a keyword (a string in them is text, as anywhere)."""
    for node in ast.walk(fstring):
        kind = type(node)
        if (kind is ast.Name and node.id == word or kind is ast.Attribute and node.attr == word  # type: ignore[attr-defined]
                or kind is ast.keyword and node.arg == word):  # type: ignore[attr-defined]
            return True
    return False
