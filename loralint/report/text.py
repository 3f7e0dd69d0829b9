"""The default, human output: ruff-style lines with the source line and a caret under the argument."""

from __future__ import annotations

import os
import sys
import unicodedata
from collections import Counter

from loralint.engine import RunResult
from loralint.report import SourceLines
from loralint.report.escape import escape
from loralint.sites import Diagnostic

_COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def use_colour(stream=None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


class _Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, fg: str | None = None, bold: bool = False) -> str:
        if not self.enabled:
            return text
        import click

        return click.style(text, fg=fg, bold=bold)


def render(
    result: RunResult,
    *,
    colour: bool = False,
    show_source: bool = True,
    statistics: bool = False,
    quiet: bool = False,
    unsafe_hint: bool = True,
) -> str:
    """The report; "" when there is nothing to say (`quiet` and no finding), so nothing is printed."""
    style = _Style(colour)
    if statistics:
        return _statistics(result, style, quiet, unsafe_fixes=not unsafe_hint)
    out: list[str] = []
    sources = result.source_lines()
    for d in result.diagnostics:
        out.append(_headline(d, style, sources))
        if show_source and not quiet:
            out.extend(_snippet(d, sources, style))
    if not quiet:
        out.append(_summary(result, style, unsafe_hint))
    return "\n".join(out)


def clean_summary(result: RunResult) -> str:
    """The one phrase of a run with nothing to report, in every human-readable output."""
    return (f"All checks passed! ({_plural(result.files_checked, 'file')} checked, "
            f"{_plural(len(result.sites), 'LoRA configuration')} found)")


def in_cell(notebook, span):
    """extract.notebook.in_cell, imported only once there is a notebook (a script's run never needs it)."""
    if notebook is None:
        return None
    from loralint.extract.notebook import in_cell as cell_of

    return cell_of(notebook, span)


def _headline(d: Diagnostic, style: _Style, sources: SourceLines | None = None) -> str:
    s = d.span
    place = f"{s.line}:{s.column}"
    if sources is not None and (cell := in_cell(sources.cells(s.path), s)) is not None:
        place = f"cell {cell[0]}:{cell[1].line}:{cell[1].column}"  # ruff's way of naming a notebook position
    # Everything from the checked tree (the path, values quoted in the message) is escaped: a newline
    # in a file name must not forge a second finding line, an ESC sequence must not reach the terminal.
    location = style(f"{escape(s.path)}:{place}:", bold=True)
    code = style(escape(d.code), fg=_COLOURS[d.severity], bold=True)
    severity = style(f"[{d.severity}]", fg=_COLOURS[d.severity])
    fixable = style(" [*]", fg="cyan") if d.fix is not None and d.fix.applicability == "safe" else ""
    return f"{location} {code}{fixable} {severity} {escape(d.message)}"


def headline(d: Diagnostic, sources: SourceLines | None = None) -> str:
    """A finding's first line, uncoloured and escaped: `path:line:col: CODE [severity] message`."""
    return _headline(d, _Style(False), sources)


def _snippet(d: Diagnostic, sources: SourceLines, style: _Style) -> list[str]:
    s = d.span
    if d.code == "LORA902":
        return []  # a file that cannot be decoded has no line to show (raw bytes would garble the terminal)
    line = sources.line(s.path, s.line)
    if line is None:
        return []
    line = line.rstrip("\r\n")
    cell = in_cell(sources.cells(s.path), s)
    number = cell[1].line if cell is not None else s.line  # a notebook's lines count inside the cell
    gutter = " " * len(str(number))
    start = max(s.column - 1, 0)
    end = max(s.end_column - 1 if s.end_line == s.line else len(line.rstrip()), start)
    # Control characters would act on the terminal: escape them (visibly, as everywhere else) in three
    # pieces, so the caret starts under the escaped form and spans as much as the marked text now takes.
    before, marked, after = (escape(part, keep_tabs=True) for part in (line[:start], line[start:end], line[end:]))
    width = max(display_width(marked), 1)
    # Keep tabs so the caret lines up under the same characters; a wide character (CJK, emoji) takes
    # two terminal cells, a combining mark none.
    pad = "".join("\t" if ch == "\t" else " " * _cells(ch) for ch in before)
    caret = style(pad + "^" * width + f" {escape(d.code)}", fg=_COLOURS[d.severity], bold=True)
    bar = style("|", fg="blue", bold=True)
    return [
        f"{gutter} {bar}",
        f"{style(str(number), fg='blue', bold=True)} {bar} {(before + marked + after).rstrip()}",
        f"{gutter} {bar} {caret}",
        f"{gutter} {bar}",
        "",
    ]


