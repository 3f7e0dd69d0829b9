"""Applying fixes: `loralint check --fix` / `--unsafe-fixes` / `--diff`, and the editor's "fix all".

A fix is a list of text edits at spans (1-based lines, code-point columns, end exclusive) of the
text the check read. Edits are applied by position, so everything outside them (comments,
formatting, line endings) stays byte for byte what it was.

One pass applies every applicable fix that does not overlap one already taken (in the order of
the diagnostics); then the check runs again on the new text, and fixes it now finds (those that
overlapped, or that the first fixes made possible) are applied in the next pass, up to
`MAX_PASSES`. After each pass the text must still parse (libcst for Python, a YAML safe load, a
JSON load); when it does not, the fixes are retried one at a time and the ones that break the file
are dropped and reported, so a file that no longer parses is never written.

An edit that knows the text it replaces (a rename knows the old name) is checked against the
text under its span first: a fix whose span holds anything else is refused and reported, never
applied or counted.

Writes keep the file's encoding (UTF-8 BOM, PEP 263 coding line), newline style, mode, owner,
group and hard links, never overwrite a file whose bytes changed since they were read, and refuse
what the user could not write (see `write_file`): each refusal is that file's error, and the run
goes on with the other files.
"""

from __future__ import annotations

import bisect
import dataclasses
import difflib
import functools
import itertools
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralint.sites import Diagnostic, Fix

MAX_PASSES = 4

_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE_WITH_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


class EditError(ValueError):
    """An edit whose span is not inside the text (a stale or wrong position)."""


class EditMismatch(EditError):
    """An edit whose span holds other text than the fix means to replace: applying it would edit
    something else (a rename landing on a value), so the fix is refused and reported."""


@dataclass(slots=True)
class FixOutcome:
    """What `apply_fixes` did. `remaining` is the RunResult of what is left after fixing."""

    count: int = 0  # diagnostics whose fix was applied
    diff: str = ""  # unified diff of every changed file (`--- a/path` / `+++ b/path`)
    texts: dict[str, str] = field(default_factory=dict)  # display path -> fixed text (in-memory inputs, and changed files)
    remaining: object = None  # loralint.engine.RunResult
    written: list[str] = field(default_factory=list)  # display paths written to disk
    errors: list[str] = field(default_factory=list)  # what could not be fixed or written, as reported on stderr


# --- positions and edits -------------------------------------------------------------------


def line_starts(text: str) -> list[int]:
    """Offsets where each line starts; `\\r\\n`, `\\r` and `\\n` end a line (as the extractors count)."""
    return [0, *(m.end() for m in _NEWLINE.finditer(text))]


def _line_end(text: str, starts: list[int], index: int) -> int:
    """Offset of the end of line `index` (0-based), before its line break."""
    end = starts[index + 1] if index + 1 < len(starts) else len(text)
    if end > starts[index] and text[end - 1] == "\n":
        end -= 1
    if end > starts[index] and text[end - 1] == "\r":
        end -= 1
    return end


def offset(text: str, starts: list[int], line: int, column: int) -> int:
    """The code-point offset of 1-based (`line`, `column`); a column may point just past the line's end."""
    if not 1 <= line <= len(starts) or column < 1:
        raise EditError(f"position {line}:{column} is outside the text")
    at = starts[line - 1] + column - 1
    if at > _line_end(text, starts, line - 1):
        raise EditError(f"position {line}:{column} is past the end of its line")
    return at


def fix_ranges(text: str, starts: list[int], fix: Fix, newline: str = "\n") -> list[tuple[int, int, str]]:
    """The fix's edits as (start offset, end offset, new text), sorted; raises EditError."""
    out = []
    for edit in fix.edits:
        s = edit.span
        start, end = offset(text, starts, s.line, s.column), offset(text, starts, s.end_line, s.end_column)
        if end < start:
            raise EditError(f"edit ends before it starts at {s.line}:{s.column}")
        if edit.expected is not None and text[start:end] != edit.expected:
            raise EditMismatch(f"its span {s.line}:{s.column} holds {_excerpt(text[start:end])}, not {edit.expected!r}")
        new = edit.new_text
        if newline != "\n" and "\n" in new:
            new = new.replace("\r\n", "\n").replace("\n", newline)
        appended = _APPENDED_ARGUMENT.fullmatch(new) if start == end else None
        if appended is not None:
            out.extend(argument_ranges(text, starts, start, appended.group(1), newline))
            continue
        out.append((start, end, new))
    out.sort(key=lambda r: (r[0], r[1]))
    for (a, b, _), (c, d, _) in itertools.pairwise(out):
        if _conflict(a, b, c, d):
            raise EditError("the fix's own edits overlap")
    return out


