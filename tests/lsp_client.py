"""The pytest-lsp client the LSP tests drive `loralint server` with (tests/test_server.py,
tests/hostile/test_lsp.py): it records every publishDiagnostics; helpers wait for them and edit
documents as an editor does. Import it after `pytest.importorskip("pytest_lsp")`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

HANG_SECONDS = 120  # a hang guard for waits, never a measurement


def _record(client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
    client.diagnostics[params.uri] = params.diagnostics
    client.published.append(params)  # type: ignore[attr-defined]


def _make_client() -> LanguageClient:
    client = LanguageClient(converter_factory=default_converter)
    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: _record})
    client.published = []  # type: ignore[attr-defined]
    return client


def server_config(command: list[str], env: dict[str, str] | None = None) -> ClientServerConfig:
    """The server started by `command`, spoken to by a client that records what it publishes."""
    return ClientServerConfig(server_command=command, client_factory=_make_client, server_env=env)


def client_fixture(config: ClientServerConfig, editor: str = "visual-studio-code"):
    """A fixture: a client with the capabilities `editor` announces, its session initialised (the
    server's answer in `client.init_result`) and shut down after the test."""

    @pytest_lsp.fixture(config=config)
    async def client(lsp_client: LanguageClient):
        lsp_client.init_result = await lsp_client.initialize_session(  # type: ignore[attr-defined]
            types.InitializeParams(capabilities=pytest_lsp.client_capabilities(editor))
        )
        yield
        await lsp_client.shutdown_session()

    return client


async def published(client: LanguageClient, uri: str, version: int | None = None) -> types.PublishDiagnosticsParams:
    """The first publishDiagnostics for `uri` (at `version`, when given) not yet consumed; fails when
    the server exits or nothing comes within HANG_SECONDS."""
    deadline = time.monotonic() + HANG_SECONDS
    while time.monotonic() < deadline and client._server.returncode is None:  # type: ignore[union-attr]
        for i, params in enumerate(client.published):  # type: ignore[attr-defined]
            if params.uri == uri and (version is None or params.version == version):
                del client.published[i]  # type: ignore[attr-defined]
                return params
        await asyncio.sleep(0.01)
    status = client._server.returncode  # type: ignore[union-attr]
    raise AssertionError(f"no diagnostics published for {uri} version {version} (server exit status {status})")


def open_doc(client: LanguageClient, where: Path | str, text: str, language: str = "python", version: int = 1) -> str:
    """Open `where` (a path or a URI) with `text` in the editor; its URI."""
    uri = where.as_uri() if isinstance(where, Path) else where
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))
    return uri


def change_doc(client: LanguageClient, uri: str, version: int, text: str) -> None:
    """Replace the whole text of an open document, as version `version`."""
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
