"""`check --watch`: check again whenever a checked file changes, for a terminal beside the editor.

Standard library polling, no file-system events: every `interval` seconds the files the last run
discovered (and their directories, so a new file in one is seen, and the settings file) are
`stat`-ed; any change in modification time, size or identity starts a new run. The work per poll is
bounded by what the run discovered. The screen is cleared before each run only on a terminal;
Ctrl-C ends watching with exit code 0.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable

import click

INTERVAL = 0.5  # seconds between two polls

Snapshot = dict[str, tuple[int, int, int] | None]


def snapshot(paths: Iterable[str]) -> Snapshot:
    """(mtime in ns, size, inode) of each path; None for one that is gone."""
    out: Snapshot = {}
    for path in paths:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            out[path] = None
            continue
        out[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return out


def watch(run: Callable[[], None], paths: Callable[[], Iterable[str]], interval: float = INTERVAL,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """`run` (it prints its report), then again after every change to one of `paths()`, until Ctrl-C.
    The paths are taken before each run, so an edit made while it runs is seen. Returns 0."""
    terminal = sys.stdout.isatty()
    try:
        message = "Starting linter in watch mode..."
        while True:
            watched = snapshot(paths())
            if terminal:
                click.clear()
            click.echo(message, err=True)
            run()
            while True:
                sleep(interval)
                if snapshot(watched) != watched:
                    break
            message = "File change detected..."
    except KeyboardInterrupt:
        return 0
