"""Counting the records of a local data file without loading it: JSON lines, a JSON array's items,
CSV records, a Parquet file's footer and the record batch headers of an Arrow IPC file. Every read goes through loralint.safe_read (regular files
only, never more than max-data-file-size bytes) and memory stays bounded by one chunk plus, for
CSV, one record of at most MAX_RECORD bytes: a file that would need more is not counted."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from loralint.safe_read import DEFAULT_MAX_DATA_FILE_SIZE, InputRefused, open_regular, stream_limited

MAX_RECORD = 1 << 20  # one CSV record (csv's own field_size_limit is 128 KiB a field)
MAX_PARQUET_FOOTER = 16 << 20  # a footer larger than this is not read


class NotCounted(Exception):
    """Why a file was not counted (said in no finding: the rule stays quiet)."""


@dataclass(frozen=True, slots=True)
class Count:
    records: int
    how: str  # "JSON lines", "items of the JSON array", "CSV records", "rows in the Parquet footer", ...


def count_file(path: str | os.PathLike[str], kind: str, limit: int = DEFAULT_MAX_DATA_FILE_SIZE) -> Count:
    """The records of a local data file. Raises NotCounted or InputRefused."""
    if kind == "jsonl":
        return Count(_json_lines(path, limit), "JSON lines")
    if kind == "json":
        return _json(path, limit)
    if kind == "csv":
        return Count(_csv_records(path, limit, delimiter="\t" if str(path).lower().endswith(".tsv") else ","), "CSV records")
    if kind == "parquet":
        return Count(parquet_rows(path, limit), "rows in the Parquet footer")
    if kind == "text":
        return Count(_json_lines(path, limit), "lines")
    if kind == "arrow":
        from loralint.datasets.arrow import arrow_rows

        return Count(arrow_rows(path, limit), "rows in the Arrow record batches")
    raise NotCounted(f"{kind} files are not counted")


def _json_lines(path, limit: int) -> int:
    """Non-blank lines, chunk by chunk (a line is never held whole: one huge line costs one chunk).
    datasets' JSON reader skips blank lines, so they are not records."""
    count, open_line = 0, False
    with stream_limited(path, limit) as reader:
        while chunk := reader.read():
            parts = chunk.split(b"\n")
            for part in parts[:-1]:
                if open_line or part.strip():
                    count += 1
                open_line = False
            open_line = open_line or bool(parts[-1].strip())
    return count + open_line


def _json(path, limit: int) -> Count:
    """A top-level array: its items, counted by a streaming scanner (depth, strings, escapes). A file
    whose first value is an object is JSON lines to datasets' JSON builder (pandas' lines=True)."""
    with stream_limited(path, limit) as reader:
        stripped = b""
        while not stripped:
            chunk = reader.read()
            if not chunk:
                raise NotCounted("empty file")
            stripped = chunk.lstrip()
        if stripped[:1] == b"[":
            return Count(_array_length(reader, stripped), "items of the JSON array")
        if stripped[:1] != b"{":
            raise NotCounted("neither a JSON array nor JSON lines")
    objects = _json_lines(path, limit)
    if objects == 1:
        raise NotCounted("one JSON object (datasets reads a field of it)")
    return Count(objects, "JSON lines")


_IN_STRING = re.compile(rb'["\\]')
_OUTSIDE = re.compile(rb'["\[\]{},]')


# Outside strings: a whole string as one token (one C scan), a structural byte, or a quote whose
# string runs past the chunk (the byte-by-byte states below take over from there).
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]|"', re.DOTALL)
_QUOTE, _OPEN, _CLOSE = 0x22, frozenset(b"[{"), frozenset(b"]}")


# A JSON array this small is decoded whole by the C decoder (its memory stays a few times this), which is
# about ten times faster than the scanner below; an invalid one is left to the scanner, which says why.
SMALL_JSON = 4 << 20


