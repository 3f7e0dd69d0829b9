"""`loralint server`: a Language Server Protocol server over stdio (pygls 2.x).

What an editor gets:
- diagnostics on open, on save, and while typing (debounced, `DEBOUNCE_S` after the last change),
  computed from the editor's text, not the file on disk; cleared when the document closes;
- settings from the `[tool.loralint]` / `.loralint.toml` nearest the document (re-read each
  check, so edits to them apply at the next check; saving one re-checks every open document);
- code actions: each fix as a `quickfix` (the same Fix objects `check --fix` applies), "Suppress
  LORAnnn on this line", and `source.fixAll.loralint` (every safe fix, as `--fix` would).

The server never touches the network: model resolution runs with `online=False` and
`HF_HUB_OFFLINE=1` is set for the process. Checks run on one worker thread, so the event loop
keeps answering; a result for a version the editor has already replaced is dropped.

Positions: loralint counts 1-based lines and code-point columns; LSP counts 0-based lines and
UTF-16 code units. The server always negotiates UTF-16 (every client must support it) and converts
with `loralint.report.lsp`.

Only this module imports pygls; `loralint.cli` imports it lazily in the `server` command.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter

from loralint import __version__
from loralint.report import split_lines
from loralint.report.lsp import SOURCE, path_to_uri, to_lsp_diagnostic, utf16_column
from loralint.sites import Diagnostic

log = logging.getLogger("loralint.server")

DEBOUNCE_S = 0.3
FIX_ALL_KIND = "source.fixAll.loralint"
LANGUAGE_SUFFIX = {"python": ".py", "yaml": ".yaml", "json": ".json", "jsonc": ".json"}
_SETTINGS_NAMES = (".loralint.toml", "loralint.toml", "pyproject.toml")


def _force_utf16(cls, client_capabilities) -> str:  # pygls' signature
    return types.PositionEncodingKind.Utf16


# pygls picks the client's first preferred position encoding (Neovim prefers UTF-8). loralint's
# conversions produce UTF-16, which the protocol requires every client to support, so always
# negotiate that. This process runs only this server, so patching pygls' chooser is contained.
ServerCapabilitiesBuilder.choose_position_encoding = classmethod(_force_utf16)  # type: ignore[method-assign]


@dataclass(slots=True)
class Entry:
    diag: Diagnostic
    lsp: dict[str, Any]  # to_lsp_diagnostic's JSON form
    typed: types.Diagnostic


@dataclass(slots=True)
class DocState:
    """The last check of one document version."""

    uri: str
    version: int | None
    display: str  # the path the engine saw (absolute for files)
    fmt: str
    text: str
    entries: list[Entry] = field(default_factory=list)
    error: str | None = None  # settings or internal problem, shown once
    fix_all: types.WorkspaceEdit | None = None
    fix_all_done: bool = False


class LoraLintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("loralint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.converter = default_converter()
        self.states: dict[str, DocState] = {}
        self.open: set[str] = set()
        self.pending: dict[str, asyncio.Task] = {}
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loralint-check")
        self.shown_errors: set[str] = set()
        self.debounce = float(os.environ.get("LORALINT_LSP_DEBOUNCE", DEBOUNCE_S))

    # --- checking (runs on the worker thread) --------------------------------------------

    def document_target(self, uri: str, path: str | None, language_id: str | None) -> tuple[str, str] | None:
        """(display path, format) for a document, or None when loralint does not read it."""
        from loralint.extract import file_format

        display = path if path and uri.startswith("file:") else (path or uri)
        fmt = file_format(display)
        if fmt is None:
            suffix = LANGUAGE_SUFFIX.get((language_id or "").lower())
            if suffix is None:
                return None
            display += suffix
            fmt = file_format(display)
        return display, fmt  # type: ignore[return-value]

    def settings_root(self, display: str) -> Path:
        # The document's folder: an unsaved new file has no file yet, its folder does.
        if os.path.isabs(display) and Path(display).parent.is_dir():
            return Path(display).parent
        try:
            root = self.workspace.root_path
        except Exception:  # noqa: BLE001 - no workspace before `initialize`
            root = None
        return Path(root) if root else Path.cwd()

    def check_text(self, uri: str, version: int | None, display: str, fmt: str, text: str) -> DocState:
        from loralint.engine import Options, UsageError, run
        from loralint.settings import Settings, SettingsError, discover_settings

        state = DocState(uri, version, display, fmt, text)
        try:
            settings = discover_settings([self.settings_root(display)])
        except SettingsError as exc:
            state.error = f"loralint: {exc}; using the default settings"
            settings = Settings()
        options = Options(online=False, no_cache=True, jobs=1)
        from loralint.resolve import resolve_sites

        try:
            result = run([display], settings, options, sources={display: _encode(text, fmt)}, resolve=resolve_sites)
        except UsageError as exc:
            state.error = f"loralint: {exc}"
            return state
        except Exception as exc:  # one bad check must not take the server down
            log.exception("check failed for %s", uri)
            state.error = f"loralint: internal error while checking {os.path.basename(display)}: {type(exc).__name__}: {exc}"
            return state
        lines = split_lines(text)

        def uri_for(path: str) -> str:
            return uri if path == display else path_to_uri(path)

        for diag in result.diagnostics:
            if diag.span.path != display:
                continue
            lsp = to_lsp_diagnostic(diag, lines=lines, uri_for=uri_for, rules=result.rules)
            state.entries.append(Entry(diag, lsp, self.converter.structure(lsp, types.Diagnostic)))
        return state

    def compute_fix_all(self, state: DocState) -> types.WorkspaceEdit | None:
        """Every safe fix (as `check --fix` applies them, re-checking between passes) as one edit."""
        from loralint.fixes import applicable, fix_text

        if not any(applicable(e.diag.fix, False) for e in state.entries):
            return None

        def recheck(new_text: str) -> list[Diagnostic]:
            return [e.diag for e in self.check_text(state.uri, state.version, state.display, state.fmt, new_text).entries]

        new_text, count, _, _ = fix_text(
            state.display, state.text, [e.diag for e in state.entries], fmt=state.fmt, recheck=recheck
        )
        if not count or new_text == state.text:
            return None
        return types.WorkspaceEdit(changes={state.uri: [minimal_edit(state.text, new_text)]})

    # --- scheduling (event loop) ---------------------------------------------------------

    def schedule(self, uri: str, delay: float) -> None:
        previous = self.pending.pop(uri, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.ensure_future(self._check_later(uri, delay))
        self.pending[uri] = task

    async def _check_later(self, uri: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            await self.refresh(uri)
        except asyncio.CancelledError:
            pass
        finally:
            if self.pending.get(uri) is asyncio.current_task():
                del self.pending[uri]

    async def refresh(self, uri: str, publish: bool = True) -> DocState | None:
        """Check the document as the editor holds it now and publish the result."""
        if uri not in self.open:
            return None
        doc = self.workspace.get_text_document(uri)
        target = self.document_target(uri, doc.path, doc.language_id)
        if target is None:
            return None
        version, text = doc.version, doc.source
        loop = asyncio.get_running_loop()
        state = await loop.run_in_executor(self.worker, self.check_text, uri, version, target[0], target[1], text)
        if uri not in self.open or self.workspace.get_text_document(uri).version != version:
            return None  # closed or changed meanwhile: the newer check publishes
        self.states[uri] = state
        if state.error and state.error not in self.shown_errors:
            self.shown_errors.add(state.error)
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=state.error))
        if publish:
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=[e.typed for e in state.entries])
            )
        return state

    async def current_state(self, uri: str) -> DocState | None:
        """The state of the document's current version (checking it now when it is stale)."""
        if uri not in self.open:
            return None
        state = self.states.get(uri)
        if state is not None and state.version == self.workspace.get_text_document(uri).version:
            return state
        pending = self.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        return await self.refresh(uri)

    def close(self, uri: str) -> None:
        self.open.discard(uri)
        self.states.pop(uri, None)
        pending = self.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def _encode(text: str, fmt: str) -> bytes:
    """The editor's text as the bytes the file would hold (a PEP 263 coding line is honoured)."""
    data = text.encode("utf-8")
    if fmt == "python" and b"coding" in data[:400]:
        from loralint.extract.source import UndecodableSource, declared_encoding

        try:
            encoding = declared_encoding(data)
            if encoding not in ("utf-8", "utf-8-sig"):
                return text.encode(encoding)
        except (UndecodableSource, UnicodeEncodeError, LookupError):
            pass
    return data


