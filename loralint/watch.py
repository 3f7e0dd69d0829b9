"""`check --watch`: check again whenever a checked file changes, for a terminal beside the editor.

Standard library polling, no file-system events: every `interval` seconds the files the last run
discovered (and the settings file, and the data sets it counted) are `stat`-ed, and their directories
listed, so that a new file in one is seen; any change in modification time, size or identity, or in a
listing, starts a new run. A listing leaves out the folders discovery skips (loralint's own `.loralint_cache/` among them): the
cache a run writes must not start the next run. The work per poll is
bounded by what the run discovered. The screen is cleared before each run only on a terminal;
Ctrl-C ends watching with exit code 0.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping

import click

INTERVAL = 0.5  # seconds between two polls

Snapshot = dict[str, tuple[int, int, int] | frozenset[str] | None]


def snapshot(paths: Iterable[str]) -> Snapshot:
    """(mtime in ns, size, inode) of each file; the names in each directory that discovery would look
    at; None for a path that is gone."""
    from loralint.discover import DEFAULT_EXCLUDED_DIRS

    out: Snapshot = {}
    for path in paths:
        try:
            if os.path.isdir(path):
                # Not the folder's mtime: creating `.loralint_cache/` (or a build folder) changes it.
                out[path] = frozenset(name for name in os.listdir(path)
                                      if name not in DEFAULT_EXCLUDED_DIRS and not name.endswith(".egg-info"))
                continue
            st = os.stat(path)
        except (OSError, ValueError):
            out[path] = None
            continue
        out[path] = _stamp(st)
    return out


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def watch(run: Callable[[], None], paths: Callable[[], Iterable[str]], interval: float = INTERVAL,
          sleep: Callable[[float], None] = time.sleep,
          inputs: Callable[[], Mapping[str, os.stat_result | None]] = dict) -> int:
    """`run` (it prints its report), then again after every change to one of `paths()`, until Ctrl-C.
    The paths are taken before each run, so an edit made while it runs is seen. `inputs()`: the files the
    run just read besides those (a data set LORA104 counted), each with its stat from before the read (or
    None: stat'ed after the run), polled as well. Returns 0."""
    terminal = sys.stdout.isatty()
    try:
        message = "Starting linter in watch mode..."
        while True:
            watched = snapshot(paths())
            if terminal:
                click.clear()
            click.echo(message, err=True)
            run()
            for path, st in inputs().items():
                if path not in watched:
                    watched[path] = _stamp(st) if st is not None else snapshot([path])[path]
            while True:
                sleep(interval)
                if snapshot(watched) != watched:
                    break
            message = "File change detected..."
    except KeyboardInterrupt:
        return 0
