"""Shared fixtures. Helpers live in tests/helpers.py so every test directory can import them."""

from __future__ import annotations

import sys
import textwrap
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
