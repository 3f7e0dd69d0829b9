"""Reading input files safely: regular files only, never more than a size limit.

Every file loralint reads from a checked tree (sources, YAML, JSON, .gitignore, settings, a model
folder's config.json) goes through here. A FIFO would block the run forever, `/dev/zero` would fill
memory and a file that grows while it is read could do either, so:
- `os.stat` first, so that a device is never even opened (opening one can have side effects);
- `os.open(O_NONBLOCK | O_NOCTTY)`, so that opening a FIFO swapped in after the stat cannot block;
- `fstat` on the opened descriptor decides (no window between the check and the read);
- at most `limit + 1` bytes are read, whatever the file claims or becomes.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from loralint.lazy_re import lazy

DEFAULT_MAX_FILE_SIZE = 10_000_000  # source, YAML, JSON, settings, .gitignore, config.json
DEFAULT_MAX_DATA_FILE_SIZE = 2_000_000_000  # data files, read by streaming only

_CHUNK = 1 << 20
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class InputRefused(OSError):
    """A path loralint will not read: not a regular file, too large, a symbolic-link loop.

    `skipped` is True for the refusals of LORA905 (input-skipped) and False for a plain read error
    (LORA902: permission denied, no such file). It is an OSError so that callers that treat "cannot
    read" alike need nothing new."""

    def __init__(self, reason: str, *, skipped: bool = True, error: int | None = None, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.skipped = skipped
        self.errno = error
        self.too_large = too_large  # larger than the size limit (not a special file, a loop or a read error)

    def __str__(self) -> str:
        return self.reason


def format_size(size: int) -> str:
    """Bytes for people: 10 MB, 1.5 GB, 900 bytes (decimal units, as the settings take them)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            value = size / scale
            text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return f"{text.removesuffix('.0')} {unit}"
    return f"{size} byte{'' if size == 1 else 's'}"


_SIZE = lazy(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b|bytes?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}


def parse_size(text: str) -> int:
    """ "10 MB" → 10_000_000, "512 KiB" → 524_288, "2GB", "1000": a size setting. Raises ValueError."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (a number of bytes, or with a unit: 10 MB, 512 KiB, 2 GB)")
    unit = (match.group(2) or "").lower()
    if unit not in ("b", "byte", "bytes"):
        unit = unit.removesuffix("b")
    return int(float(match.group(1)) * _UNITS[unit])


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "directory"
    return "special file"


def _too_large(size: int, limit: int, setting: str) -> InputRefused:
    shown, limit_shown = format_size(size), format_size(limit)
    if shown == limit_shown:  # 10,000,001 bytes is not "10 MB: 10 MB"
        shown = f"{size:,} bytes"
    return InputRefused(f"larger than {setting} ({limit_shown}): {shown}", too_large=True)


def _refusal(exc: OSError) -> InputRefused:
    if exc.errno == errno.ELOOP:
        return InputRefused("symbolic link loop", error=exc.errno)
    reason = exc.strerror or type(exc).__name__
    return InputRefused(reason, skipped=False, error=exc.errno)


def _check_mode(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise InputRefused(f"not a regular file ({_kind(mode)})")


def open_regular(path: str | os.PathLike[str], limit: int, setting: str = "max-file-size") -> tuple[int, int]:
    """An open descriptor on a regular file no larger than `limit`, and its size. Raises InputRefused."""
    try:
        _check_mode(os.stat(path).st_mode)  # a device is refused before it is opened
        fd = os.open(path, _FLAGS)
    except InputRefused:
        raise
    except OSError as exc:
        raise _refusal(exc) from None
    try:
        info = os.fstat(fd)
        _check_mode(info.st_mode)
        if info.st_size > limit:
            raise _too_large(info.st_size, limit, setting)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def read_limited(
    path: str | os.PathLike[str], limit: int = DEFAULT_MAX_FILE_SIZE, setting: str = "max-file-size"
) -> bytes:
    """The whole content of a regular file of at most `limit` bytes. Raises InputRefused."""
    fd, size = open_regular(path, limit, setting)
    try:
        chunks: list[bytes] = []
        total = 0
        # First the size fstat gave (and a byte more) in one read: a small file is not read into a 1 MiB
        # buffer, nor a large one joined from chunks. A file that grows meanwhile is read on in chunks.
        want = min(size, limit) + 1
        while True:  # a file that grows while it is read stops at limit + 1 bytes
            try:
                chunk = os.read(fd, want)
            except OSError as exc:
                raise _refusal(exc) from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _too_large(max(total, size), limit, setting)
            want = min(_CHUNK, limit + 1 - total)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def read_text_limited(path: str | os.PathLike[str], limit: int = DEFAULT_MAX_FILE_SIZE) -> str:
    """A small UTF-8 text file (a .gitignore, a ref), undecodable bytes replaced. Raises InputRefused."""
    return read_limited(path, limit).decode("utf-8", errors="replace")


class LimitedReader:
    """A binary stream over a regular file that refuses to yield more than `limit` bytes in all:
    for data files, which are counted while streaming and never held whole in memory."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        limit: int = DEFAULT_MAX_DATA_FILE_SIZE,
        setting: str = "max-data-file-size",
    ) -> None:
        fd, self.size = open_regular(path, limit, setting)
        self._file: BinaryIO = os.fdopen(fd, "rb")
        self.limit, self.setting, self.read_so_far = limit, setting, 0

    def read(self, size: int = _CHUNK) -> bytes:
        size = _CHUNK if size is None or size < 0 else size
        chunk = self._file.read(min(size, self.limit + 1 - self.read_so_far))
        self.read_so_far += len(chunk)
        if self.read_so_far > self.limit:
            raise _too_large(self.read_so_far, self.limit, self.setting)
        return chunk

    def __iter__(self):
        """Lines, each bounded by what is left of the limit."""
        pending = b""
        while True:
            chunk = self.read()
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending

    def close(self) -> None:
        self._file.close()


@contextmanager
def stream_limited(
    path: str | os.PathLike[str], limit: int = DEFAULT_MAX_DATA_FILE_SIZE, setting: str = "max-data-file-size"
) -> Iterator[LimitedReader]:
    """`with stream_limited(path) as reader:` a data file, never more than `limit` bytes. Raises InputRefused."""
    reader = LimitedReader(path, limit, setting)
    try:
        yield reader
    finally:
        reader.close()
