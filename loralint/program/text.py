"""Source positions: ast's byte offsets turned into the 1-based character columns of a Span.

ast gives `lineno`/`end_lineno` (1-based) and `col_offset`/`end_col_offset` counted in UTF-8
bytes of the line. A Span counts characters (code points), so a line with non-ASCII text before
the node needs converting; pure-ASCII lines (nearly all) need nothing.
"""

from __future__ import annotations

import ast
from bisect import bisect_left
from collections.abc import Iterable

from loralint.lazy_re import lazy
from loralint.sites import Span

# The Python tokenizer ends a line at \r\n, \r or \n only (str.splitlines also splits on \f, \v, ...).
_LINE = lazy(r"[^\r\n]*(?:\r\n|\r|\n)?")
# What str.splitlines ends a line at besides those: a text without any is split alike by it, about ten
# times faster than by _LINE (a 330 KB file: 8 ms). Looked for with `in` (a scan each, several times faster
# than one search for the character class).
_OTHER_BREAKS = ("\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


class SourceText:
    """One module's text, with the conversions every span needs."""

    __slots__ = ("path", "text", "_lines", "_ascii")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._lines: list[str] | None = None
        self._ascii = text.isascii()

    @property
    def ascii(self) -> bool:
        """Whether the text is pure ASCII (then identifiers are spelled as the parser reads them)."""
        return self._ascii

    def lines_with(self, words: Iterable[str]) -> list[int] | None:
        """The 1-based lines, ascending, on which the text spells one of `words` (a search that finds a
        word the parser sees only when it is spelled as written: a literal, an ASCII identifier); None
        when a lone carriage return makes counting line feeds differ from the parser's lines."""
        text = self.text
        if "\r" in text and text.count("\r") != text.count("\r\n"):
            return None
        found: list[int] = []
        for word in words:
            at = text.find(word)
            while at >= 0:
                found.append(at)
                at = text.find(word, at + len(word))
        lines: list[int] = []
        line, last = 1, 0
        for at in sorted(found):
            line += text.count("\n", last, at)
            last = at
            if not lines or lines[-1] != line:
                lines.append(line)
        return lines

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            text = self.text
            if not any(brk in text for brk in _OTHER_BREAKS):
                lines = text.splitlines(keepends=True)
            else:
                lines = _LINE.findall(text)
                if lines and lines[-1] == "":
                    lines.pop()
            self._lines = lines
        return self._lines

    def column(self, line: int, byte_offset: int) -> int:
        """The 1-based character column of a byte offset on a 1-based line."""
        if self._ascii or byte_offset <= 0:
            return byte_offset + 1
        lines = self.lines
        if not 1 <= line <= len(lines):
            return byte_offset + 1
        text = lines[line - 1]
        if text.isascii():
            return byte_offset + 1
        return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="replace")) + 1

    def span(self, node: ast.AST) -> Span:
        line = getattr(node, "lineno", None)
        if line is None:
            return Span.point(self.path)
        end_line = node.end_lineno or line  # type: ignore[attr-defined]
        end_col = node.end_col_offset if node.end_col_offset is not None else node.col_offset  # type: ignore[attr-defined]
        if self._ascii:  # column() without the calls: a byte offset is the character's
            return Span(self.path, line, node.col_offset + 1, end_line, end_col + 1)  # type: ignore[attr-defined]
        return Span(
            self.path, line, self.column(line, node.col_offset), end_line, self.column(end_line, end_col)  # type: ignore[attr-defined]
        )

    def span_between(self, first: ast.AST, last: ast.AST) -> Span:
        """From the start of `first` to the end of `last` (a dict entry: key to value)."""
        a, b = self.span(first), self.span(last)
        return Span(self.path, a.line, a.column, b.end_line, b.end_column)

    def name_span(self, node: ast.AST, name: str, start: Span | None = None) -> Span:
        """The span of a name written at the start of `node` (`r` in the keyword `r=8`); `start`: `node`'s
        span when the caller has it already."""
        if start is None:
            start = self.span(node)
        return Span(self.path, start.line, start.column, start.line, start.column + len(name))

    def segment(self, node: ast.AST) -> str:
        """The source text of `node`."""
        line = getattr(node, "lineno", None)
        lines = self.lines
        if line is None or not 1 <= line <= len(lines):
            return "?"
        end_line = min(node.end_lineno or line, len(lines))  # type: ignore[attr-defined]
        start, end = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
        if end_line == line:
            return _cut(lines[line - 1], start, end)
        parts = [_cut(lines[line - 1], start, None)]
        parts.extend(lines[line:end_line - 1])
        parts.append(_cut(lines[end_line - 1], 0, end))
        return "".join(parts)

    def short(self, node: ast.AST, limit: int = 60) -> str:
        """`segment`, cut to `limit` characters, for messages."""
        text = " ".join(self.segment(node).split())
        return text if len(text) <= limit else text[: limit - 3] + "..."


def _cut(text: str, start: int, end: int | None) -> str:
    """text[start:end] in UTF-8 byte offsets."""
    if text.isascii():
        return text[start:end]
    return text.encode("utf-8")[start:end].decode("utf-8", "replace")


def holds_line(statement: ast.stmt, lines: list[int]) -> bool:
    """Whether a statement's lines (its decorators' included: they sit above its own first line) hold
    one of `lines` (ascending). A statement's lines cover every node in it."""
    start = statement.lineno
    for decorator in getattr(statement, "decorator_list", ()):
        start = min(start, decorator.lineno)
    at = bisect_left(lines, start)
    return at < len(lines) and lines[at] <= (statement.end_lineno or statement.lineno)
