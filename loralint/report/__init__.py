"""report: one formatter a format. Each takes a RunResult and returns the text to print."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from loralint.lazy_re import lazy
from loralint.safe_read import DEFAULT_MAX_FILE_SIZE, read_limited
from loralint.sites import ConfigSite, is_known

FORMATS = ("text", "json", "sarif", "github", "lsp")

_NEWLINE = lazy(r"\r\n|\r|\n")

# 1-based line number -> that line's text (without its line break), or None when unknown.
LineLookup = Callable[[int], "str | None"]


def split_lines(text: str) -> list[str]:
    """Lines as the extractors count them: `\\r\\n`, `\\r` and `\\n` end a line (universal newlines)."""
    if "\r" not in text:
        return text.split("\n")  # the same list, a few times faster than the pattern's split on a large file
    return _NEWLINE.split(text)


def decode_source(path: str, data: bytes) -> str:
    """The text of a file as the extractors decode it (PEP 263 for Python, UTF-8 otherwise)."""
    from loralint.extract.source import UndecodableSource, decode_python, decode_text

    try:
        return decode_python(data) if path.endswith((".py", ".pyi")) else decode_text(data)
    except UndecodableSource:
        return data.decode("utf-8", errors="replace")


class SourceLines:
    """File lines, read once per file: from `texts` (stdin, an editor's buffer) or from disk.

    `paths` maps the display path of a diagnostic to the file on disk (RunResult.sources).
    """

    def __init__(self, paths: Mapping[str, str] | None = None, texts: Mapping[str, str] | None = None,
                 limit: int = DEFAULT_MAX_FILE_SIZE, cells: Mapping[str, list[int]] | None = None,
                 cell_texts: Mapping[str, str] | None = None) -> None:
        self.paths = dict(paths or {})
        self.texts = dict(texts or {})
        self.limit = limit
        self._cells: dict[str, Any] = dict(cells or {})  # display path -> FileResult.cells, then its CellMap
        self._cell_texts = dict(cell_texts or {})  # display path -> FileResult.cell_text
        self._lines: dict[str, list[str] | None] = {}
        self._notebooks: dict[str, Any] = {}  # display path -> Notebook or None, read once a render

    def lines(self, display: str) -> list[str] | None:
        if display not in self._lines:
            cell_text = self._cell_texts.get(display)
            if cell_text is not None:  # a notebook's lines as extraction read them: its JSON not decoded again
                self._lines[display] = split_lines(cell_text)
                return self._lines[display]
            known = self._notebooks.get(display)
            if known is not None:  # a notebook read already (for its cells): its cell text, not read again
                self._lines[display] = split_lines(known.python)
                return self._lines[display]
            text = self.texts.get(display)
            if text is None:
                try:
                    # Regular files only, bounded: a diagnostic may be about a FIFO or a huge file.
                    data = read_limited(self.paths.get(display, display), self.limit)
                except OSError:
                    data = None
                text = decode_source(display, data) if data is not None else None
            notebook = self.notebook(display, text)
            if notebook is not None:
                text = notebook.python  # positions in a notebook are in its cells' Python text
            self._lines[display] = split_lines(text) if text is not None else None
        return self._lines[display]

    def notebook(self, display: str, raw: str | None = None):
        """The notebook behind `display` (extract.notebook.Notebook), or None: not a notebook, or
        one that cannot be read (then its diagnostics are at positions of the raw file)."""
        if not display.lower().endswith(".ipynb"):  # extract.notebook.is_notebook, before importing it:
            return None  # a script's report never loads the notebook reader
        from loralint.extract.notebook import cached_notebook

        if raw is None:
            if display in self._notebooks:  # asked for each finding and config: not read and decoded again
                return self._notebooks[display]
            raw = self.texts.get(display)
            if raw is None:
                try:
                    raw = decode_source(display, read_limited(self.paths.get(display, display), self.limit))
                except OSError:
                    return None
        self._notebooks[display] = found = cached_notebook(raw)
        return found

    def cells(self, display: str):
        """What names a position of `display` by cell (`cell_of`): the cell map extraction kept when there is
        one, else the notebook itself (read now); None when `display` is not a readable notebook."""
        found = self._cells.get(display)
        if found is None:
            return self.notebook(display)
        if type(found) is list:
            from loralint.extract.notebook import CellMap

            found = self._cells[display] = CellMap(found)
        return found

    def line(self, display: str, number: int) -> str | None:
        if display not in self._lines and display not in self._cell_texts and display.lower().endswith(".ipynb"):
            notebook = self.notebook(display)
            if notebook is not None:  # one line of its cell text: only the cell it is in is parsed
                return notebook.text_line(number)
        lines = self.lines(display)
        if lines is None or not 0 < number <= len(lines):
            return None
        return lines[number - 1]

    def lookup(self, display: str) -> LineLookup:
        return lambda number: self.line(display, number)


def jsonable(value: Any) -> Any:
    """A field value as JSON: sets become sorted lists, Unknown becomes null."""
    if not is_known(value):
        return None
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def site_scaling(site: ConfigSite) -> float | None:
    from loralint.checks._util import effective, number
    from loralint.checks.hyperparams import scaling_of

    r, r_known = effective(site, "r")
    alpha, alpha_known = effective(site, "lora_alpha")
    rslora, rslora_known = effective(site, "use_rslora")
    if not (r_known and alpha_known and rslora_known):
        return None
    r, alpha = number(r), number(alpha)
    if r is None or alpha is None or r <= 0:
        return None
    return scaling_of(alpha, r, bool(rslora))


def cell_place(sources: SourceLines, span) -> tuple[int | None, Any]:
    """(cell, span inside that cell) for a position in a notebook, (None, span) anywhere else: every
    output names a notebook position as `check` does (ruff's `cell N:line:column`)."""
    from loralint.extract.notebook import in_cell

    found = in_cell(sources.cells(span.path), span)
    return found if found is not None else (None, span)


def place_text(sources: SourceLines, span) -> str:
    """`line:column`, or `cell N:line:column` in a notebook."""
    cell, inner = cell_place(sources, span)
    return f"{inner.line}:{inner.column}" if cell is None else f"cell {cell}:{inner.line}:{inner.column}"
