"""`--output-format lsp`: Language Server Protocol diagnostics, one PublishDiagnosticsParams a file.

The output is a JSON list with one entry for every file checked, in path order:

    [{"uri": "file:///abs/path/train.py", "diagnostics": [Diagnostic, ...]}, ...]

Each entry is exactly the `params` of a `textDocument/publishDiagnostics` notification, so a
client that runs the CLI (efm-langserver, nvim-lint, a custom extension) can forward it as is;
files without findings come with an empty list, which clears stale diagnostics in the editor.

LSP positions are 0-based, and `character` counts UTF-16 code units (the protocol's default
position encoding), while loralint's spans count code points from 1: `utf16_column` converts,
reading the line's text. `to_lsp_diagnostic` is the conversion the LSP server (`loralint.server`)
reuses for documents it holds in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loralint.engine import RunResult
from loralint.report import LineLookup, SourceLines
from loralint.ruleset import Rule, builtin_rules
from loralint.sites import Diagnostic, Span

SEVERITY = {"error": 1, "warning": 2, "info": 3}  # LSP DiagnosticSeverity (4 = Hint, unused)
TAG_UNNECESSARY = 1  # LSP DiagnosticTag.Unnecessary: editors fade the text
SOURCE = "loralint"




def utf16_column(line_text: str | None, column: int) -> int:
    """The LSP `character` (0-based, UTF-16 code units) of loralint's 1-based code-point `column`.

    Characters outside the Basic Multilingual Plane (emoji, some CJK) take two UTF-16 units. A
    column past the end of the line (or an unknown line) counts one unit per missing character.
    """
    index = max(column - 1, 0)
    if not line_text:
        return index
    prefix = line_text[:index]
    astral = sum(1 for ch in prefix if ord(ch) > 0xFFFF)
    return index + astral


def lsp_position(line: int, column: int, line_text: str | None) -> dict[str, int]:
    """1-based (line, code-point column) -> LSP Position."""
    return {"line": max(line - 1, 0), "character": utf16_column(line_text, column)}


def lsp_range(span: Span, lines: LineLookup) -> dict[str, dict[str, int]]:
    start_text = lines(span.line)
    end_text = start_text if span.end_line == span.line else lines(span.end_line)
    return {
        "start": lsp_position(span.line, span.column, start_text),
        "end": lsp_position(span.end_line, span.end_column, end_text),
    }


def path_to_uri(path: str) -> str:
    """`file:///abs/path` (percent-encoded) for a path relative to the current directory or absolute."""
    return Path(os.path.abspath(path)).as_uri()


def rule_url(code: str, rules: Mapping[str, Rule] | None = None) -> str | None:
    """The documentation page of a built-in rule; None for rules from the user's settings."""
    rule = (rules or {}).get(code) or builtin_rules().get(code)
    if rule is None or not rule.builtin:
        return None
    return rule.url


def _as_lookup(line_text: str | None, lines: LineLookup | Sequence[str] | None, line: int) -> LineLookup:
    if callable(lines):
        return lines
    if lines is not None:
        seq = lines
        return lambda n: seq[n - 1].rstrip("\r\n") if 0 < n <= len(seq) else None
    return lambda n: line_text if n == line else None


def to_lsp_diagnostic(
    diag: Diagnostic,
    line_text: str | None = None,
    *,
    lines: LineLookup | Sequence[str] | None = None,
    uri_for: Callable[[str], str] = path_to_uri,
    rules: Mapping[str, Rule] | None = None,
) -> dict[str, Any]:
    """One loralint Diagnostic as an LSP `Diagnostic` (a JSON-ready dict, camelCase keys).

    Give the text of the diagnostic's line as `line_text`, or the document's lines as `lines`: a
    sequence (0-based, e.g. pygls `TextDocument.lines`, line breaks allowed) or a function from a
    1-based line number to its text. Lines it cannot see are taken as ASCII (code points = units).

    `data` carries what a code action needs: the rule name and, when there is one, the fix as
    `{"title", "applicability", "edit"}` where `edit` is an LSP WorkspaceEdit
    (`{"changes": {uri: [TextEdit]}}`), ready for a CodeAction.
    `relatedInformation` points at the related spans (`uri_for` turns their path into a URI).
    """
    lookup = _as_lookup(line_text, lines, diag.span.line)
    out: dict[str, Any] = {
        "range": lsp_range(diag.span, lookup),
        "severity": SEVERITY.get(diag.severity, 2),
        "code": diag.code,
        "source": SOURCE,
        "message": diag.message,
    }
    href = rule_url(diag.code, rules)
    if href:
        out["codeDescription"] = {"href": href}
    if diag.code == "LORA903":
        out["tags"] = [TAG_UNNECESSARY]
    if diag.related:
        out["relatedInformation"] = [
            {
                "location": {
                    "uri": uri_for(span.path),
                    "range": lsp_range(span, lookup if span.path == diag.span.path else (lambda n: None)),
                },
                "message": message,
            }
            for span, message in diag.related
        ]
    data: dict[str, Any] = {"name": diag.name}
    if diag.fix is not None:
        changes: dict[str, list[dict[str, Any]]] = {}
        for edit in diag.fix.edits:
            same_file = edit.span.path == diag.span.path
            changes.setdefault(uri_for(edit.span.path), []).append(
                {"range": lsp_range(edit.span, lookup if same_file else (lambda n: None)), "newText": edit.new_text}
            )
        data["fix"] = {"title": diag.fix.description, "applicability": diag.fix.applicability, "edit": {"changes": changes}}
    out["data"] = data
    return out


def publish_params(result: RunResult, texts: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One PublishDiagnosticsParams-like dict a file checked (files with findings included even when
    they were not in `result.sources`), sorted by URI."""
    sources = SourceLines(result.sources, {**result.texts, **(texts or {})})
    by_path: dict[str, list[Diagnostic]] = {path: [] for path in result.sources}
    for diag in result.diagnostics:
        by_path.setdefault(diag.span.path, []).append(diag)

    def uri_for(display: str) -> str:
        return path_to_uri(result.sources.get(display, display))

    entries = []
    for display, diags in by_path.items():
        lookup = sources.lookup(display)
        notebook = sources.notebook(display)
        if notebook is not None:  # an editor opening the .ipynb as JSON: positions in that JSON, no edits
            lookup, diags = _notebook_json(notebook, display, diags)
        entries.append({
            "uri": uri_for(display),
            "diagnostics": [to_lsp_diagnostic(d, lines=lookup, uri_for=uri_for, rules=result.rules) for d in diags],
        })
    entries.sort(key=lambda e: e["uri"])
    return entries


def _notebook_json(notebook, display: str, diags: list[Diagnostic]) -> tuple[LineLookup, list[Diagnostic]]:
    """The diagnostics of a notebook at their places in its JSON text (its cells' edits do not apply there)."""
    from dataclasses import replace

    from loralint.extract.notebook import in_json
    from loralint.report import split_lines

    raw_lines = split_lines(notebook.raw)
    moved = [
        replace(d, span=in_json(notebook, d.span), fix=None,
                related=[(in_json(notebook, span) if span.path == display else span, message) for span, message in d.related])
        for d in diags
    ]
    return (lambda n: raw_lines[n - 1] if 0 < n <= len(raw_lines) else None), moved


def render(result: RunResult) -> str:
    return json.dumps(publish_params(result), indent=2, ensure_ascii=False)
