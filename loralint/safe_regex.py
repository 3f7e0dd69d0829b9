"""Regular expressions from the checked code, run with bounded work.

PEFT hands user text to Python's backtracking `re` in four forms (peft 0.21.2):

* ``target_modules`` and ``exclude_modules`` as a str: ``re.fullmatch(pattern, name)``
  (utils/other.py: ``match_target_against_key``; tuners/tuners_utils.py: ``check_target_module_exists``);
* ``rank_pattern`` / ``alpha_pattern`` keys: ``re.match(rf"(.*\\.)?({key})$", name)``
  (utils/other.py: ``get_pattern_key``; tuners_utils.py: the "did not match any targeted module" warning);
* ``modules_to_save`` entries: ``re.match(rf"(^|.*\\.){m}($|\\..*)", name)`` (tuners_utils.py:
  ``check_target_module_exists``);
* ``layers_pattern``: ``re.match(rf"(?:^|.*?\\.){pattern}\\.(?P<idx>\\d+)\\.", name)`` (same function).

A pattern such as ``(.*)*x`` or ``(a+)+$`` takes exponential time in `re`, and ``(.*a){20}`` a
polynomial of degree 20. Decision: every pattern loralint runs is still run by `re` in PEFT's own
form, so ordinary patterns mean exactly what they mean to PEFT; but before it is run, an upper bound
on its backtracking work is computed from the parsed pattern (``re._parser``) and the strings it
will be matched against (their length and how often each character occurs in them), and a pattern
whose bound is over :data:`MAX_MATCH_COST` is refused (LORA906), as is one longer than
:data:`MAX_PATTERN_LENGTH` or nested deeper than :data:`MAX_NESTING`. Each run is charged to a
:class:`~loralint.limits.Budget`, which bounds the total (thousands of keys against thousands of
modules). Not chosen: a time limit per match (SIGALRM works only in the main thread, and the LSP
server and the worker processes run elsewhere; timing would also make findings depend on the machine's
speed), and google-re2 (not a dependency; it also lacks the lookarounds and backreferences `re`
accepts, so it would not mean what PEFT means).

The bound: a backtracking matcher explores, from one start, at most the product over a sequence of
the choices each element offers. A one-character repeat (``.*``, ``\\d+``) offers as many counts as
characters remain, fewer when it is followed by a literal (`re` tries only the positions where that
literal occurs) or repeats a literal; a repeat of anything with choices offers ``w**k`` ways for k
iterations (exponential: refused); an alternation offers the sum of its branches. The work of one
match is that product times the subject length (each path scans at most that far). It overestimates
ordinary patterns (``.*\\.(q_proj|v_proj)`` on Llama names: a few thousand units, about a
microsecond) and is tight for hostile ones.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from loralint.limits import AnalysisLimit, Budget

try:  # Python 3.11+
    from re import _constants as _c
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

__all__ = [
    "FULLMATCH", "LAYERS", "MAX_MATCH_COST", "MAX_NESTING", "MAX_PATTERN_LENGTH", "PATTERN_KEY", "SAVED_MODULE",
    "Matcher", "Prepared", "Profile", "Refused", "compile_checked", "estimate", "prepare",
]

# PEFT's forms (see the module docstring); "{}" is the user's text, inserted unescaped as PEFT does.
FULLMATCH = "{}"
PATTERN_KEY = r"(.*\.)?({})$"
SAVED_MODULE = r"(^|.*\.){}($|\..*)"
LAYERS = r"(?:^|.*?\.){}\.(?P<idx>\d+)\."

MAX_PATTERN_LENGTH = 10_000  # characters; real ones are under a few hundred
MAX_NESTING = 100  # parentheses; `re`'s parser recurses per level
MAX_MATCH_COST = 10_000_000  # units (≈ ns of `re` on an ordinary pattern) for one match
CALL_COST = 1_000  # the Python side of one match call
COMPILE_COST = 100_000  # parsing, compiling and bounding one pattern
_CAP = 10**18

_SINGLE = {_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN}
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT} | ({_c.POSSESSIVE_REPEAT} if hasattr(_c, "POSSESSIVE_REPEAT") else set())
_ATOMIC = getattr(_c, "ATOMIC_GROUP", None)
_POSSESSIVE = getattr(_c, "POSSESSIVE_REPEAT", None)


class Refused(AnalysisLimit):
    """A pattern loralint will not run: too long, too deeply nested, or too much work."""


class Profile:
    """What patterns are matched against: the subjects themselves, the longest one's length, and for
    each character the most times it occurs in any one subject. Prepared patterns are memoised here."""

    __slots__ = ("_memo", "counts", "length", "subjects")

    def __init__(self, subjects: Iterable[str]) -> None:
        self.subjects = frozenset(subjects)
        self.length = max(map(len, self.subjects), default=0)
        self.counts: dict[int, int] = {}  # filled on demand: patterns ask about a few characters only
        self._memo: dict[tuple[str, ...], Prepared | re.error | Refused | int] = {}

    def count(self, code: int) -> int:
        """The most times chr(code) occurs in one subject."""
        got = self.counts.get(code)
        if got is None:
            ch = chr(code)
            got = self.counts[code] = max((s.count(ch) for s in self.subjects), default=0)
        return got


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """A user's pattern in the form PEFT uses it, compiled, with a bound on what one match costs."""

    pattern: str  # as the user wrote it
    form: str  # PEFT's form it is used in
    regex: re.Pattern[str]  # the form with the pattern in it, compiled
    cost: int  # units of one match on the profile's subjects (an upper bound)


