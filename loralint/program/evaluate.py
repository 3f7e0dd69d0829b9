"""Static evaluation over the flow model: what an expression holds, when it can be known without
running anything.

Names read the bindings that reach them (recorded by the walk), so a rebinding ends the old
value and `if`/`else` gives alternatives. Helpers are followed within the module: a call to a
local function is what its `return`s can be; a parameter is what its call sites pass (or its
default, or its annotation's dataclass). Library calls that make the objects of a training script
(models, LoRA configs, PEFT models, trainers, data sets, argument parsers) evaluate to an `Obj`
identified by the call that made it. Nothing is ever executed, imported or compiled: constants
come from the parser, and arithmetic passes the guards in `values`.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any, Callable

from loralint.lazy_re import lazy
from loralint.peft_fields import TRL_MODEL_CONFIG_ATTR_DEFAULTS
from loralint.program.flow import Binding, ClassInfo, FlowModel, Point, Scope, dotted
from loralint.program.objects import call_kind, is_trl_model_config, model_library, same_object_method
from loralint.program.text import SourceText
from loralint.program.values import (
    ClassRef,
    FunctionRef,
    ImportRef,
    Namespace,
    Obj,
    OneOf,
    Value,
    concat_too_big,
    guard,
    limit,
    objects_in,
    options_of,
    power_too_big,
    repeat_too_big,
    shift_too_big,
    unknown,
)
from loralint.sites import Unknown

MAX_DEPTH = 40  # nested evaluations (expressions inside expressions, names through bindings)
MAX_STEPS = 200_000  # evaluations per module: a hostile file cannot make the evaluator crawl

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
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
    "len": len,
}
_FLAG_RE = lazy(r"^--?([\w-]+)$")


@dataclass(slots=True, repr=False, eq=False)
class ArgparseOption:
    """An `add_argument` call: its destination, flag and default."""

    dest: str
    flag: str
    call: ast.Call
    default: ast.expr | None
    type_name: str | None
    action: str | None


def plain(value: Value) -> Any:
    """A value as configuration data: references become text where PEFT reads text
    (`TaskType.SEQ_CLS` -> "SEQ_CLS", `torch.bfloat16` -> "torch.bfloat16"), else Unknown."""
    v = value.value
    if isinstance(v, OneOf):
        options = options_of(value)
        datas = [plain(o) for o in options]
        if datas and all(_same(d, datas[0]) for d in datas):
            return datas[0]
        shown = ", ".join(list(dict.fromkeys(_show(d) for d in datas))[:4])
        return Unknown(f"{v.what}: one of {shown}" if shown else v.what)
    if isinstance(v, ImportRef):
        q = v.qualname
        if q.startswith("peft.") and ".TaskType." in f".{q}":
            return q.rsplit(".", 1)[1]
        if q.startswith("torch.") and q.count(".") == 1:
            return q
        return Unknown(f"{q} is imported")
    if isinstance(v, (Obj, FunctionRef, ClassRef, Namespace)):
        return Unknown("an object built at run time")
    if isinstance(v, (list, tuple)) and any(isinstance(i, _REFS) for i in v):
        return type(v)(Unknown("an object built at run time") if isinstance(i, _REFS) else i for i in v)
    return v


_REFS = (Obj, FunctionRef, ClassRef, Namespace, ImportRef, OneOf)


def provenance_of(value: Value, data: Any) -> str:
    """Where a field's value comes from, as messages quote it."""
    v = value.value
    if isinstance(v, ImportRef) and isinstance(data, str):
        return f"TaskType.{data}" if not data.startswith("torch.") else "torch attribute"
    if isinstance(data, Unknown):
        return "unknown"
    return value.provenance


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Unknown) or isinstance(b, Unknown):
        return False
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _show(value: Any) -> str:
    if isinstance(value, Unknown):
        return "?"
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


