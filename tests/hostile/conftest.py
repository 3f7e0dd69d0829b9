"""Hostile input: each test builds its input on the fly and runs loralint as a user would.

`run_bounded` runs the real CLI in a subprocess under an address-space limit and a wall-clock
limit that is generous for the machine's speed: a run that needs gigabytes, hangs or segfaults
fails the test by its exit status, not by a timing assertion."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Enough for the static path (python, click, pydantic, yaml, libcst) with room to spare; far less
# than a hostile input would take unbounded.
ADDRESS_SPACE_MB = 1536
HANG_SECONDS = 120  # a hang, not a measurement: a bounded run finishes in a few seconds


@dataclass
class Bounded:
    exit_code: int
    stdout: str
    stderr: str
    peak_rss_mb: float

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr or "Traceback (most recent call last)" in self.stdout


def _limit(address_space_mb: int):
    def apply() -> None:
        limit = address_space_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_bounded(
    args: list[str],
    cwd: Path,
    *,
    input: bytes | None = None,
    address_space_mb: int = ADDRESS_SPACE_MB,
    env: dict[str, str] | None = None,
    timeout: float = HANG_SECONDS,
) -> Bounded:
    """`loralint ARGS` in a real process with an address-space limit; raises on a hang."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("FORCE_COLOR", None)
    # The peak is VmHWM, the high-water mark of this process's own memory: getrusage's ru_maxrss
    # survives exec on Linux, so it would report the (large) pytest process the run was forked from.
    # Pool workers are forked from loralint itself, so their ru_maxrss is theirs.
    code = (
        "import resource, sys\n"
        "from loralint.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    peak = 0\n"
        "    with open('/proc/self/status') as status:\n"
        "        for line in status:\n"
        "            if line.startswith('VmHWM:'):\n"
        "                peak = int(line.split()[1])\n"
        "    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "    sys.stderr.write(f'\\n@@peak_rss_kb={max(peak, kids)}\\n')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        preexec_fn=_limit(address_space_mb),
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    peak = 0.0
    if "@@peak_rss_kb=" in stderr:
        stderr, _, tail = stderr.rpartition("\n@@peak_rss_kb=")
        peak = int(tail.strip() or 0) / 1024
    return Bounded(proc.returncode, proc.stdout.decode("utf-8", "replace"), stderr, peak)


@pytest.fixture
def bounded():
    return run_bounded