def _nesting(text: str) -> int:
    """Deepest parenthesis nesting, skipping escapes and character classes (a cheap guard that runs
    before `re`'s recursive parser)."""
    depth = deepest = 0
    i, n = 0, len(text)
    in_class = False
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if text.startswith("]", i + 1) or text.startswith("^]", i + 1):
                i += 2 if text[i + 1] == "]" else 3
                continue
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth = max(0, depth - 1)
        i += 1
    return deepest


def _shape_guard(pattern: str, field_name: str | None) -> None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise Refused(f"pattern not evaluated: {len(pattern):,} characters, more than loralint's bound of "
                      f"{MAX_PATTERN_LENGTH:,}", field_name)
    if _nesting(pattern) > MAX_NESTING:
        raise Refused(f"pattern not evaluated: parentheses nested deeper than {MAX_NESTING}", field_name)


def compile_checked(pattern: str, form: str = FULLMATCH, field_name: str | None = None) -> re.Pattern[str]:
    """`pattern` in PEFT's `form`, compiled: re.error when PEFT would raise it too, Refused when it is too
    long or too deep to parse safely. Compiling is linear; this never runs the pattern."""
    got = _compiled(pattern, form)
    if isinstance(got, Refused):
        raise Refused(got.message, field_name)
    if isinstance(got, re.error):
        raise got
    return got


@lru_cache(maxsize=16_384)  # the checks and the analysis compile the same keys; thousands of them
def _compiled(pattern: str, form: str) -> re.Pattern[str] | re.error | Refused:
    try:
        _shape_guard(pattern, None)
        return re.compile(form.format(pattern) if form != FULLMATCH else pattern)
    except RecursionError:
        return Refused("pattern not evaluated: nested too deeply to parse")
    except (re.error, Refused) as exc:
        return exc
    except (OverflowError, ValueError) as exc:  # a repeat count beyond `re`'s limit
        return re.error(str(exc))


# --------------------------------------------------------------------------------------------------
# the bound
# --------------------------------------------------------------------------------------------------


def _mul(a: int, b: int) -> int:
    return min(_CAP, a * b)


def _geom(w: int, lo: int, hi: int) -> int:
    """Ways to make lo..hi iterations of something with w ways each: sum of w**k."""
    if hi < lo:
        return 1
    if w <= 1:
        return max(1, hi - lo + 1)
    if hi * math.log2(w) > 60:
        return _CAP
    return min(_CAP, sum(w**k for k in range(lo, hi + 1)))


def _icase(icase: bool, add: int, remove: int) -> bool:
    return (icase or bool(add & _c.SRE_FLAG_IGNORECASE)) and not remove & _c.SRE_FLAG_IGNORECASE


def _first(item, icase: bool) -> set[int] | None:
    """The characters `item` must start with, when that is a small known set."""
    if item is None or icase:
        return None
    op, av = item
    if op is _c.LITERAL:
        return {av}
    if op is _c.IN:
        chars: set[int] = set()
        for iop, iav in av:
            if iop is _c.LITERAL:
                chars.add(iav)
            elif iop is _c.RANGE and iav[1] - iav[0] < 64:
                chars.update(range(iav[0], iav[1] + 1))
            else:
                return None
        return chars
    if op is _c.SUBPATTERN:
        _, add, remove, sub = av
        return _first(sub[0], _icase(icase, add, remove)) if len(sub) else None
    if op is _c.BRANCH:
        out: set[int] = set()
        for branch in av[1]:
            got = _first(branch[0], icase) if len(branch) else None
            if got is None:
                return None
            out |= got
        return out
    if op in _REPEATS and av[0] >= 1 and len(av[2]):
        return _first(av[2][0], icase)
    return None


