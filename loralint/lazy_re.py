"""Regular expressions compiled at their first use, not at import.

Compiling costs 0.05 to 0.6 ms a pattern, and most of loralint's module-level patterns serve a
path that a given run never takes (suppression comments, pip pins, notebooks, JSON, a cached
file): `loralint check one_script.py` would compile some forty of them for nothing.
"""

from __future__ import annotations

import re
from typing import Any

# The pattern's methods and attributes, copied onto the instance at the first use, so that later
# uses are plain attribute lookups (no __getattr__ call).
_COPIED = ("match", "fullmatch", "search", "finditer", "findall", "sub", "subn", "split", "scanner",
           "pattern", "flags", "groups", "groupindex")


class LazyPattern:
    """Stands for `re.compile(pattern, flags)`, which it calls when first used."""

    def __init__(self, pattern: str | bytes, flags: int = 0) -> None:
        self._source = (pattern, flags)

    def compiled(self) -> re.Pattern:
        """The compiled pattern (for an API that wants a real `re.Pattern`)."""
        return re.compile(*self._source)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends probe for these: not the pattern's
            raise AttributeError(name)
        compiled = self.compiled()
        for attribute in _COPIED:
            setattr(self, attribute, getattr(compiled, attribute))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"LazyPattern({self._source[0]!r}, {self._source[1]!r})"


def lazy(pattern: str | bytes, flags: int = 0) -> LazyPattern:
    """A pattern compiled at its first use: for module-level patterns that a common run does not need."""
    return LazyPattern(pattern, flags)