# --- pure helpers (tested directly) --------------------------------------------------------


def lsp_position(lines: list[str], offset_line: int, column0: int) -> types.Position:
    """0-based line and code-point column -> LSP Position (UTF-16)."""
    text = lines[offset_line] if 0 <= offset_line < len(lines) else ""
    return types.Position(line=offset_line, character=utf16_column(text, column0 + 1))


def minimal_edit(before: str, after: str) -> types.TextEdit:
    """One TextEdit turning `before` into `after`, covering only what differs."""
    start = 0
    limit = min(len(before), len(after))
    while start < limit and before[start] == after[start]:
        start += 1
    end_b, end_a = len(before), len(after)
    while end_b > start and end_a > start and before[end_b - 1] == after[end_a - 1]:
        end_b, end_a = end_b - 1, end_a - 1
    lines = split_lines(before)

    def position(offset: int) -> types.Position:
        prefix = split_lines(before[:offset])
        return lsp_position(lines, len(prefix) - 1, len(prefix[-1]))

    return types.TextEdit(range=types.Range(start=position(start), end=position(end_b)), new_text=after[start:end_a])


def suppress_edit(line_text: str, line: int, code: str, fmt: str) -> types.TextEdit | None:
    """The edit that silences `code` on the 0-based `line`: append `  # loralint: ignore[CODE]`, or
    add the code to the line's existing loralint ignore comment. None when a comment cannot go there."""
    from loralint.suppressions import _SUPPRESSION

    if fmt == "json":
        return None  # JSON has no comments
    match = _SUPPRESSION.search(line_text)
    if match is not None:
        if match.group(1) is None:
            return None  # `# loralint: ignore` already silences everything
        codes = [c.strip() for c in match.group(1).split(",") if c.strip()]
        if code in (c.upper() for c in codes):
            return None
        # Insert after the last code (before any spaces ahead of the closing bracket).
        inner = match.group(1)
        at = match.start(1) + len(inner.rstrip())
        new_text = f", {code}" if codes else code
        pos = types.Position(line=line, character=utf16_column(line_text, at + 1))
        return types.TextEdit(range=types.Range(start=pos, end=pos), new_text=new_text)
    content = line_text.rstrip()
    if content.endswith("\\"):
        return None  # a comment after a line continuation is a syntax error
    start = types.Position(line=line, character=utf16_column(line_text, len(content) + 1))
    end = types.Position(line=line, character=utf16_column(line_text, len(line_text) + 1))
    return types.TextEdit(range=types.Range(start=start, end=end), new_text=f"  # loralint: ignore[{code}]")


