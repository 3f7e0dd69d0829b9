"""The default, human output: ruff-style lines with the source line and a caret under the argument."""

from __future__ import annotations

import os
import sys
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
    style = _Style(colour)
    if statistics:
        return _statistics(result, style)
    out: list[str] = []
    sources = SourceLines(result.sources, result.texts)
    for d in result.diagnostics:
        out.append(_headline(d, style))
        if show_source and not quiet:
            out.extend(_snippet(d, sources, style))
    if not quiet:
        out.append(_summary(result, style, unsafe_hint))
    return "\n".join(out)


def _headline(d: Diagnostic, style: _Style) -> str:
    s = d.span
    # Everything from the checked tree (the path, values quoted in the message) is escaped: a newline
    # in a file name must not forge a second finding line, an ESC sequence must not reach the terminal.
    location = style(f"{escape(s.path)}:{s.line}:{s.column}:", bold=True)
    code = style(escape(d.code), fg=_COLOURS[d.severity], bold=True)
    severity = style(f"[{d.severity}]", fg=_COLOURS[d.severity])
    fixable = style(" [*]", fg="cyan") if d.fix is not None and d.fix.applicability == "safe" else ""
    return f"{location} {code}{fixable} {severity} {escape(d.message)}"


def _snippet(d: Diagnostic, sources: SourceLines, style: _Style) -> list[str]:
    s = d.span
    if d.code == "LORA902":
        return []  # a file that cannot be decoded has no line to show (raw bytes would garble the terminal)
    line = sources.line(s.path, s.line)
    if line is None:
        return []
    line = line.rstrip("\r\n")
    gutter = " " * len(str(s.line))
    start = max(s.column - 1, 0)
    end = max(s.end_column - 1 if s.end_line == s.line else len(line.rstrip()), start)
    # Control characters would act on the terminal: escape them (visibly, as everywhere else) in three
    # pieces, so the caret starts under the escaped form and spans as much as the marked text now takes.
    before, marked, after = (escape(part, keep_tabs=True) for part in (line[:start], line[start:end], line[end:]))
    width = max(len(marked), 1)
    # Keep tabs so the caret lines up under the same characters.
    pad = "".join("\t" if ch == "\t" else " " for ch in before)
    caret = style(pad + "^" * width + f" {escape(d.code)}", fg=_COLOURS[d.severity], bold=True)
    bar = style("|", fg="blue", bold=True)
    return [
        f"{gutter} {bar}",
        f"{style(str(s.line), fg='blue', bold=True)} {bar} {(before + marked + after).rstrip()}",
        f"{gutter} {bar} {caret}",
        f"{gutter} {bar}",
        "",
    ]


def _summary(result: RunResult, style: _Style, unsafe_hint: bool) -> str:
    count = len(result.diagnostics)
    files = len({d.span.path for d in result.diagnostics})
    if count == 0:
        return style(f"All checks passed! ({_plural(result.files_checked, 'file')} checked, "
                     f"{_plural(len(result.sites), 'LoRA configuration')} found)", fg="green")
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


def _statistics(result: RunResult, style: _Style) -> str:
    counts = Counter((d.code, d.name, d.severity) for d in result.diagnostics)
    rows = [
        f"{n:>5}  {style(escape(code), fg=_COLOURS[sev], bold=True):<8}  {escape(name):<32} [{sev}]"
        for (code, name, sev), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return "\n".join(rows) if rows else "No problems found."
