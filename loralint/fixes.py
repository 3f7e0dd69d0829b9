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

Writes are atomic (a temporary file in the same directory, then `os.replace`), keep the file's
mode, its encoding (UTF-8 BOM, PEP 263 coding line) and its newline style, and never overwrite a
file whose bytes changed since they were read.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from loralint.sites import Diagnostic, Fix

MAX_PASSES = 4

_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE_WITH_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


class EditError(ValueError):
    """An edit whose span is not inside the text (a stale or wrong position)."""


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
        new = edit.new_text
        if newline != "\n" and "\n" in new:
            new = new.replace("\r\n", "\n").replace("\n", newline)
        out.append((start, end, new))
    out.sort(key=lambda r: (r[0], r[1]))
    for (a, b, _), (c, d, _) in itertools.pairwise(out):
        if _conflict(a, b, c, d):
            raise EditError("the fix's own edits overlap")
    return out


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
        except EditError:
            continue  # a position that does not fit the text: leave the finding reported
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


def write_atomic(path: Path, data: bytes, expected: bytes) -> str | None:
    """Replace `path`'s contents with `data` unless it no longer holds `expected`.

    A temporary file in the same directory takes the original's mode, then replaces it with
    `os.replace` (atomic on POSIX and Windows). A symbolic link is followed: its target is written.
    Returns None on success, else why nothing was written.
    """
    target = Path(os.path.realpath(path))
    try:
        st = target.stat()
    except OSError as exc:
        return f"cannot read it any more ({exc.strerror})"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".loralint-tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, st.st_mode & 0o7777)
        try:
            current = target.read_bytes()
        except OSError as exc:
            return f"cannot read it any more ({exc.strerror})"
        if current != expected:
            return "it changed since it was read"
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        return f"cannot write it ({exc.strerror or exc})"
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return None


def _report(message: str) -> None:
    print(f"loralint: error: {message}", file=sys.stderr)


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
    outcome = FixOutcome()
    by_path: dict[str, list[Diagnostic]] = {}
    for diag in result.diagnostics:
        by_path.setdefault(diag.span.path, []).append(diag)

    docs: dict[str, _FileDoc] = {}
    for display, diags in by_path.items():
        if not any(applicable(d.fix, unsafe) for d in diags):
            continue
        fmt = file_format(display) or "python"
        if display in texts:
            text = texts[display]
            encoding = "utf-8"
            if text.startswith("\ufeff"):
                text, encoding = text[1:], "utf-8-sig"
            docs[display] = _FileDoc(_Doc(display, fmt, text, list(diags)), encoding)
            continue
        fs_path = Path(result.sources.get(display, display))
        try:
            data = fs_path.read_bytes()
            text, encoding = _decode(display, fmt, data)
        except Exception as exc:  # noqa: BLE001 - OSError, UnicodeDecodeError, UndecodableSource
            outcome.errors.append(f"{display}: cannot read it to fix it ({exc}); not fixed")
            continue
        docs[display] = _FileDoc(_Doc(display, fmt, text, list(diags)), encoding, fs_path, data)

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
            outcome.texts[display] = ("\ufeff" if fd.encoding == "utf-8-sig" else "") + doc.text
            outcome.diff += unified_diff(display, doc.original, doc.text)
            outcome.count += doc.count
            out_texts[display] = doc.text
            continue
        try:
            data = _encode(doc.text, fd.encoding)
        except UnicodeEncodeError as exc:
            outcome.errors.append(f"{display}: the fixed text cannot be written as {fd.encoding} ({exc.reason}); not fixed")
            kept.add(display)
            continue
        if write:
            problem = write_atomic(fd.path, data, fd.data)  # type: ignore[arg-type]
            if problem is not None:
                outcome.errors.append(f"{display}: not fixed: {problem}")
                kept.add(display)
                continue
            outcome.written.append(display)
        outcome.texts[display] = doc.text
        outcome.diff += unified_diff(display, doc.original, doc.text)
        outcome.count += doc.count
        out_texts[display] = doc.text
    for display, diags in by_path.items():
        fd = docs.get(display)
        if fd is None or display in kept:
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
            sources[fd.doc.display] = fd.doc.text.encode(fd.encoding)
        except UnicodeEncodeError:
            sources[fd.doc.display] = fd.doc.text.encode("utf-8")
    return run([], settings, options, sources=sources, resolve=resolve)
