"""The library versions a file installs for itself: `!pip install transformers==4.56.2` in a notebook
cell, `%pip install "trl<0.12"`, or the same command inside `get_ipython().system(...)` or a comment of
a script exported from a notebook. A rule about an API that a release removed stays quiet where every
install of that library in the file pins it below that release (`pinned_below`); an install without a
version, or a git checkout, says nothing certain."""

from __future__ import annotations

import re

from loralint.lazy_re import lazy

# The libraries whose removed arguments a rule reports (LORA415).
_PACKAGES = ("transformers", "trl")
_CLAUSE = r"(?:===|==|~=|!=|<=|>=|<|>)\s*[0-9][\w.*+!]*"
# A requirement for one of them: name, optional extras, optional specifiers. The lookbehind keeps
# `sentence-transformers`, `ktransformers` and URL paths out; the lookahead `transformers-foo`.
_REQUIREMENT = lazy(
    rf"(?<![\w.\-/@])(?P<name>{'|'.join(_PACKAGES)})(?:\[[^\]]*\])?(?P<spec>\s*{_CLAUSE}(?:\s*,\s*{_CLAUSE})*)?(?![\w\-])",
    re.IGNORECASE,
)
_GIT = lazy(rf"github\.com/huggingface/(?P<name>{'|'.join(_PACKAGES)})\b", re.IGNORECASE)
# A line break, or an escaped one inside a string (`run_cell_magic('capture', '', '...\n!pip ...')`).
_LINES = lazy(r"\n|\\n")
_PIP = lazy(r"\bpip3?\s+install\b")
# What every line _PIP matches holds, searched in the whole text: without \b, which a line's start makes
# where the text runs on (`...\\npip install`).
_PIP_ANYWHERE = lazy(r"pip3?\s+install")


def pip_installs(text: str) -> dict[str, tuple[str, ...]]:
    """Each library's version specifiers over every `pip install` line of the text that names it,
    as written ("" for an install without a version or from git)."""
    found: dict[str, list[str]] = {}
    if "pip" not in text or "install" not in text:  # _PIP needs both (it is case-sensitive)
        return {}
    for line in _pip_lines(text):
        for m in _REQUIREMENT.finditer(line):
            found.setdefault(m["name"].lower(), []).append((m["spec"] or "").strip())
        for m in _GIT.finditer(line):
            found.setdefault(m["name"].lower(), []).append("")
    return {name: tuple(specs) for name, specs in found.items()}


def _pip_lines(text: str) -> list[str]:
    """The lines of `_LINES.split(text)` that hold a pip install, in order, found from each match of _PIP in
    the whole text instead of splitting all of it (most files that spell both words install nothing)."""
    lines: list[str] = []
    last = -1
    for m in _PIP_ANYWHERE.finditer(text):
        at = m.start()
        escaped = text.rfind("\\n", 0, at)
        start = max(text.rfind("\n", 0, at) + 1, escaped + 2 if escaped >= 0 else 0)
        if start <= last:
            continue  # this line is done
        ends = [e for e in (text.find("\n", at), text.find("\\n", at)) if e >= 0]
        line = text[start:min(ends)] if ends else text[start:]
        last = start
        if _PIP.search(line):  # a match whose whitespace spans a line break is no line's
            lines.append(line)
    return lines


def _version(text: str) -> tuple[int, ...]:
    m = re.match(r"\d+(?:\.\d+)*", text)
    parts = [int(p) for p in m.group(0).split(".")] if m else []
    while parts and parts[-1] == 0:  # 5.0 and 5 are the same release
        parts.pop()
    return tuple(parts)


def _spec_below(spec: str, release: tuple[int, ...]) -> bool:
    """Whether every version the specifier admits is older than `release`."""
    for clause in spec.split(","):
        m = re.match(r"\s*(===|==|~=|!=|<=|>=|<|>)\s*(\S+)", clause)
        if m is None:
            continue
        op, version = m[1], _version(m[2])
        if op in ("==", "===", "~=", "<=") and version < release:
            return True
        if op == "<" and version <= release:
            return True
    return False


def pinned_below(specs: tuple[str, ...] | None, release: tuple[int, ...]) -> bool:
    """True where the file installs the library and every install of it pins a version before `release`."""
    return bool(specs) and all(spec and _spec_below(spec, release) for spec in specs or ())
