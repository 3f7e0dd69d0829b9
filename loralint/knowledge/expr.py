"""A tiny, safe expression language for the knowledge base (stdlib only, never ``eval``).

The generated architecture data stores shapes as expressions over config.json fields, for example
``num_key_value_heads*head_dim`` or ``2*text_config.intermediate_size``, and which layers a module
exists in as predicates over the layer index ``i``, for example ``i >= first_k_dense_replace`` or
``layer_types[i] == "full_attention"``.

Grammar (Python semantics for every operator, integers only, no floats)::

    expr    := or ( "if" or "else" expr )?
    or      := and ( "or" and )*
    and     := not ( "and" not )*
    not     := "not" not | cmp
    cmp     := arith ( ("=="|"!="|"<"|"<="|">"|">="|"in"|"not" "in") arith )?
    arith   := term ( ("+"|"-") term )*
    term    := unary ( ("*"|"//"|"%") unary )*
    unary   := "-" unary | postfix
    postfix := atom ( "[" expr "]" )*
    atom    := INT | STRING | "true" | "false" | "None" | NAME ("." NAME)* | "len" "(" expr ")" | "(" expr ")"

A dotted name such as ``text_config.hidden_size`` is looked up as ONE key of the flat environment
(the knowledge base flattens nested sub-configs with dots). Unknown names raise
:class:`UnknownName`, so callers can tell "not computable" from a wrong answer.

The expressions are the knowledge base's, but the values are config.json's (untrusted): arithmetic
is bounded (an integer result beyond ``MAX_INT`` and a string or list longer than ``MAX_LENGTH``
raise :class:`ExprError`), so no config makes an evaluation build gigabytes.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Mapping

__all__ = ["MAX_INT", "MAX_LENGTH", "ExprError", "UnknownName", "compile_expr", "evaluate", "names_in"]

MAX_INT = 2**64  # far beyond any dimension; a product of two config values stays cheap
MAX_LENGTH = 100_000  # a string or list an operator may build (per-layer lists of real models: < 1,000)


class ExprError(ValueError):
    """The expression text is malformed or an operation is invalid (e.g. division by zero)."""


class UnknownName(KeyError):
    """The expression refers to a name the environment does not define."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<int>\d+)
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<op>//|==|!=|<=|>=|[-+*%()<>\[\]])
    )""",
    re.VERBOSE,
)

_KEYWORDS = {"and", "or", "not", "in", "if", "else", "true", "false", "None", "len"}

Node = Callable[[Mapping[str, Any]], Any]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ExprError(f"unexpected character {text[pos:pos + 1]!r} at {pos} in {text!r}")
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind)  # type: ignore[arg-type]
        if kind == "name" and value in _KEYWORDS:
            kind = "kw"
        tokens.append((kind, value))  # type: ignore[arg-type]
    tokens.append(("end", ""))
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _floordiv(a: Any, b: Any) -> Any:
    if b == 0:
        raise ExprError("integer division by zero")
    return a // b


def _mod(a: Any, b: Any) -> Any:
    if b == 0:
        raise ExprError("modulo by zero")
    return a % b


def _index(a: Any, b: Any) -> Any:
    try:
        return a[b]
    except (IndexError, KeyError, TypeError) as exc:
        raise ExprError(f"cannot index {type(a).__name__} with {b!r}") from exc


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value <= MAX_INT:
        raise ExprError(f"integer beyond {MAX_INT:,}: not a real model's size")
    return value


def _length(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 1


def _add(a: Any, b: Any) -> Any:
    if _length(a) + _length(b) > MAX_LENGTH:
        raise ExprError(f"a value longer than {MAX_LENGTH:,}")
    return _bounded(a + b)


def _mul(a: Any, b: Any) -> Any:
    # A sequence times an int is checked before it is built: ["q_proj"] * 10**9 never allocates.
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * max(n, 0) > MAX_LENGTH:
            raise ExprError(f"a value longer than {MAX_LENGTH:,}")
    return _bounded(a * b)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": lambda a, b: _bounded(a - b),
    "*": _mul,
    "//": _floordiv,
    "%": _mod,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos]

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def accept(self, value: str) -> bool:
        kind, val = self.peek()
        if val == value and kind in ("op", "kw"):
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise ExprError(f"expected {value!r} at token {self.peek()[1]!r} in {self.text!r}")

    def parse(self) -> Node:
        node = self.expr()
        if self.peek()[0] != "end":
            raise ExprError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return node

    def expr(self) -> Node:
        node = self.or_()
        if self.accept("if"):
            cond = self.or_()
            self.expect("else")
            other = self.expr()
            then = node
            return lambda env: then(env) if cond(env) else other(env)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.accept("or"):
            left, right = node, self.and_()
            node = (lambda l, r: lambda env: l(env) or r(env))(left, right)
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.accept("and"):
            left, right = node, self.not_()
            node = (lambda l, r: lambda env: l(env) and r(env))(left, right)
        return node

    def not_(self) -> Node:
        if self.accept("not"):
            inner = self.not_()
            return lambda env: not inner(env)
        return self.cmp()

    def cmp(self) -> Node:
        left = self.arith()
        kind, val = self.peek()
        op = None
        if kind == "op" and val in ("==", "!=", "<", "<=", ">", ">="):
            op = val
            self.take()
        elif kind == "kw" and val == "in":
            op = "in"
            self.take()
        elif kind == "kw" and val == "not" and self.tokens[self.pos + 1][1] == "in":
            op = "not in"
            self.pos += 2
        if op is None:
            return left
        right = self.arith()
        fn = _BINOPS[op]
        return lambda env: fn(left(env), right(env))

    def _binary_chain(self, sub: Callable[[], Node], ops: tuple[str, ...]) -> Node:
        node = sub()
        while True:
            kind, val = self.peek()
            if kind == "op" and val in ops:
                self.take()
                right = sub()
                node = (lambda l, r, f: lambda env: f(l(env), r(env)))(node, right, _BINOPS[val])
            else:
                return node

    def arith(self) -> Node:
        return self._binary_chain(self.term, ("+", "-"))

    def term(self) -> Node:
        return self._binary_chain(self.unary, ("*", "//", "%"))

    def unary(self) -> Node:
        if self.accept("-"):
            inner = self.unary()
            return lambda env: _bounded(-inner(env))
        return self.postfix()

    def postfix(self) -> Node:
        node = self.atom()
        while self.accept("["):
            index = self.expr()
            self.expect("]")
            node = (lambda a, b: lambda env: _index(a(env), b(env)))(node, index)
        return node

    def atom(self) -> Node:
        kind, val = self.take()
        if kind == "int":
            number = int(val)
            return lambda env: number
        if kind == "str":
            text = _unquote(val)
            return lambda env: text
        if kind == "kw":
            if val == "true":
                return lambda env: True
            if val == "false":
                return lambda env: False
            if val == "None":
                return lambda env: None
            if val == "len":
                self.expect("(")
                inner = self.expr()
                self.expect(")")
                return lambda env: len(inner(env))
            raise ExprError(f"unexpected keyword {val!r} in {self.text!r}")
        if kind == "name":
            return _lookup(val)
        if kind == "op" and val == "(":
            node = self.expr()
            self.expect(")")
            return node
        raise ExprError(f"unexpected {val!r} in {self.text!r}")


def _lookup(name: str) -> Node:
    """A name's node: its value in the environment, UnknownName when it has none."""

    def lookup(env: Mapping[str, Any], _name: str = name) -> Any:
        try:
            return env[_name]
        except KeyError:
            raise UnknownName(_name) from None

    return lookup


