"""Jupyter notebooks (.ipynb, nbformat 4) read as one Python module.

The code cells, in order, make one Python text (the "cell text"): the program model sees it as it
sees a script, so a config built in cell 2 and applied in cell 5 is one story. IPython syntax that
is not Python (`%magic`, `!shell`, `x = !ls`, `obj?`, a `%%` cell magic) is blanked line by line
(a cell whose first line is a `%%` magic is skipped whole, except the magics whose body is Python
such as `%%time`), but only in a cell that does not parse as it is, so a string or comment is never
touched. A cell that still does not parse is one LORA901 and is left out; the others are checked.

Positions inside the pipeline are positions in the cell text. Output maps them (`Notebook`):
text output as `cell N:line:column` (cells counted as the notebook shows them, markdown included),
SARIF, GitHub and LSP output to the line and column in the .ipynb file's JSON where the source
character is written, which is what code scanning and editors open. `--fix` edits the cell text and
`Notebook.rewrite` puts the changed cells back by replacing only their `source` strings in the raw
JSON, so the rest of the file stays byte-identical.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from loralint.extract.source import LineIndex, SourceSyntaxError
from loralint.sites import Span

if TYPE_CHECKING:  # the JSON reader (and yaml) load only when a notebook is read
    from loralint.extract.yaml_positions import Node

SUFFIX = ".ipynb"
_C = TypeVar("_C")

# A line that is IPython syntax, not Python: `%magic`, `!cmd`, `x = !cmd` / `x = %magic`,
# `obj?` / `?obj` / `obj??` help (only on a bare dotted name, so a `?` inside a string is no match).
_MAGIC_LINE = re.compile(
    r"^[ \t]*(?:[%!]|[\w., \t\[\]]+=[ \t]*[%!]|\?{1,2}[ \t]*[\w.]+[ \t]*$|[\w.\[\]]+[ \t]*\?{1,2}[ \t]*$)"
)
# Cell magics whose body is Python that IPython runs (IPython.core.magics: execution, basic).
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
_LINE_BREAKS = re.compile(r"\r\n|\r")
# One decoded character of a JSON string's raw text: a surrogate pair, an escape, or a character.
_JSON_CHAR = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\.|[^\\]", re.S)


def is_notebook(path: str) -> bool:
    return path.lower().endswith(SUFFIX)


@dataclass(slots=True)
class Cell:
    number: int  # 1-based, over every cell of the notebook (markdown included), as the notebook shows them
    node: Node | None  # the `source` value: a string, or a list of strings (None until Notebook.nodes())
    original: list[str]  # the source's lines as written (line breaks kept)
    lines: list[str]  # as Python sees them: IPython-only lines blanked (line breaks kept)
    first: int = 0  # 1-based line of the cell text where this cell starts
    done: bool = False  # `lines` are final (else the original's, until _finish decides what to blank)


@dataclass(slots=True)
class Notebook:
    raw: str  # the .ipynb file's text
    cells: list[Cell] = field(default_factory=list)  # code cells only
    _python: str | None = ""  # the cell text; None until asked for (a notebook read for output only)
    # (code, message, line, column) in the cell text: LORA901, or LORA906 for syntax newer than this Python
    problems: list[tuple[str, str, int, int]] = field(default_factory=list)
    _line_counts: list[int] | None = None  # per cell, the lines of the cell text up to its end
    _raw_starts: dict[int, list[int]] = field(default_factory=dict)  # per cell scanned, where its lines begin (raw)
    _raw_index: LineIndex | None = None
    _composed: bool = True  # the cells' `node`s are set (else nodes() sets them when first asked)
    _ends: list[int] | None = None  # per cell, the last line of the cell text it holds, as text_line counts
    # The cell text's module, put together from the cells' own parses (read_notebook, not lazy): the parse
    # of the whole text gives the same tree (see _as_python), so the text is not parsed a second time.
    tree: ast.Module | None = None

    @property
    def python(self) -> str:
        """The code cells' Python, one text (IPython-only lines blanked)."""
        if self._python is None:
            for cell in self.cells:
                _finish(self, cell)
            self._python = "".join(line for cell in self.cells for line in cell.lines)
        return self._python

    def text_line(self, number: int) -> str | None:
        """Line `number` of `python` as loralint.report.split_lines counts its lines (a line break of another
        kind, `\\x0c` say, ends no line there), None past the end: what the report shows, finishing (parsing)
        only the cell that line is in. The cell text has no `\\r` and ends each cell with `\\n`, so its lines are
        each cell's in turn; blanking keeps every `\\n`, so where a cell's lines fall is known before it is parsed."""
        if self._ends is None:
            self._ends, total = [], 0
            for cell in self.cells:
                total += "".join(cell.lines).count("\n")  # the same before and after _finish
                self._ends.append(total)
        if number < 1:
            return None
        k = bisect_left(self._ends, number)
        if k == len(self.cells):
            return "" if number == (self._ends[-1] if self._ends else 0) + 1 else None  # after the last break
        cell = self.cells[k]
        _finish(self, cell)
        start = self._ends[k - 1] if k else 0
        return "".join(cell.lines).split("\n")[number - start - 1]  # split_lines, for a text without \r

    def nodes(self) -> None:
        """Set each cell's `node` (its position in the raw JSON), for the readers that need them: the
        JSON positions of SARIF/LSP output and fixes. Text and JSON output need only the cells' lines."""
        if self._composed:
            return
        from loralint.extract.yaml_positions import compose_json

        root = compose_json(self.raw, ("cells", "*", "source"), within_limits=True)  # read_notebook checked it
        cell_nodes = root.get("cells")
        assert cell_nodes is not None
        for cell in self.cells:
            cell.node = cell_nodes.items[cell.number - 1].get("source")
        self._composed = True

    @property
    def index(self) -> LineIndex:
        if self._raw_index is None:
            self._raw_index = LineIndex(self.raw)
        return self._raw_index

    # --- positions -------------------------------------------------------------------------
    def cell_of(self, line: int) -> tuple[Cell, int] | None:
        """(cell, 1-based line inside it) of a line of the cell text; None past the end."""
        return _locate(self.cells, line, lambda cell: len(cell.lines))

    def cell_position(self, line: int, column: int) -> tuple[int, int, int] | None:
        """(cell number, line in the cell, column) for a position of the cell text."""
        found = self.cell_of(line)
        return None if found is None else (found[0].number, found[1], column)

    def json_position(self, line: int, column: int) -> tuple[int, int] | None:
        """(line, column) in the .ipynb file where the character at (line, column) of the cell text
        is written (escapes counted as written: `\\"` is two columns)."""
        offset = self._raw_line_start(line)
        if offset is None:
            return None
        for _ in range(max(column - 1, 0)):
            match = _JSON_CHAR.match(self.raw, offset)
            if match is None or match.group() in ('"', "\\n", "\\r"):
                break  # the end of the line (or of the string): columns past it stay there
            offset = match.end()
        return self.index.position(offset)

    def _raw_line_start(self, line: int) -> int | None:
        """The raw offset where line `line` of the cell text begins; None past its end. Only the cell it is
        in is scanned (a notebook with findings in two cells need not have all its cells scanned)."""
        if self._line_counts is None:
            self.nodes()
            self._line_counts = list(accumulate(len(cell.lines) for cell in self.cells))
        if not 0 < line <= (self._line_counts[-1] if self._line_counts else 0):
            return None
        k = bisect_left(self._line_counts, line)  # the first cell that holds it (an empty cell holds none)
        starts = self._raw_starts.get(k)
        if starts is None:
            starts = self._raw_starts[k] = _raw_line_starts(self.raw, self.index, self.cells[k])
        return starts[line - (self._line_counts[k - 1] if k else 0) - 1]

    # --- fixes -----------------------------------------------------------------------------
    def rewrite(self, python: str) -> str:
        """The .ipynb text with the cells whose Python changed written back; everything else
        (other cells, outputs, metadata, whitespace, key order) byte for byte as it was."""
        self.nodes()
        new_lines = _code_lines(python)
        old_lines = _code_lines(self.python)
        replacements: list[tuple[int, int, str]] = []
        bounds = _map_bounds(old_lines, new_lines, [c.first - 1 for c in self.cells] + [len(old_lines)])
        for k, cell in enumerate(self.cells):
            lines = new_lines[bounds[k] : bounds[k + 1]]
            if lines == cell.lines:
                continue
            source = "".join(_restore(cell, lines))
            if source.endswith("\n") and not "".join(cell.original).endswith("\n"):
                source = source[:-1]  # the cell text ends every cell with a line break; the notebook did not
            replacements.append((*_offsets(self.index, cell.node), _dump_source(self.raw, self.index, cell, source)))
        text = self.raw
        for start, end, new in sorted(replacements, reverse=True):
            text = text[:start] + new + text[end:]
        return text


