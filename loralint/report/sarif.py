"""`--output-format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF consumers.

What GitHub needs and what we add (see shared/research/linter-anchors.md §2):
- `tool.driver.rules[]` from the rule files (`rules/*.md`): summary, the "What it does" section,
  the whole documentation as help (Markdown), the rule's page, its level and tags;
- URIs relative to the repository root (`git rev-parse --show-toplevel`, else the current
  directory) with `uriBaseId: "%SRCROOT%"`, resolved by `originalUriBaseIds`;
- all four region fields; columns count code points (`columnKind: "unicodeCodePoints"`);
- `partialFingerprints` that survive re-runs and lines inserted or removed elsewhere in the file:
  `primaryLocationLineHash` (GitHub's own algorithm, so REST API uploads match upload-sarif's) and
  `loralint/v1` (rule + path + the flagged line and text with whitespace removed + occurrence);
- `fixes[]` from a diagnostic's fix, `relatedLocations` from its related spans.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import quote

from loralint import __version__
from loralint.engine import RunResult
from loralint.ruleset import Rule
from loralint.safe_read import read_limited
from loralint.sites import Diagnostic, Fix, Span

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/loralint/loralint"
SRCROOT = "%SRCROOT%"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
# GitHub sorts and filters non-security alerts by `problem.severity`.
PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "info": "recommendation"}
CONCERNS = {
    "0": "invalid-configuration",
    "1": "hyper-parameters",
    "2": "target-modules",
    "3": "quantization",
    "4": "training-integration",
    "9": "loralint",
}


# --- where files are -----------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _git_toplevel(cwd: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    top = proc.stdout.strip()
    return top if proc.returncode == 0 and top else None


def repository_root(cwd: str | None = None) -> Path:
    """The root of the git work tree holding `cwd` (default: the current directory), else `cwd`."""
    cwd = os.path.abspath(cwd or os.getcwd())
    top = _git_toplevel(cwd)
    return Path(os.path.abspath(top)) if top else Path(cwd)


def relative_path(path: str, root: Path) -> str | None:
    """`path` relative to `root` with forward slashes, or None when it lies outside `root`.

    Symbolic links are compared both as written and resolved (macOS /tmp → /private/tmp, say).
    """
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        pass
    try:  # resolved only when the path as written is outside (a report names each file many times)
        return Path(os.path.realpath(absolute)).relative_to(os.path.realpath(root)).as_posix()  # a loop does not raise
    except ValueError:
        return None


def artifact_location(path: str, root: Path) -> dict[str, str]:
    rel = relative_path(path, root)
    if rel is None:
        return {"uri": Path(os.path.abspath(path)).as_uri()}
    return {"uri": quote(rel, safe="/"), "uriBaseId": SRCROOT}


# --- fingerprints --------------------------------------------------------------------------------

_BLOCK = 100
_MASK = (1 << 64) - 1
_EOF = "\uffff"
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class LineHashes:
    """GitHub's `primaryLocationLineHash` of the lines of one file, for the lines asked for.

    The algorithm is github/codeql-action's `src/fingerprints.ts` (`hash`): the text counted in UTF-16
    code units, spaces and tabs left out, CR and CRLF read as LF, then EOF (0xFFFF) and zeros after it;
    each line's hash is the polynomial (base 37, mod 2**64) of the 100 units that begin at its first unit,
    as `hex:occurrence`, where occurrence counts the lines up to it with the same hash. fingerprints.ts
    rolls the hash along every unit of the file; here the hash is computed for the lines a report names
    (a notebook's JSON is megabytes: rolling over peft's took two seconds of a SARIF report), and the lines
    before it with the same hash are found as the lines whose 100 units are the same.
    (Two different runs of 100 units with one 64-bit hash would be counted apart here: an odds of about
    one in 2**64 for each pair of lines.)"""

    def __init__(self, data: bytes) -> None:
        text = data.decode("utf-8", errors="replace")
        if not text.isascii():  # a character beyond the BMP is two UTF-16 units: its surrogate pair here
            text = _ASTRAL.sub(_surrogates, text)
        units = text.replace("\r\n", "\n").replace("\r", "\n").replace(" ", "").replace("\t", "")
        self._units = units + _EOF + "\0" * _BLOCK
        self._windows: list[str] | None = None  # per line, the 100 units that begin at it

    def get(self, line: int) -> str | None:
        if self._windows is None:
            units = self._units
            starts = accumulate(len(part) + 1 for part in units.split("\n")[:-1])  # line k + 1 after the k-th LF
            self._windows = [units[start:start + _BLOCK] for start in (0, *starts)]
        if not 0 < line <= len(self._windows):
            return None
        window = self._windows[line - 1]
        value = 0
        for unit in window:
            value = (37 * value + ord(unit)) & _MASK
        return f"{value:x}:{self._windows[:line].count(window)}"


def _surrogates(match: re.Match[str]) -> str:
    code = ord(match.group()) - 0x10000
    return chr(0xD800 + (code >> 10)) + chr(0xDC00 + (code & 0x3FF))


_WHITESPACE = re.compile(r"\s+")


def _squeeze(text: str | None) -> str:
    return _WHITESPACE.sub("", text or "")


def flagged_text(span: Span, line_text: str | None) -> str:
    """The text a span covers on its first line (the argument or value that was flagged)."""
    if line_text is None:
        return ""
    end = span.end_column - 1 if span.end_line == span.line else len(line_text)
    return line_text[span.column - 1 : max(end, span.column - 1)]


class _Fingerprints:
    """`loralint/v1`: sha256 of rule id, URI, the flagged line and the flagged text (whitespace
    removed), plus `:n` for the n-th such finding in the file. No line or column numbers go in,
    so inserting lines above a finding, or re-indenting it, leaves the fingerprint unchanged."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, diag: Diagnostic, uri: str, line_text: str | None) -> str:
        parts = [diag.code, uri, _squeeze(line_text), _squeeze(flagged_text(diag.span, line_text))]
        if line_text is None:
            parts.append(diag.message)  # an unreadable file: the message is all there is
        digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]
        self.seen[digest] = self.seen.get(digest, 0) + 1
        return f"{digest}:{self.seen[digest]}"


