"""`loralint server`: a Language Server Protocol server over stdio (pygls 2.x).

What an editor gets:
- diagnostics on open, on save, and while typing, computed from the editor's text, not the file on
  disk; cleared when the document closes. A change made while the server is idle is checked at once;
  changes made while a check runs are coalesced, and checked `DEBOUNCE_S` after the last of them;
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

Hostile input (an editor opens whatever a cloned repository holds; a client can be buggy):
- the server reads the stream itself (`MessageReader`), never pygls' reader: headers of at most
  MAX_HEADER_BYTES, bodies of at most MAX_MESSAGE_BYTES, and after a bad header, a body shorter
  than its Content-Length or an oversize message it skips to the next `Content-Length: N` line
  and goes on, with one line on stderr;
- malformed messages get JSON-RPC errors (-32700, -32600, -32601, -32602, -32002), requests after
  `shutdown` get -32600, and `exit` exits 0 after `shutdown`, 1 without it;
- a document over MAX_DOCUMENT_BYTES is neither analysed nor kept (LORA905 says so), and a
  long session does not grow (pygls' per-notification leftovers are dropped as they finish);
- an exception while checking a document becomes a diagnostic on it (LORA906 for RecursionError
  and MemoryError, LORA904 for anything else), never a dead server;
- stdout carries protocol messages only: anything else written to file descriptor 1 goes to stderr.

Only this module imports pygls; `loralint.cli` imports it lazily in the `server` command.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import attrs
from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, default_converter

from loralint import __version__
from loralint.report import split_lines
from loralint.report.lsp import SOURCE, path_to_uri, to_lsp_diagnostic, utf16_column
from loralint.safe_read import DEFAULT_MAX_FILE_SIZE, format_size
from loralint.sites import Diagnostic

log = logging.getLogger("loralint.server")

DEBOUNCE_S = 0.1
FIX_ALL_KIND = "source.fixAll.loralint"
LANGUAGE_SUFFIX = {"python": ".py", "yaml": ".yaml", "json": ".json", "jsonc": ".json"}
_SETTINGS_NAMES = (".loralint.toml", "loralint.toml", "pyproject.toml")

# Bounds on what a client can make the server hold. A header block is tens of bytes; a message
# carries at most one document, and a 10 MB document fits with room for JSON escapes.
MAX_HEADER_BYTES = 8 * 1024
MAX_MESSAGE_BYTES = 64_000_000
# json.loads turns `[[],[],...]` into ~20 bytes of objects per input byte; this caps what one
# message can build (commas and brackets outside strings) at a few hundred MB, far above any edit.
MAX_JSON_VALUES = 2_000_000
# The CLI's default max-file-size: a larger document is neither checked nor kept. (A smaller
# max-file-size in the settings still applies: the engine refuses what is over it.)
MAX_DOCUMENT_BYTES = DEFAULT_MAX_FILE_SIZE
_MAX_LOGGED_PROBLEMS = 20  # transport problems logged before the log goes quiet

# JSON-RPC error codes (and LSP's ServerNotInitialized).
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
INTERNAL_ERROR, SERVER_NOT_INITIALIZED = -32603, -32002


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
        self.checking = 0  # checks on the worker thread now (one whose caller was cancelled runs to its end)
        self.shown_errors: set[str] = set()
        self.debounce = float(os.environ.get("LORALINT_LSP_DEBOUNCE", DEBOUNCE_S))
        self.skipped: dict[str, str] = {}  # uri -> why its text is not kept (too large, unreadable change)
        self.shut_down = False  # `shutdown` was answered: only `exit` is served now
        self.problems_logged = 0

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

    def _counted_check(self, uri: str, version: int | None, display: str, fmt: str, text: str) -> DocState:
        self.checking += 1
        try:
            return self.check_text(uri, version, display, fmt, text)
        finally:
            self.checking -= 1

    def check_text(self, uri: str, version: int | None, display: str, fmt: str, text: str) -> DocState:
        from loralint.engine import Options, UsageError, run
        from loralint.settings import Settings, SettingsError, discover_settings

        state = DocState(uri, version, display, fmt, text)
        try:
            settings = discover_settings([self.settings_root(display)])
        except SettingsError as exc:
            state.error = f"loralint: {exc}; using the default settings"
            settings = Settings()
        except Exception as exc:  # noqa: BLE001 - an unreadable settings file must not stop the check
            reason = f"{type(exc).__name__}: {_short(str(exc))}"
            state.error = f"loralint: cannot read the settings ({reason}); using the default settings"
            settings = Settings()
        options = Options(online=False, no_cache=True, jobs=1)
        from loralint.resolve import SiteResolver

        try:
            result = run([display], settings, options, sources={display: _encode(text, fmt)}, resolve=SiteResolver,
                         size_every_dataset=False)
            lines = split_lines(text)

            def uri_for(path: str) -> str:
                return uri if path == display else path_to_uri(path)

            for diag in result.diagnostics:
                if diag.span.path != display:
                    continue
                lsp = to_lsp_diagnostic(diag, lines=lines, uri_for=uri_for, rules=result.rules)
                state.entries.append(Entry(diag, lsp, self.converter.structure(lsp, types.Diagnostic)))
        except UsageError as exc:
            state.error = f"loralint: {exc}"
        except (RecursionError, MemoryError) as exc:  # hostile input past a bound: this document only
            state.entries = [self.entry(_analysis_limit(display, exc))]
            log.error("checking %s stopped: %s", display, type(exc).__name__)
            log.debug("checking %s stopped", display, exc_info=True)
        except Exception as exc:  # one bad check must not take the server down
            state.entries = [self.entry(_internal_error(display, exc))]
            log.error("internal error while checking %s: %s: %s", display, type(exc).__name__, exc)
            log.debug("internal error while checking %s", display, exc_info=True)
        return state

    def entry(self, diag: Diagnostic, lines: list[str] | None = None) -> Entry:
        lsp = to_lsp_diagnostic(diag, lines=lines or [])
        return Entry(diag, lsp, self.converter.structure(lsp, types.Diagnostic))

    def skipped_state(self, uri: str, version: int | None, display: str, fmt: str, why: str) -> DocState:
        """What a document whose text is not kept shows: one LORA905 and nothing else."""
        from loralint.extract import file_diagnostic

        message = f"not checked: {why}; loralint checks it again when it is reopened"
        state = DocState(uri, version, display, fmt, "")
        state.entries.append(self.entry(file_diagnostic("LORA905", display, message)))
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
        elif not self.checking:
            delay = 0  # idle: check now (the delay only coalesces the changes made while a check runs)
        task = asyncio.ensure_future(self._check_later(uri, delay))
        self.pending[uri] = task

    async def _check_later(self, uri: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            await self.refresh(uri)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            log.error("publishing diagnostics for %s failed: %s: %s", uri, type(exc).__name__, exc)
            log.debug("publishing diagnostics for %s failed", uri, exc_info=True)
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
        if uri in self.skipped:
            state = self.skipped_state(uri, version, target[0], target[1], self.skipped[uri])
        else:
            loop = asyncio.get_running_loop()
            state = await loop.run_in_executor(self.worker, self._counted_check, uri, version, target[0], target[1], text)
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
        self.skipped.pop(uri, None)
        pending = self.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    # --- documents whose text is not kept ------------------------------------------------------

    def bound_document(self, params: object) -> None:
        """Before pygls stores a didOpen/didChange: a text over MAX_DOCUMENT_BYTES is replaced by
        an empty one and the uri marked skipped. Incremental changes to a skipped document cannot
        be applied (its text is gone) and are dropped until a whole-document change or a reopen
        brings a text back."""
        if isinstance(params, types.DidOpenTextDocumentParams):
            item = params.text_document
            size = _utf8_size(item.text)
            if size > MAX_DOCUMENT_BYTES:
                self.skipped[item.uri] = _too_large(size)
                item.text = ""
            else:
                self.skipped.pop(item.uri, None)
        elif isinstance(params, types.DidChangeTextDocumentParams):
            uri = params.text_document.uri
            changes = list(params.content_changes)
            whole = [i for i, c in enumerate(changes) if isinstance(c, types.TextDocumentContentChangeWholeDocument)]
            if whole:  # the text is known again from the last whole-document change on
                changes = changes[whole[-1]:]
                self.skipped.pop(uri, None)
            if uri in self.skipped:
                params.content_changes = []
                return
            for change in changes:
                size = _utf8_size(change.text)
                if size > MAX_DOCUMENT_BYTES:
                    self.skipped[uri] = _too_large(size)
                    changes = [types.TextDocumentContentChangeWholeDocument(text="")]
                    break
            params.content_changes = changes

    def drop_text(self, uri: str, why: str) -> None:
        """Forget the text of an open document (too large, or an edit to it could not be read)."""
        self.skipped[uri] = why
        try:
            doc = self.workspace.get_text_document(uri)
            language, version = doc.language_id or "", doc.version or 0
        except Exception:  # noqa: BLE001 - not initialized: nothing is stored yet
            return
        empty = types.TextDocumentItem(uri=uri, language_id=language, version=version, text="")
        self.workspace.put_text_document(empty)

    # --- the message loop (replaces pygls' reader, see MessageReader) ---------------------------

    def run_stdio(self, stdin: BinaryIO, stdout: BinaryIO) -> int:
        """Serve LSP until `exit` or the end of input; returns the exit code LSP asks for."""
        self.protocol.set_writer(StdoutWriter(stdout))
        reader = MessageReader(stdin.read)
        try:
            return asyncio.run(self._serve(reader))
        except OSError as exc:  # the editor went away (EPIPE), or reading stdin failed
            log.warning("the connection to the editor failed (%s); exiting", exc.strerror or type(exc).__name__)
            return 0 if self.shut_down else 1
        finally:
            reader.close()
            self.worker.shutdown(wait=False, cancel_futures=True)

    async def _serve(self, reader: MessageReader) -> int:
        while True:
            try:
                body = await reader.read()
            except MemoryError:  # the address space is spent: drop what is buffered and skip ahead
                reader.reset()
                self.transport_problem("out of memory while reading a message; skipped to the next message")
                continue
            if body is None:
                if not self.shut_down:
                    log.warning("the input ended without shutdown and exit; exiting")
                return 0 if self.shut_down else 1
            if isinstance(body, Dropped):
                self.transport_problem(body.reason)
                if body.prefix:
                    why = (f"the editor sent it in a message of {format_size(body.size)}, "
                           f"over the {format_size(MAX_MESSAGE_BYTES)} limit")
                    self.forget_sniffed(body.prefix, why)
                continue
            try:
                code = self.dispatch(body)
            except Exception as exc:  # MemoryError, or a bug, on one message: the next one is served
                log.error("a message could not be handled: %s: %s", type(exc).__name__, _short(str(exc)))
                log.debug("a message could not be handled", exc_info=True)
                code = None
            del body  # not held while waiting for the next message
            if code is not None:
                return code
            await asyncio.sleep(0)  # let the handlers just scheduled run before the next message

    def transport_problem(self, message: str) -> None:
        self.problems_logged += 1
        if self.problems_logged <= _MAX_LOGGED_PROBLEMS:
            log.warning("%s", message)
        if self.problems_logged == _MAX_LOGGED_PROBLEMS:
            log.warning("further problems with incoming messages are not logged")

    def forget_sniffed(self, prefix: bytes | bytearray, why: str) -> None:
        """A skipped didOpen/didChange leaves the editor and the server with different texts: when
        the start of the skipped message names the document, stop keeping (and checking) it."""
        uri = _sniff_document(bytes(prefix))
        opening = b'"textDocument/didOpen"' in prefix
        if uri is None or not (opening or uri in self.open):
            return
        self.drop_text(uri, why)
        self.open.add(uri)
        self.schedule(uri, 0)

    def send_error(self, msg_id: int | str | None, code: int, message: str) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}).encode()
        self.protocol.writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # type: ignore[union-attr]

    def initialized(self) -> bool:
        try:
            _ = self.workspace
        except RuntimeError:  # pygls: "The workspace is not available" before `initialize`
            return False
        return True

    def knows(self, method: str) -> bool:
        fm = self.protocol.fm
        return method in fm.features or method in fm.builtin_features or method == types.CANCEL_REQUEST

    def dispatch(self, body: bytes | bytearray) -> int | None:
        """Hand one message to pygls, answering a malformed one itself. Returns the exit code
        once the message is `exit`, else None."""
        if _json_values(body) > MAX_JSON_VALUES:
            self.transport_problem(f"a message with over {MAX_JSON_VALUES:,} JSON values; skipped")
            self.forget_sniffed(body[:4096], f"an edit to it has over {MAX_JSON_VALUES:,} JSON values")
            self.send_error(None, INVALID_REQUEST, f"Invalid Request: over {MAX_JSON_VALUES:,} JSON values")
            return None
        try:
            data = json.loads(body)
        except RecursionError:
            self.send_error(None, PARSE_ERROR, "Parse error: JSON nested too deeply")
            return None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            self.send_error(None, PARSE_ERROR, f"Parse error: {_short(str(exc))}")
            return None
        if not isinstance(data, dict):
            kind = _json_kind(data)
            self.send_error(None, INVALID_REQUEST, f"Invalid Request: a message is a JSON object, not {kind}")
            return None
        has_id = "id" in data
        msg_id = data.get("id")
        id_ok = has_id and isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool)
        reply_to = msg_id if id_ok else None
        method = data.get("method")
        if data.get("jsonrpc") != "2.0":
            self.send_error(reply_to, INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"')
            return None
        if has_id and not id_ok:
            self.send_error(None, INVALID_REQUEST, "Invalid Request: an id is an integer or a string")
            return None
        if "method" not in data:
            if has_id and ("result" in data) != ("error" in data):  # a response to a request of ours
                self._hand_over(data, "a response")
            else:
                self.send_error(reply_to, INVALID_REQUEST, "Invalid Request: no method")
            return None
        if not isinstance(method, str):
            self.send_error(reply_to, INVALID_REQUEST, "Invalid Request: the method is not a string")
            return None
        if method == types.EXIT:
            return 0 if self.shut_down else 1
        if self.shut_down:  # LSP: after shutdown, requests error with InvalidRequest
            if has_id:
                self.send_error(msg_id, INVALID_REQUEST, f"Invalid Request: the server is shut down ({_short(method)})")
            return None
        if (method == types.INITIALIZE) == self.initialized():
            if method == types.INITIALIZE:
                self.send_error(msg_id if has_id else None, INVALID_REQUEST, "Invalid Request: initialize comes once")
            elif has_id:
                self.send_error(msg_id, SERVER_NOT_INITIALIZED, "the server is not initialized yet")
            return None
        if not self.knows(method):
            if has_id:
                self.send_error(msg_id, METHOD_NOT_FOUND, f"Method not found: {_short(method)}")
            return None
        generic = JsonRPCRequestMessage if has_id else JsonRPCNotification
        message_type = self.protocol.get_message_type(method) or generic
        if has_id != ("id" in attrs.fields_dict(message_type)):
            if has_id:
                self.send_error(msg_id, INVALID_REQUEST, f"Invalid Request: {method} is a notification (no id)")
            else:
                self.transport_problem(f"dropped a {method} without an id: it is a request")
            return None
        try:
            message = self.converter.structure(data, message_type)
        except Exception as exc:  # noqa: BLE001 - cattrs' validation errors, RecursionError on deep params
            reason = _structure_error(exc)
            if has_id:
                self.send_error(msg_id, INVALID_PARAMS, f"Invalid params for {method}: {reason}")
            else:
                self.transport_problem(f"dropped a {method} notification with invalid params ({reason})")
            return None
        if method in (types.TEXT_DOCUMENT_DID_OPEN, types.TEXT_DOCUMENT_DID_CHANGE):
            self.bound_document(message.params)
        self._hand_over(message, method, msg_id if has_id else None)
        return None

    def _hand_over(self, message: Any, what: str, msg_id: int | str | None = None) -> None:
        try:
            if isinstance(message, dict):
                message = self.protocol.structure_message(message)
            self.protocol.handle_message(message)
            # pygls 2.1 files the future of every notification its own handlers run (didOpen,
            # didChange, ...) under a fresh id and never removes it: one per keystroke, for the
            # life of the server. A finished future there is no longer anyone's business.
            futures = getattr(self.protocol, "_request_futures", {})
            for done in [key for key, future in futures.items() if future.done()]:
                del futures[done]
        except Exception as exc:
            log.error("handling %s failed: %s: %s", what, type(exc).__name__, _short(str(exc)))
            log.debug("handling %s failed", what, exc_info=True)
            if msg_id is not None:
                self.send_error(msg_id, INTERNAL_ERROR, f"Internal error: {type(exc).__name__}")


def _utf8_size(text: str) -> int:
    """The UTF-8 size of `text` as far as MAX_DOCUMENT_BYTES needs it: exact when the character
    count cannot decide, else the character count (no copy of a large text is made)."""
    if MAX_DOCUMENT_BYTES // 4 < len(text) <= MAX_DOCUMENT_BYTES:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text)


def _too_large(size: int) -> str:
    return f"the document is {format_size(size)}, over the {format_size(MAX_DOCUMENT_BYTES)} limit for an open document"


def _analysis_limit(display: str, exc: BaseException) -> Diagnostic:
    from loralint.extract import file_diagnostic

    why = "nested too deeply" if isinstance(exc, RecursionError) else "too large to analyse in memory"
    return file_diagnostic("LORA906", display, f"not checked: the document is {why} ({type(exc).__name__})")


def _internal_error(display: str, exc: BaseException) -> Diagnostic:
    from loralint.extract import file_diagnostic

    return file_diagnostic(
        "LORA904", display, f"internal error while checking ({type(exc).__name__}: {_short(str(exc))}); please report it"
    )


def _structure_error(exc: Exception) -> str:
    """What cattrs found wrong with a message, as "what @ where" (`$.params.range.start.line`)."""
    from cattrs import transform_error
    from cattrs.errors import ClassValidationError

    if isinstance(exc, ClassValidationError):
        try:
            return _short("; ".join(transform_error(exc, path="$")))
        except Exception as failed:  # noqa: BLE001 - the summary is a courtesy
            log.debug("no summary of %r: %s", exc, failed)
    return f"{type(exc).__name__}: {_short(str(exc))}"


def _short(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters, control characters escaped: safe to echo or log."""
    line = text.splitlines()[0] if text else ""
    if len(line) > limit:
        line = line[:limit] + "..."
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in line)