# --- reading -------------------------------------------------------------------------------


def read_notebook(raw: str, lazy: bool = False) -> Notebook:
    """The notebook's code cells as Python. SourceSyntaxError (LORA901) when the file is not an
    nbformat 4 notebook (invalid JSON, nbformat 3's worksheets, no cell list, a source that is
    neither a string nor a list of strings).

    The cells' raw JSON positions (composing them is most of the cost of reading a notebook) are left
    to `Notebook.nodes()`, for the readers that need them, when composing them later cannot fail: a
    notebook that might reach a limit of the JSON scan is composed here, so it fails here as it did.
    `lazy` (output): the cells are parsed when their lines are asked for (Notebook.python, text_line)."""
    from loralint.extract.yaml_positions import compose_json, parse_json_composable

    doc, composable = parse_json_composable(raw)
    if not isinstance(doc, dict):
        raise SourceSyntaxError("not a Jupyter notebook (the JSON document is not an object)")
    major = doc.get("nbformat")
    if isinstance(major, int) and major < 4 or "worksheets" in doc:
        raise SourceSyntaxError(f"nbformat {major} notebook: loralint reads nbformat 4 (open and save it in Jupyter to upgrade)")
    cells = doc.get("cells")
    if not isinstance(cells, list):
        raise SourceSyntaxError("not a Jupyter notebook (no \"cells\" list)")
    notebook = Notebook(raw)
    if not cells or not _is_python(doc.get("metadata")):
        return notebook  # an empty notebook, or another kernel's language: nothing to read as Python
    cell_nodes = None
    positions = not composable
    if positions:
        root = compose_json(raw, ("cells", "*", "source"))  # positions of the sources only: outputs are skipped
        cell_nodes = root.get("cells")
        assert cell_nodes is not None
    else:
        notebook._composed = False
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        source_node = None
        if cell_nodes is not None:
            node = cell_nodes.items[number - 1]
            source_node = node.get("source") if node.kind == "map" else None
        if not isinstance(source, str) or (positions and source_node is None):
            if cell_nodes is None:  # the error's position: composed for it
                cell_nodes = compose_json(raw, ("cells", "*", "source")).get("cells")
                assert cell_nodes is not None
            line, column = cell_nodes.items[number - 1].start
            raise SourceSyntaxError(f"cell {number}: \"source\" is neither a string nor a list of strings", line, column)
        original = _code_lines(_LINE_BREAKS.sub("\n", source))
        notebook.cells.append(Cell(number, source_node, original, list(original)))
    _as_python(notebook, lazy)
    return notebook