# --- rules ---------------------------------------------------------------------------------------

_SECTION = re.compile(r"^##\s+What it does\s*\n(.*?)(?=^##\s|\Z)", re.DOTALL | re.MULTILINE)


def _what_it_does(rule: Rule) -> str:
    match = _SECTION.search(rule.docs or "")
    text = " ".join(match.group(1).split()) if match else ""
    return text or rule.summary or rule.name


def _limit(text: str, size: int = 1024) -> str:
    """GitHub takes at most 1024 characters of a rule's short and full description."""
    return text if len(text) <= size else text[: size - 1].rstrip() + "\u2026"


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    docs = rule.docs or rule.summary or rule.name
    tags = ["lora"]
    if rule.builtin:
        concern = CONCERNS.get(rule.code[4:5]) if rule.code.startswith("LORA") else None
        if concern:
            tags.append(concern)
    else:
        tags.append("custom")
    descriptor: dict[str, Any] = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": _limit(rule.summary or rule.name)},
        "fullDescription": {"text": _limit(_what_it_does(rule))},
        "help": {"text": docs, "markdown": docs},
        "defaultConfiguration": {"level": LEVELS.get(rule.severity, "warning")},
        "properties": {
            "tags": tags,
            "precision": "high",
            "problem.severity": PROBLEM_SEVERITY.get(rule.severity, "warning"),
            "fix": rule.fix,
        },
    }
    if rule.builtin:
        descriptor["helpUri"] = rule.url
    return descriptor


# --- results -------------------------------------------------------------------------------------

def _region(span: Span) -> dict[str, int]:
    return {
        "startLine": max(span.line, 1),
        "startColumn": max(span.column, 1),
        "endLine": max(span.end_line, span.line, 1),
        "endColumn": max(span.end_column, 1),
    }


def _physical(span: Span, fs_path: str, root: Path) -> dict[str, Any]:
    return {"artifactLocation": artifact_location(fs_path, root), "region": _region(span)}


