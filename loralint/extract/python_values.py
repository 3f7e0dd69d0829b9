"""Static evaluation of Python expressions: what a value is, when it can be known without running.

Handles literals, names bound once, dicts and `dict(...)`, containers, simple arithmetic, the
default of an argparse option read as `args.x`, and the default of a dataclass field read through
an instance. Everything else is `Unknown` with the reason. Nothing is ever executed: string
literals go through `ast.literal_eval`, which only parses literals.
"""

from __future__ import annotations

import ast
import operator
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import libcst as cst

from loralint.extract.bounds import MAX_RANGE_ITEMS, MAX_VALUE_SIZE, ValueGuard, ValueTooLarge, note
from loralint.extract.python_scope import Binding, DataclassInfo, Scope, dotted_name
from loralint.sites import Unknown

_MAX_DEPTH = 24
# `%`-formatting: a width or precision written in the format, or taken from the arguments (`*`).
_PERCENT_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.Divide: operator.truediv,
    cst.FloorDivide: operator.floordiv,
    cst.Modulo: operator.mod,
    cst.Power: operator.pow,
}
_BUILTIN_CALLS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "list": list,
    "tuple": tuple,
    "set": set,
    "sorted": sorted,
}


@dataclass(slots=True)
class Value:
    value: Any
    provenance: str = "literal"
    node: cst.CSTNode | None = None  # where the value is written (for spans)

    @property
    def known(self) -> bool:
        return not isinstance(self.value, Unknown)


@dataclass(slots=True)
class ArgparseOption:
    dest: str
    flag: str
    call: cst.Call
    default: cst.BaseExpression | None
    type_name: str | None
    action: str | None


