"""A light import and name tracker for one Python module.

libcst's QualifiedNameProvider/ScopeProvider cost many times a parse; what we need is smaller:
which names are bound where (and to what expression), what each import means, and every call in
source order with the scope it is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst


@dataclass(slots=True, eq=False)
class Binding:
    """One place where a name is bound. `value` is the bound expression when there is one."""

    kind: str  # assign | unpack | import | param | loop | with | augassign | def | class | mutate
    target: cst.CSTNode
    value: cst.BaseExpression | None = None
    index: int | None = None  # position in a tuple unpacking
    qualname: str | None = None  # for imports: "peft.LoraConfig"
    annotation: cst.BaseExpression | None = None
    node: cst.CSTNode | None = None  # the ClassDef / FunctionDef / Param
    scope: Scope | None = None


@dataclass(slots=True, eq=False)
class Scope:
    kind: str  # module | function | class
    parent: Scope | None
    node: cst.CSTNode
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)

    def add(self, name: str, binding: Binding) -> None:
        scope = self
        if name in self.global_names:
            while scope.parent is not None:
                scope = scope.parent
        binding.scope = scope
        scope.bindings.setdefault(name, []).append(binding)

    def lookup(self, name: str) -> list[Binding]:
        """Bindings visible from here, Python-style: class bodies are not visible from methods."""
        scope: Scope | None = self
        first = True
        while scope is not None:
            if (first or scope.kind != "class") and name in scope.bindings:
                return scope.bindings[name]
            first = False
            scope = scope.parent
        return []


@dataclass(slots=True, eq=False)
class CallRecord:
    node: cst.Call
    scope: Scope
    # The statement's assignment targets when the call is the whole right-hand side: `m = f(...)`.
    assigned_to: list[cst.BaseAssignTargetExpression] = field(default_factory=list)


@dataclass(slots=True)
class DataclassInfo:
    name: str
    node: cst.ClassDef
    fields: dict[str, cst.AnnAssign]


def dotted_name(node: cst.CSTNode) -> str | None:
    """`a.b.c` for Name/Attribute chains, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def _import_module_name(node: cst.CSTNode | None) -> str:
    return dotted_name(node) or "" if node is not None else ""