def _fix(fix: Fix, paths: dict[str, str], root: Path) -> dict[str, Any]:
    changes: dict[str, list[dict[str, Any]]] = {}
    for edit in fix.edits:
        changes.setdefault(edit.span.path, []).append(
            {"deletedRegion": _region(edit.span), "insertedContent": {"text": edit.new_text}}
        )
    return {
        "description": {"text": fix.description},
        "artifactChanges": [
            {"artifactLocation": artifact_location(paths.get(path, path), root), "replacements": replacements}
            for path, replacements in changes.items()
        ],
        "properties": {"applicability": fix.applicability},
    }


def render(result: RunResult) -> str:
    return json.dumps(sarif_log(result), indent=2, ensure_ascii=False)


def sarif_log(result: RunResult, root: Path | None = None) -> dict[str, Any]:
    root = root or repository_root()
    paths = dict(result.sources)
    lines = result.source_lines()
    rules = dict(result.rules)
    for diag in result.diagnostics:  # a code the run knows nothing about still gets a descriptor
        if diag.code not in rules:
            rules[diag.code] = Rule(diag.code, diag.name, diag.severity, "unknown", builtin=False)
    ordered = sorted(rules.values(), key=lambda r: r.code)
    index = {rule.code: i for i, rule in enumerate(ordered)}

    hashes: dict[str, LineHashes | None] = {}
    fingerprint = _Fingerprints()
    results = []
    from loralint.extract.notebook import in_cell, in_json

    for diag in result.diagnostics:
        span = diag.span
        fs_path = paths.get(span.path, span.path)
        location = artifact_location(fs_path, root)
        line_text = lines.line(span.path, span.line)
        partial = {"loralint/v1": fingerprint(diag, location["uri"], line_text)}
        region = _region(span)
        notebook = lines.notebook(span.path)
        if notebook is not None:
            # Code scanning shows the .ipynb file: the region is where the code is written in its
            # JSON; the cell and the position inside it go along as properties.
            cell = in_cell(notebook, span)
            span = in_json(notebook, span)
            region = _region(span)
            if cell is not None:
                region["properties"] = {"cell": cell[0], "cellLine": cell[1].line, "cellColumn": cell[1].column}
        if span.path not in hashes:
            try:
                hashes[span.path] = LineHashes(read_limited(fs_path, lines.limit))
            except OSError:
                hashes[span.path] = None
        line_hash = hashes[span.path].get(span.line) if hashes[span.path] is not None else None
        if line_hash is not None:
            partial["primaryLocationLineHash"] = line_hash
        item: dict[str, Any] = {
            "ruleId": diag.code,
            "ruleIndex": index[diag.code],
            "level": LEVELS.get(diag.severity, "warning"),
            "message": {"text": diag.message},
            "locations": [{"physicalLocation": {"artifactLocation": location, "region": region}}],
            "partialFingerprints": partial,
        }
        if diag.related:
            item["relatedLocations"] = [
                {"id": i, "physicalLocation": _physical(in_json(lines.notebook(rspan.path), rspan),
                                                        paths.get(rspan.path, rspan.path), root),
                 "message": {"text": message}}
                for i, (rspan, message) in enumerate(diag.related, start=1)
            ]
        if diag.fix is not None and diag.fix.edits and notebook is None:  # a notebook's edits are in its cells, not its JSON
            item["fixes"] = [_fix(diag.fix, paths, root)]
        results.append(item)

    notifications = [{"level": "warning", "message": {"text": note}} for note in result.notes]
    internal = [d for d in result.diagnostics if d.code == "LORA904"]
    notifications += [
        {"level": "error", "message": {"text": f"{d.span.path}:{d.span.line}: {d.message}"},
         "associatedRule": {"id": d.code, "index": index[d.code]}}
        for d in internal
    ]
    invocation: dict[str, Any] = {
        "executionSuccessful": not internal,
        "workingDirectory": {"uri": _dir_uri(Path(os.getcwd()))},
    }
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "loralint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [rule_descriptor(rule) for rule in ordered],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": _dir_uri(root)}},
                "invocations": [invocation],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _dir_uri(path: Path) -> str:
    uri = Path(os.path.abspath(path)).as_uri()
    return uri if uri.endswith("/") else uri + "/"