def _touches(a: types.Range, b: types.Range) -> bool:
    def key(p: types.Position) -> tuple[int, int]:
        return (p.line, p.character)

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def _wanted(kind: str, only: list[str] | None) -> bool:
    return only is None or any(kind == o or kind.startswith(o + ".") for o in only)


def _same(a: types.Diagnostic, b: types.Diagnostic) -> bool:
    return a.code == b.code and a.range == b.range and (a.source in (None, SOURCE))


# --- the server and its features ------------------------------------------------------------


def create_server() -> LoraLintServer:
    server = LoraLintServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LoraLintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.open.add(params.text_document.uri)
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LoraLintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, ls.debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: LoraLintServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri.rsplit("/", 1)[-1] in _SETTINGS_NAMES:
            for other in list(ls.open):  # the settings changed: check every open document again
                ls.schedule(other, 0)
        else:
            ls.schedule(uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LoraLintServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.close(params.text_document.uri)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.SourceFixAll, FIX_ALL_KIND],
        ),
    )
    async def code_action(ls: LoraLintServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        uri = params.text_document.uri
        state = await ls.current_state(uri)
        if state is None:
            return None
        only = list(params.context.only) if params.context.only else None
        actions: list[types.CodeAction] = []
        lines = split_lines(state.text)
        if _wanted(types.CodeActionKind.QuickFix, only):
            asked = list(params.context.diagnostics or [])
            for entry in state.entries:
                theirs = next((d for d in asked if _same(d, entry.typed)), None)
                if theirs is None and not _touches(entry.typed.range, params.range):
                    continue
                shown = theirs or entry.typed
                code = entry.diag.code
                fix = entry.diag.fix
                if fix is not None and fix.edits:
                    edit = ls.converter.structure(entry.lsp["data"]["fix"]["edit"], types.WorkspaceEdit)
                    unsafe = fix.applicability != "safe"
                    actions.append(types.CodeAction(
                        title=f"{fix.description} ({code}{', unsafe' if unsafe else ''})",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[shown],
                        edit=edit,
                        is_preferred=not unsafe,
                    ))
                line = entry.typed.range.start.line
                suppress = suppress_edit(lines[line] if line < len(lines) else "", line, code, state.fmt)
                if suppress is not None:
                    actions.append(types.CodeAction(
                        title=f"Suppress {code} on this line",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[shown],
                        edit=types.WorkspaceEdit(changes={uri: [suppress]}),
                    ))
        if _wanted(FIX_ALL_KIND, only):
            if not state.fix_all_done:
                loop = asyncio.get_running_loop()
                state.fix_all = await loop.run_in_executor(ls.worker, ls.compute_fix_all, state)
                state.fix_all_done = True
            if state.fix_all is not None:
                actions.append(types.CodeAction(
                    title="loralint: fix all safe problems", kind=FIX_ALL_KIND, edit=state.fix_all,
                ))
        return actions

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: LoraLintServer, params: Any) -> None:
        for task in ls.pending.values():
            task.cancel()
        ls.pending.clear()
        ls.worker.shutdown(wait=False, cancel_futures=True)

    return server


def serve() -> None:
    """Speak LSP on stdin/stdout until the client says exit."""
    # Belt and braces: the server must never block on the network (model resolution is offline).
    os.environ["HF_HUB_OFFLINE"] = "1"
    if os.environ.get("LORALINT_LSP_LOG"):
        logging.basicConfig(filename=os.environ["LORALINT_LSP_LOG"], level=logging.DEBUG)
    create_server().start_io()


__all__ = ["DEBOUNCE_S", "LoraLintServer", "create_server", "minimal_edit", "serve", "suppress_edit"]
