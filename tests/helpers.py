"""Run loralint the way a user does and read what it prints (imported by tests as `helpers`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)

    def codes(self) -> list[str]:
        return [d["code"] for d in self.json["diagnostics"]]


def run_cli(args: list[str], cwd: Path | None = None, input: str | bytes | None = None, env: dict | None = None) -> Run:
    """In-process, through click (fast); the code path is the console script's."""
    from loralint.cli import cli

    runner = CliRunner()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = runner.invoke(cli, args, input=input, env=env, catch_exceptions=False)
    finally:
        os.chdir(old)
    return Run(result.exit_code, result.stdout, result.stderr)


def run_subprocess(args: list[str], cwd: Path | None = None, input: bytes | None = None, env: dict | None = None) -> Run:
    """A real process: for exit codes, tracebacks and import costs."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("FORCE_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-c", "from loralint.cli import run; run()", *args],
        cwd=cwd, input=input, capture_output=True, env=full_env, timeout=120,
    )
    return Run(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