_CATEGORIES = {
    "CATEGORY_DIGIT": str.isdecimal,
    "CATEGORY_SPACE": str.isspace,
    "CATEGORY_WORD": lambda ch: ch.isalnum() or ch == "_",
}


def _may_match(op, av, code: int) -> bool:
    """Whether the one-character element (op, av) can match chr(code); True when not sure."""
    if code >= 128:
        return True  # ASCII-only (?a) and Unicode classes differ there: do not guess
    if op is _c.LITERAL:
        return av == code
    if op is _c.NOT_LITERAL:
        return av != code
    if op is not _c.IN:
        return True
    ch = chr(code)
    negate = False
    hit = False
    for iop, iav in av:
        if iop is _c.NEGATE:
            negate = True
        elif iop is _c.LITERAL:
            hit = hit or iav == code
        elif iop is _c.RANGE:
            hit = hit or iav[0] <= code <= iav[1]
        elif iop is _c.CATEGORY:
            name = str(iav)
            test = _CATEGORIES.get(name.replace("_NOT_", "_"))
            if test is None:
                return True
            hit = hit or (test(ch) != ("_NOT_" in name))
        else:
            return True
    return hit != negate


def _ways(items, p: Profile, icase: bool, tail: bool = False, follow=None) -> int:
    """Ways through a sequence. `tail`: nothing follows it in the whole pattern, so its last element's
    choices lead to no further work (the first one that fits ends the match). `follow`: the element
    after the sequence, for a group (what its last element is followed by)."""
    total = 1
    seq = list(items)
    for k, (op, av) in enumerate(seq):
        last = k + 1 == len(seq)
        nxt = follow if last else seq[k + 1]
        total = _mul(total, _one(op, av, nxt, p, icase, tail and last))
        if total >= _CAP:
            return _CAP
    return total


def _one(op, av, nxt, p: Profile, icase: bool, tail: bool = False) -> int:
    if op in _REPEATS:
        lo, hi, sub = av
        if tail and len(sub) == 1 and sub[0][0] in _SINGLE:
            return 1  # `.*` at the very end: each count costs a constant check, counted in the scan
        return _repeat(op, lo, hi, sub, nxt, p, icase)
    if op is _c.BRANCH:
        return min(_CAP, sum(_ways(b, p, icase, tail, nxt) for b in av[1]))
    if op is _c.SUBPATTERN:
        _, add, remove, sub = av
        return _ways(sub, p, _icase(icase, add, remove), tail, nxt)
    if op is _ATOMIC:
        return _ways(av, p, icase, tail, nxt)
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return _ways(av[1], p, icase)  # its own work, once per arrival
    if op is _c.GROUPREF_EXISTS:
        _, yes, no = av
        return min(_CAP, _ways(yes, p, icase) + (_ways(no, p, icase) if no is not None else 1))
    return 1  # one character, an anchor, a backreference: no choice


def _repeat(op, lo: int, hi: int, sub, nxt, p: Profile, icase: bool) -> int:
    n = p.length
    items = list(sub)
    if op is _POSSESSIVE:
        return _ways(items, p, icase)  # never backtracked into
    if len(items) == 1 and items[0][0] in _SINGLE:
        if lo > n:
            return 1  # fails at once
        width = min(hi, n) - lo + 1
        iop, iav = items[0]
        if iop is _c.LITERAL and not icase:
            width = min(width, p.count(iav) - lo + 1)
        first = _first(nxt, icase)
        if first is not None:
            if not icase and not any(_may_match(iop, iav, ch) for ch in first):
                return 1  # `\w+\.`: only the longest run can be followed by the literal; shorter ones fail at once
            width = min(width, sum(p.count(ch) for ch in first) + 1)  # `re` tries only where it occurs
        return max(1, width)
    w = _ways(items, p, icase)
    # Each iteration past `lo` consumes a character (`re` stops a repeat on an empty iteration).
    return _geom(w, lo, min(hi, lo + n + 1))