# checks._util.append_argument inserts `, name=value` right after a call's last argument; where it
# goes on the line is decided here, where the text is known.
_APPENDED_ARGUMENT = re.compile(r", ([A-Za-z_]\w*=[^\r\n]*)")
_LINE_TAIL = re.compile(r"[ \t]*(,?)[ \t]*(?:#[^\r\n]*)?")
_INDENT = re.compile(r"[ \t]*")
MAX_ARGUMENT_LINES = 200  # how far up the start of a multi-line last argument is looked for
MAX_ARGUMENT_SCAN = 100_000  # characters scanned for it, at most
_CALL_OPENS_HERE = -1  # what _argument_line says when the call's bracket opens on the argument's line


def argument_ranges(text: str, starts: list[int], at: int, argument: str, newline: str) -> list[tuple[int, int, str]]:
    """Where `argument` (`name=value`) goes after the call argument that ends at offset `at`.

    A call laid out one argument a line (its closing bracket on a later line) gets the new argument
    on a line of its own, indented like the last argument, after that line's comment, with a trailing
    comma when the last argument had one; a comma is added after the last argument when it had none.
    A call whose arguments continue on lines of their own but that closes on the last one
    (`f(a,\n  b)`) gets it on a new line before the bracket; a one-line call gets `, name=value`.
    """
    index = bisect.bisect_right(starts, at) - 1
    first = _argument_line(text, starts, index, at)
    tail = _LINE_TAIL.fullmatch(text, at, _line_end(text, starts, index))
    if tail is not None and index + 1 < len(starts):
        if first == _CALL_OPENS_HERE:  # `f(a, b,\n)`: one level deeper than the call's line
            indent = _INDENT.match(text, starts[index]).group() + ("\t" if text[starts[index]] == "\t" else "    ")
        else:  # the last argument's first line (or, too far up to find, its last line)
            indent = _INDENT.match(text, starts[index if first is None else first]).group()
        comma = tail.group(1)
        ranges = [] if comma else [(at, at, ",")]
        ranges.append((starts[index + 1], starts[index + 1], f"{indent}{argument}{comma}{newline}"))
        return ranges
    if first is not None and first != _CALL_OPENS_HERE:
        return [(at, at, f",{newline}{_INDENT.match(text, starts[first]).group()}{argument}")]
    return [(at, at, f", {argument}")]


def _argument_line(text: str, starts: list[int], index: int, at: int) -> int | None:
    """The 0-based line where the argument ending at `at` (on line `index`) starts, when that line
    begins at argument level; `_CALL_OPENS_HERE` when the call's own bracket opens on that line;
    None when it is too far up to find (more lines or characters than are scanned)."""
    first = max(index - MAX_ARGUMENT_LINES + 1, 0)
    if at - starts[first] > MAX_ARGUMENT_SCAN:
        first = bisect.bisect_left(starts, at - MAX_ARGUMENT_SCAN)
        if first > index:
            return None
    opened = _bracket_depths(text, starts, first, index, at)  # brackets opened from line k to `at`
    for line in range(index, first - 1, -1):
        if opened[line - first] > 0:
            return _CALL_OPENS_HERE  # an unclosed bracket on this line: the call's own
        if opened[line - first] == 0:
            return line
    return None