class Evaluator:
    def __init__(self, flow: FlowModel, text: SourceText) -> None:
        self.flow = flow
        self.text = text
        self.reach = flow.reach
        self._memo: dict[ast.AST, Value] = {}
        self._binding_memo: dict[Binding, Value] = {}
        self._active: set[ast.AST] = set()
        self._active_bindings: set[Binding] = set()
        self._depth = 0
        self._steps = 0
        self._cuts = 0
        self._objects: dict[ast.AST, Obj] = {}
        self._call_sites: dict[ast.AST, list[tuple[ast.Call, Point, int]]] | None = None
        self._argparse: dict[str, ArgparseOption] | None = None
        self._dataclasses: dict[str, ClassInfo] | None = None
        self._stores_by_attr: dict[str, list[ast.Attribute]] | None = None

    def release(self) -> None:
        """Forget every memo (Program.release: the model is not asked again)."""
        self._memo.clear()
        self._binding_memo.clear()
        self._objects.clear()
        self._call_sites = self._argparse = self._dataclasses = self._stores_by_attr = None

    # --- entry points ------------------------------------------------------------------------
    def eval(self, node: ast.AST) -> Value:
        memo = self._memo.get(node)
        if memo is not None:
            return memo
        if node in self._active:
            self._cuts += 1
            return unknown("the value refers to itself", node)
        if self._depth > MAX_DEPTH:
            self._cuts += 1
            return limit(f"nested deeper than {MAX_DEPTH} levels: not followed", node)
        self._steps += 1
        if self._steps > MAX_STEPS:
            self._cuts += 1
            return limit(f"more than {MAX_STEPS:,} evaluations in this file: the rest is not followed", node)
        self._active.add(node)
        self._depth += 1
        cuts = self._cuts
        try:
            result = self._eval(node)
        except (ArithmeticError, TypeError, ValueError, OverflowError, MemoryError, AttributeError, KeyError,
                IndexError) as exc:
            result = unknown(f"cannot compute {self.text.short(node)!r} ({type(exc).__name__})", node)
        finally:
            self._depth -= 1
            self._active.discard(node)
        if result.node is None:
            result.node = node
        if self._cuts == cuts:  # a value cut short by a cycle is not the value elsewhere
            self._memo[node] = result
        return result

    def settled(self, node: ast.AST) -> bool:
        """Whether `node`'s value is kept (every later eval returns it): not one cut short by a cycle."""
        return node in self._memo

    def qualname(self, node: ast.AST) -> str | None:
        """The import path an expression refers to (`peft.LoraConfig`), or None."""
        if not isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)):
            return None
        value = self.eval(node)
        refs = {o.value.qualname for o in options_of(value) if isinstance(o.value, ImportRef)}
        others = [o for o in options_of(value) if not isinstance(o.value, ImportRef) and o.value is not None]
        if len(refs) == 1 and not others:
            return refs.pop()
        return None

    def objects(self, node: ast.AST) -> list[Obj]:
        return objects_in(self.eval(node))

    def created(self, node: ast.AST) -> Obj | None:
        """The object a creating call made (after it was evaluated)."""
        return self._objects.get(node)

    # --- dispatch ----------------------------------------------------------------------------
    def _eval(self, node: ast.AST) -> Value:
        t = type(node)
        if t is ast.Constant:
            return guard(node.value, "literal", node)  # type: ignore[attr-defined]
        if t is ast.Name:
            return self._narrow(node, self._name(node))  # type: ignore[arg-type]
        if t is ast.Attribute:
            return self._narrow(node, self._attribute(node))  # type: ignore[arg-type]
        if t is ast.Call:
            return self._call(node)  # type: ignore[arg-type]
        if t is ast.BinOp:
            return self._binop(node)  # type: ignore[arg-type]
        if t is ast.UnaryOp:
            return self._unary(node)  # type: ignore[arg-type]
        if t is ast.List or t is ast.Tuple or t is ast.Set:
            return self._sequence(node)  # type: ignore[arg-type]
        if t is ast.Dict:
            return self._dict(node)  # type: ignore[arg-type]
        if t is ast.Subscript:
            return self._subscript(node)  # type: ignore[arg-type]
        if t is ast.JoinedStr:
            return self._fstring(node)  # type: ignore[arg-type]
        if t is ast.BoolOp:
            return self._boolop(node)  # type: ignore[arg-type]
        if t is ast.IfExp:
            test = self.text.short(node.test)  # type: ignore[attr-defined]
            return Value(OneOf((self.eval(node.body), self.eval(node.orelse)), f"depends on a condition ({test})"))  # type: ignore[attr-defined]
        if t is ast.NamedExpr:
            return self.eval(node.value)  # type: ignore[attr-defined]
        if t in (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp):
            return unknown("built by a comprehension", node)
        return unknown(f"{self.text.short(node)!r} is not a literal", node)

    def _narrow(self, node: ast.AST, value: Value) -> Value:
        """Drop what a guard around this read rules out: None under `if x is not None:`, every
        falsy literal under `if x:`. When nothing is left the value is unknown, not the guarded one."""
        kind = self.flow.narrowed.get(node)
        if kind is None:
            return value
        options = options_of(value)
        kept = [o for o in options if not _ruled_out(o.value, kind)]
        if len(kept) == len(options):
            return value
        test = "is not None" if kind == "notnone" else "is true"
        if not kept:
            return unknown(f"{self.text.short(node)} {test} here (a condition checks it)", node)
        if len(kept) == 1:
            return kept[0]
        what = value.value.what if isinstance(value.value, OneOf) else self.text.short(node)
        return _one_of(tuple(kept), what, self.text.short(node))

    # --- names and bindings ------------------------------------------------------------------
    def _name(self, node: ast.Name) -> Value:
        name = node.id
        bindings = self.reach.get(node)
        if bindings is None:
            return unknown(f"{name} is not bound here", node)
        if not bindings:
            if name in _BUILTIN_CALLS or name in ("dict", "range", "print", "getattr", "setattr", "isinstance"):
                return Value(ImportRef(f"builtins.{name}"), "builtin")
            return unknown(f"{name} is not defined in this file", node)
        return self.from_bindings(name, bindings)

    def from_bindings(self, name: str, bindings: tuple[Binding, ...]) -> Value:
        if len(bindings) == 1:
            return self.binding_value(bindings[0])
        values = tuple(self.binding_value(b) for b in bindings)
        lines = ", ".join(str(b.line) for b in bindings[:4]) + (", ..." if len(bindings) > 4 else "")
        return _one_of(values, f"{name} is assigned {len(bindings)} times (lines {lines})", f"{name} at lines {lines}")

    def binding_value(self, b: Binding) -> Value:
        memo = self._binding_memo.get(b)
        if memo is not None:
            return memo
        if b in self._active_bindings:  # `x += 1` in a loop reaches itself
            self._cuts += 1
            return unknown(f"{b.name} depends on its own earlier value (line {b.line})", b.target)
        if self._depth > MAX_DEPTH:
            self._cuts += 1
            return limit(f"nested deeper than {MAX_DEPTH} levels: not followed", b.target)
        cuts = self._cuts
        self._active_bindings.add(b)
        self._depth += 1
        try:
            value = self._binding_value(b)
        finally:
            self._depth -= 1
            self._active_bindings.discard(b)
        if self._cuts == cuts:
            self._binding_memo[b] = value
        return value

    def _binding_value(self, b: Binding) -> Value:
        kind, name = b.kind, b.name
        if kind in ("assign", "attr", "global"):
            if b.value is None:
                return unknown(f"{name} has no value", b.target)
            inner = self.eval(b.value)
            if inner.known and not isinstance(inner.value, (Obj, ImportRef, FunctionRef, ClassRef, Namespace)):
                provenance = inner.provenance if inner.provenance.startswith("default of") else f"{name} at line {b.line}"
                return Value(inner.value, provenance, inner.node)
            return inner
        if kind == "unpack":
            whole = self.eval(b.value) if b.value is not None else unknown("nothing to unpack")
            element = _element(whole, b.path)
            if element is None:
                return unknown(f"{name} comes from unpacking {self.text.short(b.value)!r}", b.target)  # type: ignore[arg-type]
            if element.known and not isinstance(element.value, (Obj, ImportRef, Namespace)):
                return Value(element.value, f"{name} at line {b.line}", element.node)
            return element
        if kind == "import":
            return Value(ImportRef(b.qualname or name), f"import of {b.qualname}")
        if kind == "def":
            return Value(FunctionRef(b.node))  # type: ignore[arg-type]
        if kind == "class":
            return Value(ClassRef(b.node))  # type: ignore[arg-type]
        if kind == "param":
            return self._param(b)
        if kind == "loop":
            return self._loop_variable(b)
        if kind == "augassign":
            aug: ast.AugAssign = b.node  # type: ignore[assignment]
            before = self.reach.get(aug, ())
            left = self.from_bindings(name, before) if before else unknown(f"{name} is not defined before +=")
            right = self.eval(aug.value)
            return self._apply_binop(aug.op, left, right, aug)
        if kind == "declare":
            return self._annotated(b, unknown(f"{name} is declared without a value", b.target))
        if kind == "starred":
            return unknown(f"{name} collects the rest of an unpacking", b.target)
        return unknown(f"{name} is bound by a {kind} statement", b.target)

    def _loop_variable(self, b: Binding) -> Value:
        iterable = self.eval(b.value) if b.value is not None else unknown("no iterable")
        items = iterable.value
        if isinstance(items, dict):
            items = list(items)
        if iterable.known and isinstance(items, (list, tuple, set, frozenset)) and 0 < len(items) <= 64:
            options = []
            for item in items:
                element = _element(Value(item, iterable.provenance), b.path)
                options.append(element if element is not None else unknown("cannot unpack an item"))
            return Value(OneOf(tuple(options), f"{b.name} is a loop variable"), "loop")
        return unknown(f"{b.name} is a loop variable", b.target)

    def _annotated(self, b: Binding, otherwise: Value) -> Value:
        if b.annotation is None:
            return otherwise
        cls = self.eval(b.annotation).value
        if isinstance(cls, ClassRef):
            info = self.flow.classes.get(cls.node)
            if info is not None and info.is_dataclass:
                return Value(self._object(b.annotation, "instance", cls=cls), f"an instance of {info.name}")
        return otherwise

    def _param(self, b: Binding) -> Value:
        scope = b.scope
        name = b.name
        if scope.kind != "function":
            return unknown(f"{name} is a parameter of a lambda", b.target)
        if scope.self_name == name and scope.params and scope.params[0][1] is b:
            return Value(self._object(scope.node, "self", cls=ClassRef(scope.cls.node)))  # type: ignore[union-attr]
        kind = next((k for k, p in scope.params if p is b), "pos")
        sites = self.call_sites(scope.node)
        default = self.eval(b.value) if b.value is not None else None
        if sites and kind not in ("vararg", "kwarg"):
            values: list[Value] = []
            for call, point, skip in sites[:16]:
                passed = self._passed(call, skip, b, kind, scope)
                if passed is None:
                    passed = default if default is not None else unknown(f"{name} is not passed at line {call.lineno}")
                elif passed.known and not isinstance(passed.value, (Obj, ImportRef)):
                    passed = Value(passed.value, f"passed to {scope.name}() at line {call.lineno}", passed.node)
                values.append(passed)
            if len(values) == 1:
                return values[0]
            lines = ", ".join(str(c.lineno) for c, _, _ in sites[:4])
            return _one_of(tuple(values), f"{name} is passed at {len(sites)} call sites (lines {lines})", f"{name} at lines {lines}")
        if default is not None:
            if default.known and not isinstance(default.value, (Obj, ImportRef, FunctionRef, ClassRef)):
                return Value(default.value, f"default of parameter {name} of {scope.name}()", default.node)
            return default
        return self._annotated(b, unknown(f"{name} is a function parameter", b.target))

    def _passed(self, call: ast.Call, skip: int, b: Binding, kind: str, scope: Scope) -> Value | None:
        for keyword in call.keywords:
            if keyword.arg == b.name and kind != "posonly":
                return self.eval(keyword.value)
        if kind in ("posonly", "pos"):
            positional = [p for k, p in scope.params if k in ("posonly", "pos")]
            index = positional.index(b) - skip
            if index >= 0:
                for position, arg in enumerate(call.args):
                    if isinstance(arg, ast.Starred):
                        return unknown(f"{b.name} may be passed in *{self.text.short(arg.value)}")
                    if position == index:
                        return self.eval(arg)
        if any(k.arg is None for k in call.keywords):
            return unknown(f"{b.name} may be passed in **kwargs at line {call.lineno}")
        return None

    def call_sites(self, function: ast.AST) -> list[tuple[ast.Call, Point, int]]:
        """Calls of a local function / method / class (its __init__) in this module: (call, point, skipped)."""
        if self._call_sites is None:
            index: dict[ast.AST, list[tuple[ast.Call, Point, int]]] = {}
            flow = self.flow
            classes = flow.classes
            # only a call of a name some def or class binds, or of an attribute some class's method is named
            defined = {scope.name for scope in flow.scopes.values() if scope.kind == "function" or scope.kind == "class"}
            methods = {name for info in classes.values() for name in info.methods}
            by_name, by_attribute = flow.by_name, flow.by_attribute
            positions = [i for name in defined if name in by_name for i in by_name[name]]
            positions.extend(i for name in methods if name in by_attribute for i in by_attribute[name])
            for call, point in flow.calls_at(positions):
                func = call.func
                if isinstance(func, ast.Name):
                    for binding in self.reach.get(func, ()):
                        if binding.kind == "def":
                            index.setdefault(binding.node, []).append((call, point, 0))  # type: ignore[arg-type]
                        elif binding.kind == "class":
                            init = classes[binding.node].methods.get("__init__")  # type: ignore[index]
                            if init is not None:
                                index.setdefault(init, []).append((call, point, 1))
                elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                    scope = point.scope
                    if scope.cls is not None and func.value.id == scope.self_name:
                        method = scope.cls.methods.get(func.attr)
                        if method is not None:
                            index.setdefault(method, []).append((call, point, 1))
            self._call_sites = index
        return self._call_sites.get(function, [])

    # --- operators and containers -------------------------------------------------------------
    def _unary(self, node: ast.UnaryOp) -> Value:
        operand = self.eval(node.operand)
        if not operand.known:
            return operand
        v = operand.value
        if isinstance(node.op, ast.USub) and isinstance(v, (int, float, complex)):
            return guard(-v, operand.provenance)
        if isinstance(node.op, ast.UAdd) and isinstance(v, (int, float, complex)):
            return guard(+v, operand.provenance)
        if isinstance(node.op, ast.Not) and not isinstance(v, (Obj, ImportRef, FunctionRef, ClassRef, Namespace)):
            return Value(not v, operand.provenance)
        if isinstance(node.op, ast.Invert) and isinstance(v, int):
            return guard(~v, operand.provenance)
        return unknown(f"cannot compute {self.text.short(node)!r}", node)

    def _binop(self, node: ast.BinOp) -> Value:
        return self._apply_binop(node.op, self.eval(node.left), self.eval(node.right), node)

    def _apply_binop(self, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value:
        fn = _BINOPS.get(type(op))
        if fn is None:
            return unknown(f"cannot compute {self.text.short(node)!r}", node)
        if not left.known:
            return left if isinstance(left.value, Unknown) else unknown(_reason(left), node)
        if not right.known:
            return right if isinstance(right.value, Unknown) else unknown(_reason(right), node)
        a, b = left.value, right.value
        if not (_is_data(a) and _is_data(b)):
            return unknown(f"cannot compute {self.text.short(node)!r}", node)
        if fn is operator.pow and power_too_big(a, b):
            return limit("exponent too large to compute statically", node)
        if fn is operator.mul and repeat_too_big(a, b):
            return limit("the value is too large to compute statically", node)
        if fn is operator.lshift and shift_too_big(a, b):
            return limit("the value is too large to compute statically", node)
        if fn is operator.add and concat_too_big(a, b):
            return limit("the value is too large to compute statically", node)
        if fn is operator.mod and isinstance(a, (str, bytes)):
            return unknown("%-formatting is not evaluated", node)
        return guard(fn(a, b), f"computed as {self.text.short(node)}")

    def _boolop(self, node: ast.BoolOp) -> Value:
        result = self.eval(node.values[0])
        for operand in node.values[1:]:
            if not result.known or not _is_data(result.value):
                return unknown(f"depends on a condition ({self.text.short(node)})", node)
            truthy = bool(result.value)
            if isinstance(node.op, ast.Or) and truthy or isinstance(node.op, ast.And) and not truthy:
                return result
            result = self.eval(operand)
        return result

    def _sequence(self, node: ast.List | ast.Tuple | ast.Set) -> Value:
        items: list[Any] = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                inner = self.eval(element.value)
                if not inner.known or not isinstance(inner.value, (list, tuple, set)):
                    return unknown("a starred element that is not statically known", node)
                items.extend(inner.value)
            else:
                value = self.eval(element)
                items.append(value.value if isinstance(value.value, (Obj,)) else plain(value))
            if len(items) > 100_000:
                return limit("the value is too large to compute statically", node)
        if isinstance(node, ast.Tuple):
            return guard(tuple(items), "literal", node)
        if isinstance(node, ast.Set):
            try:
                return guard(set(items), "literal", node)
            except TypeError:
                return unknown("a set with unhashable items", node)
        return guard(items, "literal", node)

    def _dict(self, node: ast.Dict) -> Value:
        out: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                inner = self.eval(value)
                if not inner.known or not isinstance(inner.value, dict):
                    return unknown(f"**{self.text.short(value)} is not statically known", node)
                out.update(inner.value)
                continue
            k = self.eval(key)
            if not k.known or not _is_data(k.value):
                return unknown("a dict key that is not statically known", node)
            try:
                out[k.value] = plain(self.eval(value))
            except TypeError:
                return unknown("a dict key that is not hashable", node)
        return guard(out, "literal", node)

    def _fstring(self, node: ast.JoinedStr) -> Value:
        parts: list[str] = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
                continue
            if not isinstance(part, ast.FormattedValue) or part.conversion != -1 or part.format_spec is not None:
                return unknown("an f-string with a value that is not statically known", node)
            value = self.eval(part.value)
            if not value.known or not _is_data(value.value):
                return unknown("an f-string with a value that is not statically known", node)
            parts.append(str(value.value))
        return guard("".join(parts), "f-string", node)

    def _subscript(self, node: ast.Subscript) -> Value:
        base = self.eval(node.value)
        if isinstance(node.slice, ast.Slice):
            return unknown(f"cannot compute {self.text.short(node)!r}", node)
        if not base.known:
            return base
        key = self.eval(node.slice)
        if not key.known:
            return key
        try:
            item = base.value[key.value]
        except (KeyError, IndexError, TypeError):
            return unknown(f"{self.text.short(node)} does not exist", node)
        if isinstance(item, Value):
            return item
        return Value(item, base.provenance)

    # --- attributes --------------------------------------------------------------------------
    def _attribute(self, node: ast.Attribute) -> Value:
        base_value = self.eval(node.value)
        if isinstance(base_value.value, OneOf):
            # `args` from one of two parser calls (a JSON file or the command line): the attribute of each
            options = options_of(base_value)
            if len(options) <= 8 and all(isinstance(o.value, (Namespace, Obj)) for o in options):
                values = tuple(self._attribute_of(node, o) for o in options)
                return _one_of(values, base_value.value.what, self.text.short(node))
        return self._attribute_of(node, base_value)

    def _attribute_of(self, node: ast.Attribute, base_value: Value) -> Value:
        attr = node.attr
        base = base_value.value
        if isinstance(base, ImportRef):
            return Value(ImportRef(f"{base.qualname}.{attr}"), f"import of {base.qualname}.{attr}")
        if isinstance(base, Namespace) or isinstance(base, Obj) and base.kind == "instance":
            changed = self._changed_at(base, attr)
            if changed is not None:
                return unknown(f"{self.text.short(node)} is changed at line {changed}", node)
        if isinstance(base, Namespace):
            option = self.argparse_options().get(attr)
            if option is not None:
                return self.argparse_default(option)
        elif isinstance(base, Obj):
            if base.kind == "instance":
                found = self._instance_attribute(base, attr)
                if found is not None:
                    return found
            elif base.kind == "self":
                return self._self_attribute(base, attr, node)
        return unknown(f"{self.text.short(node)} is set at run time", node)

    def _changed_at(self, owner: Namespace | Obj, attr: str) -> int | None:
        """The line of an `x.attr = ...` on this object (an argparse namespace, a dataclass instance)."""
        if self._stores_by_attr is None:
            index: dict[str, list[ast.Attribute]] = {}
            for store in self.flow.stores:
                if isinstance(store.target, ast.Attribute):
                    index.setdefault(store.target.attr, []).append(store.target)
            self._stores_by_attr = index
        for target in self._stores_by_attr.get(attr, ()):
            for option in options_of(self.eval(target.value)):
                other = option.value
                same = other is owner or (
                    isinstance(other, Namespace) and isinstance(owner, Namespace) and other.parser is owner.parser
                )
                if same:
                    return target.lineno
        return None

    def _self_attribute(self, obj: Obj, attr: str, node: ast.AST) -> Value:
        cls: ClassRef = obj.cls
        info = self.flow.classes.get(cls.node)
        stores = info.self_attrs.get(attr, []) if info is not None else []
        if not stores and info is not None and info.scope.final and attr in info.scope.final:
            return self.from_bindings(attr, info.scope.final[attr])  # a class attribute
        if not stores:
            return unknown(f"{self.text.short(node)} is set at run time", node)
        return self.from_bindings(f"self.{attr}", tuple(stores))

    def _instance_attribute(self, obj: Obj, attr: str) -> Value | None:
        cls = obj.cls
        info = self.flow.classes.get(cls.node) if isinstance(cls, ClassRef) else None
        if info is None:
            if is_trl_model_config(obj):
                return self.trl_attribute(obj, attr)
            if cls is None:  # a parser whose classes are not known: a field only one dataclass declares
                owners = [i for i in self.dataclasses().values() if attr in i.fields]
                if len(owners) == 1:
                    return self.dataclass_default(owners[0], attr)
            return None
        call = obj.node if isinstance(obj.node, ast.Call) else None
        if call is not None:
            for keyword in call.keywords:
                if keyword.arg == attr:
                    inner = self.eval(keyword.value)
                    return Value(inner.value, f"{info.name}({attr}=...)", inner.node)
        if attr in info.fields:
            return self.dataclass_default(info, attr)
        return None

    def trl_attribute(self, obj: Obj, attr: str) -> Value | None:
        """An attribute of TRL's ModelConfig (trl/trainer/model_config.py): the keyword written in
        `ModelConfig(...)`, else the dataclass default. One parsed from the command line
        (TrlParser / HfArgumentParser) has its defaults, except use_peft and model_name_or_path:
        scripts take those from flags, so they are not known. None: not an attribute mirrored here."""
        if attr not in TRL_MODEL_CONFIG_ATTR_DEFAULTS:
            return None
        default = TRL_MODEL_CONFIG_ATTR_DEFAULTS[attr]
        call = obj.node if isinstance(obj.node, ast.Call) else None
        if call is None:
            if attr in ("use_peft", "model_name_or_path"):
                return unknown(f"{attr} is a command-line flag (--{attr})", None)
            return Value(default, f"default of --{attr}")
        value: Value | None = None
        for keyword in call.keywords:
            if keyword.arg == attr:
                inner = self.eval(keyword.value)
                value = Value(inner.value, f"ModelConfig({attr}=...)" if inner.known else inner.provenance, inner.node)
        if value is None:
            if call.args or any(k.arg is None for k in call.keywords):
                return unknown(f"ModelConfig's {attr} may be passed positionally or in **kwargs", call)
            return Value(default, f"default of ModelConfig.{attr}", call)
        items = value.value
        if attr == "lora_target_modules" and isinstance(items, (list, tuple)) and len(items) == 1:
            # ModelConfig.__post_init__: a one-element list becomes its only element, a plain string.
            return Value(items[0], "ModelConfig turns a one-element lora_target_modules list into its string", value.node)
        return value

    def dataclasses(self) -> dict[str, ClassInfo]:
        if self._dataclasses is None:
            self._dataclasses = {i.name: i for i in self.flow.classes.values() if i.is_dataclass}
        return self._dataclasses

    def dataclass_default(self, info: ClassInfo, attr: str) -> Value:
        declaration = info.fields.get(attr)
        where = f"default of {info.name}.{attr}"
        if declaration is None or declaration.value is None:
            return unknown(f"{info.name}.{attr} has no default", declaration)
        value: ast.AST = declaration.value
        if isinstance(value, ast.Call) and (dotted(value.func) or "").rsplit(".", 1)[-1] in ("field", "Field"):
            call = value
            if call.args and (dotted(call.func) or "").endswith("Field"):
                value = call.args[0]  # pydantic Field(8, ...)
            else:
                keywords = {k.arg: k.value for k in call.keywords if k.arg}
                if "default" in keywords:
                    value = keywords["default"]
                elif "default_factory" in keywords:
                    factory = keywords["default_factory"]
                    if isinstance(factory, ast.Lambda):
                        value = factory.body
                    elif isinstance(factory, ast.Name) and factory.id in ("list", "dict", "set"):
                        return Value({"list": [], "dict": {}, "set": set()}[factory.id], where, factory)
                    else:
                        return unknown(f"{info.name}.{attr} has a computed default", declaration)
                else:
                    return unknown(f"{info.name}.{attr} has no default", declaration)
        inner = self.eval(value)
        return Value(plain(inner), where, inner.node)

    def argparse_options(self) -> dict[str, ArgparseOption]:
        if self._argparse is None:
            options: dict[str, ArgparseOption] = {}
            for call, _ in self.flow.calls_by_last(("add_argument",), attribute_only=True):
                names = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                if not names:
                    continue
                long = next((n for n in names if n.startswith("--")), names[0])
                match = _FLAG_RE.match(long)
                dest = match.group(1).replace("-", "_") if match else long
                keywords = {k.arg: k.value for k in call.keywords if k.arg}
                given = keywords.get("dest")
                if isinstance(given, ast.Constant) and isinstance(given.value, str):
                    dest = given.value
                action = keywords.get("action")
                type_node = keywords.get("type")
                options[dest] = ArgparseOption(
                    dest,
                    long,
                    call,
                    keywords.get("default"),
                    dotted(type_node) if type_node is not None else None,
                    action.value if isinstance(action, ast.Constant) and isinstance(action.value, str) else None,
                )
            self._argparse = options
        return self._argparse

    def argparse_default(self, option: ArgparseOption) -> Value:
        where = f"default of {option.flag}"
        if option.action in ("store_true", "store_false"):
            return Value(option.action == "store_false", where, option.call)
        if option.default is None:
            return Value(None, where, option.call)
        inner = self.eval(option.default)
        value = plain(inner)
        if isinstance(value, str) and option.type_name in ("int", "float"):
            try:
                value = int(value) if option.type_name == "int" else float(value)
            except ValueError:
                pass  # argparse would fail the same way at start-up
        return Value(value, where, inner.node)

    # --- calls -------------------------------------------------------------------------------
    def _call(self, node: ast.Call) -> Value:
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = self.eval(func.value)
            target = receiver.value
            if isinstance(target, ImportRef):
                return self._library_call(node, f"{target.qualname}.{func.attr}")
            if isinstance(target, Obj):
                return self._method_call(node, target, func.attr)
            if isinstance(target, OneOf):
                objects = objects_in(receiver)
                if objects and all(same_object_method(func.attr) for _ in objects):
                    return receiver
            return unknown(f"the result of {self.text.short(func)}(...)", node)
        callee = self.eval(func)
        target = callee.value
        if isinstance(target, OneOf):
            refs = [o.value for o in options_of(callee) if o.value is not None]
            if refs and all(isinstance(r, ImportRef) and r == refs[0] for r in refs):
                target = refs[0]
        if isinstance(target, ImportRef):
            return self._library_call(node, target.qualname)
        if isinstance(target, FunctionRef):
            return self.returned(target.node)
        if isinstance(target, ClassRef):
            return self._instantiate(node, target)
        name = dotted(func) or "a call"
        return unknown(f"the result of {name}(...)", node)

    def returned(self, function: ast.AST) -> Value:
        """What a local function returns: one of the values of its `return` statements."""
        scope = self.flow.scopes.get(function)
        if scope is None or scope.kind != "function":
            return unknown("not a function of this file")
        values = [self.eval(r.value) for r, _ in scope.returns if r.value is not None]
        if not values:
            return Value(None, f"{scope.name}() returns nothing")
        if len(values) == 1 and not scope.falls_through:
            return values[0]
        if scope.falls_through:
            values.append(Value(None))
        return _one_of(tuple(values), f"{scope.name}() returns one of {len(values)} values", f"{scope.name}()")

    def _object(self, node: ast.AST, kind: str, **extra: Any) -> Obj:
        """The one object a creating expression stands for (the same Obj however often it is evaluated)."""
        obj = self._objects.get(node)
        if obj is None:
            obj = Obj(kind, node, **extra)
            self._objects[node] = obj
        return obj

    def _library_call(self, node: ast.Call, qual: str) -> Value:
        kind = call_kind(qual)
        if kind is None:
            return unknown(f"the result of {qual.rsplit('.', 1)[-1]}(...)", node)
        if kind == "builtin":
            return self._builtin(node, qual.split(".", 1)[1])
        if kind == "lora_config":
            return Value(self._object(node, "lora_config", qualname=qual, library="peft"), "LoraConfig")
        if kind in ("model", "tokenizer"):
            return Value(self._object(node, kind, qualname=qual, library=model_library(qual)))
        if kind == "unsloth_load":
            model = self._object(node, "model", qualname=qual, library="unsloth")
            tokenizer = self._object(node.func, "tokenizer", qualname=qual, library="unsloth")
            return Value((model, tokenizer), "unsloth from_pretrained")
        if kind in ("peft_model", "peft_wrapper", "peft_loaded"):
            model_arg = argument(node, "model", 0)
            base = tuple(self.objects(model_arg)) if model_arg is not None else ()
            return Value(self._object(node, "peft_model", qualname=qual, library="peft", base=base))
        if kind == "prepare":
            model_arg = argument(node, "model", 0)
            return self.eval(model_arg) if model_arg is not None else unknown("no model argument", node)
        if kind == "inject":
            model_arg = argument(node, "model", 1)
            return self.eval(model_arg) if model_arg is not None else unknown("no model argument", node)
        if kind in ("trainer", "dataset", "parser"):
            return Value(self._object(node, kind, qualname=qual, library=qual.split(".", 1)[0]))
        if kind == "trl_model_config":  # attributes: its keywords, else TRL's defaults (trl_attribute)
            return Value(self._object(node, "instance", qualname=qual, library="trl", cls=ImportRef(qual)), "ModelConfig")
        if kind == "trl_peft_config":
            return self._trl_peft_config(node, qual)
        if kind == "chat_template":
            # trl/models/utils.py: setup_chat_format returns (model, tokenizer), clone_chat_template
            # (model, tokenizer, added_tokens): the same objects, edited in place
            pair = [argument(node, "model", 0), argument(node, "tokenizer", 1)]
            items: list[Any] = [self.eval(a).value if a is not None else Unknown("not passed") for a in pair]
            if qual.endswith("clone_chat_template"):
                items.append(Unknown("the tokens clone_chat_template added"))
            return Value(tuple(items), qual.rsplit(".", 1)[-1])
        if kind == "hf_parser":
            classes: tuple[Any, ...] = ()
            first = argument(node, "dataclass_types", 0)
            if first is not None:
                elements = first.elts if isinstance(first, (ast.Tuple, ast.List)) else [first]
                classes = tuple(self.eval(e).value for e in elements)
            return Value(self._object(node, "hf_parser", qualname=qual, classes=classes))
        if kind == "import":
            name = argument(node, "name", 0) or argument(node, "modname", 0)
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                return Value(ImportRef(name.value), f"import of {name.value}")
            return unknown("a module imported by a computed name", node)
        if kind == "sub_config":
            return self.eval_dict_call(node)
        return unknown(f"the result of {qual.rsplit('.', 1)[-1]}(...)", node)

    def _trl_peft_config(self, node: ast.Call, qual: str) -> Value:
        """trl/trainer/utils.py get_peft_config(model_args): None when model_args.use_peft is False, else
        a fresh LoraConfig built from the ModelConfig's lora_* fields (extraction reads those)."""
        arg = argument(node, "model_args", 0)
        configs = [o for o in self.objects(arg) if is_trl_model_config(o)] if arg is not None else []
        if configs:
            uses = [self.trl_attribute(o, "use_peft") for o in configs]
            if all(u is not None and u.known and u.value is False for u in uses):
                return Value(None, "get_peft_config() returns None: use_peft=False")
        return Value(self._object(node, "lora_config", qualname=qual, library="trl", extra={"model_configs": configs}))

    def _method_call(self, node: ast.Call, obj: Obj, method: str) -> Value:
        if obj.kind == "self" and isinstance(obj.cls, ClassRef):
            info = self.flow.classes.get(obj.cls.node)
            function = info.methods.get(method) if info is not None else None
            if function is not None:
                return self.returned(function)
        if same_object_method(method) and obj.kind in ("model", "peft_model"):
            return Value(obj)
        if obj.kind == "parser" and method in ("parse_args", "parse_known_args"):
            namespace = Namespace(obj)
            if method == "parse_known_args":
                return Value((namespace, Unknown("the arguments argparse did not recognise")))
            return Value(namespace, "parse_args()")
        if obj.kind == "hf_parser" and method.startswith("parse_"):
            classes = obj.classes or (None,)
            instances = tuple(
                self._object(_Key(node, i), "instance", cls=cls if isinstance(cls, (ClassRef, ImportRef)) else None)
                for i, cls in enumerate(classes)
            )
            if method == "parse_args_and_config":  # TrlParser: the dataclasses, then the remaining strings
                return Value(instances)
            return Value(instances)
        return unknown(f"the result of .{method}(...)", node)

    def _instantiate(self, node: ast.Call, ref: ClassRef) -> Value:
        info = self.flow.classes.get(ref.node)
        if info is None:
            return unknown("an instance of a class of this file", node)
        if info.is_dataclass:
            return Value(self._object(node, "instance", cls=ref), f"an instance of {info.name}")
        if self.is_module_class(info):
            return Value(self._object(node, "model", qualname=info.name, library="custom"), f"an instance of {info.name}")
        return Value(self._object(node, "instance", cls=ref), f"an instance of {info.name}")

    def is_module_class(self, info: ClassInfo, depth: int = 0) -> bool:
        """A local class that is a torch module (nn.Module, or a local subclass of one)."""
        if depth > 8:
            return False
        for base in info.node.bases:
            value = self.eval(base).value
            if isinstance(value, ImportRef):
                q = value.qualname
                if q.startswith("torch.nn.") or q in ("torch.nn", "nn.Module") or q.endswith("PreTrainedModel"):
                    return True
            elif isinstance(value, ClassRef):
                parent = self.flow.classes.get(value.node)
                if parent is not None and self.is_module_class(parent, depth + 1):
                    return True
        return False

    def _builtin(self, node: ast.Call, name: str) -> Value:
        if name == "dict":
            return self.eval_dict_call(node)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return unknown(f"cannot compute {self.text.short(node)!r}", node)
        args = [self.eval(a) for a in node.args]
        for arg in args:
            if not arg.known or not _is_data(arg.value):
                return arg if not arg.known and isinstance(arg.value, Unknown) else unknown(_reason(arg), node)
        values = [a.value for a in args]
        if name == "range":
            if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and 1 <= len(values) <= 3:
                produced = range(*values)
                if len(produced) <= 4096:
                    return Value(list(produced), f"computed as {self.text.short(node)}")
            return unknown(f"cannot compute {self.text.short(node)!r}", node)
        fn = _BUILTIN_CALLS.get(name)
        if fn is None:
            return unknown(f"the result of {name}(...)", node)
        if name in ("list", "tuple", "set", "sorted") and values and not isinstance(values[0], (list, tuple, set, dict, str)):
            return unknown(f"cannot compute {self.text.short(node)!r}", node)
        if name == "str" and values and isinstance(values[0], int) and values[0].bit_length() > 3000:
            return limit("the value is too large to compute statically", node)
        return guard(fn(*values), f"computed as {self.text.short(node)}")

    def eval_dict_call(self, node: ast.Call) -> Value:
        """`dict(a=1, **b)` / `SomeConfig(a=1)`: the dict of its keyword arguments."""
        out: dict[str, Any] = {}
        for arg in node.args:
            inner = self.eval(arg.value if isinstance(arg, ast.Starred) else arg)
            if isinstance(arg, ast.Starred) or not inner.known or not isinstance(inner.value, dict):
                return unknown(f"cannot compute {self.text.short(node)!r}", node)
            out.update(inner.value)
        for keyword in node.keywords:
            if keyword.arg is None:
                inner = self.eval(keyword.value)
                if not inner.known or not isinstance(inner.value, dict):
                    return unknown(f"{self.text.short(keyword.value)} is not statically known", node)
                out.update(inner.value)
            else:
                out[keyword.arg] = plain(self.eval(keyword.value))
        return guard(out, "literal", node)


class _Key:
    """A hashable stand-in node: the i-th instance a parser call returns."""

    __slots__ = ("node", "index", "lineno", "col_offset", "end_lineno", "end_col_offset")

    def __init__(self, node: ast.AST, index: int) -> None:
        self.node, self.index = node, index
        self.lineno = getattr(node, "lineno", 1)
        self.col_offset = getattr(node, "col_offset", 0)
        self.end_lineno = getattr(node, "end_lineno", self.lineno)
        self.end_col_offset = getattr(node, "end_col_offset", self.col_offset)

    def __hash__(self) -> int:
        return hash((id(self.node), self.index))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and other.node is self.node and other.index == self.index


def argument(call: ast.Call, keyword: str | None, position: int | None) -> ast.expr | None:
    """The expression passed for a parameter, by keyword or (before any *args) by position."""
    if keyword is not None:
        for k in call.keywords:
            if k.arg == keyword:
                return k.value
    if position is not None:
        for index, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                return None
            if index == position:
                return arg
    return None


def _ruled_out(value: Any, kind: str) -> bool:
    """Whether a guard of this kind ("notnone" / "truthy") excludes a literal value."""
    if value is None:
        return True
    return kind == "truthy" and _is_data(value) and not value  # literals only: their truth never raises


def _is_data(value: Any) -> bool:
    return not isinstance(value, (Obj, ImportRef, FunctionRef, ClassRef, Namespace, OneOf, Unknown))


def _reason(value: Value) -> str:
    data = plain(value)
    return data.reason if isinstance(data, Unknown) else "not statically known"


def _element(value: Value, path: tuple[int, ...]) -> Value | None:
    """The element at `path` of an unpacked value (None when it cannot be known)."""
    current = value
    for index in path:
        if isinstance(current.value, OneOf):
            options = []
            for option in options_of(current):
                inner = _element(option, (index,))
                if inner is None:
                    return None
                options.append(inner)
            current = Value(OneOf(tuple(options), current.value.what), current.provenance)
            continue
        items = current.value
        if not isinstance(items, (list, tuple)) or index >= len(items):
            return None
        item = items[index]
        current = item if isinstance(item, Value) else Value(item, current.provenance)
    return current


def _one_of(values: tuple[Value, ...], what: str, together: str) -> Value:
    """Alternatives, collapsed to one value when they all agree."""
    first = values[0]
    if all(v.known for v in values):
        if all(isinstance(v.value, (Obj, ImportRef, FunctionRef, ClassRef)) and v.value == first.value for v in values):
            return first
        if all(_is_data(v.value) and _same(v.value, first.value) for v in values):
            return Value(first.value, together, first.node)
    return Value(OneOf(values, what), "one of")