@lru_cache(maxsize=8)
def cached_notebook(raw: str) -> Notebook | None:
    """`read_notebook` for output: None when the file is not a readable notebook (its diagnostics
    then carry positions in the raw file, which output keeps as they are)."""
    try:
        return read_notebook(raw, lazy=True)  # output parses only the cells whose lines it shows
    except Exception:
        return None


def _is_python(metadata: object) -> bool:
    if not isinstance(metadata, dict):
        return True
    for key, name_key in (("kernelspec", "language"), ("language_info", "name")):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get(name_key), str):
            return section[name_key].lower() in ("python", "python3", "ipython", "ipython3")
    return True


def _as_python(notebook: Notebook, lazy: bool = False) -> None:
    """Fill each cell's Python lines and the cell text. `lazy`: only where each cell starts, which does not
    depend on what is blanked (a line is blanked, never removed); a cell is finished (parsed, its IPython
    lines blanked) when its lines are first shown, so output showing a few lines parses a few cells."""
    line, breaks = 1, 0
    body: list[ast.stmt] = []
    for cell in notebook.cells:
        cell.first = line
        if lazy:
            _end_lines(cell)
        else:
            tree = _finish(notebook, cell, breaks)
            if tree is not None:
                body.extend(tree.body)
            breaks += sum(1 for ln in cell.lines if ln.endswith("\n"))  # a line holds at most one \n, at its end
        line += len(cell.lines)
    notebook._python = None if lazy else "".join(line for cell in notebook.cells for line in cell.lines)
    if not lazy:
        # Each cell kept parses alone and ends with a line break at the top level (a cell left open in a
        # bracket, a string or a backslash continuation does not parse alone); parsed after as many line
        # breaks as the text has before it, it gets its positions in the text. ast.parse checks nothing
        # across statements (no __future__ placement, no return outside a function): the whole text
        # parses to these statements.
        notebook.tree = ast.Module(body=body, type_ignores=[])