def _bracket_depths(text: str, starts: list[int], first: int, last: int, end: int) -> list[int]:
    """For each line from `first` to `last`: brackets opened minus closed from that line's start to
    `end`, outside strings and comments (one scan)."""
    at_line: list[int] = []
    depth, i, line = 0, starts[first], first
    while i < end:
        while line <= last and i >= starts[line]:
            at_line.append(depth)
            line += 1
        ch = text[i]
        if ch == "#":
            line_break = _NEWLINE.search(text, i, end)
            i = line_break.start() if line_break else end
            continue
        if ch in "\"'":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else ch
            i += len(quote)
            while i < end and not text.startswith(quote, i):
                i += 2 if text[i] == "\\" else 1
            i += len(quote)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        i += 1
    while line <= last:
        at_line.append(depth)
        line += 1
    return [depth - before for before in at_line]


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _conflict(a: int, b: int, c: int, d: int) -> bool:
    """Do the ranges [a, b) and [c, d) collide? Two insertions at one point do (their order is
    ambiguous); ranges that merely touch do not."""
    if a < d and c < b:
        return True
    if a == c:
        return True
    return (a == b and c < a < d) or (c == d and a < c < b)


def apply_ranges(text: str, ranges: Iterable[tuple[int, int, str]]) -> str:
    """Apply non-overlapping (start, end, new text) ranges to `text`."""
    parts, last = [], len(text)
    for start, end, new in sorted(ranges, key=lambda r: (r[0], r[1]), reverse=True):
        parts.append(text[end:last])
        parts.append(new)
        last = start
    parts.append(text[:last])
    return "".join(reversed(parts))


def newline_of(text: str) -> str:
    """The file's newline style: that of its first line break (`\\n` when it has none)."""
    m = _NEWLINE.search(text)
    return m.group(0) if m else "\n"


# --- validation --------------------------------------------------------------------------


def parse_problem(text: str, fmt: str) -> str | None:
    """None when `text` parses as `fmt` ("python": libcst, "yaml": a safe load, "json"), else why not."""
    try:
        if fmt == "python":
            import libcst

            libcst.parse_module(text)
        elif fmt == "yaml":
            import yaml

            for _ in yaml.load_all(text, Loader=_yaml_loader()):
                pass
        elif fmt == "json":
            import json

            json.loads(text)
    except RecursionError:
        return "nesting too deep"
    except Exception as exc:  # noqa: BLE001 - libcst.ParserSyntaxError, yaml.YAMLError, JSONDecodeError
        return _one_line(exc)
    return None


def strict_problems(text: str, fmt: str) -> frozenset[str]:
    """Problems a parser lets through but the program would not: Python's compiler rejects a
    repeated keyword argument (`LoraConfig(lora_alpha=16, ..., lora_alpha=64)`), and YAML / JSON
    loaders silently keep the last of two equal keys. A fix may not add one (compared with the
    original text, so a file already in that state can still be fixed)."""
    try:
        if fmt == "python":
            try:
                compile(text, "<loralint-fix>", "exec", dont_inherit=True)  # compiles, never runs
            except SyntaxError as exc:
                return frozenset({f"SyntaxError: {exc.msg}"})
            except (ValueError, RecursionError, MemoryError):
                return frozenset()
            return frozenset()
        if fmt == "json":
            import json

            found: set[str] = set()

            def pairs(items: list) -> dict:
                keys = [k for k, _ in items]
                found.update(f"duplicate key {k!r}" for k in keys if keys.count(k) > 1)
                return dict(items)

            json.loads(text, object_pairs_hook=pairs)
            return frozenset(found)
        if fmt == "yaml":
            import yaml

            found = set()
            for root in yaml.compose_all(text, Loader=_yaml_loader()):
                stack = [root]
                while stack:
                    node = stack.pop()
                    if isinstance(node, yaml.MappingNode):
                        seen: set = set()
                        for key, value in node.value:
                            ident = (key.tag, key.value) if isinstance(key, yaml.ScalarNode) else None
                            if ident is not None and ident in seen:
                                found.add(f"duplicate key {key.value!r}")
                            seen.add(ident)
                            stack.append(value)
                    elif isinstance(node, yaml.SequenceNode):
                        stack.extend(node.value)
            return frozenset(found)
    except Exception:  # noqa: BLE001 - parse_problem reports unparseable text
        return frozenset()
    return frozenset()


