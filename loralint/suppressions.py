"""Inline suppressions: `# loralint: ignore[LORA101, LORA106]` or `# loralint: ignore` on a line.

A suppression on the line of a finding, or on the first line of the configuration the finding
belongs to, silences it. One that silences nothing is itself reported (LORA903).
"""

from __future__ import annotations

import re

from loralint.sites import Span

# `#` starts a comment in Python and YAML; JSON has no comments, so JSON files have none.
_SUPPRESSION = re.compile(r"#\s*loralint:\s*(?:ignore|noqa)\b(?:\[([^\]]*)\])?", re.I)


def find_suppressions(path: str, text: str, python: bool = False) -> dict[int, tuple[frozenset[str] | None, Span]]:
    found: dict[int, tuple[frozenset[str] | None, Span]] = {}
    if "loralint" not in text:
        return found
    if python and _SUPPRESSION.search(text):
        comments = _python_comments(path, text)
        if comments is not None:
            return comments
    for number, line in enumerate(text.splitlines(), start=1):
        if "#" not in line:
            continue
        match = _SUPPRESSION.search(line)
        if not match:
            continue
        codes = None
        if match.group(1) is not None:
            codes = frozenset(c.strip().upper() for c in match.group(1).split(",") if c.strip())
        span = Span(path, number, match.start() + 1, number, match.end() + 1)
        found[number] = (codes, span)
    return found


def _python_comments(path: str, text: str) -> dict[int, tuple[frozenset[str] | None, Span]] | None:
    """Suppressions in real comments only (not in a string that happens to hold `# loralint: ignore`),
    from the tokenizer; None when the text does not tokenize (the line scan decides then)."""
    import io
    import tokenize

    found: dict[int, tuple[frozenset[str] | None, Span]] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.COMMENT or "loralint" not in token.string:
                continue
            match = _SUPPRESSION.search(token.string)
            if not match:
                continue
            line, column = token.start
            codes = None
            if match.group(1) is not None:
                codes = frozenset(c.strip().upper() for c in match.group(1).split(",") if c.strip())
            found[line] = (codes, Span(path, line, column + match.start() + 1, line, column + match.end() + 1))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return None
    return found