def estimate(regex: re.Pattern[str], profile: Profile) -> int:
    """Units of work one match of `regex` can take on the profile's subjects (an upper bound)."""
    parsed = _sre_parse.parse(regex.pattern)  # PEFT passes no flags; inline ones are in the text
    icase = bool(parsed.state.flags & _c.SRE_FLAG_IGNORECASE)
    return _mul(_ways(parsed, profile, icase, tail=True), profile.length + 1) + CALL_COST


_PLAIN = re.compile(r"[A-Za-z0-9_.]+")  # a name (its dots match any character): the common key


def _plain_cost(pattern: str, form: str, profile: Profile) -> int:
    """A plain name's bound is its form's with the name's first character alone (every other character
    matches one way), so thousands of plain keys share one estimate per form and first character."""
    key = ("cost", form, pattern[0])
    cost = profile._memo.get(key)
    if cost is None:
        cost = estimate(re.compile(form.format(pattern[0])), profile)
        profile._memo[key] = cost  # type: ignore[assignment]
    return cost  # type: ignore[return-value]


def prepare(pattern: str, form: str, profile: Profile, field_name: str | None = None) -> Prepared:
    """Compile `pattern` in PEFT's `form` and bound one match on `profile`'s subjects.

    Raises re.error when PEFT would raise it too, Refused when loralint will not run it."""
    key = (form, pattern)
    got = profile._memo.get(key)
    if got is None:
        try:
            regex = compile_checked(pattern, form, field_name)
            try:
                cost = _plain_cost(pattern, form, profile) if _PLAIN.fullmatch(pattern) else estimate(regex, profile)
            except RecursionError:
                raise Refused("pattern not evaluated: nested too deeply", field_name) from None
            if cost > MAX_MATCH_COST:
                raise Refused(f"pattern {_short(pattern)} not evaluated: it could take exponential or high-polynomial "
                              f"time in Python's backtracking re (nested or many unbounded repeats)", field_name)
            got = Prepared(pattern, form, regex, cost)
        except (re.error, Refused) as exc:
            got = exc
        profile._memo[key] = got
    if isinstance(got, BaseException):
        if isinstance(got, Refused) and got.field != field_name:
            raise Refused(got.message, field_name)
        raise got
    return got


def _short(text: str, width: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= width else shown[: width - 4] + "…" + shown[-3:]


class Matcher:
    """The untrusted patterns of one analysis: each prepared once, every compile and match charged to one
    budget (the same amount whether or not an earlier analysis compiled it: same input, same outcome)."""

    def __init__(self, profile: Profile, budget: Budget) -> None:
        self.profile = profile
        self.budget = budget

    def prepare(self, pattern: str, form: str, field_name: str | None = None) -> Prepared:
        """Raises re.error (PEFT would too) or Refused."""
        self.budget.charge(COMPILE_COST + 10 * len(pattern), field_name)
        return prepare(pattern, form, self.profile, field_name)

    def prepare_all(self, patterns: Iterable[object], form: str,
                    field_name: str | None = None) -> list[tuple[object, Prepared | re.error]]:
        """(entry, its Prepared or the re.error PEFT raises when it gets to it), in order. PEFT's own
        f-string puts a non-str entry in as str()."""
        out: list[tuple[object, Prepared | re.error]] = []
        for entry in patterns:
            try:
                out.append((entry, self.prepare(str(entry), form, field_name)))
            except re.error as exc:
                out.append((entry, exc))
        return out

    def first(self, prepared: list[tuple[object, Prepared | re.error]], subject: str,
              field_name: str | None = None) -> int | None:
        """The index of the first entry whose pattern matches `subject` (re.match), raising an invalid
        one's re.error when it is reached, as PEFT's loop does."""
        for index, (_, p) in enumerate(prepared):
            if isinstance(p, re.error):
                raise p
            if self.match(p, subject, field_name):
                return index
        return None

    def fullmatch(self, prepared: Prepared, subject: str, field_name: str | None = None) -> re.Match[str] | None:
        return self._bounded(prepared, subject, field_name).regex.fullmatch(subject)

    def match(self, prepared: Prepared, subject: str, field_name: str | None = None) -> re.Match[str] | None:
        return self._bounded(prepared, subject, field_name).regex.match(subject)

    def _bounded(self, prepared: Prepared, subject: str, field_name: str | None) -> Prepared:
        if subject not in self.profile.subjects:  # a string the bound did not see: bound it on its own
            prepared = prepare(prepared.pattern, prepared.form, Profile([subject]), field_name)
        budget = self.budget
        budget.left -= prepared.cost
        if budget.left < 0:
            budget.charge(0, field_name)  # raises AnalysisLimit
        return prepared
