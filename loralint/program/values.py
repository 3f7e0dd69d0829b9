"""The value lattice of the program model, and the one place where computed values are built.

A value is what an expression can be known to hold without running it:

* a literal Python value (int, str, list, dict, ...; containers may hold Unknown items);
* `OneOf`: one of several values, by control flow (`if`/`else`, a loop over a literal list,
  several call sites of a helper);
* a value with the provenance "default of ..." (a parameter, a CLI flag, a dataclass field);
* a reference the model follows: an import path (`ImportRef`), a local function or class, an
  object the training script handles (`Obj`: a model, config, tokenizer, trainer, data set,
  argument parser), an instance of a local dataclass, an argparse namespace;
* `Unknown`, with the reason.

`guard` is the single gate for computed results: the evaluator never builds a sequence, string or
integer beyond the limits below, and `power_too_big` / `repeat_too_big` refuse an operation
before it runs (`["q"] * 10**9`, `10**10**10`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from loralint.limits import MAX_INT_BITS
from loralint.sites import Unknown

MAX_ITEMS = 100_000  # elements of a list/tuple/set/dict
MAX_CHARS = 1_000_000  # characters of a str / bytes


@dataclass(slots=True)
class Value:
    """A value in the lattice, with where it came from."""

    value: Any
    provenance: str = "literal"
    node: ast.AST | None = None  # where the value is written (a field's items, spans)

    @property
    def known(self) -> bool:
        return not isinstance(self.value, (Unknown, OneOf))


@dataclass(frozen=True, slots=True, eq=False)
class OneOf:
    """One of several values; `what` names the choice (`r is assigned 2 times (lines 2, 4)`)."""

    options: tuple[Value, ...]
    what: str


@dataclass(frozen=True, slots=True)
class ImportRef:
    """An imported name, by its qualified name."""

    qualname: str


@dataclass(frozen=True, slots=True, eq=False)
class FunctionRef:
    """A function defined in the module."""

    node: ast.AST  # FunctionDef / AsyncFunctionDef / Lambda


@dataclass(frozen=True, slots=True, eq=False)
class ClassRef:
    """A class defined in the module."""

    node: ast.ClassDef


@dataclass(slots=True, eq=False)
class Obj:
    """An object the training script handles, identified by the expression that creates it.

    kind: model | tokenizer | lora_config | peft_model | trainer | dataset | parser | hf_parser |
    instance (an instance of a local class or of a known configuration class)."""

    kind: str
    node: ast.AST  # the creating call
    qualname: str = ""  # "transformers.AutoModelForCausalLM.from_pretrained", "peft.get_peft_model", ...
    library: str | None = None  # transformers | unsloth | diffusers | custom | trl | peft | None
    base: tuple[Obj, ...] = ()  # a PEFT model: the models it wraps
    classes: tuple[Any, ...] = ()  # hf_parser: the argument classes (ClassRef / ImportRef)
    cls: Any = None  # instance: ClassRef / ImportRef
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        """`AutoModelForCausalLM` for `transformers.AutoModelForCausalLM.from_pretrained`."""
        parts = self.qualname.split(".")
        if parts and parts[-1] in ("from_pretrained", "from_config") and len(parts) >= 2:
            return parts[-2]
        return parts[-1] if parts else ""


@dataclass(frozen=True, slots=True, eq=False)
class Namespace:
    """What `parser.parse_args()` returns: attributes are the parser's options."""

    parser: Obj | None


@dataclass(frozen=True, slots=True)
class LimitReached(Unknown):
    """Unknown because a bound of the analysis refused it (a value too large to build, nesting too
    deep to follow): reported as LORA906 where it reaches a configuration field."""


def unknown(reason: str, node: ast.AST | None = None) -> Value:
    return Value(Unknown(reason), "unknown", node)


def limit(reason: str, node: ast.AST | None = None) -> Value:
    return Value(LimitReached(reason), "unknown", node)


def options_of(value: Value) -> list[Value]:
    """The alternatives of a value, flattened (a plain value is its own only alternative)."""
    if not isinstance(value.value, OneOf):
        return [value]
    out: list[Value] = []
    stack = list(reversed(value.value.options))
    while stack:
        item = stack.pop()
        if isinstance(item.value, OneOf):
            stack.extend(reversed(item.value.options))
        else:
            out.append(item)
    return out


def objects_in(value: Value) -> list[Obj]:
    """Every Obj a value may be (its alternatives included), each once."""
    seen: list[Obj] = []
    for option in options_of(value):
        if isinstance(option.value, Obj) and not any(option.value is o for o in seen):
            seen.append(option.value)
    return seen


def _size_ok(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return value.bit_length() <= MAX_INT_BITS
    if isinstance(value, (str, bytes)):
        return len(value) <= MAX_CHARS
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return len(value) <= MAX_ITEMS
    return True


def guard(value: Any, provenance: str = "literal", node: ast.AST | None = None) -> Value:
    """Every computed value passes here: one that is too big becomes Unknown instead."""
    if not _size_ok(value):
        return limit("the value is too large to compute statically", node)
    return Value(value, provenance, node)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


def repeat_too_big(left: Any, right: Any) -> bool:
    """`seq * n` / `n * seq` that would build more than the limits allow."""
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int) and not isinstance(count, bool):
            limit = MAX_CHARS if isinstance(seq, (str, bytes)) else MAX_ITEMS
            return count > 0 and _size(seq) * count > limit
    return False


def power_too_big(base: Any, exponent: Any) -> bool:
    """`base ** exponent` on ints whose result would pass MAX_INT_BITS (checked before computing)."""
    if isinstance(base, bool) or isinstance(exponent, bool):
        return False
    if isinstance(base, int) and isinstance(exponent, int):
        if exponent < 0 or abs(base) <= 1:
            return False
        return base.bit_length() * exponent > MAX_INT_BITS * 2 or exponent > MAX_INT_BITS
    if isinstance(base, (int, float)) and isinstance(exponent, (int, float)):
        return abs(exponent) > 10_000  # floats overflow to an error or inf quickly; never loop on it
    return False


def shift_too_big(left: Any, right: Any) -> bool:
    return isinstance(left, int) and isinstance(right, int) and right > MAX_INT_BITS


def concat_too_big(left: Any, right: Any) -> bool:
    if isinstance(left, (str, bytes)) and isinstance(right, (str, bytes)):
        return len(left) + len(right) > MAX_CHARS
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) + len(right) > MAX_ITEMS
    return False
