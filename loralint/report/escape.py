"""Make text from checked files safe to print on a terminal or in a line-oriented format.

File names, values, keys and module names come from code cloned from strangers. Printed raw, an
ESC sequence retitles the terminal or writes the clipboard (OSC 0/52), clears the screen (CSI), a
newline forges a finding line, and bidi overrides reorder what the reader sees (Trojan Source).
`escape` shows each such character as the Python escape `repr` would use (`\\x1b`, `\\n`,
`\\u202e`): visible, and the same form the messages already use when they quote a value.

Structured formats (JSON, SARIF, LSP) keep the original strings; only text and github escape.
"""

from __future__ import annotations

from typing import Any

# C0 and DEL, C1 (incl. U+0085 NEL), line/paragraph separators, and the bidi controls: embeddings and
# overrides U+202A-202E, isolates U+2066-2069, the marks U+200E/U+200F and U+061C. A set, not a regex
# character class: compiling the two classes (code points above U+00FF) took 2-3 ms of every start-up.
_OTHERS = frozenset(
    [chr(c) for c in range(0x7F, 0xA0)] + ["\u061c", "\u200e", "\u200f", "\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
)
_UNSAFE = frozenset(chr(c) for c in range(0x20)) | _OTHERS
_UNSAFE_KEEP_TAB = _UNSAFE - {"\t"}
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape_char(ch: str) -> str:
    """The visible form of one character that must not reach the terminal raw."""
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str, *, keep_tabs: bool = False) -> str:
    """`text` with every control, separator and bidi character escaped; `keep_tabs` leaves TAB as is
    (source snippets, where the caret line reproduces tabs to stay aligned)."""
    unsafe = _UNSAFE_KEEP_TAB if keep_tabs else _UNSAFE
    if unsafe.isdisjoint(text):
        return text
    return "".join(escape_char(ch) if ch in unsafe else ch for ch in text)


def escape_lines(text: str) -> str:
    """Multi-line text (rule docs, a diff, a source file): keep its line breaks (LF and CRLF) and tabs,
    escape the rest."""
    lines = text.split("\n")
    out = []
    for k, line in enumerate(lines):
        crlf = line.endswith("\r") and k < len(lines) - 1  # the CR of a CRLF line break is harmless
        out.append(escape(line[:-1], keep_tabs=True) + "\r" if crlf else escape(line, keep_tabs=True))
    return "\n".join(out)


def escape_strings(value: Any) -> Any:
    """Every string in a JSON-like value escaped (dict keys too), for renderers that print fields as is."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {escape_strings(k): escape_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_strings(v) for v in value]
    if isinstance(value, tuple):
        return tuple(escape_strings(v) for v in value)
    return value