def validate(text: str, fmt: str, original: str | None = None) -> str | None:
    """None when `text` is fine to write: it parses, and (given the `original`) the fix added no
    problem that only the compiler or a duplicate-key check sees. Else why not."""
    problem = parse_problem(text, fmt)
    if problem is not None:
        return problem
    added = strict_problems(text, fmt) - (_strict_baseline(original, fmt) if original is not None else frozenset())
    return min(added) if added else None


@functools.lru_cache(maxsize=16)
def _strict_baseline(original: str, fmt: str) -> frozenset[str]:
    return strict_problems(original, fmt)


def _yaml_loader():
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _one_line(exc: Exception) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__


# --- one document ------------------------------------------------------------------------


def applicable(fix: Fix | None, unsafe: bool) -> bool:
    return fix is not None and bool(fix.edits) and (fix.applicability == "safe" or unsafe)


@dataclass(slots=True)
class _Doc:
    display: str
    fmt: str
    text: str  # current text (no BOM)
    diagnostics: list[Diagnostic]
    original: str = ""
    newline: str = "\n"
    count: int = 0
    fixed: list[Diagnostic] = field(default_factory=list)  # whose fix the last pass applied
    rejected: set = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.original = self.text
        self.newline = newline_of(self.text)

    @property
    def changed(self) -> bool:
        return self.text != self.original


def _fix_key(diag: Diagnostic, text: str, ranges: list[tuple[int, int, str]]) -> tuple:
    """Identifies a fix across passes (positions shift; the text it replaces and writes do not)."""
    return (diag.code, diag.message, tuple((text[a:b], new) for a, b, new in ranges))


def _priority(diag: Diagnostic) -> tuple:
    """Which fix wins a conflict: safe before unsafe, errors before warnings, then by position."""
    rank = {"error": 0, "warning": 1, "info": 2}.get(diag.severity, 3)
    safe = diag.fix is not None and diag.fix.applicability == "safe"
    return (not safe, rank, diag.sort_key())


def _fix_pass(doc: _Doc, unsafe: bool) -> bool:
    """Apply one round of fixes to `doc`; True when its text changed. `doc.fixed` lists the
    diagnostics whose fix this round applied.

    A fix whose edits overlap one already taken waits for the next round (after a re-check). The
    round's result must pass `validate`; when it does not, fixes are added one at a time: one that
    breaks the file on its own is dropped for good and reported; one that only clashes with fixes
    taken before it (two fixes that each add `lora_alpha=`) waits for the next round.
    """
    doc.fixed = []
    starts = line_starts(doc.text)
    taken: list[tuple[int, int, str]] = []
    # one entry a distinct fix: (ranges, diagnostics it fixes, key); identical edits reached by two
    # findings (a dict shared by two configs) are applied once and fix both
    chosen: dict[tuple, tuple[list[tuple[int, int, str]], list[Diagnostic], tuple]] = {}
    for diag in sorted(doc.diagnostics, key=_priority):
        if diag.span.path != doc.display or not applicable(diag.fix, unsafe):
            continue
        try:
            ranges = fix_ranges(doc.text, starts, diag.fix, doc.newline)  # type: ignore[arg-type]
        except EditError as exc:
            # A span that does not fit the text, or holds other text than the fix means to replace:
            # never apply (or count) it; the finding stays, and why is reported once.
            key = ("refused", diag.code, diag.message, str(exc))
            if key not in doc.rejected:
                doc.rejected.add(key)
                sp = diag.span
                doc.errors.append(
                    f"{doc.display}:{sp.line}:{sp.column}: {diag.code} fix ({diag.fix.description}) refused:"  # type: ignore[union-attr]
                    f" {exc}; not applied"
                )
            continue
        key = _fix_key(diag, doc.text, ranges)
        if key in doc.rejected:
            continue
        edits_key = tuple(ranges)
        if edits_key in chosen:
            chosen[edits_key][1].append(diag)
            continue
        if any(_conflict(a, b, c, d) for a, b, _ in ranges for c, d, _ in taken):
            continue  # overlaps a fix already taken: the next pass gets it
        taken.extend(ranges)
        chosen[edits_key] = (ranges, [diag], key)
    if not chosen:
        return False
    new_text = apply_ranges(doc.text, taken)
    if validate(new_text, doc.fmt, doc.original) is not None:
        accepted: list[tuple[int, int, str]] = []
        new_text = doc.text
        for edits_key, (ranges, diags, key) in list(chosen.items()):
            attempt = apply_ranges(doc.text, [*accepted, *ranges])
            if accepted and validate(attempt, doc.fmt, doc.original) is None:
                accepted.extend(ranges)
                new_text = attempt
                continue
            problem = validate(apply_ranges(doc.text, ranges), doc.fmt, doc.original)
            if problem is None:
                if not accepted:
                    accepted.extend(ranges)
                    new_text = attempt
                else:
                    del chosen[edits_key]  # fine alone, clashes with the ones taken: next pass
                continue
            del chosen[edits_key]
            doc.rejected.add(key)
            for diag in diags:
                sp = diag.span
                doc.errors.append(
                    f"{doc.display}:{sp.line}:{sp.column}: {diag.code} fix ({diag.fix.description}) would leave "  # type: ignore[union-attr]
                    f"the file invalid ({problem}); not applied"
                )
    if new_text == doc.text:
        return False
    doc.text = new_text
    for _, diags, _ in chosen.values():
        doc.fixed.extend(diags)
    doc.count += len(doc.fixed)
    return True


