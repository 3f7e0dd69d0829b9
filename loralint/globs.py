"""gitignore-style globs, matched in time linear in the path whatever the pattern.

Globs come from the checked repository (.gitignore) and from settings, so they are untrusted: a
regex built naively from `**a**a**a…b` backtracks for hours. Each glob is parsed into tokens; the
simplest shapes (a literal, `*.ext`) are matched with string operations, the other common shapes
(at most one `*` and one directory-crossing split) become a `re` regex, whose
backtracking is then bounded by the path's length; any other glob is run on a bit-parallel NFA,
one pass over the path. An invalid glob (`[z-a]`) raises GlobError, for the caller to report.

Semantics over a '/'-separated relative path: `*` and `?` stay within a segment, `**` crosses
segments, `**/` is zero or more whole directories, `[...]` (`[!...]` negated) is one character of a
segment; a pattern without '/' (other than a trailing one) matches at any depth, a leading '/'
anchors it; a match on a directory covers everything below it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

MAX_GLOB_LENGTH = 4096

_LIT, _ONE, _CLASS, _STAR, _DSTAR, _DSLASH = range(6)


class GlobError(ValueError):
    """A glob that cannot be used; the message says why."""


class Glob:
    """A compiled glob. `match(path)` is truthy when the glob matches the path or a directory above it
    (a bound method: it is called for every path and every rule of a walk)."""

    __slots__ = ("engine", "match", "pattern", "shape", "text")

    def __init__(self, pattern: str, regex: re.Pattern[str] | None, nfa: _Nfa | None,
                 simple: Callable[[str], bool] | None = None) -> None:
        self.pattern = pattern
        self.shape: str | None = None  # "segment" / "suffix" / "prefix" for the string-matched shapes
        self.text = ""  # their literal
        if simple is not None:
            self.engine, self.match = "string", simple
        elif regex is not None:
            self.engine, self.match = "regex", regex.match
        else:
            self.engine, self.match = "nfa", nfa.match  # type: ignore[union-attr]

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r}, {self.engine})"


def _escape_class_char(ch: str) -> str:
    # Inside a regex set, an escape of every non-alphanumeric character avoids both errors and
    # FutureWarnings about nested sets (`[[`, `&&`, `--`).
    return ch if ch.isalnum() else f"\\U{ord(ch):08x}"


def _class(body: str) -> re.Pattern[str]:
    """One character of a segment: `body` without its brackets, `!` or `^` first negates."""
    negated = body[:1] in ("!", "^")
    if negated:
        body = body[1:]
    if not body:
        raise GlobError("empty character set []")
    items = []
    i = 0
    while i < len(body):
        ch = body[i]
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = ch, body[i + 2]
            if low > high:
                raise GlobError(f"character range {low}-{high} is reversed")
            items.append(f"{_escape_class_char(low)}-{_escape_class_char(high)}")
            i += 3
        else:
            items.append(_escape_class_char(ch))
            i += 1
    # A character class never matches '/', as in git.
    return re.compile(f"[^/{''.join(items)}]" if negated else f"(?!/)[{''.join(items)}]")


def _tokens(pattern: str) -> list[tuple[int, object]]:
    out: list[tuple[int, object]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            run = len(pattern) - i - len(pattern[i:].lstrip("*"))
            i += run
            if run == 1:
                token = (_STAR, None)
            elif i < len(pattern) and pattern[i] == "/":
                i += 1
                token = (_DSLASH, None)
            else:
                token = (_DSTAR, None)
            # A run of stars is one token already; only `**/` (which swallows its '/') can meet the
            # next run: `**/**/` is `**/`, and `**/**` is `**`.
            if out and out[-1][0] == _DSLASH and token[0] in (_DSLASH, _DSTAR):
                out[-1] = token
                continue
            out.append(token)
            continue
        if ch == "?":
            out.append((_ONE, None))
        elif ch == "[":
            # A ']' right after '[' (or '[!') is part of the set, as in git.
            start = i + 1 + (1 if pattern[i + 1 : i + 2] in ("!", "^") else 0)
            end = pattern.find("]", start + 1 if pattern[start : start + 1] == "]" else start)
            if end == -1:
                out.append((_LIT, ch))
            else:
                out.append((_CLASS, _class(pattern[i + 1 : end])))
                i = end
        else:
            out.append((_LIT, ch))
        i += 1
    return out


def _regex(tokens: list[tuple[int, object]], anchored: bool) -> re.Pattern[str]:
    parts = []
    for kind, value in tokens:
        if kind == _LIT:
            parts.append(re.escape(str(value)))
        elif kind == _ONE:
            parts.append("[^/]")
        elif kind == _CLASS:
            parts.append(value.pattern)  # type: ignore[union-attr]
        elif kind == _STAR:
            parts.append("[^/]*")
        elif kind == _DSTAR:
            parts.append(".*")
        else:
            parts.append("(?:.*/)?")
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"^{prefix}{''.join(parts)}(?:/.*)?$", re.DOTALL)


def _backtracking_is_bounded(tokens: list[tuple[int, object]], anchored: bool) -> bool:
    """True when `re` runs the glob in time about linear in the path: at most one split at a '/'
    (the unanchored prefix or a `**/`), at most one `*` that can give characters back, and no `**`
    before the end. A final `*` or `**` never gives anything back: what follows it always matches."""
    body = tokens[:-1] if tokens and tokens[-1][0] in (_STAR, _DSTAR) else tokens
    splits = (0 if anchored else 1) + sum(1 for kind, _ in body if kind == _DSLASH)
    stars = sum(1 for kind, _ in body if kind == _STAR)
    return splits <= 1 and stars <= 1 and not any(kind == _DSTAR for kind, _ in body)


class _Nfa:
    """Bit-parallel simulation (shift-and): bit k set means "about to match token k". One pass over
    the path, whatever the pattern; the step from a set of states on a character is computed once and
    then looked up (a lazily built DFA, its table bounded)."""

    __slots__ = (
        "_masks",
        "_steps",
        "accept",
        "anchored",
        "eps1",
        "eps2",
        "kinds",
        "literal",
        "start",
        "values",
    )

    def __init__(self, tokens: list[tuple[int, object]], anchored: bool) -> None:
        # `**/` takes two states: an entry (skip it, or enter the loop) and a loop ended by '/'.
        self.kinds: list[int] = []
        self.values: list[object] = []
        eps1 = eps2 = 0
        for kind, value in tokens:
            bit = 1 << len(self.kinds)
            if kind in (_STAR, _DSTAR):
                eps1 |= bit
            if kind == _DSLASH:
                eps1 |= bit
                eps2 |= bit
                self.kinds.append(-1)  # the entry consumes nothing
                self.values.append(None)
            self.kinds.append(kind)
            self.values.append(value)
        self.anchored = anchored
        self.accept = 1 << len(self.kinds)
        self.eps1, self.eps2 = eps1, eps2
        self._masks: dict[str, tuple[int, int]] = {}
        self._steps: dict[int, dict[str, int]] = {}
        self.start = self._closure(1)
        # The longest run of literal characters: a path without it cannot match (a C-speed test first).
        runs = "".join(str(v) if k == _LIT else "\0" for k, v in tokens).split("\0")
        self.literal = max(runs, key=len)

    def _masks_for(self, ch: str) -> tuple[int, int]:
        """(advance, stay): the states that consume `ch` and move on, or consume it and stay."""
        cached = self._masks.get(ch)
        if cached is not None:
            return cached
        advance = stay = 0
        for k, (kind, value) in enumerate(zip(self.kinds, self.values)):
            bit = 1 << k
            if kind == _LIT:
                advance |= bit if value == ch else 0
            elif kind == _ONE:
                advance |= bit if ch != "/" else 0
            elif kind == _CLASS:
                advance |= bit if value.match(ch) else 0  # type: ignore[union-attr]
            elif kind == _STAR:
                stay |= bit if ch != "/" else 0
            elif kind == _DSTAR:
                stay |= bit
            elif kind == _DSLASH:
                stay |= bit
                advance |= bit if ch == "/" else 0
        if len(self._masks) < 4096:
            self._masks[ch] = (advance, stay)
        return advance, stay

    def _closure(self, states: int) -> int:
        while True:
            grown = states | ((states & self.eps1) << 1) | ((states & self.eps2) << 2)
            if grown == states:
                return states
            states = grown

    def _step(self, states: int, ch: str) -> int:
        advance, stay = self._masks_for(ch)
        after = ((states & advance) << 1) | (states & stay)
        if ch == "/" and not self.anchored:
            after |= 1  # the pattern may start at any directory
        return self._closure(after) if after else 0

    def match(self, path: str) -> bool:
        if self.literal not in path:
            return False
        n, accept, steps = len(path), self.accept, self._steps
        states = self.start
        if states & accept and (n == 0 or path[0] == "/"):
            return True
        for i, ch in enumerate(path):
            row = steps.get(states)
            if row is None:
                if len(steps) >= 4096:  # a bound on the table, whatever the input
                    steps.clear()
                row = steps[states] = {}
            after = row.get(ch)
            if after is None:
                after = self._step(states, ch)
                if len(row) < 512:  # rows stay small even for paths in many scripts
                    row[ch] = after
            states = after
            if not states and self.anchored:
                return False
            if states & accept and (i + 1 == n or path[i + 1] == "/"):
                return True
        return False


@lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> Glob:
    """Compile a gitignore-style glob (see the module's docstring). Raises GlobError."""
    if len(pattern) > MAX_GLOB_LENGTH:
        raise GlobError(f"longer than {MAX_GLOB_LENGTH} characters")
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    tokens = _tokens(pattern.strip("/"))
    if tokens and tokens[0][0] == _DSLASH:
        # `**/x` is `x` at any depth: the unanchored form, which the fast path handles.
        tokens, anchored = tokens[1:], False
    simple = _simple_match(tokens, anchored)
    if simple is not None:
        glob = Glob(pattern, None, None, simple[2])
        glob.shape, glob.text = simple[0], simple[1]
    elif _backtracking_is_bounded(tokens, anchored):
        glob = Glob(pattern, _regex(tokens, anchored), None)
    else:
        glob = Glob(pattern, None, _Nfa(tokens, anchored))
    return glob


def _simple_match(tokens: list[tuple[int, object]], anchored: bool) -> tuple[str, str, Callable[[str], bool]] | None:
    """The shapes most .gitignore lines have, matched with string operations (compiling a regex costs
    more than a whole walk's matching): `name` or `dir/name` (a literal) and `*.ext`. Each gives what
    `_regex` would: an unanchored literal is a whole segment ("segment"), an anchored one the path's
    start, then its end or a '/' ("prefix"), and an unanchored `*suffix` a segment that ends with the
    suffix ("suffix"). Returns (shape, text, match)."""
    if not tokens or any(kind != _LIT for kind, _ in tokens[1:]):
        return None
    star = tokens[0][0] == _STAR
    if not star and tokens[0][0] != _LIT:
        return None
    text = "".join(str(value) for _, value in tokens[1 if star else 0:])
    if not text:
        return None
    if star:
        if anchored or "/" in text:
            return None
        return "suffix", text, lambda path: any(segment.endswith(text) for segment in path.split("/"))
    if anchored:
        below = text + "/"
        return "prefix", text, lambda path: path == text or path.startswith(below)
    if "/" in text:
        return None
    segment = f"/{text}/"
    return "segment", text, lambda path: segment in f"/{path}/"
