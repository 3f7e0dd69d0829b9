"""`loralint server` under hostile input: the real server process, over stdio.

Raw bytes where the hostile part is the framing or the JSON itself (`RawServer`), pytest-lsp
where it is an LSP message a real client could send. Every server runs under an address-space
limit, so a server that tried to allocate what a header claims dies instead of growing; waits are
hang guards (HANG_SECONDS), never timing assertions. Memory is read from /proc/<pid>/status.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp", reason="pytest-lsp is in loralint[test]")

from lsp_client import change_doc, client_fixture, open_doc, published, server_config
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc (Linux)")

# The server with pygls, lsprotocol and the check engine loaded, its threads' stacks and malloc
# arenas reserved, fits in well under this; a terabyte Content-Length or a 20x JSON blow-up does not.
ADDRESS_SPACE_MB = 1536
HANG_SECONDS = 120  # a hang, not a measurement
MB = 1024 * 1024

BAD = 'from peft import LoraConfig\nconfig = LoraConfig(r=16, lora_aplha=32, target_modules=["q_proj"])\n'
INIT = {"processId": None, "rootUri": None, "capabilities": {}}


def bounded_server() -> list[str]:
    """`loralint server` under an address-space limit it sets itself (no preexec_fn in a threaded test)."""
    code = (
        "import resource, sys\n"
        f"limit = {ADDRESS_SPACE_MB} * {MB}\n"
        "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
        "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
        "sys.argv = ['loralint', 'server']\n"
        "from loralint.cli import main\n"
        "main()\n"
    )
    return [sys.executable, "-c", code]


def frame(message: object) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def raw_body(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def request(msg_id: int, method: str, params: object = None) -> bytes:
    return frame({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})


def notification(method: str, params: object = None) -> bytes:
    return frame({"jsonrpc": "2.0", "method": method, "params": params})


def did_open(uri: str, text: str, language: str = "python") -> bytes:
    item = {"uri": uri, "languageId": language, "version": 1, "text": text}
    return notification("textDocument/didOpen", {"textDocument": item})


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now), VmHWM (peak) and VmSize (address space) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "VmSize"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


class RawServer:
    """`loralint server` in a process of its own, spoken to in bytes. Its stdout is parsed
    strictly: anything that is not a framed JSON message is kept in `junk`."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "LORALINT_LSP_DEBOUNCE": "0"}
        full_env.pop("LORALINT_LSP_LOG", None)
        self.proc = subprocess.Popen(
            bounded_server(), cwd=cwd, env={**full_env, **(env or {})},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.inbox: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        self.junk: list[bytes] = []
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=lambda: self._stderr.append(self.proc.stderr.read()), daemon=True).start()

    def _read_stdout(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line == b"\r\n":
                    break
                name, _, value = line.decode("ascii", "replace").partition(":")
                if not line.endswith(b"\r\n") or not value:
                    self.junk.append(line)
                    return
                if name.lower() == "content-length":
                    length = int(value)
            if length is None:
                self.junk.append(b"<header without Content-Length>")
                return
            body = out.read(length)
            try:
                self.inbox.put(json.loads(body))
            except ValueError:
                self.junk.append(body)
                return

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_for(self, want, what: str) -> dict:
        """The first message (already seen or still to come) for which `want` is true."""
        for message in self.seen:
            if want(message):
                self.seen.remove(message)
                return message
        deadline = time.monotonic() + HANG_SECONDS
        while time.monotonic() < deadline:
            try:
                message = self.inbox.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None or self.junk:
                    break
                continue
            if want(message):
                return message
            self.seen.append(message)
        raise AssertionError(f"no {what} from the server (exit status {self.proc.poll()}, junk on stdout "
                             f"{self.junk[:1]!r}); stderr: {self.stderr()}")

    def response(self, msg_id: int | None) -> dict:
        return self.wait_for(lambda m: "method" not in m and m.get("id") == msg_id, f"response to id {msg_id}")

    def diagnostics(self, uri: str) -> list[dict]:
        found = self.wait_for(
            lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri,
            f"diagnostics for {uri}",
        )
        return found["params"]["diagnostics"]

    def initialize(self) -> None:
        self.send(request(1, "initialize", INIT) + notification("initialized", {}))
        assert "capabilities" in self.response(1)["result"]

    def memory(self) -> dict[str, float]:
        return memory_mb(self.proc.pid)

    def finish(self, *, shutdown: bool = True) -> int:
        """shutdown (answered with null) and exit; the exit status."""
        if shutdown:
            self.send(request(9999, "shutdown"))
            assert self.response(9999) == {"id": 9999, "jsonrpc": "2.0", "result": None}
        self.send(notification("exit"))
        return self.proc.wait(timeout=HANG_SECONDS)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "<still running>"
        self.proc.stdin.close()
        deadline = time.monotonic() + HANG_SECONDS
        while not self._stderr and time.monotonic() < deadline:
            time.sleep(0.01)
        return b"".join(self._stderr).decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def raw(tmp_path):
    servers: list[RawServer] = []

    def start(**kwargs) -> RawServer:
        servers.append(RawServer(tmp_path, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def assert_clean_exit(server: RawServer, code: int, problems: int) -> list[str]:
    """The exit status, protocol-only stdout, no traceback and `problems` one-line reports."""
    assert server.junk == []
    stderr = server.stderr()
    assert "Traceback" not in stderr
    assert server.proc.returncode == code, stderr
    lines = stderr.splitlines()
    assert all(line.startswith("loralint server: ") for line in lines), stderr
    assert len(lines) == problems, stderr
    return lines


# --- framing ---------------------------------------------------------------------------------

FRAMING = {
    "negative": (b"Content-Length: -5\r\n\r\n{}", "Content-Length is not a byte count: -5"),
    "not a number": (b"Content-Length: twelve\r\n\r\n{\"jsonrpc\": \"2.0\"}", "not a byte count: twelve"),
    "missing": (b"Content-Type: application/vscode-jsonrpc\r\n\r\n{}", "without Content-Length"),
    "10**12": (b"Content-Length: 1000000000000\r\n\r\n{\"jsonrpc\":", "1,000,000,000,000 bytes is over the 64 MB"),
    "5000 digits": (b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n", "is over the 64 MB limit"),
    "header line of 1 MB": (b"X-Padding: " + b"a" * MB, "header longer than 8192 bytes"),
    "not a header": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a message header: GET / HTTP/1.1"),
    # Says 400 bytes, sends 20: the next message starts inside what it claimed and is still read.
    "longer than what follows": (b"Content-Length: 400\r\n\r\n{\"jsonrpc\": \"2.0\", ", "ended before its Content-Length"),
}


def test_each_bad_header_is_skipped_and_the_request_after_it_answered(raw):
    server = raw()
    for msg_id, (hostile, _) in enumerate(FRAMING.values(), start=1):
        server.send(hostile + request(msg_id, *(("initialize", INIT) if msg_id == 1 else ("loralint/ping",))))
        answer = server.response(msg_id)
        assert "capabilities" in answer["result"] if msg_id == 1 else answer["error"]["code"] == -32601
    peak = server.memory()["VmHWM"]
    assert server.finish() == 0
    lines = assert_clean_exit(server, 0, problems=len(FRAMING))
    for line, (case, (_, reported)) in zip(lines, FRAMING.items()):
        assert reported in line, case
    assert peak < 300, f"peak RSS {peak:.0f} MB"


def test_an_oversize_message_is_skipped_in_bounded_memory_and_its_document_reported(raw, tmp_path):
    """A genuine 81 MB didOpen (over the 64 MB message cap): read past without being held, the
    next request answered, and the document it named reported as skipped."""
    server = raw()
    server.initialize()
    uri = (tmp_path / "huge.py").as_uri()
    huge = did_open(uri, "# padding\n" * (7 * MB))
    assert len(huge) > 70 * MB
    server.send(huge + request(2, "shutdown"))
    assert server.response(2)["result"] is None
    [skipped] = server.diagnostics(uri)
    assert skipped["code"] == "LORA905" and skipped["severity"] == 2
    assert "in a message of 81 MB, over the 64 MB limit" in skipped["message"]
    peak = server.memory()["VmHWM"]
    assert server.finish(shutdown=False) == 0
    [line] = assert_clean_exit(server, 0, problems=1)
    assert "is over the 64 MB limit; skipped" in line
    assert peak < 300, f"peak RSS {peak:.0f} MB for a 70 MB message"  # it never held the message


def test_a_long_editing_session_does_not_grow_the_server(raw, tmp_path):
    """10,000 keystrokes: pygls alone keeps ~2 KB for each notification it handles (about 18 MB
    here, gigabytes over a long session); the server's memory must not grow with their count."""
    server = raw(env={"LORALINT_LSP_DEBOUNCE": "0.3"})  # as an editor types
    server.initialize()
    uri = (tmp_path / "notes.txt").as_uri()
    server.send(did_open(uri, "a", language="plaintext") + request(2, "loralint/ping"))
    server.response(2)
    before = server.memory()["VmRSS"]
    changes = [{"textDocument": {"uri": uri, "version": v}, "contentChanges": [{"text": "b" * (v % 7)}]}
               for v in range(2, 10_002)]
    server.send(b"".join(notification("textDocument/didChange", c) for c in changes) + request(3, "loralint/ping"))
    server.response(3)
    grown = server.memory()["VmRSS"] - before
    assert server.finish() == 0
    assert_clean_exit(server, 0, problems=0)
    assert grown < 8, f"RSS grew {grown:.0f} MB over 10,000 edits"


def test_running_out_of_memory_on_one_message_does_not_end_the_server(raw):
    """A 63 MB message (under the cap) to a server left with 100 MB of address space: reading and
    parsing it needs about twice that, so a real MemoryError is raised, and costs that message only."""
    server = raw()
    server.initialize()
    spare = (memory_mb(server.proc.pid)["VmSize"] + 100) * MB
    resource.prlimit(server.proc.pid, resource.RLIMIT_AS, (int(spare), int(spare)))
    big = notification("workspace/didChangeConfiguration", {"settings": "x" * (63 * 1000 * 1000 - 200)})
    assert len(big) < 64_000_000
    server.send(big + request(2, "loralint/ping"))
    assert server.response(2)["error"]["code"] == -32601
    assert server.finish() == 0
    [line] = assert_clean_exit(server, 0, problems=1)
    assert "MemoryError" in line or "out of memory" in line


def test_the_input_ending_inside_a_message_exits_with_status_1_and_one_line(raw):
    server = raw()
    server.initialize()
    server.send(b"Content-Length: 500\r\n\r\n{\"jsonrpc\": \"2.0\", \"id\": 2")
    server.proc.stdin.close()
    assert server.proc.wait(timeout=HANG_SECONDS) == 1
    lines = assert_clean_exit(server, 1, problems=2)
    assert "the input ended inside a message of 500 bytes" in lines[0]
    assert "ended without shutdown and exit" in lines[1]


def test_stdout_carries_protocol_messages_only_even_when_the_log_is_pointed_at_it(raw, tmp_path):
    """LORALINT_LSP_LOG=/dev/stdout (a plausible misconfiguration) writes the debug log to fd 1:
    the server keeps the protocol on a private handle, so the log lands on stderr instead."""
    server = raw(env={"LORALINT_LSP_LOG": "/dev/stdout"})
    server.initialize()
    uri = (tmp_path / "train.py").as_uri()
    server.send(did_open(uri, BAD) + raw_body(b"not json"))
    assert {d["code"] for d in server.diagnostics(uri)} == {"LORA001"}
    assert server.response(None)["error"]["code"] == -32700
    assert server.finish() == 0
    assert server.junk == []
    stderr = server.stderr()
    assert "DEBUG" in stderr and "textDocument/didOpen" in stderr  # the log went somewhere harmless


# --- malformed JSON-RPC ------------------------------------------------------------------------


INVALID = [
    # (body, expected error code, expected id)
    (b"this is not json", -32700, None),
    (b'{"jsonrpc": "2.0", "id": 3, "method": "initialize"', -32700, None),
    (b"\xff\xfe\x00garbage", -32700, None),
    (b"[" * 100_000 + b"]" * 100_000, -32700, None),  # RecursionError in the JSON parser
    (b"[1, 2, 3]", -32600, None),
    (b'"initialize"', -32600, None),
    (b"null", -32600, None),
    (b"[" + b"0," * 2_500_000 + b"0]", -32600, None),  # 2.5 million values: refused before parsing
    (b'{"jsonrpc": "2.0", "id": 4}', -32600, 4),
    (b'{"jsonrpc": "1.0", "id": 5, "method": "shutdown"}', -32600, 5),
    (b'{"id": 6, "method": "shutdown"}', -32600, 6),
    (b'{"jsonrpc": "2.0", "id": 7, "method": 42}', -32600, 7),
    (b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "shutdown"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": true, "method": "shutdown"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": 8, "method": "textDocument/didOpen", "params": {}}', -32600, 8),
    (b'{"jsonrpc": "2.0", "id": 9, "method": "loralint/' + b"x" * 100_000 + b'"}', -32601, 9),
    (b'{"jsonrpc": "2.0", "id": 10, "method": "textDocument/codeAction", "params": {"textDocument": 5}}', -32602, 10),
    (b'{"jsonrpc": "2.0", "id": 11, "method": "textDocument/codeAction", "params": null}', -32602, 11),
]


def test_malformed_messages_get_json_rpc_errors_and_the_server_goes_on(raw):
    server = raw()
    server.initialize()
    for body, code, msg_id in INVALID:
        server.send(raw_body(body))
        error = server.response(msg_id)["error"]
        assert error["code"] == code, (body[:60], error)
        assert len(error["message"]) < 300  # a 100 KB method name is not echoed back
    peak = server.memory()["VmHWM"]
    assert server.finish() == 0
    assert_clean_exit(server, 0, problems=1)  # the 2.5 million values, logged once
    assert peak < 400, f"peak RSS {peak:.0f} MB"


def test_requests_before_initialize_are_refused_and_notifications_dropped(raw, tmp_path):
    server = raw()
    server.send(did_open((tmp_path / "a.py").as_uri(), BAD) + request(2, "textDocument/codeAction", {}))
    assert server.response(2)["error"]["code"] == -32002
    server.initialize()
    assert server.finish() == 0
    assert_clean_exit(server, 0, problems=0)


# --- shutdown and exit -------------------------------------------------------------------------


def test_after_shutdown_requests_get_invalid_request_and_exit_exits_0(raw, tmp_path):
    server = raw()
    server.initialize()
    server.send(request(2, "shutdown"))
    assert server.response(2)["result"] is None
    code_action = {
        "textDocument": {"uri": (tmp_path / "a.py").as_uri()},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
        "context": {"diagnostics": []},
    }
    server.send(request(3, "textDocument/codeAction", code_action) + request(4, "loralint/unknown"))
    server.send(did_open((tmp_path / "a.py").as_uri(), BAD) + request(5, "shutdown"))
    for msg_id in (3, 4, 5):
        assert server.response(msg_id)["error"]["code"] == -32600
    server.send(notification("exit"))
    assert server.proc.wait(timeout=HANG_SECONDS) == 0
    assert_clean_exit(server, 0, problems=0)
    assert not [m for m in server.seen if m.get("method") == "textDocument/publishDiagnostics"]


def test_exit_without_shutdown_exits_1(raw):
    server = raw()
    server.initialize()
    assert server.finish(shutdown=False) == 1
    assert_clean_exit(server, 1, problems=0)


# --- documents (pytest-lsp: messages a real client sends) ---------------------------------------

client = client_fixture(server_config(bounded_server(), {**os.environ, "HF_HUB_OFFLINE": "1", "LORALINT_LSP_DEBOUNCE": "0"}))


def codes(params: types.PublishDiagnosticsParams) -> set[str]:
    return {str(d.code) for d in params.diagnostics}


def server_pid(client: LanguageClient) -> int:
    return client._server.pid  # type: ignore[union-attr]  # pygls keeps the process it started


@pytest.mark.asyncio
async def test_a_document_over_10_mb_is_not_checked_nor_kept(client, tmp_path):
    uri = (tmp_path / "train.py").as_uri()
    open_doc(client, uri, BAD)
    assert codes(await published(client, uri, 1)) == {"LORA001"}
    before = memory_mb(server_pid(client))["VmRSS"]

    big = BAD + "# padding\n" * (3 * MB)  # 31 MB: over the limit, under the message cap
    change_doc(client, uri, 2, big)
    [skipped] = (await published(client, uri, 2)).diagnostics
    assert (skipped.code, skipped.severity) == ("LORA905", types.DiagnosticSeverity.Warning)
    assert "the document is 31 MB, over the 10 MB limit" in skipped.message
    during = memory_mb(server_pid(client))
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=skipped.range,
        context=types.CodeActionContext(diagnostics=[skipped])))
    assert not actions  # no text to edit: no fix, no suppression

    del big
    change_doc(client, uri, 3, BAD)
    assert codes(await published(client, uri, 3)) == {"LORA001"}
    after = memory_mb(server_pid(client))["VmRSS"]
    print(f"RSS before {before:.0f} MB, with the 30 MB edit {during['VmRSS']:.0f} MB "
          f"(peak {during['VmHWM']:.0f} MB), after the small edit {after:.0f} MB")
    assert after - before < 15, (before, during, after)  # the 30 MB text is not kept

    # A document opened over the limit, and one that grows over it by small edits.
    opened = (tmp_path / "big.py").as_uri()
    open_doc(client, opened, "# padding\n" * (11 * MB // 10))
    assert codes(await published(client, opened, 1)) == {"LORA905"}
    grown = (tmp_path / "grown.py").as_uri()
    open_doc(client, grown, BAD)
    assert codes(await published(client, grown, 1)) == {"LORA001"}
    end = types.Position(line=2, character=0)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=grown, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=end, end=end), text="#" * (11 * MB))]))
    assert codes(await published(client, grown, 2)) == {"LORA905"}