def _json_kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


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


# --- transport: bounded framing in front of pygls ---------------------------------------------
#
# pygls' reader trusts the header (`Content-Length: 10**12` allocates a terabyte), reads header
# lines without a bound and never finds its way back after a bad header. So the server reads the
# stream itself. After any framing problem it skips to the next `Content-Length: N` line: such a
# line cannot occur inside a JSON body (a JSON string holds no raw line break, and outside strings
# the text is not JSON), so the skip lands on the next message whether the bad one lied about its
# length, ended early or was simply too big, and it holds only a few bytes while skipping.

_READ_CHUNK = 256 * 1024
_HEADER_LINE = re.compile(rb"Content-Length[ \t]*:[ \t]*\d+[ \t]*\r?\n")
_HEADER_TAIL = 128  # bytes kept while skipping, so a header line cut in two by a read is found
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE_BREAKS = re.compile(rb"[\r\n]*")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SNIFF_METHOD = re.compile(rb'"method"\s*:\s*"textDocument/did(?:Open|Change)"')
_SNIFF_URI = re.compile(rb'"uri"\s*:\s*("(?:[^"\\]|\\.){1,4000}")')


class FramingError(ValueError):
    """A header block that does not say how long its message is."""


@dataclass(frozen=True, slots=True)
class Dropped:
    """A message the reader skipped: why (one line for the log), and what it knows of it."""

    reason: str
    prefix: bytes = b""  # the start of its body
    size: int = 0  # its Content-Length


