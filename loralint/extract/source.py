"""Turning a file's bytes into text, or saying clearly why that is not possible."""

from __future__ import annotations

import codecs
import re

# PEP 263: a coding declaration on line 1 or 2.
_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


class UndecodableSource(Exception):
    """The bytes are not text in the encoding they declare (or UTF-8)."""


class SourceSyntaxError(Exception):
    """A file that cannot be parsed; becomes LORA901 at (line, column), 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


class AnalysisLimit(Exception):
    """A file that parsed but is beyond what the analysis follows (nesting too deep); LORA906."""


def looks_binary(data: bytes) -> bool:
    # Text files do not contain NUL bytes; UTF-16 text would, and nobody writes Python or YAML in it.
    return b"\x00" in data[:8192]


def declared_encoding(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for line in data.split(b"\n", 2)[:2]:
        match = _CODING_RE.match(line)
        if match:
            name = match.group(1).decode("ascii", "replace")
            try:
                return codecs.lookup(name).name
            except LookupError as exc:
                raise UndecodableSource(f"unknown encoding {name!r} declared on the coding line") from exc
        if not line.strip().startswith(b"#"):
            break  # PEP 263: line 2 counts only when line 1 is a comment
    return "utf-8"


def decode_python(data: bytes) -> str:
    """Decode Python source honouring PEP 263 coding lines and a UTF-8 BOM."""
    encoding = declared_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UndecodableSource(
            f"not valid {'UTF-8' if encoding == 'utf-8' else encoding} (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from exc


def decode_text(data: bytes) -> str:
    """Decode YAML/JSON: UTF-8 (with or without BOM), as both specs require."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UndecodableSource(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from exc