def fix_text(
    display: str,
    text: str,
    diagnostics: list[Diagnostic],
    *,
    unsafe: bool = False,
    fmt: str | None = None,
    recheck: Callable[[str], list[Diagnostic]] | None = None,
    max_passes: int = MAX_PASSES,
) -> tuple[str, int, list[Diagnostic], list[str]]:
    """Fix one in-memory text. `recheck(new_text)` re-runs the check for later passes (without it,
    one pass). Returns (new text, fixes applied, diagnostics left, problems)."""
    from loralint.extract import file_format

    doc = _Doc(display, fmt or file_format(display) or "python", text, list(diagnostics))
    for _ in range(max_passes):
        if not _fix_pass(doc, unsafe):
            break
        if recheck is None:  # one pass: what was not fixed stays (positions as in the old text)
            fixed = {id(d) for d in doc.fixed}
            doc.diagnostics = [d for d in doc.diagnostics if id(d) not in fixed]
            break
        doc.diagnostics = recheck(doc.text)
    return doc.text, doc.count, doc.diagnostics, doc.errors


# --- files -------------------------------------------------------------------------------


@dataclass(slots=True)
class _FileDoc:
    doc: _Doc
    encoding: str  # how to turn the text back into bytes ("utf-8-sig" keeps a BOM)
    path: Path | None = None  # the file on disk; None for stdin
    data: bytes | None = None  # its bytes as read
    notebook: Any = None  # extract.notebook.Notebook: `doc` holds its cells' Python, written back into its JSON

    def output(self) -> str:
        """The file's text as it is to be written (a notebook's JSON with the fixed cells put back)."""
        return self.notebook.rewrite(self.doc.text) if self.notebook is not None else self.doc.text

    def before(self) -> str:
        return self.notebook.raw if self.notebook is not None else self.doc.original


def _notebook_doc(display: str, raw: str, diags: list[Diagnostic], encoding: str, path: Path | None = None,
                  data: bytes | None = None) -> _FileDoc:
    """A notebook is fixed as the Python of its code cells (the text its diagnostics point into)."""
    from loralint.extract.notebook import read_notebook

    notebook = read_notebook(raw)
    return _FileDoc(_Doc(display, "python", notebook.python, list(diags)), encoding, path, data, notebook)


def _decode(display: str, fmt: str, data: bytes) -> tuple[str, str]:
    """(text, encoding) exactly as the extractors decode the file."""
    from loralint.extract.source import declared_encoding

    encoding = declared_encoding(data) if fmt == "python" else "utf-8-sig"
    if encoding in ("utf-8", "utf-8-sig") and data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif encoding == "utf-8-sig":
        encoding = "utf-8"  # no BOM to keep
    return data.decode(encoding), encoding


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding)