class MessageReader:
    """LSP messages from a byte stream, in bounded memory: a header block of at most
    MAX_HEADER_BYTES, a body of at most MAX_MESSAGE_BYTES (the buffer never holds more than one
    body and one read). `read(n)` is a blocking read returning at most n bytes (b"" at the end);
    it runs on a thread of its own so the event loop keeps serving."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._buf = bytearray()
        self._eof = False
        self._skip_from: int | None = None  # skip to the next header line, from this offset
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loralint-stdin")

    def close(self) -> None:
        self._thread.shutdown(wait=False)

    def reset(self) -> None:
        """Forget what is buffered and go on from the next `Content-Length:` line."""
        self._buf = bytearray()
        self._skip_from = 0

    async def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = await asyncio.get_running_loop().run_in_executor(self._thread, self._read, _READ_CHUNK)
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    async def read(self) -> bytearray | Dropped | None:
        """The next message body, a Dropped for a message that cannot be read, None at the end."""
        if self._skip_from is not None:
            start, self._skip_from = self._skip_from, None
            if not await self._skip_to_header(start):
                return None
        end = await self._header_end()
        if end is None:
            return None
        if end < 0:
            self._skip_from = 1
            return Dropped(f"a message header longer than {MAX_HEADER_BYTES} bytes; skipped to the next message")
        header = bytes(self._buf[:end])
        del self._buf[:end]
        try:
            length = content_length(header)
        except FramingError as exc:
            self._skip_from = 0
            return Dropped(f"{exc}; skipped to the next message")
        if length > MAX_MESSAGE_BYTES:
            self._skip_from = 0
            return Dropped(
                f"a message of {length:,} bytes is over the {format_size(MAX_MESSAGE_BYTES)} limit; skipped",
                bytes(self._buf[:4096]), length,
            )
        return await self._body(length)

    async def _header_end(self) -> int | None:
        """The offset just past the header block; -1 when it is too long; None at the end."""
        while True:
            lead = _LINE_BREAKS.match(self._buf).end()  # blank lines between messages are harmless
            if lead:
                del self._buf[:lead]
            match = _HEADER_END.search(self._buf, 0, MAX_HEADER_BYTES)
            if match:
                return match.end()
            if len(self._buf) >= MAX_HEADER_BYTES:
                return -1
            if not await self._fill():
                return None

    async def _body(self, length: int) -> bytearray | Dropped | None:
        checked = 0
        while True:
            end = min(len(self._buf), length)
            at = _HEADER_LINE.search(self._buf, max(checked - _HEADER_TAIL, 0), end)
            if at is not None:  # the next message began inside this one: it was shorter than it said
                del self._buf[: at.start()]
                return Dropped(f"a message ended before its Content-Length of {length:,} bytes; skipped")
            checked = end
            if len(self._buf) >= length:
                break
            if not await self._fill():
                self._buf.clear()
                return Dropped(f"the input ended inside a message of {length:,} bytes")
        # Hand over the buffer itself and keep what follows: no second copy of a large body.
        body, self._buf = self._buf, self._buf[length:]
        del body[length:]
        return body

    async def _skip_to_header(self, start: int) -> bool:
        """Drop bytes up to the next `Content-Length:` line; False when the input ends first."""
        while True:
            at = _HEADER_LINE.search(self._buf, start)
            if at is not None:
                del self._buf[: at.start()]
                return True
            del self._buf[: max(len(self._buf) - _HEADER_TAIL, 0)]
            start = 0
            if not await self._fill():
                self._buf.clear()
                return False


def content_length(header: bytes) -> int:
    """The Content-Length of a header block (field names in any case, as HTTP's)."""
    length: int | None = None
    for line in header.splitlines():
        if not line.strip():
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            raise FramingError(f"not a message header: {_short(line.decode('latin-1'), 60)}")
        if name.strip().lower() != b"content-length":
            continue
        value = value.strip()
        if not value.isdigit():
            raise FramingError(f"Content-Length is not a byte count: {_short(value.decode('latin-1'), 60)}")
        number = int(value) if len(value) <= 18 else 10**18  # int() refuses 4,300+ digits
        if length is not None and number != length:
            raise FramingError("two different Content-Length headers")
        length = number
    if length is None:
        raise FramingError("a message header without Content-Length")
    return length


def _json_values(body: bytes | bytearray) -> int:
    """An upper bound on the arrays, objects and members json.loads would build from `body`:
    commas and opening brackets, outside strings when the quick count over everything is high."""
    count = body.count(b",") + body.count(b"[") + body.count(b"{")
    if count > MAX_JSON_VALUES:
        outside = _JSON_STRING.sub(b"", body)
        count = outside.count(b",") + outside.count(b"[") + outside.count(b"{")
    return count


def _sniff_document(prefix: bytes) -> str | None:
    """The uri of the didOpen/didChange whose body starts with `prefix`, if it says so early."""
    uri = _SNIFF_URI.search(prefix)
    if uri is None or _SNIFF_METHOD.search(prefix) is None:
        return None
    try:
        value = json.loads(uri.group(1))
    except ValueError:
        return None
    return value if isinstance(value, str) else None


# --- the server and its features ------------------------------------------------------------


def create_server() -> LoraLintServer:
    server = LoraLintServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LoraLintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.open.add(params.text_document.uri)
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LoraLintServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri not in ls.skipped:  # small edits can grow a document past the limit too
            size = _utf8_size(ls.workspace.get_text_document(uri).source)
            if size > MAX_DOCUMENT_BYTES:
                ls.drop_text(uri, _too_large(size))
        ls.schedule(uri, ls.debounce)

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
        if state is None or uri in ls.skipped:  # no text to edit
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
        ls.shut_down = True
        for task in ls.pending.values():
            task.cancel()
        ls.pending.clear()
        ls.worker.shutdown(wait=False, cancel_futures=True)

    return server


class _OneLine(logging.Formatter):
    """stderr (the editor's output panel) gets one escaped line a record, never a traceback:
    hostile input must not flood it. LORALINT_LSP_LOG keeps the full story."""

    def format(self, record: logging.LogRecord) -> str:
        return f"loralint server: {record.levelname.lower()}: {_short(record.getMessage(), 500)}"


def _configure_logging() -> None:
    root = logging.getLogger()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(_OneLine())
    stderr.setLevel(logging.WARNING)
    root.addHandler(stderr)
    root.setLevel(logging.WARNING)
    if os.environ.get("LORALINT_LSP_LOG"):
        to_file = logging.FileHandler(os.environ["LORALINT_LSP_LOG"])
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(to_file)
        root.setLevel(logging.DEBUG)


def _claim_stdio() -> tuple[BinaryIO, BinaryIO]:
    """Private handles on the protocol's stdin and stdout. File descriptor 1 then points at stderr
    and 0 at the null device, so a stray print(), a C library or a child process can neither
    corrupt the message stream nor read from it."""
    sys.stdout.flush()
    protocol_in = os.fdopen(os.dup(0), "rb", buffering=0)  # read(n): what is there, up to n
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return protocol_in, protocol_out


def serve() -> None:
    """Speak LSP on stdin/stdout until the client says exit; exit 0 after shutdown, else 1."""
    # Belt and braces: the server must never block on the network (model resolution is offline).
    os.environ["HF_HUB_OFFLINE"] = "1"
    stdin, stdout = _claim_stdio()
    _configure_logging()  # after: even LORALINT_LSP_LOG=/dev/stdout lands on stderr
    code = create_server().run_stdio(stdin, stdout)
    logging.shutdown()
    for stream in (stdout, sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    # A check still running on hostile input must not keep the process alive after `exit`
    # (the interpreter would join the worker thread): leave now.
    os._exit(code)


__all__ = ["DEBOUNCE_S", "LoraLintServer", "create_server", "minimal_edit", "serve", "suppress_edit"]