def _finish(notebook: Notebook, cell: Cell, breaks: int | None = None) -> ast.Module | None:
    """The cell's lines as Python sees them: as written when it parses, else with IPython syntax blanked,
    else all blank (and a LORA901/LORA906 problem). With `breaks` (the line breaks of the cell text
    before the cell): the cell's module, its positions those in the cell text (None: left out)."""
    if cell.done:
        return None
    cell.done = True
    text = "".join(cell.original)
    tree = _parsed(text, breaks)
    if tree is None:
        cell.lines = _blank_ipython(cell.original)
        tree = _parsed("".join(cell.lines), breaks)
        if tree is None:
            problem = _syntax_error("".join(cell.lines))
            cell.lines = ["\n" if ln.endswith("\n") else "" for ln in cell.original]
            if problem is not None:  # None: valid IPython (top-level await) that is not a module
                code, message, row, column = problem
                notebook.problems.append(
                    (code, f"cell {cell.number}: {message}; this cell not checked", cell.first + row - 1, column)
                )
    _end_lines(cell)
    return tree


def _end_lines(cell: Cell) -> None:
    if cell.lines and not cell.lines[-1].endswith("\n"):
        cell.lines[-1] += "\n"
    if not cell.lines:
        cell.lines = ["\n"]  # an empty cell still has its line, so the next cell starts after it


