"""Scopes and bindings with control flow, from one pass over a module's ast.

The walk keeps, at every statement, which bindings of each name can reach it (an environment:
name -> tuple of Binding). Each arm of an `if` is walked from a copy and the arms are merged; a
branch that returns, raises, breaks or continues ends its path; a rebinding replaces the old
tuple; a loop merges with its entry (zero iterations) and feeds the uses exposed at the top of its
body with what the body binds (the back edge); `try` joins its body and its handlers. Every name
that is read is recorded with the bindings that reach it, so the evaluator never needs an
environment again. Function bodies are walked after their enclosing scope (pyflakes defers them
the same way), so a name they read from outside sees every binding the enclosing scope ends with.

Each statement gets a Point: its scope, its order in the walk, and its branch path (the arm of
every enclosing if/try/match, as ruff's semantic model keeps branch ids), so two points can be
asked whether one runs before the other, or whether they exclude each other.

Conditions narrow: inside `if x is not None:` (or `if x:`, after `if x is None: return`, after
`assert x`) a read of `x` (a name or a dotted attribute chain such
as `args.lora_r`) is recorded as narrowed, so the evaluator drops the None (or falsy) alternatives
the guard rules out. A rebinding of the name or a store to the attribute ends the narrowing.

Expressions are walked with an explicit stack; statements recurse only as deep as blocks nest
(the parser allows 100 levels of indentation).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Callable, Iterable

Env = dict[str, tuple["Binding", ...]]
_EMPTY: tuple = ()


@dataclass(slots=True, repr=False, eq=False)
class Point:
    """Where a statement runs: its scope, its place in the walk and the branch arms it is in."""

    scope: Scope
    order: int
    branch: tuple[tuple[int, int], ...] = ()
    loops: tuple[int, ...] = ()

    def exclusive(self, other: Point) -> bool:
        """True when no single run reaches both (different arms of one if/elif/try/match)."""
        if not self.branch or not other.branch:
            return False
        arms = dict(self.branch)
        return any(arms.get(fork, arm) != arm for fork, arm in other.branch)

    def before(self, other: Point) -> bool:
        """True when this point can run before `other` in one run of the same scope."""
        return self.scope is other.scope and self.order < other.order and not self.exclusive(other)


@dataclass(slots=True, repr=False, eq=False)
class Binding:
    """One place where a name gets a value."""

    name: str
    # assign | unpack | import | param | loop | with | except | augassign | def | class | declare |
    # starred | global | pattern | attr (self.x = ...)
    kind: str
    target: ast.AST  # what a span of the binding points at
    point: Point
    value: ast.AST | None = None  # the bound expression (the whole right-hand side for an unpacking)
    path: tuple[int, ...] = ()  # element path in an unpacking: `a, (b, c) = ...` binds c at (1, 1)
    qualname: str | None = None  # imports: "peft.LoraConfig"
    annotation: ast.expr | None = None
    node: ast.AST | None = None  # FunctionDef / ClassDef / ast.arg / AugAssign

    @property
    def scope(self) -> Scope:
        return self.point.scope

    @property
    def line(self) -> int:
        return getattr(self.target, "lineno", 0)


@dataclass(slots=True, repr=False, eq=False)
class ClassInfo:
    """A class defined in the module: its fields, methods and `self.x` bindings."""

    name: str
    node: ast.ClassDef
    scope: Scope
    is_dataclass: bool
    fields: dict[str, ast.AnnAssign] = field(default_factory=dict)
    methods: dict[str, ast.AST] = field(default_factory=dict)
    self_attrs: dict[str, list[Binding]] = field(default_factory=dict)  # `self.x = ...` in its methods


@dataclass(slots=True, repr=False, eq=False)
class Scope:
    """A module, function, class or lambda body and its bindings."""

    kind: str  # module | function | class | lambda
    node: ast.AST
    parent: Scope | None
    name: str = ""
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    final: Env | None = None  # what reaches the end (module, class) / every binding (function)
    params: list[tuple[str, Binding]] = field(default_factory=list)  # (posonly|pos|vararg|kwonly|kwarg, b)
    returns: list[tuple[ast.Return, Point]] = field(default_factory=list)
    falls_through: bool = True
    cls: ClassInfo | None = None  # a method's class
    self_name: str | None = None  # a method's first parameter
    globals: set[str] = field(default_factory=set)
    decorated: bool = False


@dataclass(slots=True, repr=False, eq=False)
class Store:
    """`x.attr = value`, `x[key] = value` (or `del`, value None), `x.attr += value`."""

    target: ast.Attribute | ast.Subscript
    value: ast.AST | None
    point: Point
    path: tuple[int, ...] = ()
    augmented: bool = False


@dataclass(slots=True, repr=False, eq=False)
class _Loop:
    """The loop being walked: its entry state, names read before bound, and breaks."""

    ident: int
    entry: Env
    exposed: list[tuple[ast.AST, str]] = field(default_factory=list)
    breaks: list[Env] = field(default_factory=list)
    continues: list[Env] = field(default_factory=list)


@dataclass(slots=True, repr=False, eq=False)
class FlowModel:
    """What the walk leaves: every read name's reaching bindings, calls and stores with their point."""

    tree: ast.Module
    module: Scope
    reach: dict[ast.AST, tuple[Binding, ...]]
    calls: list[tuple[ast.Call, Point]]
    stores: list[Store]
    scopes: dict[ast.AST, Scope]
    classes: dict[ast.ClassDef, ClassInfo]
    narrowed: dict[ast.AST, str] = field(default_factory=dict)  # read -> "notnone" | "truthy"
    # Positions in `calls` (flow order), kept by the walk while each call is at hand: by the callee's name
    # (`f(...)`; "" for a callee neither a name nor an attribute), by its attribute (`a.b.f(...)`), and by
    # keyword (None for `**kw`). A pass over every call of a module, as each question asked it, cost as much again.
    by_name: dict[str, list[int]] = field(default_factory=dict)
    by_attribute: dict[str, list[int]] = field(default_factory=dict)
    by_keyword: dict[str | None, list[int]] = field(default_factory=dict)
    # The last part of what a name may stand for -> the names, for every import (`from peft import LoraConfig
    # as LC`: LoraConfig -> {LC}) and `a = b.c` / `a = b` binding whose name differs (Program.names_for).
    aliases: dict[str, set[str]] = field(default_factory=dict)

    def calls_at(self, positions: Iterable[int]) -> list[tuple[ast.Call, Point]]:
        """The calls at these positions of `calls`, in flow order."""
        calls = self.calls
        return [calls[i] for i in sorted(positions)]

    def calls_by_last(self, names: Iterable[str], attribute_only: bool = False) -> list[tuple[ast.Call, Point]]:
        """The calls whose callee's last name (`f` in `a.b.f(...)` and in `f(...)`) is one of `names`, in flow
        order; with `attribute_only`, only the `a.b.f(...)` ones."""
        by_attribute = self.by_attribute
        by_name = None if attribute_only else self.by_name
        found: list[int] = []
        for name in names:
            positions = by_attribute.get(name)
            if positions is not None:
                found.extend(positions)
            if by_name is not None:
                positions = by_name.get(name)
                if positions is not None:
                    found.extend(positions)
        return self.calls_at(found) if found else []

    def release(self) -> None:
        """Cut the cycles (scope -> binding -> point -> scope, class <-> method scope) once the model is
        no longer asked anything, so reference counting frees it (see Program.release)."""
        for scope in self.scopes.values():
            scope.bindings.clear()
            scope.params.clear()
            scope.returns.clear()
            scope.final = None
            scope.parent = scope.cls = None
        for info in self.classes.values():
            info.self_attrs.clear()
            info.methods.clear()
        self.reach.clear()
        self.calls.clear()
        self.stores.clear()
        self.scopes.clear()
        self.classes.clear()
        self.narrowed.clear()
        self.by_name.clear()
        self.by_attribute.clear()
        self.by_keyword.clear()
        self.aliases.clear()


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_SKIP_FIELDS = frozenset({"ctx", "op", "ops", "type_comment", "kind"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(t: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(t)
    if fields is None:
        fields = tuple(f for f in t._fields if f not in _SKIP_FIELDS)  # type: ignore[attr-defined]
        _CHILD_FIELDS[t] = fields
    return fields


def _merge(envs: Iterable[Env | None]) -> Env | None:
    live = [e for e in envs if e is not None]
    if not live:
        return None
    if len(live) == 1:
        return live[0]
    out = dict(live[0])
    for env in live[1:]:
        for name, bindings in env.items():
            current = out.get(name)
            if current is bindings:
                continue
            if current is None:
                out[name] = bindings
            else:
                extra = tuple(b for b in bindings if b not in current)
                if extra:
                    out[name] = current + extra
    return out


def _truth(test: ast.expr) -> bool | None:
    """The truth of a constant condition (`if False:`, `if 0:`), None when it depends on the run."""
    if isinstance(test, ast.Constant) and not isinstance(test.value, (str, bytes)):
        return bool(test.value)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _truth(test.operand)
        return None if inner is None else not inner
    return None


Facts = dict[str, str]  # dotted expression -> "notnone" | "truthy" (what a guard makes sure of)
_NO_FACTS: Facts = {}


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def facts_of(test: ast.expr, holds: bool) -> Facts:
    """What a condition makes sure of when it is true (`holds`) or false, about names and dotted
    attributes: `x is not None` -> x is not None; `x` -> x is truthy; `not`, `and`, `or` combine."""
    stack: list[tuple[ast.expr, bool]] = [(test, holds)]
    out: Facts = {}
    while stack:
        node, positive = stack.pop()
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            stack.append((node.operand, not positive))
        elif isinstance(node, ast.BoolOp):
            # `a and b` true: both hold; `a or b` false: neither holds. The other cases say nothing.
            if isinstance(node.op, ast.And) == positive:
                stack.extend((v, positive) for v in node.values)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:
            op, left, right = node.ops[0], node.left, node.comparators[0]
            subject = left if _is_none(right) else right if _is_none(left) else None
            name = dotted(subject) if subject is not None else None
            excludes_none = isinstance(op, (ast.IsNot, ast.NotEq)) if positive else isinstance(op, (ast.Is, ast.Eq))
            if name is not None and excludes_none:
                out.setdefault(name, "notnone")
        elif isinstance(node, (ast.Name, ast.Attribute)) and positive:
            name = dotted(node)
            if name is not None:
                out[name] = "truthy"
        elif (
            positive
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
            and not _is_none(node.args[1])
        ):
            name = dotted(node.args[0])
            if name is not None:
                out.setdefault(name, "notnone")
    return out


def dotted(node: ast.AST | None) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _is_dataclass_like(node: ast.ClassDef) -> bool:
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if (dotted(target) or "").rsplit(".", 1)[-1] in ("dataclass", "define", "frozen"):
            return True
    for base in node.bases:
        if (dotted(base) or "").rsplit(".", 1)[-1] in ("BaseModel", "BaseSettings"):
            return True
    return False


class Walker:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.module = Scope("module", tree, None, "<module>")
        self.reach: dict[ast.AST, tuple[Binding, ...]] = {}
        self.calls: list[tuple[ast.Call, Point]] = []
        self.stores: list[Store] = []
        self.scopes: dict[ast.AST, Scope] = {tree: self.module}
        self.classes: dict[ast.ClassDef, ClassInfo] = {}
        self._order = 0
        self._forks = 0
        self._deferred: list[tuple[ast.AST, Scope]] = []
        # the state of the walk
        self.scope = self.module
        self.branch: tuple[tuple[int, int], ...] = ()
        self.loops: list[_Loop] = []
        self.outer: list[Env] = []  # enclosing environments, innermost first
        self.facts: Facts = _NO_FACTS  # what the guards around the current statement make sure of
        self.narrowed: dict[ast.AST, str] = {}
        self.by_name: dict[str, list[int]] = {}
        self.by_attribute: dict[str, list[int]] = {}
        self.by_keyword: dict[str | None, list[int]] = {}
        self.aliases: dict[str, set[str]] = {}

    # --- the walk ------------------------------------------------------------------------------
    def run(self) -> FlowModel:
        end = self.block(self.tree.body, {})
        self.module.final = end if end is not None else {}
        index = 0
        while index < len(self._deferred):
            node, scope = self._deferred[index]
            index += 1
            self._function_body(node, scope)
        return FlowModel(
            self.tree, self.module, self.reach, self.calls, self.stores, self.scopes, self.classes, self.narrowed,
            self.by_name, self.by_attribute, self.by_keyword, self.aliases,
        )

    def point(self) -> Point:
        self._order += 1
        loops = tuple(loop.ident for loop in self.loops) if self.loops else ()
        return Point(self.scope, self._order, self.branch, loops)

    def block(self, body: list[ast.stmt], env: Env) -> Env | None:
        saved, saved_facts = self.branch, self.facts
        current: Env | None = env
        # self.point() inlined: the scope and the enclosing loops are the same for every statement of a
        # block (a nested scope or loop restores them before the next), its branch may change (see _if)
        scope = self.scope
        loops = tuple(loop.ident for loop in self.loops) if self.loops else ()
        get = _STATEMENTS.get
        for stmt in body:
            handler = get(type(stmt))
            self._order += 1
            point = Point(scope, self._order, self.branch, loops)
            if handler is None:
                self.expressions(stmt, current, point)  # type: ignore[arg-type]
            else:
                current = handler(self, stmt, current, point)
            if current is None:
                break  # what follows a return/raise/break/continue never runs
        self.branch, self.facts = saved, saved_facts
        return current

    # --- narrowing -----------------------------------------------------------------------------
    def with_facts(self, extra: Facts) -> Facts:
        """The current facts plus `extra` (a new dict: the old one may be saved by an outer block)."""
        if not extra:
            return self.facts
        return {**self.facts, **extra}

    def forget(self, name: str) -> None:
        """A rebinding (or a store) ends what a guard said about the name and what hangs off it."""
        facts = self.facts
        if not facts:
            return
        prefix = name + "."
        if any(key == name or key.startswith(prefix) for key in facts):
            self.facts = {k: v for k, v in facts.items() if k != name and not k.startswith(prefix)}

    # --- names ---------------------------------------------------------------------------------
    def _outer(self, name: str) -> tuple[Binding, ...]:
        """The bindings of an enclosing scope that a name not bound here reads."""
        for outer in self.outer:
            hit = outer.get(name)
            if hit is not None:
                return hit
        return _EMPTY

    def load(self, node: ast.AST, name: str, env: Env) -> None:
        if name in self.scope.globals:
            found = self.module.final.get(name, _EMPTY) if self.module.final is not None else env.get(name, _EMPTY)
        else:
            found = env.get(name)
            if found is None:
                found = self._outer(name)
        if self.loops:
            for loop in self.loops:
                if env.get(name) is loop.entry.get(name):
                    loop.exposed.append((node, name))
        self.reach[node] = found

    def bind(self, env: Env, binding: Binding) -> None:
        name = binding.name
        kind = binding.kind
        if kind == "assign" or kind == "import":
            if kind == "import":
                target = binding.qualname.rsplit(".", 1)[-1] if binding.qualname else None
            else:
                value = binding.value
                t = type(value)
                target = value.id if t is ast.Name else value.attr if t is ast.Attribute else None  # type: ignore[union-attr]
            if target is not None and target != name:
                names = self.aliases.get(target)
                if names is None:
                    self.aliases[target] = {name}
                else:
                    names.add(name)
        if self.facts:
            self.forget(name)
        if name in self.scope.globals and self.scope is not self.module:
            module = self.module
            module.bindings.setdefault(name, []).append(binding)
            if module.final is not None:
                module.final[name] = module.final.get(name, _EMPTY) + (binding,)
            return
        bindings = self.scope.bindings
        found = bindings.get(name)
        if found is None:
            bindings[name] = [binding]
        else:
            found.append(binding)
        env[name] = (binding,)

    def bind_target(
        self, target: ast.AST, value: ast.AST | None, kind: str, env: Env, point: Point, path: tuple[int, ...] = ()
    ) -> None:
        t = type(target)
        if t is ast.Name:
            actual = kind if not path or kind != "assign" else "unpack"
            self.bind(env, Binding(target.id, actual, target, point, value, path))  # type: ignore[attr-defined]
        elif t is ast.Tuple or t is ast.List:
            for index, element in enumerate(target.elts):  # type: ignore[attr-defined]
                if isinstance(element, ast.Starred):
                    self.bind_target(element.value, value, "starred", env, point, (*path, index))
                else:
                    self.bind_target(element, value, kind, env, point, (*path, index))
        elif t is ast.Starred:
            self.bind_target(target.value, value, "starred", env, point, path)  # type: ignore[attr-defined]
        elif t is ast.Attribute or t is ast.Subscript:
            self.expressions(target.value, env, point)  # type: ignore[attr-defined]
            if t is ast.Subscript:
                self.expressions(target.slice, env, point)  # type: ignore[attr-defined]
            self.stores.append(Store(target, value, point, path))  # type: ignore[arg-type]
            stored = dotted(target)
            if stored is not None:
                self.forget(stored)
            owner = target.value  # type: ignore[attr-defined]
            scope = self.scope
            if (
                t is ast.Attribute
                and scope.cls is not None
                and isinstance(owner, ast.Name)
                and owner.id == scope.self_name
            ):
                attr = target.attr  # type: ignore[attr-defined]
                binding = Binding(f"{owner.id}.{attr}", "attr" if not path else "unpack", target, point, value, path)
                scope.cls.self_attrs.setdefault(attr, []).append(binding)

    # --- expressions ---------------------------------------------------------------------------
    def expressions(
        self, root: ast.AST, env: Env, point: Point,
        # the node types compared with every node, as locals without a lookup a call (defaults, never passed)
        Name: type = ast.Name, Attribute: type = ast.Attribute, Constant: type = ast.Constant,
        Call: type = ast.Call, keyword: type = ast.keyword, Load: type = ast.Load, Compare: type = ast.Compare,
        Subscript: type = ast.Subscript, List: type = ast.List, Tuple: type = ast.Tuple, BinOp: type = ast.BinOp,
        Dict: type = ast.Dict, JoinedStr: type = ast.JoinedStr, FormattedValue: type = ast.FormattedValue,
        UnaryOp: type = ast.UnaryOp, BoolOp: type = ast.BoolOp,
    ) -> None:
        stack = [root]
        pop, push, extend = stack.pop, stack.append, stack.extend
        reach_load = self.load
        reach = self.reach
        # `load` inlined for the usual read (no enclosing loop, no `global`): a call a name costs a tenth of the walk
        plain_loads = not self.loops and not self.scope.globals
        calls = self.calls
        by_name, by_attribute, by_keyword = self.by_name, self.by_attribute, self.by_keyword
        facts = self.facts  # read again after what may bind a name (a walrus, a comprehension)
        while stack:
            node = pop()
            # The node pushed last is the next popped: an attribute's object, a call's callee and a
            # keyword's value are walked at once instead (the same order, without the stack).
            while True:
                t = type(node)
                # the common node types first, without the generic field loop
                if t is Name:
                    if type(node.ctx) is Load:  # type: ignore[attr-defined]
                        name = node.id  # type: ignore[attr-defined]
                        if plain_loads:
                            found = env.get(name)
                            reach[node] = found if found is not None else self._outer(name)
                        else:
                            reach_load(node, name, env)
                        if facts and name in facts:
                            self.narrowed[node] = facts[name]
                    break
                if t is Attribute:
                    if facts:
                        name = dotted(node)
                        if name is not None and name in facts:
                            self.narrowed[node] = facts[name]
                    node = node.value  # type: ignore[attr-defined]
                    continue
                if t is Call:
                    func = node.func  # type: ignore[attr-defined]
                    kind = type(func)
                    position = len(calls)
                    calls.append((node, point))  # type: ignore[arg-type]
                    if kind is Attribute:
                        last = func.attr  # type: ignore[attr-defined]
                        found = by_attribute.get(last)
                        if found is None:
                            by_attribute[last] = [position]
                        else:
                            found.append(position)
                    else:
                        last = func.id if kind is Name else ""  # type: ignore[attr-defined]
                        found = by_name.get(last)
                        if found is None:
                            by_name[last] = [position]
                        else:
                            found.append(position)
                    keywords = node.keywords  # type: ignore[attr-defined]
                    if keywords:
                        # each keyword's value pushed in place of the keyword (the same order, one step less)
                        for key in reversed(keywords):
                            last = key.arg
                            found = by_keyword.get(last)
                            if found is None:
                                by_keyword[last] = [position]
                            elif found[-1] != position:
                                found.append(position)
                            push(key.value)
                    extend(reversed(node.args))  # type: ignore[attr-defined]
                    node = func
                    continue
                if t is keyword:
                    node = node.value  # type: ignore[attr-defined]
                    continue
                if t is Constant or node is None:  # None: a `**` entry's key in a dict display
                    break
                # The other common types without the generic field loop below, in its order: the fields in
                # turn pushed, so the last one is walked first (a list's items first to last).
                if t is Compare:
                    push(node.left)  # type: ignore[attr-defined]
                    comparators = node.comparators  # type: ignore[attr-defined]
                    if len(comparators) == 1:
                        node = comparators[0]
                        continue
                    extend(reversed(comparators))
                    break
                if t is Subscript:
                    push(node.value)  # type: ignore[attr-defined]
                    node = node.slice  # type: ignore[attr-defined]
                    continue
                if t is List or t is Tuple:
                    extend(reversed(node.elts))  # type: ignore[attr-defined]
                    break
                if t is BinOp:
                    push(node.left)  # type: ignore[attr-defined]
                    node = node.right  # type: ignore[attr-defined]
                    continue
                if t is Dict:
                    extend(reversed(node.keys))  # type: ignore[attr-defined]
                    extend(reversed(node.values))  # type: ignore[attr-defined]
                    break
                if t is JoinedStr or t is BoolOp:
                    extend(reversed(node.values))  # type: ignore[attr-defined]
                    break
                if t is FormattedValue:
                    spec = node.format_spec  # type: ignore[attr-defined]
                    if spec is not None:
                        push(node.value)  # type: ignore[attr-defined]
                        node = spec
                    else:
                        node = node.value  # type: ignore[attr-defined]
                    continue
                if t is UnaryOp:
                    node = node.operand  # type: ignore[attr-defined]
                    continue
                if t is ast.Lambda:
                    self._lambda(node, env, point)  # type: ignore[arg-type]
                    facts = self.facts
                    break
                if t in _COMPREHENSIONS:
                    self._comprehension(node, env, point)
                    facts = self.facts
                    break
                if t is ast.NamedExpr:
                    self.expressions(node.value, env, point)  # type: ignore[attr-defined]
                    self.bind_target(node.target, node.value, "assign", env, point)  # type: ignore[attr-defined]
                    facts = self.facts
                    break
                for name in _CHILD_FIELDS.get(t) or _child_fields(t):
                    child = getattr(node, name)
                    if child is None:
                        continue
                    if type(child) is list:
                        extend(reversed(child))
                    elif isinstance(child, ast.AST):
                        push(child)
                break

    def _lambda(self, node: ast.Lambda, env: Env, point: Point) -> None:
        args = node.args
        for default in (*args.defaults, *(d for d in args.kw_defaults if d is not None)):
            self.expressions(default, env, point)
        inner = dict(env)
        scope = Scope("lambda", node, self.scope, "<lambda>")
        self.scopes[node] = scope
        saved = self.facts
        for arg in _all_args(args):
            inner[arg.arg] = (Binding(arg.arg, "param", arg, Point(scope, point.order), node=arg),)
            self.forget(arg.arg)
        self.expressions(node.body, inner, point)
        self.facts = saved

    def _comprehension(self, node: ast.AST, env: Env, point: Point) -> None:
        generators = node.generators  # type: ignore[attr-defined]
        self.expressions(generators[0].iter, env, point)
        inner = dict(env)
        for index, gen in enumerate(generators):
            if index:
                self.expressions(gen.iter, inner, point)
            self.bind_target(gen.target, gen.iter, "loop", inner, point)
            for cond in gen.ifs:
                self.expressions(cond, inner, point)
        if isinstance(node, ast.DictComp):
            self.expressions(node.key, inner, point)
            self.expressions(node.value, inner, point)
        else:
            self.expressions(node.elt, inner, point)  # type: ignore[attr-defined]

    # --- statements ----------------------------------------------------------------------------
    def _expr_stmt(self, node: ast.Expr, env: Env, point: Point) -> Env:
        if type(node.value) is not ast.Constant:  # a docstring reads nothing
            self.expressions(node.value, env, point)
        return env

    def _assign(self, node: ast.Assign, env: Env, point: Point) -> Env:
        value = node.value
        self.expressions(value, env, point)
        for target in node.targets:
            if type(target) is ast.Name:  # bind_target's first case, the usual one, without the call
                self.bind(env, Binding(target.id, "assign", target, point, value))
            else:
                self.bind_target(target, value, "assign", env, point)
        return env

    def _ann_assign(self, node: ast.AnnAssign, env: Env, point: Point) -> Env:
        self.expressions(node.annotation, env, point)
        if node.value is not None:
            self.expressions(node.value, env, point)
            self.bind_target(node.target, node.value, "assign", env, point)
            if isinstance(node.target, ast.Name):
                env[node.target.id][0].annotation = node.annotation
        elif isinstance(node.target, ast.Name):
            if self.scope.kind == "function":  # `x: Args` declares a type only
                self.bind(env, Binding(node.target.id, "declare", node.target, point, annotation=node.annotation))
        else:
            self.expressions(node.target, env, point)
        return env

    def _aug_assign(self, node: ast.AugAssign, env: Env, point: Point) -> Env:
        target = node.target
        self.expressions(node.value, env, point)
        if isinstance(target, ast.Name):
            self.load(node, target.id, env)  # the value before the update, read by the evaluator
            self.bind(env, Binding(target.id, "augassign", target, point, node.value, node=node))
        else:
            self.expressions(target, env, point)
            self.stores.append(Store(target, node.value, point, augmented=True))  # type: ignore[arg-type]
        return env

    def _delete(self, node: ast.Delete, env: Env, point: Point) -> Env:
        for target in node.targets:
            if isinstance(target, ast.Name):
                env[target.id] = _EMPTY
            else:
                self.expressions(target, env, point)
                if isinstance(target, (ast.Attribute, ast.Subscript)):
                    self.stores.append(Store(target, None, point))
        return env

    def _import(self, node: ast.Import, env: Env, point: Point) -> Env:
        for alias in node.names:
            if alias.asname:
                self.bind(env, Binding(alias.asname, "import", alias, point, qualname=alias.name))
            else:
                root = alias.name.split(".", 1)[0]
                self.bind(env, Binding(root, "import", alias, point, qualname=root))
        return env

    def _import_from(self, node: ast.ImportFrom, env: Env, point: Point) -> Env:
        module = "." * (node.level or 0) + (node.module or "")
        for alias in node.names:
            if alias.name == "*":
                continue
            local = alias.asname or alias.name
            self.bind(env, Binding(local, "import", alias, point, qualname=f"{module}.{alias.name}"))
        return env

    def _global(self, node: ast.Global | ast.Nonlocal, env: Env, point: Point) -> Env:
        if isinstance(node, ast.Global):
            self.scope.globals.update(node.names)
        return env

    def _return(self, node: ast.Return, env: Env, point: Point) -> None:
        if node.value is not None:
            self.expressions(node.value, env, point)
        if self.scope.kind == "function":
            self.scope.returns.append((node, point))
        return None

    def _raise(self, node: ast.Raise, env: Env, point: Point) -> None:
        self.expressions(node, env, point)
        return None

    def _break(self, node: ast.Break, env: Env, point: Point) -> None:
        if self.loops:
            self.loops[-1].breaks.append(env)
        return None

    def _continue(self, node: ast.Continue, env: Env, point: Point) -> None:
        if self.loops:
            self.loops[-1].continues.append(env)
        return None

    def _fork(self) -> int:
        self._forks += 1
        return self._forks

    def _if(self, node: ast.If, env: Env, point: Point) -> Env | None:
        self.expressions(node.test, env, point)
        truth = _truth(node.test)
        if truth is True:
            return self.block(node.body, env)
        if truth is False:
            return self.block(node.orelse, env) if node.orelse else env
        fork, base, facts = self._fork(), self.branch, self.facts
        holds, fails = facts_of(node.test, True), facts_of(node.test, False)  # each arm's, and what follows
        self.branch = base + ((fork, 0),)
        self.facts = self.with_facts(holds)
        body = self.block(node.body, dict(env))
        self.branch = base + ((fork, 1),)
        self.facts = facts
        self.facts = self.with_facts(fails)
        other = self.block(node.orelse, dict(env)) if node.orelse else env
        self.branch, self.facts = base, facts
        if body is None and other is not None:
            self.branch = base + ((fork, 1),)  # the rest of the block runs only when the test is false
            self.facts = self.with_facts(fails)
        elif other is None and body is not None:
            self.branch = base + ((fork, 0),)
            self.facts = self.with_facts(holds)
        return _merge((body, other))

    def _assert(self, node: ast.Assert, env: Env, point: Point) -> Env:
        self.expressions(node, env, point)
        self.facts = self.with_facts(facts_of(node.test, True))  # what follows runs only when it held
        return env

    def _loop(self, node: ast.For | ast.AsyncFor | ast.While, env: Env, point: Point) -> Env | None:
        is_for = not isinstance(node, ast.While)
        if is_for:
            self.expressions(node.iter, env, point)  # type: ignore[union-attr]
        else:
            self.expressions(node.test, env, point)  # type: ignore[union-attr]
        loop = _Loop(self._fork(), dict(env))
        self.loops.append(loop)
        inner = dict(env)
        if is_for:
            self.bind_target(node.target, node.iter, "loop", inner, point)  # type: ignore[union-attr]
        end = self.block(node.body, inner)
        self.loops.pop()
        end = _merge((end, *loop.continues))
        if end is not None:
            for use, name in loop.exposed:  # the back edge: what the body binds reaches its top again
                later = end.get(name)
                if later and later is not loop.entry.get(name):
                    known = self.reach.get(use, _EMPTY)
                    extra = tuple(b for b in later if b not in known)
                    if extra:
                        self.reach[use] = known + extra
        forever = not is_for and _truth(node.test) is True  # type: ignore[union-attr]
        after = None if forever else _merge((env, end))
        if node.orelse and after is not None:
            after = self.block(node.orelse, dict(after))
        return _merge((after, *loop.breaks))

    def _with(self, node: ast.With | ast.AsyncWith, env: Env, point: Point) -> Env | None:
        for item in node.items:
            self.expressions(item.context_expr, env, point)
            if item.optional_vars is not None:
                self.bind_target(item.optional_vars, item.context_expr, "with", env, point)
        return self.block(node.body, env)

    def _try(self, node: ast.Try, env: Env, point: Point) -> Env | None:
        fork, base = self._fork(), self.branch
        self.branch = base + ((fork, 0),)
        body = self.block(node.body, dict(env))
        if body is not None and node.orelse:
            body = self.block(node.orelse, body)
        start = _merge((env, body)) or env
        outs: list[Env | None] = [body]
        for index, handler in enumerate(node.handlers):
            self.branch = base + ((fork, index + 1),)
            henv = dict(start)
            hpoint = self.point()
            if handler.type is not None:
                self.expressions(handler.type, henv, hpoint)
            if handler.name:
                self.bind(henv, Binding(handler.name, "except", handler, hpoint, handler.type))
            outs.append(self.block(handler.body, henv))
        self.branch = base
        out = _merge(outs)
        if node.finalbody:
            final = self.block(node.finalbody, out if out is not None else dict(start))
            return None if out is None else final
        return out

    def _match(self, node: ast.Match, env: Env, point: Point) -> Env | None:
        self.expressions(node.subject, env, point)
        fork, base = self._fork(), self.branch
        outs: list[Env | None] = []
        exhaustive = False
        for index, case in enumerate(node.cases):
            self.branch = base + ((fork, index),)
            cenv = dict(env)
            for sub in ast.walk(case.pattern):
                name = getattr(sub, "name", None)
                if isinstance(sub, (ast.MatchAs, ast.MatchStar)) and name:
                    self.bind(cenv, Binding(name, "pattern", sub, point, node.subject))
                elif isinstance(sub, ast.MatchMapping) and sub.rest:
                    self.bind(cenv, Binding(sub.rest, "pattern", sub, point, node.subject))
                elif isinstance(sub, ast.MatchValue):
                    self.expressions(sub.value, cenv, point)
            if case.guard is not None:
                self.expressions(case.guard, cenv, point)
            elif isinstance(case.pattern, ast.MatchAs) and case.pattern.pattern is None:
                exhaustive = True
            outs.append(self.block(case.body, cenv))
        self.branch = base
        if not exhaustive:
            outs.append(env)
        return _merge(outs)

    # --- definitions ---------------------------------------------------------------------------
    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, env: Env, point: Point) -> Env:
        for deco in node.decorator_list:
            self.expressions(deco, env, point)
        args = node.args
        for default in (*args.defaults, *(d for d in args.kw_defaults if d is not None)):
            self.expressions(default, env, point)
        for arg in _all_args(args):
            if arg.annotation is not None:
                self.expressions(arg.annotation, env, point)
        scope = Scope("function", node, self.scope, node.name, decorated=bool(node.decorator_list))
        if self.scope.kind == "class":
            scope.cls = self.classes.get(self.scope.node)  # type: ignore[arg-type]
            positional = [*args.posonlyargs, *args.args]
            if scope.cls is not None and positional and not _is_static(node):
                scope.self_name = positional[0].arg
            if scope.cls is not None:
                scope.cls.methods[node.name] = node
        self.scopes[node] = scope
        self.bind(env, Binding(node.name, "def", node, point, node=node))
        self._deferred.append((node, scope))
        return env

    def _function_body(self, node: ast.AST, scope: Scope) -> None:
        outer: list[Env] = []
        parent = scope.parent
        while parent is not None:
            if parent.kind != "class" and parent.final is not None:
                outer.append(parent.final)
            parent = parent.parent
        saved = (self.scope, self.branch, self.loops, self.outer, self.facts)
        self.scope, self.branch, self.loops, self.outer, self.facts = scope, (), [], outer, _NO_FACTS
        env: Env = {}
        start = self.point()
        args = node.args  # type: ignore[attr-defined]
        defaults = _defaults(args)
        for kind, arg in _args_with_kinds(args):
            binding = Binding(arg.arg, "param", arg, start, defaults.get(arg), annotation=arg.annotation, node=arg)
            scope.params.append((kind, binding))
            self.bind(env, binding)
        end = self.block(node.body, env)  # type: ignore[attr-defined]
        scope.falls_through = end is not None
        scope.final = {name: tuple(items) for name, items in scope.bindings.items()}
        self.scope, self.branch, self.loops, self.outer, self.facts = saved

    def _class(self, node: ast.ClassDef, env: Env, point: Point) -> Env:
        for deco in node.decorator_list:
            self.expressions(deco, env, point)
        for base in (*node.bases, *(k.value for k in node.keywords)):
            self.expressions(base, env, point)
        scope = Scope("class", node, self.scope, node.name)
        info = ClassInfo(node.name, node, scope, _is_dataclass_like(node))
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                info.fields[statement.target.id] = statement
        self.scopes[node] = scope
        self.classes[node] = info
        saved = (self.scope, self.branch, self.loops, self.outer)
        self.scope, self.loops, self.outer = scope, [], [env, *self.outer]
        end = self.block(node.body, {})
        scope.final = end if end is not None else {}
        self.scope, self.branch, self.loops, self.outer = saved
        self.bind(env, Binding(node.name, "class", node, point, node=node))
        return env


def _is_static(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any((dotted(d) or "").endswith("staticmethod") for d in node.decorator_list)


def _all_args(args: ast.arguments) -> list[ast.arg]:
    out = [*args.posonlyargs, *args.args]
    if args.vararg is not None:
        out.append(args.vararg)
    out.extend(args.kwonlyargs)
    if args.kwarg is not None:
        out.append(args.kwarg)
    return out


def _args_with_kinds(args: ast.arguments) -> list[tuple[str, ast.arg]]:
    out = [("posonly", a) for a in args.posonlyargs] + [("pos", a) for a in args.args]
    if args.vararg is not None:
        out.append(("vararg", args.vararg))
    out.extend(("kwonly", a) for a in args.kwonlyargs)
    if args.kwarg is not None:
        out.append(("kwarg", args.kwarg))
    return out


def _defaults(args: ast.arguments) -> dict[ast.arg, ast.expr]:
    positional = [*args.posonlyargs, *args.args]
    out: dict[ast.arg, ast.expr] = {}
    for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        out[arg] = default
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        if default is not None:
            out[arg] = default
    return out


_Handler = Callable[[Walker, ast.stmt, Env, Point], "Env | None"]
_STATEMENTS: dict[type, _Handler] = {
    ast.Expr: Walker._expr_stmt,
    ast.Assert: Walker._assert,
    ast.Assign: Walker._assign,
    ast.AnnAssign: Walker._ann_assign,
    ast.AugAssign: Walker._aug_assign,
    ast.Delete: Walker._delete,
    ast.Import: Walker._import,
    ast.ImportFrom: Walker._import_from,
    ast.Global: Walker._global,
    ast.Nonlocal: Walker._global,
    ast.Return: Walker._return,
    ast.Raise: Walker._raise,
    ast.Break: Walker._break,
    ast.Continue: Walker._continue,
    ast.If: Walker._if,
    ast.For: Walker._loop,
    ast.AsyncFor: Walker._loop,
    ast.While: Walker._loop,
    ast.With: Walker._with,
    ast.AsyncWith: Walker._with,
    ast.Try: Walker._try,
    ast.Match: Walker._match,
    ast.FunctionDef: Walker._function,
    ast.AsyncFunctionDef: Walker._function,
    ast.ClassDef: Walker._class,
}  # type: ignore[dict-item]
if hasattr(ast, "TryStar"):
    _STATEMENTS[ast.TryStar] = Walker._try  # type: ignore[assignment]


def walk(tree: ast.Module) -> FlowModel:
    return Walker(tree).run()
