"""PEFT's warnings and transformers' log lines as data, and the progress bar."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loralint.verify.stack import Stack


def _is_meta_artifact(text: str) -> bool:
    lower = text.lower()
    return "meta tensor" in lower or "meta device" in lower or "on device meta" in lower or "'meta'" in lower


@contextmanager
def _capture_warnings() -> Iterator[list[tuple[str, str]]]:
    """Record PEFT's warnings (warnings.warn from peft's own files, and the `peft` logger) instead
    of printing them; other libraries' deprecation chatter is dropped."""
    caught: list[tuple[str, str]] = []
    handler = _ListHandler(caught)
    logger = logging.getLogger("peft")
    logger.addHandler(handler)
    old_propagate = logger.propagate
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            yield caught
        for w in records:
            if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
                continue
            if not _from_peft(w.filename):
                continue
            caught.append((w.category.__name__, " ".join(str(w.message).split())))
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


def _from_peft(filename: str) -> bool:
    parts = Path(filename).parts
    return "peft" in parts


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[tuple[str, str]]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append((record.levelname, " ".join(record.getMessage().split())))


@contextmanager
def _quiet_transformers(stack: Stack) -> Iterator[None]:
    """transformers logs about configs while building (unused keys, attention implementations):
    not PEFT's, not the user's; keep stderr clean for the run."""
    tlog = stack.transformers.utils.logging
    level = tlog.get_verbosity()
    tlog.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tlog.set_verbosity(level)


class _Bar:
    """A rich progress bar on stderr (a terminal only); silent otherwise."""

    def __init__(self, progress: Any = None) -> None:
        self.progress = progress
        self.task = None

    def start(self, total: int) -> None:
        if self.progress is not None and total:
            self.task = self.progress.add_task("verifying", total=total)

    def describe(self, text: str) -> None:
        if self.progress is not None and self.task is not None:
            from loralint.report.escape import escape

            # It names a model and a path from the checked tree: no control characters on the terminal.
            self.progress.update(self.task, description=escape(text))

    def advance(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)


@contextmanager
def _progress(enabled: bool) -> Iterator[_Bar]:
    if not enabled or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        yield _Bar()
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:  # rich is part of loralint[verify]; without it, no bar
        yield _Bar()
        return
    progress = Progress(
        # markup=False: a model id or path such as "[red]x" is text, not rich markup.
        SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )
    with progress:
        yield _Bar(progress)