def _summary(result: RunResult, style: _Style, unsafe_hint: bool) -> str:
    count = len(result.diagnostics)
    files = len({d.span.path for d in result.diagnostics})
    if count == 0:
        return style(clean_summary(result), fg="green")
    by_severity = Counter(d.severity for d in result.diagnostics)
    parts = [f"{by_severity[s]} {s}{'s' if by_severity[s] != 1 and s != 'info' else ''}" for s in ("error", "warning", "info") if by_severity[s]]
    text = (f"Found {count} problem{'s' if count != 1 else ''} in {files} file{'s' if files != 1 else ''} "
            f"({', '.join(parts)}; {_plural(result.files_checked, 'file')} checked, "
            f"{_plural(len(result.sites), 'LoRA configuration')})")
    safe = sum(1 for d in result.diagnostics if d.fix is not None and d.fix.applicability == "safe")
    unsafe = sum(1 for d in result.diagnostics if d.fix is not None and d.fix.applicability == "unsafe")
    if safe:
        text += f"\n[*] {safe} fixable with `loralint check --fix`."
    if unsafe and unsafe_hint:
        text += f"\n{unsafe} more fixable with `--fix --unsafe-fixes`."
    return style(text, bold=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def display_width(text: str) -> int:
    """Terminal cells `text` takes (East Asian wide and fullwidth characters: 2; combining marks and
    zero-width characters: 0)."""
    return sum(_cells(ch) for ch in text)


def _cells(ch: str) -> int:
    if ch < "\u0300":
        return 1  # ASCII and Latin-1: the common case, without a table look-up
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def statistics_rows(result: RunResult, unsafe_fixes: bool = False) -> list[dict]:
    """Per rule: code, name, severity, count, and how many of them `--fix` would fix (with
    `--unsafe-fixes`, the unsafe fixes too), most frequent first (as ruff orders them)."""
    rows: dict[str, dict] = {}
    for d in result.diagnostics:
        row = rows.setdefault(d.code, {"code": d.code, "name": d.name, "severity": d.severity, "count": 0,
                                       "fixable": False, "fixable_count": 0})
        row["count"] += 1
        if d.fix is not None and d.fix.edits and (d.fix.applicability == "safe" or unsafe_fixes):
            row["fixable_count"] += 1
            row["fixable"] = True
    return sorted(rows.values(), key=lambda r: (-r["count"], r["code"]))


def _statistics(result: RunResult, style: _Style, quiet: bool, unsafe_fixes: bool) -> str:
    """ruff's layout: `count<TAB>code<TAB>[*] name`, `[*]` where `--fix` fixes some of that rule's
    findings (how many when not all), then how many are fixable."""
    rows = statistics_rows(result, unsafe_fixes)
    if not rows:
        return "" if quiet else style(clean_summary(result), fg="green")
    count_width = max(len(str(r["count"])) for r in rows)
    code_width = max(len(r["code"]) for r in rows)
    any_fixable = any(r["fixable"] for r in rows)
    lines = []
    for r in rows:
        mark = ""
        if any_fixable:
            mark = style("[*]", fg="cyan") + " " if r["fixable"] else "[ ] "
        partial = f" ({r['fixable_count']} fixable)" if 0 < r["fixable_count"] < r["count"] else ""
        code = style(escape(r["code"]), fg=_COLOURS[r["severity"]], bold=True) + " " * (code_width - len(r["code"]))
        lines.append(f"{style(str(r['count']).rjust(count_width), bold=True)}\t{code}\t{mark}{escape(r['name'])}"
                     f" [{r['severity']}]{partial}")
    fixable = sum(r["fixable_count"] for r in rows)
    if fixable:
        flag = " --unsafe-fixes" if unsafe_fixes else ""
        lines.append(f"[*] {fixable} fixable with `loralint check --fix{flag}`.")
    hidden = 0 if unsafe_fixes else sum(
        1 for d in result.diagnostics if d.fix is not None and d.fix.edits and d.fix.applicability == "unsafe")
    if hidden:
        lines.append(f"{hidden} more fixable with `--fix --unsafe-fixes`.")
    return "\n".join(lines)
