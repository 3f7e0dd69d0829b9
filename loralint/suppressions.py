"""Inline suppressions: `# loralint: ignore[LORA101, LORA106]` or `# loralint: ignore` on a line.

A suppression on the line of a finding, or on the first line of the configuration the finding
belongs to, silences it. One that silences nothing is itself reported (LORA903).
"""

from __future__ import annotations

import re

from loralint.sites import Span

# `#` starts a comment in Python and YAML; JSON has no comments, so JSON files have none.
_SUPPRESSION = re.compile(r"#\s*loralint:\s*(?:ignore|noqa)\b(?:\[([^\]]*)\])?", re.I)


def find_suppressions(path: str, text: str) -> dict[int, tuple[frozenset[str] | None, Span]]:
    found: dict[int, tuple[frozenset[str] | None, Span]] = {}
    if "loralint" not in text:
        return found
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