class _Replay:
    """The chunks already read, then the rest of the reader."""

    def __init__(self, chunks: list[bytes], reader) -> None:
        self._chunks, self._reader = chunks, reader

    def read(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else self._reader.read()


def _array_length(reader, first: bytes) -> int:
    """The items of the array `first` opens (from its `[`)."""
    chunks, size = [first], len(first)
    while size <= SMALL_JSON:
        chunk = reader.read()
        if not chunk:
            try:
                value = json.loads(b"".join(chunks))
            except (ValueError, RecursionError):
                break
            if type(value) is list:
                return len(value)
            break
        chunks.append(chunk)
        size += len(chunk)
    chunks[0] = chunks[0][1:]
    return _array_items(_Replay(chunks[1:], reader), chunks[0])


def _array_items(reader, chunk: bytes) -> int:
    """Items of the array whose `[` was just read: commas at depth 1, plus one for a last item."""
    depth, in_string, skip, items, seen = 1, False, 0, 0, False
    while chunk:
        at = skip  # a backslash at the end of the last chunk escapes this chunk's first byte
        skip = 0
        if not in_string:
            for match in _TOKEN.finditer(chunk, at):
                start, end = match.span()
                if depth == 1 and not seen and chunk[at:start].strip():
                    seen = True  # a bare number, true, false or null
                byte, at = chunk[start], end
                if byte == _QUOTE:
                    seen = seen or depth == 1
                    if end - start == 1:
                        in_string = True  # the string goes on in the next chunk
                        break
                elif byte in _OPEN:
                    seen = seen or depth == 1
                    depth += 1
                elif byte in _CLOSE:
                    depth -= 1
                    if depth == 0:
                        return items + seen
                elif depth == 1:
                    items, seen = items + 1, False
            else:
                if depth == 1 and chunk[at:].strip():
                    seen = True
                chunk = reader.read()
                continue
        while at < len(chunk):
            if in_string:
                match = _IN_STRING.search(chunk, at)
                if match is None:
                    break
                at = match.end()
                if match.group() == b"\\":
                    at += 1  # the escaped byte, maybe a quote
                    if at > len(chunk):
                        skip = 1
                else:
                    in_string = False
                continue
            match = _OUTSIDE.search(chunk, at)
            stop = match.start() if match is not None else len(chunk)
            if depth == 1 and chunk[at:stop].strip():
                seen = True  # a bare number, true, false or null
            if match is None:
                break
            token, at = match.group(), match.end()
            if token == b'"':
                in_string = True
                seen = seen or depth == 1
            elif token in (b"[", b"{"):
                seen = seen or depth == 1
                depth += 1
            elif token in (b"]", b"}"):
                depth -= 1
                if depth == 0:
                    return items + seen
            elif depth == 1:
                items, seen = items + 1, False
        chunk = reader.read()
    raise NotCounted("the JSON array does not end")


def _csv_records(path, limit: int, delimiter: str) -> int:
    """Records after the header, as csv (and pandas) read them: a quoted field may hold newlines."""
    import csv  # here, as struct below: a run whose counts are all stored never imports either

    rows = 0
    with stream_limited(path, limit) as reader:
        text = io.TextIOWrapper(_Raw(reader), encoding="utf-8", errors="replace", newline="")
        for row in csv.reader(_bounded_lines(text), delimiter=delimiter):
            if row:  # pandas skips blank lines
                rows += 1
    return max(rows - 1, 0)


def _bounded_lines(text: io.TextIOWrapper):
    while line := text.readline(MAX_RECORD + 1):
        if len(line) > MAX_RECORD:
            raise NotCounted(f"a CSV line longer than {MAX_RECORD:,} characters")
        yield line


class _Raw(io.RawIOBase):
    def __init__(self, reader) -> None:
        self.reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.reader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def parquet_rows(path, limit: int = DEFAULT_MAX_DATA_FILE_SIZE) -> int:
    """num_rows of a Parquet file's FileMetaData (thrift compact protocol, field 3), read from the
    footer: `<metadata><4-byte little-endian length>PAR1` (parquet-format's File Format)."""
    import struct

    with open_counted(path, limit) as (fd, size):
        if size < 12:
            raise NotCounted("too short for Parquet")
        tail = os.pread(fd, 8, size - 8)
        if len(tail) != 8 or tail[4:] != b"PAR1":
            raise NotCounted("no Parquet footer (encrypted footers end in PARE)")
        (length,) = struct.unpack("<I", tail[:4])
        if length > min(MAX_PARQUET_FOOTER, size - 12):
            raise NotCounted("the Parquet footer is too large")
        footer = os.pread(fd, length, size - 8 - length)
    return _Compact(footer).num_rows()


@contextmanager
def open_counted(path, limit: int) -> Iterator[tuple[int, int]]:
    """(descriptor, size) of a regular data file read by offset (Parquet's footer, Arrow's headers),
    closed afterwards; a read that fails is NotCounted, a refused file stays InputRefused."""
    fd, size = open_regular(path, limit, "max-data-file-size")
    try:
        yield fd, size
    except OSError as exc:
        if isinstance(exc, InputRefused):
            raise
        raise NotCounted(exc.strerror or "cannot read") from None
    finally:
        os.close(fd)


class _Compact:
    """Just enough of thrift's compact protocol to skip to FileMetaData.num_rows."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at, self.depth = data, 0, 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise NotCounted("the Parquet footer ends early")
        value = self.data[self.at]
        self.at += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise NotCounted("a bad varint in the Parquet footer")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def num_rows(self) -> int:
        field = 0
        while True:
            header = self.byte()
            if header == 0:
                raise NotCounted("no num_rows in the Parquet footer")
            kind, delta = header & 0x0F, header >> 4
            field = field + delta if delta else self.zigzag()
            if field == 3 and kind == 6:  # i64 num_rows
                rows = self.zigzag()
                if rows < 0:
                    raise NotCounted("a negative num_rows")
                return rows
            self.skip(kind)

    def skip(self, kind: int) -> None:
        if kind in (1, 2):  # bool true / false: the value is in the type
            return
        if kind == 3:
            self.at += 1
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self.at += 8
        elif kind == 8:
            self.at += self.varint()
        elif kind in (9, 10):  # list, set
            header = self.byte()
            n, element = header >> 4, header & 0x0F
            if n == 15:
                n = self.varint()
            self._nested(lambda: [self.skip_element(element) for _ in range(n)])
        elif kind == 11:  # map
            n = self.varint()
            if n:
                types = self.byte()
                self._nested(lambda: [(self.skip_element(types >> 4), self.skip_element(types & 0x0F)) for _ in range(n)])
        elif kind == 12:
            self._nested(self.skip_struct)
        else:
            raise NotCounted("an unknown type in the Parquet footer")
        if self.at > len(self.data):
            raise NotCounted("the Parquet footer ends early")

    def skip_element(self, kind: int) -> None:
        if kind in (1, 2):  # a bool in a list takes a byte
            self.at += 1
        else:
            self.skip(kind)

    def skip_struct(self) -> None:
        field = 0
        while True:
            header = self.byte()
            if header == 0:
                return
            kind, delta = header & 0x0F, header >> 4
            field = field + delta if delta else self.zigzag()
            self.skip(kind)

    def _nested(self, action) -> None:
        self.depth += 1
        if self.depth > 64:
            raise NotCounted("the Parquet footer nests too deeply")
        try:
            action()
        finally:
            self.depth -= 1