class ScopeCollector(cst.CSTVisitor):
    def __init__(self, module: cst.Module) -> None:
        self.module_scope = Scope("module", None, module)
        self.stack: list[Scope] = [self.module_scope]
        self.calls: list[CallRecord] = []
        self.dataclasses: dict[str, DataclassInfo] = {}
        self.scope_of: dict[cst.CSTNode, Scope] = {}
        self._pending_targets: dict[cst.Call, list[cst.BaseAssignTargetExpression]] = {}
        self._comprehension_depth = 0

    @property
    def scope(self) -> Scope:
        return self.stack[-1]

    # --- scopes ------------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.scope.add(node.name.value, Binding("def", node.name, node=node))
        for deco in node.decorators:
            deco.visit(self)
        for default in _param_defaults(node.params):
            default.visit(self)
        scope = Scope("function", self.scope, node)
        self.scope_of[node] = scope
        self.stack.append(scope)
        for param in _all_params(node.params):
            scope.add(param.name.value, Binding("param", param.name, annotation=_annotation(param), node=param))
        node.body.visit(self)
        self.stack.pop()
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.scope.add(node.name.value, Binding("class", node.name, node=node))
        for deco in node.decorators:
            deco.visit(self)
        for arg in node.bases:
            arg.visit(self)
        if any(_is_dataclass_decorator(d.decorator) for d in node.decorators) or _is_pydantic_like(node):
            self.dataclasses[node.name.value] = DataclassInfo(node.name.value, node, _class_fields(node))
        scope = Scope("class", self.scope, node)
        self.scope_of[node] = scope
        self.stack.append(scope)
        node.body.visit(self)
        self.stack.pop()
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False  # lambda bodies bind nothing we follow

    def _enter_comprehension(self, node) -> bool:
        self._comprehension_depth += 1
        return True

    def _leave_comprehension(self, node) -> None:
        self._comprehension_depth -= 1

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _enter_comprehension
    leave_ListComp = leave_SetComp = leave_DictComp = leave_GeneratorExp = _leave_comprehension

    def visit_Global(self, node: cst.Global) -> None:
        self.scope.global_names.update(n.name.value for n in node.names)

    # --- bindings ----------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = _import_module_name(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.scope.add(alias.asname.name.value, Binding("import", alias.asname.name, qualname=full))
            else:
                root = full.split(".")[0]
                self.scope.add(root, Binding("import", alias.name, qualname=root))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        module = "." * len(node.relative) + _import_module_name(node.module)
        for alias in node.names:
            name = _import_module_name(alias.name)
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.scope.add(local, Binding("import", alias.name, qualname=f"{module}.{name}"))

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind_target(target.target, node.value)
        if isinstance(node.value, cst.Call):
            self._pending_targets[node.value] = [t.target for t in node.targets]

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind_target(node.target, node.value, annotation=node.annotation.annotation)
            if isinstance(node.value, cst.Call):
                self._pending_targets[node.value] = [node.target]
        elif isinstance(node.target, cst.Name) and self.scope.kind == "function":
            # `x: Args` declares a type only; remember it for attribute look-ups.
            self.scope.add(
                node.target.value,
                Binding("declare", node.target, annotation=node.annotation.annotation),
            )

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        base = _base_name(node.target)
        if base is not None:
            self.scope.add(base.value, Binding("augassign", base, value=node.value))

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        if isinstance(node.target, cst.Name):
            self.scope.add(node.target.value, Binding("assign", node.target, value=node.value))

    def visit_For(self, node: cst.For) -> None:
        for name in _names_in(node.target):
            self.scope.add(name.value, Binding("loop", name, value=node.iter))

    def visit_CompFor(self, node: cst.CompFor) -> None:
        pass  # comprehension variables do not leak out of the comprehension

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            for name in _names_in(node.asname.name):
                self.scope.add(name.value, Binding("with", name, value=node.item))

    def _bind_target(self, target: cst.BaseExpression, value: cst.BaseExpression, annotation=None) -> None:
        if self._comprehension_depth:
            return
        if isinstance(target, cst.Name):
            self.scope.add(target.value, Binding("assign", target, value=value, annotation=annotation))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for index, element in enumerate(target.elements):
                inner = element.value
                if isinstance(element, cst.StarredElement):
                    for name in _names_in(inner):
                        self.scope.add(name.value, Binding("loop", name, value=value))
                elif isinstance(inner, cst.Name):
                    self.scope.add(inner.value, Binding("unpack", inner, value=value, index=index))
                else:
                    self._bind_target(inner, value)
        else:
            # `cfg["r"] = 16` or `cfg.r = 16`: the object named `cfg` changes after it is built.
            base = _base_name(target)
            if base is not None:
                self.scope.add(base.value, Binding("mutate", target, value=value))

    # --- calls -------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(CallRecord(node, self.scope, self._pending_targets.pop(node, [])))


def _base_name(node: cst.CSTNode) -> cst.Name | None:
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return node if isinstance(node, cst.Name) else None


def _names_in(node: cst.CSTNode) -> list[cst.Name]:
    if isinstance(node, cst.Name):
        return [node]
    if isinstance(node, (cst.Tuple, cst.List)):
        out: list[cst.Name] = []
        for element in node.elements:
            out.extend(_names_in(element.value))
        return out
    return []


def _all_params(params: cst.Parameters) -> list[cst.Param]:
    out = list(params.posonly_params) + list(params.params) + list(params.kwonly_params)
    if isinstance(params.star_arg, cst.Param):
        out.append(params.star_arg)
    if params.star_kwarg is not None:
        out.append(params.star_kwarg)
    return out


def _param_defaults(params: cst.Parameters) -> list[cst.BaseExpression]:
    return [p.default for p in _all_params(params) if p.default is not None]


def _annotation(param: cst.Param) -> cst.BaseExpression | None:
    return param.annotation.annotation if param.annotation is not None else None


def _is_dataclass_decorator(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Call):
        node = node.func
    name = dotted_name(node) or ""
    return name.split(".")[-1] == "dataclass"


def _is_pydantic_like(node: cst.ClassDef) -> bool:
    # HfArgumentParser needs dataclasses, but pydantic / attrs-style settings classes read the same way.
    for base in node.bases:
        name = dotted_name(base.value) or ""
        if name.split(".")[-1] in ("BaseModel", "BaseSettings"):
            return True
    return False


def _class_fields(node: cst.ClassDef) -> dict[str, cst.AnnAssign]:
    fields: dict[str, cst.AnnAssign] = {}
    body = node.body
    if not isinstance(body, cst.IndentedBlock):
        return fields
    for statement in body.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    fields[small.target.value] = small
    return fields


def collect(module: cst.Module) -> ScopeCollector:
    collector = ScopeCollector(module)
    module.visit(collector)
    return collector