def unified_diff(display: str, before: str, after: str) -> str:
    """A `git diff`-style unified diff of one file (ruff's `--diff` shape)."""
    if before == after:
        return ""
    a = _LINE_WITH_END.findall(before)
    b = _LINE_WITH_END.findall(after)
    if os.path.isabs(display):
        old, new = display, display
    else:
        name = display.replace(os.sep, "/")
        old, new = f"a/{name}", f"b/{name}"
    out = []
    for line in difflib.unified_diff(a, b, fromfile=old, tofile=new):
        if not line.endswith(("\n", "\r")):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


def write_file(path: Path, data: bytes, expected: bytes, root: Path | None = None) -> str | None:
    """Replace `path`'s contents with `data` unless it no longer holds `expected`. Returns None on
    success, else why nothing was written (the file is then byte for byte what it was).

    Refused: a file with no write bit set for anyone (as editors refuse it, even for root) or that
    the user may not write, a directory with no write bit, something other than a regular file, and
    a file reached through a symbolic link whose real location is outside `root` (the project;
    default: the current directory). A link inside the project is followed: its target is fixed.

    The new bytes go first to a temporary file in the same directory (fsynced). When the file has
    one name, no extended attributes (ACLs) and an owner and group the temporary file can take, that
    file gets its mode and replaces it atomically (`os.replace`). Otherwise (hard links, another
    owner) the bytes are copied into the original inode, which keeps every name, the owner, group,
    mode and ACLs; that copy is not atomic, but until it is complete the temporary file holds the
    whole fixed text, so a crash part-way leaves it next to the file.
    """
    base = Path(root) if root is not None else Path.cwd()
    real = Path(os.path.realpath(path))
    if real != Path(os.path.abspath(path)) and not real.is_relative_to(os.path.realpath(base)):
        return f"it is reached through a symbolic link to {real}, outside the project ({base}); not following it"
    try:
        st = os.stat(real)
    except OSError as exc:
        return f"cannot read it any more ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file any more"
    if not st.st_mode & 0o222:
        return f"it is read-only (mode {stat.S_IMODE(st.st_mode):04o}); make it writable to fix it"
    if not os.access(real, os.W_OK):
        return "permission denied: you cannot write it"
    directory = real.parent
    try:
        dir_mode = os.stat(directory).st_mode
    except OSError as exc:
        return f"cannot read its directory ({exc.strerror})"
    if not dir_mode & 0o222:
        return f"its directory is read-only (mode {stat.S_IMODE(dir_mode):04o}), so no temporary file can be made there"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "permission denied: you cannot create the temporary file in its directory"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".loralint-tmp", dir=directory)
    except OSError as exc:
        return f"cannot create a temporary file in its directory ({exc.strerror or exc})"
    tmp_path: str | None = tmp
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if st.st_nlink > 1 or _has_xattrs(real) or not _take_owner(tmp, st):
            return _write_in_place(real, data, expected)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
        if _read_current(real, len(expected)) != expected:
            return "it changed since it was read"
        os.replace(tmp, real)
        tmp_path = None
    except OSError as exc:
        return f"cannot write it ({exc.strerror or exc})"
    finally:
        if tmp_path is not None:
            try:
                os.unlink(tmp_path)
            except OSError:
                pass
    return None


def _take_owner(tmp: str, st: os.stat_result) -> bool:
    """Give the temporary file `st`'s owner and group; False when that is not allowed (EPERM)."""
    mine = os.stat(tmp)
    if (mine.st_uid, mine.st_gid) == (st.st_uid, st.st_gid):
        return True
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except PermissionError:
        return False
    return True


def _has_xattrs(path: Path) -> bool:
    """Extended attributes (POSIX ACLs, SELinux labels) a replacing file would not carry."""
    try:
        return bool(os.listxattr(path))
    except (AttributeError, OSError):  # no xattr support here: nothing to lose
        return False


