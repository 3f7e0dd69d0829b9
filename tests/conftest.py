"""Shared fixtures. Helpers live in tests/helpers.py so every test directory can import them."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import Run, run_cli  # noqa: E402


@pytest.fixture
def write(tmp_path):
    """write("train.py", source) → path, with the source dedented."""

    def _write(name: str, text: str | bytes, base: Path | None = None) -> Path:
        path = (base or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def check_json(tmp_path):
    """Check paths under tmp_path with JSON output (no cache) and return the parsed report."""

    def _check(*args: str, cwd: Path | None = None) -> Run:
        return run_cli(["check", "--output-format", "json", "--no-cache", *args], cwd=cwd or tmp_path)

    return _check


@pytest.fixture
def closed_port() -> str:
    """An endpoint where nothing listens: the connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# What a stand-in answers a request with: (status, headers, body); a dict body is sent as JSON.
Answer = tuple[int, dict[str, str], "bytes | dict"]


class StandInHub:
    """A local HTTP server for HF_ENDPOINT: `answer(method, path)` decides each reply, and `requests`
    records every request made to it ("GET /api/datasets/acme/x?expand=cardData")."""

    def __init__(self, answer: Callable[[str, str], Answer]) -> None:
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                status, headers, body = answer(self.command, self.path)
                data = json.dumps(body).encode() if isinstance(body, dict) else body
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = _reply

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in_hub() -> Iterator[Callable[[Callable[[str, str], Answer]], StandInHub]]:
    """stand_in_hub(answer) → a running StandInHub, shut down after the test."""
    started: list[StandInHub] = []

    def start(answer: Callable[[str, str], Answer]) -> StandInHub:
        started.append(StandInHub(answer))
        return started[-1]

    yield start
    for hub in started:
        hub.close()