def _literal(text: str) -> Any:
    """A literal's value (`ast.literal_eval` only parses), without the warnings Python prints for
    `"\\d"` and the like (a SyntaxWarning per string from Python 3.12)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.literal_eval(text)


def unknown(reason: str, node: cst.CSTNode | None = None) -> Value:
    return Value(Unknown(reason), "unknown", node)


class Evaluator:
    """Evaluates expressions of one module. `resolve_qualname` maps a Name/Attribute to an import path."""

    def __init__(
        self,
        code_for: Callable[[cst.CSTNode], str],
        line_of: Callable[[cst.CSTNode], int],
        resolve_qualname: Callable[[cst.CSTNode, Scope], str | None],
        dataclasses: dict[str, DataclassInfo],
        argparse_options: dict[str, ArgparseOption],
        function_returns: Callable[[cst.CSTNode], list[cst.Return]] | None = None,
    ) -> None:
        self.code_for = code_for
        self.line_of = line_of
        self.resolve_qualname = resolve_qualname
        self.dataclasses = dataclasses
        self.argparse_options = argparse_options
        self.function_returns = function_returns
        self._active: set[int] = set()
        self.guard = ValueGuard()  # bounds what this file's evaluation builds
        # A name's value, evaluated once per binding: repeated uses (`b = a + a`, `c = b + b`, ...)
        # cost no more than one, whatever the chain.
        self._bound: dict[int, tuple[Binding, Value]] = {}

    # --- entry point -------------------------------------------------------------------------
    def eval(self, node: cst.BaseExpression, scope: Scope, depth: int = 0) -> Value:
        if id(node) in self._active:
            return unknown("the value refers to itself", node)
        if depth > _MAX_DEPTH:
            return unknown("nested too deeply to evaluate", node)
        self._active.add(id(node))
        try:
            self.guard.step()
            result = self._eval(node, scope, depth + 1)
        except (ValueTooLarge, MemoryError) as exc:
            refused = exc if isinstance(exc, ValueTooLarge) else ValueTooLarge("a value too large to build")
            note(refused.kind, refused.note_text(), self.line_of(node))
            result = unknown("value too large to evaluate" if refused.kind == "value-size" else str(refused), node)
        except (ArithmeticError, TypeError, ValueError, OverflowError, RecursionError) as exc:
            result = unknown(f"cannot compute {self.code_for(node)!r} ({type(exc).__name__})", node)
        finally:
            self._active.discard(id(node))
        if result.node is None:
            result.node = node
        return result

    def _eval(self, node: cst.BaseExpression, scope: Scope, depth: int) -> Value:
        if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
            return Value(self.guard.admit(_literal(node.value)))
        if isinstance(node, cst.ConcatenatedString):
            left, right = self.eval(node.left, scope, depth), self.eval(node.right, scope, depth)
            if left.known and right.known:
                self.guard.expect(self.guard.size(left.value) + self.guard.size(right.value))
                return Value(self.guard.admit(left.value + right.value))
            return unknown("part of the string is not a literal", node)
        if isinstance(node, cst.FormattedString):
            return self._fstring(node, scope, depth)
        if isinstance(node, cst.Name):
            return self._name(node, scope, depth)
        if isinstance(node, cst.UnaryOperation):
            operand = self.eval(node.expression, scope, depth)
            if not operand.known:
                return operand
            if isinstance(node.operator, cst.Minus):
                return Value(-operand.value, operand.provenance)
            if isinstance(node.operator, cst.Plus):
                return Value(+operand.value, operand.provenance)
            if isinstance(node.operator, cst.Not):
                return Value(not operand.value, operand.provenance)
            return unknown(f"cannot compute {self.code_for(node)!r}", node)
        if isinstance(node, cst.BinaryOperation):
            return self._binop(node, scope, depth)
        if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
            return self._sequence(node, scope, depth)
        if isinstance(node, cst.Dict):
            return self._dict(node, scope, depth)
        if isinstance(node, cst.Call):
            return self._call(node, scope, depth)
        if isinstance(node, cst.Attribute):
            return self._attribute(node, scope, depth)
        if isinstance(node, cst.Subscript):
            return self._subscript(node, scope, depth)
        if isinstance(node, cst.IfExp):
            return unknown(f"depends on a condition ({self.code_for(node.test)})", node)
        if isinstance(node, (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)):
            return unknown("built by a comprehension", node)
        return unknown(f"{self.code_for(node)!r} is not a literal", node)

    # --- pieces ------------------------------------------------------------------------------
    def _fstring(self, node: cst.FormattedString, scope: Scope, depth: int) -> Value:
        parts: list[str] = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                parts.append(part.value)
                continue
            value = self.eval(part.expression, scope, depth)
            if not value.known or part.format_spec or part.conversion:
                return unknown("an f-string with a value that is not statically known", node)
            parts.append(str(value.value))
            self.guard.expect(sum(map(len, parts)))
        return Value(self.guard.admit("".join(parts)), "f-string")

    def _name(self, node: cst.Name, scope: Scope, depth: int) -> Value:
        name = node.value
        if name in ("True", "False", "None"):
            return Value({"True": True, "False": False, "None": None}[name])
        bindings = scope.lookup(name)
        if not bindings:
            return unknown(f"{name} is not defined in this file", node)
        if len(bindings) > 1:
            lines = ", ".join(str(self.line_of(b.target)) for b in bindings[:4])
            return unknown(f"{name} is assigned {len(bindings)} times (lines {lines})", node)
        binding = bindings[0]
        if binding.kind == "assign" and binding.value is not None:
            remembered = self._bound.get(id(binding))
            if remembered is not None and remembered[0] is binding:
                inner = remembered[1]
            else:
                inner = self.eval(binding.value, binding.scope or scope, depth)
                self._bound[id(binding)] = (binding, inner)
            if not inner.known:
                return inner
            provenance = f"{name} at line {self.line_of(binding.target)}"
            if inner.provenance.startswith("default of"):
                provenance = inner.provenance
            return Value(inner.value, provenance, inner.node)
        if binding.kind == "unpack" and binding.value is not None and binding.index is not None:
            whole = self.eval(binding.value, binding.scope or scope, depth)
            if whole.known and isinstance(whole.value, (list, tuple)) and binding.index < len(whole.value):
                return Value(whole.value[binding.index], f"{name} at line {self.line_of(binding.target)}")
            return unknown(f"{name} comes from unpacking {self.code_for(binding.value)!r}", node)
        if binding.kind == "import":
            return unknown(f"{name} is imported from {binding.qualname}", node)
        if binding.kind == "param":
            return unknown(f"{name} is a function parameter", node)
        if binding.kind == "loop":
            return unknown(f"{name} is a loop variable", node)
        return unknown(f"{name} is not bound to a literal", node)

    def _binop(self, node: cst.BinaryOperation, scope: Scope, depth: int) -> Value:
        op = _BINOPS.get(type(node.operator))
        left, right = self.eval(node.left, scope, depth), self.eval(node.right, scope, depth)
        if op is None:
            return unknown(f"cannot compute {self.code_for(node)!r}", node)
        if not left.known:
            return left
        if not right.known:
            return right
        self._expect_result(op, left.value, right.value)
        return Value(self.guard.admit(op(left.value, right.value)), f"computed as {self.code_for(node)}")

    def _expect_result(self, op: Callable[[Any, Any], Any], left: Any, right: Any) -> None:
        """Refuse, before computing it, a result over the bounds: repetition and concatenation of
        strings and sequences, integer powers and products, `%`-formatting with a huge width."""
        guard = self.guard
        sequence = (str, bytes, list, tuple)
        if op is operator.mul and isinstance(left, int) and isinstance(right, sequence):
            left, right = right, left
        if op is operator.mul and isinstance(left, sequence) and isinstance(right, int):
            guard.expect((guard.size(left) - 1) * max(right, 0) + 1)
        elif op is operator.add and isinstance(left, sequence) and isinstance(right, sequence):
            guard.expect(guard.size(left) + guard.size(right))
        elif op is operator.pow and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1:  # a negative exponent gives a float: cheap
                # A lower bound on the result's bits (exact for powers of two); the result is checked too.
                guard.expect_int_bits((abs(left).bit_length() - 1) * right + 1)
        elif op is operator.mul and isinstance(left, int) and isinstance(right, int):
            guard.expect_int_bits(left.bit_length() + right.bit_length())
        elif op is operator.mod and isinstance(left, (str, bytes)):
            text = left if isinstance(left, str) else left.decode("latin-1")
            for match in _PERCENT_WIDTH.finditer(text):
                for width in match.groups():
                    if width == "*" or (width is not None and int(width) > MAX_VALUE_SIZE):
                        raise ValueTooLarge("a %-format with a width or precision too large to build")

    def _sequence(self, node: cst.List | cst.Tuple | cst.Set, scope: Scope, depth: int) -> Value:
        items: list[Any] = []
        for element in node.elements:
            value = self.eval(element.value, scope, depth)
            if isinstance(element, cst.StarredElement):
                if not value.known or not isinstance(value.value, (list, tuple, set)):
                    return unknown("a starred element that is not statically known", node)
                self.guard.expect(len(items) + len(value.value))
                items.extend(value.value)
            else:
                items.append(value.value)  # Unknown items stay inside; rules check is_known
        if isinstance(node, cst.Tuple):
            return Value(self.guard.admit(tuple(items)))
        if isinstance(node, cst.Set):
            try:
                return Value(self.guard.admit(set(items)))
            except TypeError:
                return unknown("a set with unhashable items", node)
        return Value(self.guard.admit(items))

    def _dict(self, node: cst.Dict, scope: Scope, depth: int) -> Value:
        out: dict[Any, Any] = {}
        for element in node.elements:
            if isinstance(element, cst.StarredDictElement):
                inner = self.eval(element.value, scope, depth)
                if not inner.known or not isinstance(inner.value, dict):
                    return unknown(f"**{self.code_for(element.value)} is not statically known", node)
                out.update(inner.value)
                continue
            key = self.eval(element.key, scope, depth)
            if not key.known:
                return unknown("a dict key that is not statically known", node)
            try:
                out[key.value] = self.eval(element.value, scope, depth).value
            except TypeError:
                return unknown("a dict key that is not hashable", node)
        return Value(self.guard.admit(out))

    def _call(self, node: cst.Call, scope: Scope, depth: int) -> Value:
        func = dotted_name(node.func)
        qual = self.resolve_qualname(node.func, scope) or func or ""
        if func == "dict" or qual == "builtins.dict":
            return self.eval_dict_call(node, scope, depth)
        if func in _BUILTIN_CALLS and not scope.lookup(func):
            args = [self.eval(a.value, scope, depth) for a in node.args]
            if any(a.keyword is not None or a.star for a in node.args):
                return unknown(f"cannot compute {self.code_for(node)!r}", node)
            for arg in args:
                if not arg.known:
                    return arg
            if func == "round" and len(args) == 2 and not (isinstance(args[1].value, int) and abs(args[1].value) <= 1000):
                return unknown(f"cannot compute {self.code_for(node)!r}", node)  # round(x, -10**9) builds 10**10**9
            result = _BUILTIN_CALLS[func](*(a.value for a in args))
            return Value(self.guard.admit(result), f"computed as {self.code_for(node)}")
        if func == "range" and not scope.lookup("range"):
            args = [self.eval(a.value, scope, depth) for a in node.args]
            if all(a.known and isinstance(a.value, int) for a in args) and 1 <= len(args) <= 3:
                produced = range(*(a.value for a in args))
                try:
                    count = len(produced)
                except OverflowError:  # more items than a machine integer counts
                    count = MAX_RANGE_ITEMS + 1
                if count > MAX_RANGE_ITEMS:
                    raise ValueTooLarge(f"a range of more than {MAX_RANGE_ITEMS:,} items")
                return Value(self.guard.admit(list(produced)), f"computed as {self.code_for(node)}")
            return unknown(f"cannot compute {self.code_for(node)!r}", node)
        # A PEFT sub-configuration (LoftQConfig(...), EvaConfig(...)) reads as the dict of its arguments.
        if qual.startswith("peft.") and qual.endswith("Config"):
            return self.eval_dict_call(node, scope, depth)
        # An instance of a dataclass defined in this file.
        return unknown(f"the result of {func or 'a call'}(...)", node)

    def eval_dict_call(self, node: cst.Call, scope: Scope, depth: int = 0) -> Value:
        out: dict[str, Any] = {}
        for arg in node.args:
            if arg.star == "**" or (arg.keyword is None and arg.star == ""):
                inner = self.eval(arg.value, scope, depth)
                if not inner.known or not isinstance(inner.value, dict):
                    return unknown(f"{self.code_for(arg.value)} is not statically known", node)
                out.update(inner.value)
            elif arg.keyword is not None:
                out[arg.keyword.value] = self.eval(arg.value, scope, depth).value
            else:
                return unknown(f"cannot compute {self.code_for(node)!r}", node)
        return Value(self.guard.admit(out))

    def _subscript(self, node: cst.Subscript, scope: Scope, depth: int) -> Value:
        base = self.eval(node.value, scope, depth)
        if not base.known:
            return base
        if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
            return unknown(f"cannot compute {self.code_for(node)!r}", node)
        key = self.eval(node.slice[0].slice.value, scope, depth)
        if not key.known:
            return key
        try:
            return Value(base.value[key.value], base.provenance)
        except (KeyError, IndexError, TypeError):
            return unknown(f"{self.code_for(node)} does not exist", node)

    # --- attributes: enums, argparse options, dataclass fields --------------------------------
    def _attribute(self, node: cst.Attribute, scope: Scope, depth: int) -> Value:
        qual = self.resolve_qualname(node, scope)
        if qual and qual.startswith("peft.") and ".TaskType." in f".{qual}":
            return Value(qual.rsplit(".", 1)[1], f"TaskType.{qual.rsplit('.', 1)[1]}")
        if qual and qual.startswith("torch.") and qual.count(".") == 1:
            return Value(qual, "torch attribute")  # torch.bfloat16 etc., compared as text
        attr = node.attr.value
        owner = node.value
        if isinstance(owner, cst.Name):
            bindings = scope.lookup(owner.value)
            value = self._attribute_of_binding(owner.value, bindings, attr, scope, depth)
            if value is not None:
                return value
        return unknown(f"{self.code_for(node)} is set at run time", node)

    def _attribute_of_binding(
        self, owner: str, bindings: list[Binding], attr: str, scope: Scope, depth: int
    ) -> Value | None:
        sources = [b for b in bindings if b.kind != "mutate"]
        if any(b.kind == "mutate" for b in bindings) or len(sources) != 1:
            return None
        binding = sources[0]
        value = binding.value
        # args = parse_args(), a local function that returns parser.parse_args()
        returned = self.returned_expression(value, scope) if isinstance(value, cst.Call) else None
        if returned is not None:
            value = returned
        # args = parser.parse_args() / args, _ = parser.parse_known_args()
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            method = value.func.attr.value
            if method in ("parse_args", "parse_known_args") and attr in self.argparse_options:
                return self.argparse_default(self.argparse_options[attr], scope, depth)
            if method in ("parse_args_into_dataclasses", "parse_yaml_file", "parse_json_file", "parse_dict"):
                cls = self._hf_parser_class(value, binding.index, scope)
                if cls is not None:
                    return self.dataclass_default(cls, attr, scope, depth)
                return self._unique_dataclass_field(attr, scope, depth)
        # args = TrainArgs(...) with a dataclass defined here.
        if isinstance(value, cst.Call):
            cls_name = dotted_name(value.func)
            if cls_name in self.dataclasses:
                for arg in value.args:
                    if arg.keyword is not None and arg.keyword.value == attr:
                        inner = self.eval(arg.value, scope, depth)
                        return Value(inner.value, f"{cls_name}({attr}=...)", inner.node)
                return self.dataclass_default(self.dataclasses[cls_name], attr, scope, depth)
        # def train(args: TrainArgs) / cfg: TrainArgs
        if binding.kind in ("param", "declare") and binding.annotation is not None:
            cls_name = dotted_name(binding.annotation)
            if cls_name in self.dataclasses:
                return self.dataclass_default(self.dataclasses[cls_name], attr, scope, depth)
        return None

    def returned_expression(self, call: cst.Call, scope: Scope) -> cst.BaseExpression | None:
        """What a call to a local function returns, when it has exactly one `return <expr>`."""
        if self.function_returns is None or not isinstance(call.func, cst.Name):
            return None
        bindings = scope.lookup(call.func.value)
        if len(bindings) != 1 or bindings[0].kind != "def":
            return None
        returns = self.function_returns(bindings[0].node)
        if len(returns) != 1 or returns[0].value is None:
            return None
        return returns[0].value

    def _hf_parser_class(self, call: cst.Call, index: int | None, scope: Scope) -> DataclassInfo | None:
        """HfArgumentParser((ModelArgs, DataArgs)).parse_args_into_dataclasses() unpacked by position."""
        assert isinstance(call.func, cst.Attribute)
        parser = call.func.value
        if isinstance(parser, cst.Name):
            bindings = scope.lookup(parser.value)
            if len(bindings) == 1 and isinstance(bindings[0].value, cst.Call):
                parser = bindings[0].value
        if not isinstance(parser, cst.Call) or not parser.args:
            return None
        first = parser.args[0].value
        classes = [e.value for e in first.elements] if isinstance(first, (cst.Tuple, cst.List)) else [first]
        position = index or 0
        if position < len(classes):
            name = dotted_name(classes[position])
            return self.dataclasses.get(name or "")
        return None

    def _unique_dataclass_field(self, attr: str, scope: Scope, depth: int) -> Value | None:
        owners = [info for info in self.dataclasses.values() if attr in info.fields]
        if len(owners) == 1:
            return self.dataclass_default(owners[0], attr, scope, depth)
        return None

    def dataclass_default(self, info: DataclassInfo, attr: str, scope: Scope, depth: int) -> Value:
        declaration = info.fields.get(attr)
        where = f"default of {info.name}.{attr}"
        if declaration is None or declaration.value is None:
            return unknown(f"{info.name}.{attr} has no default", declaration)
        value = declaration.value
        if isinstance(value, cst.Call) and (dotted_name(value.func) or "").split(".")[-1] in ("field", "Field"):
            for arg in value.args:
                if arg.keyword is None and (dotted_name(value.func) or "").endswith("Field"):
                    value = arg.value  # pydantic Field(8, ...)
                    break
                if arg.keyword is not None and arg.keyword.value == "default":
                    value = arg.value
                    break
                if arg.keyword is not None and arg.keyword.value == "default_factory":
                    factory = arg.value
                    if isinstance(factory, cst.Lambda):
                        value = factory.body
                    elif isinstance(factory, cst.Name) and factory.value in ("list", "dict", "set"):
                        return Value({"list": [], "dict": {}, "set": set()}[factory.value], where, factory)
                    else:
                        return unknown(f"{info.name}.{attr} has a computed default", declaration)
                    break
            else:
                return unknown(f"{info.name}.{attr} has no default", declaration)
        inner = self.eval(value, scope, depth)
        return Value(inner.value, where, inner.node)

    def argparse_default(self, option: ArgparseOption, scope: Scope, depth: int) -> Value:
        where = f"default of {option.flag}"
        if option.action in ("store_true", "store_false"):
            return Value(option.action == "store_false", where, option.call)
        if option.default is None:
            return Value(None, where, option.call)
        inner = self.eval(option.default, scope, depth)
        value = inner.value
        # argparse applies `type` to string defaults.
        if inner.known and isinstance(value, str) and option.type_name in ("int", "float"):
            try:
                value = int(value) if option.type_name == "int" else float(value)
            except ValueError:
                pass
        return Value(value, where, inner.node)