# The whole text one (dotted) name, as _TOKEN reads it: most expressions of the knowledge base are a field alone.
_NAME_ONLY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@lru_cache(maxsize=8192)
def compile_expr(text: str) -> Node:
    """Parse ``text`` once and return a function ``env -> value``."""
    text = str(text)
    if text not in _KEYWORDS and _NAME_ONLY.fullmatch(text):
        return _lookup(text)  # what the parser returns for a lone name
    return _Parser(text).parse()


def evaluate(expr: str | int | bool | None, env: Mapping[str, Any]) -> Any:
    """Evaluate an expression (ints and bools pass through unchanged) against a flat environment."""
    if expr is None or isinstance(expr, (bool, int)):
        return expr
    try:
        return compile_expr(expr)(env)
    except (ExprError, UnknownName):
        raise
    except TypeError as exc:  # e.g. None * 4 when a config field is null
        raise ExprError(f"{expr!r}: {exc}") from exc


@lru_cache(maxsize=8192)
def names_in(text: str) -> frozenset[str]:
    """The variable names an expression refers to (keywords and string literals excluded)."""
    text = str(text)
    if text not in _KEYWORDS and _NAME_ONLY.fullmatch(text):
        return frozenset((text,))  # (what _tokenize finds in a lone name)
    return frozenset(val for kind, val in _tokenize(text) if kind == "name")