def _parsed(text: str, breaks: int | None) -> ast.Module | None:
    """The text's module (after `breaks` line breaks when given), None when it does not parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences etc. are not ours to report
            return ast.parse("\n" * breaks + text if breaks else text)
    except (SyntaxError, ValueError):
        return None


def _syntax_error(text: str) -> tuple[str, str, int, int] | None:
    try:
        compile(text, "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError as exc:
        # Here, not at the top: a warm run reads notebooks (for their cells' lines) but needs no program model.
        from loralint.program.model import newer_syntax

        newer = newer_syntax(exc)
        if newer is not None:  # the cell is valid on the Python the notebook runs on: a limit of ours
            return "LORA906", f"analysis limit: {newer}", exc.lineno or 1, exc.offset or 1
        return "LORA901", f"cannot parse ({exc.msg})", exc.lineno or 1, exc.offset or 1
    except ValueError as exc:
        return "LORA901", f"cannot parse ({exc})", 1, 1
    return None


def _blank_ipython(lines: list[str]) -> list[str]:
    """The lines with IPython-only syntax blanked (a line break kept, an indented one becomes
    `pass` so the block around it stays a block)."""
    out = list(lines)
    first = lines[0].strip() if lines else ""
    start = 0
    if first.startswith("%%"):
        magic = first[2:].split(maxsplit=1)[0] if len(first) > 2 else ""
        stop = 1 if magic in _PYTHON_CELL_MAGICS else len(lines)
        for i in range(stop):
            out[i] = "\n" if lines[i].endswith("\n") else ""
        if stop == len(lines):
            return out
        start = 1  # a Python body (`%%capture` then `!pip install ...`, Colab's usual first cell)
    continued = False
    for i, line in enumerate(lines):
        if i < start:
            continue
        if continued or _MAGIC_LINE.match(line):
            body = line.rstrip("\r\n")
            indent = body[: len(body) - len(body.lstrip())]
            out[i] = (indent + "pass" if indent and not continued else "") + ("\n" if line.endswith("\n") else "")
            continued = body.endswith("\\")  # `!pip install a \` goes on on the next line
    return out


# --- raw positions ---------------------------------------------------------------------------


def _offsets(index: LineIndex, node: Node) -> tuple[int, int]:
    """Raw offsets [start, end) of a node (its positions are 1-based line and code-point column)."""
    return (index.starts[node.start[0] - 1] + node.start[1] - 1, index.starts[node.end[0] - 1] + node.end[1] - 1)


def _strings(node: Node) -> list[Node]:
    return list(node.items) if node.kind == "seq" else [node]


def _code_lines(text: str) -> list[str]:
    """`text`'s lines, line breaks kept, as Python numbers them once `\r\n` and `\r` are `\n`: only `\n` ends
    a line. str.splitlines also breaks at a form feed, `\v`, `\x1c`-`\x1e`, `\x85`, `\u2028` and `\u2029`, which
    would put every later cell's lines (and the fixes' cell bounds) after where Python and the report see them."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _raw_line_starts(raw: str, index: LineIndex, cell: Cell) -> list[int]:
    """Raw offset where each line of the cell's source begins (inside its JSON string)."""
    starts: list[int] = []
    at_start = True
    for string in _strings(cell.node):
        offset = _offsets(index, string)[0] + 1  # after the opening quote
        while True:
            match = _JSON_CHAR.match(raw, offset)
            if match is None or match.group() == '"':
                break
            if at_start:
                starts.append(offset)
                at_start = False
            offset = match.end()
            char = match.group()
            if char in ("\\n", "\\u000a", "\\u000A") or (char == "\\r" and not raw.startswith("\\n", offset)):
                at_start = True
    while len(starts) < len(cell.lines):  # a blanked (empty) cell's one line
        starts.append(starts[-1] if starts else _offsets(index, cell.node)[0])
    return starts[: len(cell.lines)]


# --- writing back ----------------------------------------------------------------------------


def _map_bounds(old: list[str], new: list[str], bounds: list[int]) -> list[int]:
    """Where each cell boundary of the old cell text falls in the new one. Fixes edit inside one
    call, never across cells, so every boundary lies in a run of lines the two texts share."""
    import difflib

    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    out = []
    for bound in bounds:
        mapped = None
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if i1 <= bound < i2 or (bound == i2 and tag == "equal" and i2 == len(old)):
                mapped = j1 + (bound - i1) if tag == "equal" else j1
                break
        out.append(len(new) if mapped is None else mapped)
    return out


def _restore(cell: Cell, lines: list[str]) -> list[str]:
    """The new Python lines of a cell with its blanked IPython lines put back where they were."""
    import difflib

    matcher = difflib.SequenceMatcher(None, cell.lines, lines, autojunk=False)
    out: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(cell.original[i1:i2] if i2 <= len(cell.original) else lines[j1:j2])
        else:
            out.extend(lines[j1:j2])
    return out


