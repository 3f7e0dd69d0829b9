"""Turning a file's bytes into text, or saying clearly why that is not possible."""

from __future__ import annotations

import bisect
import codecs
from array import array
from itertools import accumulate

from loralint.lazy_re import lazy

# PEP 263: a coding declaration on line 1 or 2.
_CODING_RE = lazy(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


class UndecodableSource(Exception):
    """The bytes are not text in the encoding they declare (or UTF-8)."""


class SourceSyntaxError(Exception):
    """A file that cannot be parsed; becomes LORA901 at (line, column), 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column



def looks_binary(data: bytes) -> bool:
    # Text in an 8-bit or UTF-8 encoding has no NUL bytes; UTF-16/32 text is recognised first (wide_encoding).
    return b"\x00" in data[:8192]


# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Codecs that are text encodings to `codecs` but no way to write source: punycode decodes in
# quadratic time (a 10 MB file would never finish), the others are not ASCII-compatible, so a
# coding line written in ASCII cannot declare them (Python refuses them too).
_NOT_SOURCE_CODECS = frozenset(
    {"punycode", "idna", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}
)
_LINE_BREAK = lazy(rb"\r\n|\r|\n")


def wide_encoding(data: bytes, fmt: str) -> str | None:
    """ "utf-16"/"utf-32" (and their -le/-be forms) when the bytes are UTF-16 or UTF-32 text: by a
    byte-order mark in any format; for YAML and JSON also by the NUL pattern of the first four bytes,
    as both specifications detect it (RFC 8259 section 8.1, YAML 1.2 section 5.2)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    if fmt == "python" or len(data) < 4:
        return None
    if data[0] == 0 and data[1] == 0 and data[2] == 0 and data[3] != 0:
        return "utf-32-be"
    if data[0] != 0 and data[1] == 0 and data[2] == 0 and data[3] == 0:
        return "utf-32-le"
    if data[0] == 0 and data[1] != 0 and data[2] == 0 and data[3] != 0:
        return "utf-16-be"
    if data[0] != 0 and data[1] == 0 and data[2] != 0 and data[3] == 0:
        return "utf-16-le"
    return None


def as_utf8(data: bytes, fmt: str) -> bytes:
    """The bytes the prefilter searches: UTF-16/32 text re-encoded as UTF-8, anything else as it is,
    so that a UTF-16 file with a configuration is never dropped unseen."""
    wide = wide_encoding(data, fmt)
    if wide is None:
        return data
    return data.decode(wide, errors="replace").encode("utf-8", errors="replace")


def _encoding_name(encoding: str) -> str:
    return {"utf-16": "UTF-16", "utf-32": "UTF-32"}.get(
        encoding, encoding.upper() if encoding.startswith("utf") else encoding
    )


def declared_encoding(data: bytes) -> str:
    """The encoding of Python source: a UTF-8 BOM, else a PEP 263 coding line, else UTF-8.
    Raises UndecodableSource for a codec that is unknown, not a text encoding, or not usable for source."""
    wide = wide_encoding(data, "python")
    if wide is not None:
        raise UndecodableSource(
            f"{_encoding_name(wide)} source (byte-order mark): Python cannot run it, it reads "
            "UTF-8 or the encoding of a PEP 263 coding line"
        )
    bom = data.startswith(codecs.BOM_UTF8)
    # Lines end at \r\n, \r or \n, as Python's tokenizer counts them; only the first two matter.
    for line in _LINE_BREAK.split(data[:4096], 2)[:2]:
        match = _CODING_RE.match(line)
        if match:
            name = match.group(1).decode("ascii", "replace")
            try:
                info = codecs.lookup(name)
            except LookupError as exc:
                raise UndecodableSource(f"unknown encoding {name!r} declared on the coding line") from exc
            if not getattr(info, "_is_text_encoding", True):
                raise UndecodableSource(f"the coding line declares {name!r}, which is not a text encoding")
            if info.name in _NOT_SOURCE_CODECS:
                raise UndecodableSource(f"the coding line declares {name!r}, which Python source cannot use")
            if bom and info.name != "utf-8":
                raise UndecodableSource(f"a UTF-8 byte-order mark, but the coding line declares {name!r}")
            return "utf-8-sig" if bom else info.name
        if not line.strip().startswith(b"#"):
            break  # PEP 263: line 2 counts only when line 1 is a comment
    return "utf-8-sig" if bom else "utf-8"


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        shown = "UTF-8" if encoding in ("utf-8", "utf-8-sig") else _encoding_name(encoding)
        where = (
            f" (byte 0x{data[exc.start]:02x} at offset {exc.start})"
            if exc.start < len(data)
            else " (truncated)"
        )
        raise UndecodableSource(f"not valid {shown}{where}") from exc
    except (
        Exception
    ) as exc:  # a codec may raise anything (UnicodeError, ValueError, ...): still the file's problem
        message = str(exc) or type(exc).__name__
        raise UndecodableSource(
            message if encoding in message else f"the {encoding} codec failed: {message}"
        ) from exc


def decode_python(data: bytes) -> str:
    """Decode Python source honouring PEP 263 coding lines and a UTF-8 BOM."""
    return _decode(data, declared_encoding(data))


def decode_text(data: bytes, fmt: str = "yaml") -> str:
    """Decode YAML/JSON: UTF-8 with or without a BOM, or UTF-16/32 (by BOM or NUL pattern), as both specs allow."""
    text = _decode(data, wide_encoding(data, fmt) or "utf-8-sig")
    return text.removeprefix("\ufeff")


# --- lines --------------------------------------------------------------------------------------
# One definition of a line for every position loralint prints (text, JSON, SARIF, GitHub, LSP, fixes):
# \r\n, \r or \n ends a line, as Python's tokenizer, the LSP and editors count them. YAML also ends
# lines at NEL, LS and PS, and str.splitlines() at \v, \f and more: positions from those are converted.
LINE_BREAK = lazy(r"\r\n|\r|\n")


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a code-point offset into `text`."""
    offset = max(0, min(offset, len(text)))
    head = text[:offset]
    line = head.count("\n") + head.count("\r") - head.count("\r\n") + 1
    return line, offset - max(head.rfind("\n"), head.rfind("\r"))


class LineIndex:
    """Offsets to 1-based (line, column) for many lookups: a sorted array of line starts."""

    def __init__(self, text: str) -> None:
        if "\r" in text:
            self.starts = array("q", [0])
            self.starts.extend(m.end() for m in LINE_BREAK.finditer(text))
        else:  # the same starts, summed from the lines' lengths in C instead of a match object a line
            pieces = text.split("\n")
            pieces.pop()
            self.starts = array("q", accumulate(map((1).__add__, map(len, pieces)), initial=0))

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1