def _read_current(path: Path, size: int) -> bytes:
    """The file's bytes, never more than `size` + 1 (enough to tell it is not what was read)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read(size + 1)


def _write_in_place(path: Path, data: bytes, expected: bytes) -> str | None:
    """Overwrite the file through its own inode (keeps hard links, owner, group, mode, ACLs)."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "r+b") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return "it is not a regular file any more"
        if handle.read(len(expected) + 1) != expected:
            return "it changed since it was read"
        handle.seek(0)
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())
    return None


def _report(message: str) -> None:
    from loralint.report.escape import escape  # file names come from the checked tree

    print(f"loralint: error: {escape(message)}", file=sys.stderr)


def apply_fixes(
    result,
    *,
    unsafe: bool = False,
    write: bool = True,
    texts: Mapping[str, str] | None = None,
    settings=None,
    options=None,
    resolve=None,
    max_passes: int = MAX_PASSES,
    report: Callable[[str], None] = _report,
) -> FixOutcome:
    """Apply the fixes of `result` (a RunResult): safe ones, and unsafe ones too with `unsafe`.

    `texts` holds in-memory inputs (stdin) by display path: they are fixed in memory only, into
    `.texts`. Files are written only with `write`. After each pass the changed files are checked
    again (`engine.run(sources=...)` with `settings`, `options` and `resolve`; settings default
    to those discovered from the files), so `.remaining` holds what is still there.
    """
    from loralint.extract import file_format

    texts = dict(texts or {})
    root = getattr(settings, "root", None)  # symbolic links are followed only inside it
    outcome = FixOutcome()
    by_path: dict[str, list[Diagnostic]] = {}
    for diag in result.diagnostics:
        by_path.setdefault(diag.span.path, []).append(diag)

    docs: dict[str, _FileDoc] = {}
    # One file reached by several names (hard links, a symbolic link and its target) is fixed once,
    # through the first name; the others are checked again afterwards.
    seen: dict[tuple[int, int], str] = {}
    aliases: dict[str, str] = {}

    def through_link(item: tuple[str, list[Diagnostic]]) -> bool:  # the real name is fixed first
        fs = result.sources.get(item[0], item[0])
        return item[0] not in texts and os.path.realpath(fs) != os.path.abspath(fs)

    for display, diags in sorted(by_path.items(), key=through_link):
        if not any(applicable(d.fix, unsafe) for d in diags):
            continue
        fmt = file_format(display) or "python"
        if display in texts:
            text = texts[display]
            encoding = "utf-8"
            if text.startswith("\ufeff"):
                text, encoding = text[1:], "utf-8-sig"
            try:
                docs[display] = (_notebook_doc(display, text, diags, encoding) if fmt == "notebook"
                                 else _FileDoc(_Doc(display, fmt, text, list(diags)), encoding))
            except Exception as exc:  # noqa: BLE001 - a notebook that does not read: its LORA901 says why
                outcome.errors.append(f"{display}: cannot read it to fix it ({exc}); not fixed")
            continue
        fs_path = Path(result.sources.get(display, display))
        try:
            st = os.stat(fs_path)
            if not stat.S_ISREG(st.st_mode):  # swapped for a FIFO or device since the check
                raise OSError(f"{fs_path} is not a regular file")
            identity = (st.st_dev, st.st_ino)
            if identity in seen:
                aliases[display] = seen[identity]
                continue
            from loralint.safe_read import DEFAULT_MAX_FILE_SIZE, read_limited

            data = read_limited(fs_path, getattr(settings, "max_file_size", DEFAULT_MAX_FILE_SIZE))
            text, encoding = _decode(display, fmt, data)
            fixing = (_notebook_doc(display, text, diags, encoding, fs_path, data) if fmt == "notebook"
                      else _FileDoc(_Doc(display, fmt, text, list(diags)), encoding, fs_path, data))
        except Exception as exc:  # noqa: BLE001 - OSError, UnicodeDecodeError, UndecodableSource
            outcome.errors.append(f"{display}: cannot read it to fix it ({exc}); not fixed")
            continue
        seen[identity] = display
        docs[display] = fixing

    new_sites: dict[str, list] = {}
    for _ in range(max_passes):
        changed = [fd for fd in docs.values() if _fix_pass(fd.doc, unsafe)]
        if not changed:
            break
        fresh = _recheck(changed, result, settings, options, resolve)
        for fd in changed:
            fd.doc.diagnostics = [d for d in fresh.diagnostics if d.span.path == fd.doc.display]
            new_sites[fd.doc.display] = [s for s in fresh.sites if s.path == fd.doc.display]

    diagnostics: list[Diagnostic] = []
    sites = list(result.sites)
    out_texts = dict(result.texts)
    kept: set[str] = set()  # files whose original diagnostics still describe the truth
    for display, fd in sorted(docs.items()):
        doc = fd.doc
        outcome.errors.extend(doc.errors)
        if not doc.changed:
            kept.add(display)
            if display in texts:
                outcome.texts[display] = texts[display]
            continue
        if fd.path is None:  # stdin: printed, never written; a BOM it came with goes back out
            outcome.texts[display] = ("\ufeff" if fd.encoding == "utf-8-sig" else "") + fd.output()
            outcome.diff += unified_diff(display, fd.before(), fd.output())
            outcome.count += doc.count
            out_texts[display] = fd.output()
            continue
        try:
            data = _encode(fd.output(), fd.encoding)
        except UnicodeEncodeError as exc:
            outcome.errors.append(f"{display}: the fixed text cannot be written as {fd.encoding} ({exc.reason}); not fixed")
            kept.add(display)
            continue
        if write:
            problem = write_file(fd.path, data, fd.data, root)  # type: ignore[arg-type]
            if problem is not None:
                outcome.errors.append(f"{display}: not fixed: {problem}")
                kept.add(display)
                continue
            outcome.written.append(display)
        outcome.texts[display] = fd.output()
        outcome.diff += unified_diff(display, fd.before(), fd.output())
        outcome.count += doc.count
        out_texts[display] = fd.output()
    alias_diagnostics = _recheck_aliases(aliases, docs, outcome, new_sites, result, settings, options, resolve)
    for display, diags in by_path.items():
        fd = docs.get(display)
        if display in alias_diagnostics:
            diagnostics.extend(alias_diagnostics[display])
        elif fd is None or display in kept:
            diagnostics.extend(diags)
        else:
            diagnostics.extend(fd.doc.diagnostics)
    # Files the fixes made clean have no diagnostics left; those with new ones are above.
    for display, fresh_sites in new_sites.items():
        if display not in kept:
            sites = [s for s in sites if s.path != display] + fresh_sites
    diagnostics.sort(key=Diagnostic.sort_key)
    outcome.remaining = dataclasses.replace(result, diagnostics=diagnostics, sites=sites, texts=out_texts)
    for message in outcome.errors:
        report(message)
    return outcome