def _dump_source(raw: str, index: LineIndex, cell: Cell, source: str) -> str:
    """`source` written as the notebook wrote it: a list of one string a line (Jupyter's way),
    laid out with the whitespace the old list used, or one string."""
    ascii_only = "\\u" in raw and not any(ord(ch) > 127 for ch in raw)

    def dump(s: str) -> str:
        return json.dumps(s, ensure_ascii=ascii_only)

    if cell.node.kind != "seq":
        return dump(source)
    lines = source.splitlines(keepends=True)
    start, end = _offsets(index, cell.node)
    items = cell.node.items
    if not items:
        return "[" + ", ".join(dump(s) for s in lines) + "]"
    first_start = _offsets(index, items[0])[0]
    last_end = _offsets(index, items[-1])[1]
    opening = raw[start + 1 : first_start]  # "\n    " after `[`
    closing = raw[last_end : end - 1]  # "\n   " before `]`
    between = raw[_offsets(index, items[0])[1] : _offsets(index, items[1])[0]] if len(items) > 1 else "," + opening
    return "[" + opening + between.join(dump(s) for s in lines) + closing + "]"


# --- output ----------------------------------------------------------------------------------


class _Placed(NamedTuple):
    number: int
    first: int
    count: int


class CellMap:
    """Where a notebook's code cells lie in its cell text, as extraction found them (FileResult.cells):
    enough to name a position by cell (`cell_of`, as Notebook answers it) without reading and decoding the
    notebook's JSON again, which a notebook with its outputs kept makes most of a warm run's output."""

    __slots__ = ("_cells",)

    def __init__(self, flat: list[int]) -> None:
        self._cells = [_Placed(*flat[k:k + 3]) for k in range(0, len(flat) - 2, 3)]

    def cell_of(self, line: int) -> tuple[_Placed, int] | None:
        return _locate(self._cells, line, lambda cell: cell.count)


def _locate(cells: Sequence[_C], line: int, size: Callable[[_C], int]) -> tuple[_C, int] | None:
    """(cell, 1-based line inside it) of a line of the cell text; None past the end."""
    for cell in reversed(cells):
        if cell.first <= line:  # type: ignore[attr-defined]
            inside = line - cell.first + 1  # type: ignore[attr-defined]
            return (cell, inside) if inside <= max(size(cell), 1) else None
    return None


def in_cell(notebook: Notebook | CellMap | None, span: Span) -> tuple[int, Span] | None:
    """(cell number, the span with lines counted inside that cell) for a span of the cell text;
    None when `notebook` is None (not a notebook, or one that could not be read: its spans are
    positions in the raw file already)."""
    if notebook is None:
        return None
    start = notebook.cell_of(span.line)
    if start is None:
        return None
    cell, line = start
    end_line = line + max(span.end_line - span.line, 0)
    return cell.number, Span(span.path, line, span.column, end_line, span.end_column)


# "line 9", "lines 3, 5" in a message: positions of the cell text that a reader of the notebook cannot find.
_LINE_REFS = re.compile(r"\b(lines?) (\d+(?:, \d+)*)\b")


def cell_line_refs(notebook: Notebook | CellMap | None, text: str) -> str:
    """`text` (a message or a note about a notebook) with each line of the cell text it names as the
    notebook shows it: "Trainer at line 9" → "Trainer at cell 6, line 1", as positions are printed.
    A message a cell already names ("cell 3: ...", LORA901) counts lines inside that cell and is kept."""
    if notebook is None or "line" not in text or text.startswith("cell "):
        return text

    def place(match: re.Match[str]) -> str:
        found = [notebook.cell_of(int(n)) for n in match.group(2).split(", ")]
        if any(f is None for f in found):
            return match.group(0)
        return "; ".join(f"cell {cell.number}, line {line}" for cell, line in found)  # type: ignore[misc]

    return _LINE_REFS.sub(place, text)


def in_json(notebook: Notebook | None, span: Span) -> Span:
    """The span in the .ipynb file's JSON text (where code scanning and editors look)."""
    if notebook is None:
        return span
    start = notebook.json_position(span.line, span.column)
    if start is None:
        return span
    end = notebook.json_position(span.end_line, span.end_column) or start
    if end < start:
        end = start
    return Span(span.path, start[0], start[1], end[0], end[1])
