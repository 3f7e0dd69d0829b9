"""The language server's latency as an editor sees it: from a change sent to the diagnostics of that
version published, in one warm `loralint server` over stdio (raw JSON-RPC: nothing but the server is
timed). Each change waits for the previous answer and a pause, so every one finds the server idle.

    python benchmarks/bench_lsp.py FILE [--changes 10] [--pause 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _send(proc: subprocess.Popen, message: dict) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)  # type: ignore[union-attr]
    proc.stdin.flush()  # type: ignore[union-attr]


def _receive(proc: subprocess.Popen) -> dict:
    length = 0
    while True:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise SystemExit("the server exited")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return json.loads(proc.stdout.read(length))  # type: ignore[union-attr]


def _published(proc: subprocess.Popen, uri: str, version: int) -> dict:
    while True:
        message = _receive(proc)
        params = message.get("params") or {}
        if message.get("method") == "textDocument/publishDiagnostics" and params.get("uri") == uri \
                and params.get("version") == version:
            return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between an answer and the next change")
    args = parser.parse_args()
    path = args.file.resolve()
    text = path.read_text(encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "loralint", "server"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=path.parent)
    uri = path.as_uri()
    _send(proc, {"id": 1, "method": "initialize", "params": {"processId": None, "rootUri": path.parent.as_uri(),
                                                              "capabilities": {}}})
    while _receive(proc).get("id") != 1:
        pass
    _send(proc, {"method": "initialized", "params": {}})
    _send(proc, {"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": text}}})
    _published(proc, uri, 1)
    latencies = []
    for version in range(2, args.changes + 2):
        time.sleep(args.pause)
        # A keystroke at the end of the file (an incremental change, as editors send them).
        lines = text.count("\n")
        change = {"range": {"start": {"line": lines, "character": 0}, "end": {"line": lines, "character": 0}},
                  "text": "#" if version % 2 == 0 else ""}
        if version % 2:  # take the character back out
            change["range"]["end"]["character"] = 1
        start = time.perf_counter()
        _send(proc, {"method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}})
        _published(proc, uri, version)
        latencies.append(time.perf_counter() - start)
    _send(proc, {"id": 2, "method": "shutdown", "params": None})
    while _receive(proc).get("id") != 2:
        pass
    _send(proc, {"method": "exit", "params": None})
    proc.wait(timeout=30)
    print(f"{path.name} ({path.stat().st_size // 1024} KB), {len(latencies)} changes: change -> diagnostics "
          f"best {min(latencies):.3f} s, median {statistics.median(latencies):.3f} s, worst {max(latencies):.3f} s")


if __name__ == "__main__":
    main()
