"""Rows of an Arrow IPC file without pyarrow: the sum of the `length` of its RecordBatch messages.

`datasets` writes its cache files and save_to_disk shards (`data-00000-of-00001.arrow`) in the IPC
*stream* format (datasets/arrow_writer.py: pa.RecordBatchStreamWriter); the IPC *file* format is the
same stream between an `ARROW1` magic and a footer. Per the Arrow columnar format spec
("Encapsulated message format"), each message is `<0xFFFFFFFF><int32 metadata size><flatbuffer
Message><body>` (before Arrow 0.15, without the 0xFFFFFFFF), and the stream ends with a zero size.
Only the small metadata of each message is read; bodies are skipped by offset. A file that is cut
short, malformed, or too long to walk is not counted (NotCounted), never guessed."""

from __future__ import annotations

import os
import struct

from loralint.datasets.count import NotCounted, open_counted
from loralint.safe_read import DEFAULT_MAX_DATA_FILE_SIZE

MAX_METADATA = 16 << 20  # one message's flatbuffer (a schema with very many columns stays far below)
MAX_MESSAGES = 250_000  # datasets writes 1,000-row batches: hundreds of millions of rows
_MAGIC = b"ARROW1"
_CONTINUATION = 0xFFFFFFFF
# format/Message.fbs: union MessageHeader { Schema = 1, DictionaryBatch = 2, RecordBatch = 3, Tensor, SparseTensor }
_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3
_V4, _V5 = 3, 4  # format/Schema.fbs: enum MetadataVersion (V4: Arrow 0.8 to 0.17, V5: 1.0 on)


def arrow_rows(path: str | os.PathLike[str], limit: int = DEFAULT_MAX_DATA_FILE_SIZE) -> int:
    """The rows of an Arrow IPC stream or file. Raises NotCounted or InputRefused."""
    with open_counted(path, limit) as (fd, size):
        return _walk(fd, size)


def _walk(fd: int, size: int) -> int:
    at = 0
    if os.pread(fd, 6, 0) == _MAGIC:  # the file format: magic, 2 bytes of padding, the stream, a footer
        if size < 16 or os.pread(fd, 6, size - 6) != _MAGIC:
            raise NotCounted("an Arrow file without its closing magic (cut short?)")
        at = 8
    rows, messages = 0, 0
    while True:
        prefix = os.pread(fd, 8, at)
        if len(prefix) < 4:
            raise NotCounted("the Arrow stream ends without its end-of-stream marker (cut short?)")
        (first,) = struct.unpack_from("<I", prefix)
        if first == _CONTINUATION:
            if len(prefix) < 8:
                raise NotCounted("the Arrow stream ends inside a message prefix")
            (length,) = struct.unpack_from("<i", prefix, 4)
            start = at + 8
        else:
            (length,) = struct.unpack_from("<i", prefix)  # the pre-0.15 prefix: the size alone
            start = at + 4
        if length == 0:  # end of stream
            if messages == 0:
                raise NotCounted("an Arrow stream without a schema")
            return rows
        if length < 0 or length > MAX_METADATA or start + length > size:
            raise NotCounted("a malformed Arrow message prefix")
        messages += 1
        if messages > MAX_MESSAGES:
            raise NotCounted(f"more than {MAX_MESSAGES:,} Arrow messages")
        metadata = os.pread(fd, length, start)
        if len(metadata) != length:
            raise NotCounted("the Arrow file ends inside a message")
        header, batch_rows, body = _message(metadata)
        if messages == 1 and header != _SCHEMA:
            raise NotCounted("an Arrow stream that does not start with its schema")
        if header == _RECORD_BATCH:
            rows += batch_rows
        elif header not in (_SCHEMA, _DICTIONARY_BATCH) or (header == _SCHEMA and messages > 1):
            raise NotCounted("an Arrow message that is not part of a table")
        at = start + length + body
        if at > size:
            raise NotCounted("the Arrow file ends inside a message body (cut short?)")


def _message(data: bytes) -> tuple[int, int, int]:
    """(header type, the RecordBatch's length or 0, body length) of a flatbuffer Message:
    `table Message { version: short; header: MessageHeader (a union: type byte + offset);
    bodyLength: long; custom_metadata }` and `table RecordBatch { length: long; ... }`."""
    flat = _Flat(data)
    message = flat.table(flat.read("<I", 0))
    version = flat.scalar(message, 0, "<h", 0)
    if version not in (_V4, _V5):
        raise NotCounted(f"Arrow metadata version {version} is not read")
    header = flat.scalar(message, 1, "<B", 0)
    body = flat.scalar(message, 3, "<q", 0)
    if body < 0:
        raise NotCounted("a negative Arrow body length")
    rows = 0
    if header == _RECORD_BATCH:
        where = flat.field(message, 2)
        if where is None:
            raise NotCounted("a RecordBatch message without its header")
        batch = flat.table(where + flat.read("<I", where))
        rows = flat.scalar(batch, 0, "<q", 0)
        if rows < 0:
            raise NotCounted("a negative Arrow record batch length")
    return header, rows, body


class _Flat:
    """Just enough of the flatbuffers wire format: a table starts with an int32 back to its vtable
    (`vtable = table - soffset`), the vtable holds its own size and a uint16 offset per field (0:
    absent, the default applies). Every read is checked against the buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, fmt: str, at: int) -> int:
        if at < 0 or at + struct.calcsize(fmt) > len(self.data):
            raise NotCounted("a malformed Arrow message (an offset outside it)")
        return struct.unpack_from(fmt, self.data, at)[0]

    def table(self, at: int) -> tuple[int, int, int]:
        vtable = at - self.read("<i", at)
        vtable_size = self.read("<H", vtable)
        if vtable_size < 4 or vtable_size % 2:
            raise NotCounted("a malformed Arrow message (a bad vtable)")
        return at, vtable, vtable_size

    def field(self, table: tuple[int, int, int], index: int) -> int | None:
        at, vtable, vtable_size = table
        slot = 4 + 2 * index
        if slot + 2 > vtable_size:
            return None
        offset = self.read("<H", vtable + slot)
        return at + offset if offset else None

    def scalar(self, table: tuple[int, int, int], index: int, fmt: str, default: int) -> int:
        where = self.field(table, index)
        return default if where is None else self.read(fmt, where)