def _recheck_aliases(aliases, docs, outcome, new_sites, result, settings, options, resolve) -> dict[str, list[Diagnostic]]:
    """The other names of files just written see the fixed text: check them again under their
    own names (their settings may differ), and count them as written."""
    moved = [alias for alias, primary in aliases.items() if primary in outcome.written]
    if not moved:
        return {}
    copies = []
    for alias in moved:
        fd = docs[aliases[alias]]
        copies.append(_FileDoc(_Doc(alias, fd.doc.fmt, fd.doc.text, []), fd.encoding, fd.path, None, fd.notebook))
    fresh = _recheck(copies, result, settings, options, resolve)
    out: dict[str, list[Diagnostic]] = {}
    for alias in moved:
        out[alias] = [d for d in fresh.diagnostics if d.span.path == alias]
        new_sites[alias] = [s for s in fresh.sites if s.path == alias]
        outcome.written.append(alias)
    return out


def _recheck(changed: list[_FileDoc], result, settings, options, resolve):
    """Check the changed texts again, in memory, with the run's settings."""
    from loralint.engine import Options, run

    if options is None:
        options = Options()
    if settings is None:
        from loralint.settings import discover_settings

        settings = discover_settings([changed[0].path or Path(".")])
    sources = {}
    for fd in changed:
        try:
            sources[fd.doc.display] = fd.output().encode(fd.encoding)
        except UnicodeEncodeError:
            sources[fd.doc.display] = fd.output().encode("utf-8")
    return run([], settings, options, sources=sources, resolve=resolve)
