"""Inline suppressions, read from comments.

- `# loralint: ignore[LORA101, LORA106]` or `# loralint: ignore` (everything);
- `# noqa: LORA101` and a bare `# noqa`, as ruff and flake8 users write them.

A suppression on the line of a finding, or on the first line of the configuration the finding
belongs to, silences it. One that silences nothing is itself reported (LORA903), with two
exceptions for `noqa`, which other tools share: a bare `# noqa` is never reported, and codes that
are not loralint's (`E501`) are left to their tools (the engine knows which codes are ours).

Only real comments count. Python's comments are found by one regular-expression scan that steps
over string literals (the same comments `tokenize` finds, several times faster, and whatever the
front end): a `"# noqa"` inside a string or docstring is text. In YAML a comment starts at a line
start or after a space or tab; JSON has no comments.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator

from loralint.lazy_re import lazy
from loralint.sites import Span

# `_SUPPRESSION` is also what the editor server extends with a new code (server.suppress_edit).
_SUPPRESSION = lazy(r"#\s*loralint:\s*(?:ignore|noqa)\b(?:\[([^\]]*)\])?", re.IGNORECASE)
# As ruff reads noqa comments: bare, or with codes after a colon, split by commas or spaces; any case.
_NOQA = lazy(r"#\s*noqa\b(?::\s?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_CODE = lazy(r"[A-Za-z]+[0-9]+")
_NEWLINE = lazy(r"\r\n|\r|\n")  # lines as the extractors count them

# A string literal (any prefix; triple-quoted ones span lines) or a comment, whichever starts first.
_PYTHON_SCAN = lazy(
    r"""
    (?P<string>[rRbBuUfFtT]{0,2}(?:
        \"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
      | '''(?:[^'\\]|\\.|'(?!''))*'''
      | "(?:[^"\\\r\n]|\\.)*"
      | '(?:[^'\\\r\n]|\\.)*'
    ))
  | (?P<comment>\#[^\r\n]*)
    """,
    re.VERBOSE | re.DOTALL,
)
_YAML_COMMENT = lazy(r"(?:^|(?<=[ \t]))#[^\r\n]*", re.MULTILINE)

# The kinds of suppression.
NOQA = "noqa"
LORALINT = "loralint"


def find_suppressions(path: str, text: str) -> dict[int, tuple[frozenset[str] | None, Span, str]]:
    """Suppressions by 1-based line. Each is (codes, or None for every code; the directive's span;
    kind: "loralint" or "noqa"). A comment with both keeps the `loralint:` one, the explicit choice."""
    found: dict[int, tuple[frozenset[str] | None, Span, str]] = {}
    if path.endswith(".json") or ("loralint" not in text and "noqa" not in text.lower()):
        return found
    starts: list[int] | None = None
    for offset, comment in _comments(path, text):
        lowered = comment.lower()
        if "noqa" not in lowered and "loralint" not in lowered:
            continue
        if starts is None:
            starts = [0, *(m.end() for m in _NEWLINE.finditer(text))]
        line = bisect.bisect_right(starts, offset)
        entry = _parse(path, line, comment, offset - starts[line - 1])
        if entry is not None:
            found.setdefault(line, entry)
    return found


def _comments(path: str, text: str) -> Iterator[tuple[int, str]]:
    """(offset, text) of each comment."""
    if path.endswith((".py", ".pyi")):
        for match in _PYTHON_SCAN.finditer(text):
            if match.lastgroup == "comment":
                yield match.start(), match.group()
    else:
        for match in _YAML_COMMENT.finditer(text):
            yield match.start(), match.group()


def _parse(path: str, number: int, comment: str, column: int) -> tuple[frozenset[str] | None, Span, str] | None:
    """The directive in `comment`, which starts at 0-based `column` of line `number`."""
    for pattern, kind in ((_SUPPRESSION, LORALINT), (_NOQA, NOQA)):
        match = pattern.search(comment)
        if match is None:
            continue
        raw = match.group(1)
        if raw is None:
            codes = None
        elif kind == LORALINT:
            codes = frozenset(c.strip().upper() for c in raw.split(",") if c.strip())
        else:
            codes = frozenset(c.upper() for c in _CODE.findall(raw))
        start, end = column + match.start() + 1, column + match.end() + 1
        return codes, Span(path, number, start, number, end), kind
    return None


def own_suppressions(
    found: dict[int, tuple], is_ours: Callable[[str], bool]
) -> dict[int, tuple[frozenset[str] | None, Span, str]]:
    """The suppressions that concern loralint: a `noqa` keeps only the codes `is_ours` claims (the rest
    belong to other linters), and one left with none is not loralint's at all."""
    out: dict[int, tuple[frozenset[str] | None, Span, str]] = {}
    for line, entry in found.items():
        codes, span = entry[0], entry[1]
        kind = entry[2] if len(entry) > 2 else LORALINT  # an entry cached before `noqa` was read
        if kind == NOQA and codes is not None:
            codes = frozenset(c for c in codes if is_ours(c))
            if not codes:
                continue
        out[line] = (codes, span, kind)
    return out