@pytest.mark.asyncio
async def test_unknown_methods_and_wrong_params_get_errors_from_a_real_client(client, tmp_path):
    with pytest.raises(JsonRpcException) as unknown:
        await client.protocol.send_request_async("loralint/noSuchMethod", {})
    assert unknown.value.code == -32601
    uri = (tmp_path / "train.py").as_uri()
    nowhere = types.Position(line=0, character=0)
    object.__setattr__(nowhere, "line", "first")  # a buggy client: past lsprotocol's validators
    with pytest.raises(JsonRpcException) as wrong:
        await client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=nowhere, end=nowhere),
            context=types.CodeActionContext(diagnostics=[])))
    assert wrong.value.code == -32602
    open_doc(client, uri, BAD)
    assert codes(await published(client, uri, 1)) == {"LORA001"}  # still serving


HOSTILE_PYTHON = {
    "1500-deep brackets": "from peft import LoraConfig\nx = " + "[" * 1500 + "]" * 1500 + "\nc = LoraConfig(r=8)\n",
    "deep call": "from peft import LoraConfig\nc = LoraConfig(r=" + "f(" * 1500 + "1" + ")" * 1500 + ")\n",
    "a list of 10**9": 'from peft import LoraConfig\nc = LoraConfig(r=8, target_modules=["q_proj"] * 10**9)\n',
    "a string of 10**9": 'from peft import LoraConfig\nc = LoraConfig(r=8, target_modules="q" * 10**9)\n',
}


@pytest.mark.asyncio
async def test_hostile_python_documents_do_not_take_the_server_down(client, tmp_path):
    for i, text in enumerate(HOSTILE_PYTHON.values()):
        uri = (tmp_path / f"hostile{i}.py").as_uri()
        open_doc(client, uri, text)
        await published(client, uri, 1)  # whatever it says, it answers
    uri = (tmp_path / "train.py").as_uri()
    open_doc(client, uri, BAD)
    assert codes(await published(client, uri, 1)) == {"LORA001"}
