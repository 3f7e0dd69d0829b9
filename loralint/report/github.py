"""`--output-format github`: GitHub Actions workflow commands, one annotation a finding.

    ::error file=train.py,line=3,col=54,endLine=3,endColumn=64,title=LORA001 (unknown-argument)::message

error → `::error`, warning → `::warning`, info → `::notice`. Paths are relative to the repository
root (as GitHub resolves them), with forward slashes. Columns are left out when a finding spans
several lines: the runner drops annotations whose `col`/`endColumn` go with different lines.
Values are escaped as `@actions/core` does: data `%`→`%25`, CR→`%0D`, LF→`%0A`; properties also
`:`→`%3A` and `,`→`%2C`. Before that, text from the checked tree (paths, messages) has its control
and bidi characters escaped visibly (`report.escape`), as in the text output: the runner decodes only
those five escapes, so an ESC or a newline inside a value would otherwise reach the log raw or be
shown as a line break of ours. The last line is a plain summary (not a command) for the log.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from loralint.engine import RunResult
from loralint.report.escape import escape
from loralint.report.sarif import relative_path, repository_root
from loralint.sites import Diagnostic

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(diag: Diagnostic, file: str) -> str:
    """One workflow command for `diag`, reported against `file` (a repository-relative path)."""
    s = diag.span
    props: list[tuple[str, object]] = [("file", escape(file)), ("line", s.line)]
    if s.end_line == s.line:
        props += [("col", s.column), ("endLine", s.end_line), ("endColumn", max(s.end_column, s.column))]
    else:
        props += [("endLine", s.end_line)]
    props.append(("title", escape(f"{diag.code} ({diag.name})")))
    message = escape(diag.message)
    if diag.fix is not None:
        unsafe = " (unsafe)" if diag.fix.applicability == "unsafe" else ""
        message += f"\nfix{unsafe}: {escape(diag.fix.description)}"  # our line break: the runner shows two lines
    command = COMMANDS.get(diag.severity, "warning")
    rendered = ",".join(f"{key}={escape_property(str(value))}" for key, value in props)
    return f"::{command} {rendered}::{escape_data(message)}"


def summary(result: RunResult) -> str:
    count = len(result.diagnostics)
    checked = f"{result.files_checked} file{'s' if result.files_checked != 1 else ''} checked"
    if count == 0:
        from loralint.report.text import clean_summary

        return f"loralint: {clean_summary(result)}"  # the same phrase as the text output
    by_severity = Counter(d.severity for d in result.diagnostics)
    parts = [
        f"{by_severity[s]} {s}{'s' if by_severity[s] != 1 and s != 'info' else ''}"
        for s in ("error", "warning", "info")
        if by_severity[s]
    ]
    files = len({d.span.path for d in result.diagnostics})
    return (f"loralint: {count} problem{'s' if count != 1 else ''} in {files} file{'s' if files != 1 else ''} "
            f"({', '.join(parts)}; {checked})")


def render(result: RunResult) -> str:
    from dataclasses import replace

    from loralint.extract.notebook import in_json, is_notebook

    root = repository_root()
    sources = result.source_lines()
    lines = []
    for diag in result.diagnostics:
        fs_path = result.sources.get(diag.span.path, diag.span.path)
        file = relative_path(fs_path, root) or Path(os.path.abspath(fs_path)).as_posix()
        if is_notebook(diag.span.path):  # GitHub shows the .ipynb file's JSON: its line and column
            diag = replace(diag, span=in_json(sources.notebook(diag.span.path), diag.span))
        lines.append(annotation(diag, file))
    lines.append(summary(result))
    return "\n".join(lines)
