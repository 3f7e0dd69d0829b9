"""`Program`: one module's flow model and evaluator, and the questions asked of them.

Extraction asks which calls build configurations, what a value is, which objects an expression
may be, and how each configuration is applied; the answers carry the Point of each call, so a
question such as "was this model prepared for k-bit training after get_peft_model?" is asked
about objects and program order, never about variable names.
"""

from __future__ import annotations

import ast
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loralint.extract.source import SourceSyntaxError
from loralint.limits import AnalysisLimit
from loralint.program.evaluate import Evaluator, argument
from loralint.program.flow import FlowModel, Point, walk
from loralint.program.objects import ApplicationKind, application_of
from loralint.program.text import SourceText
from loralint.program.values import Obj, Value, objects_in, options_of

T = TypeVar("T")


def newer_syntax(err: SyntaxError) -> str | None:
    """Why a SyntaxError is this interpreter's limit rather than the file's mistake, or None.

    PEP 701 (Python 3.12) allows quotes reused inside f-strings; the parser loralint runs on rejects
    them. Such a file (or notebook cell) is not wrong: it is beyond what this interpreter can analyse."""
    if sys.version_info < (3, 12) and "f-string" in (err.msg or ""):
        return (f"Python {sys.version_info[0]}.{sys.version_info[1]} cannot parse line {err.lineno} ({err.msg}); "
                "it is valid Python 3.12 f-string syntax: run loralint on Python 3.12+ to check it")
    return None


def parse(source: str) -> ast.Module:
    """ast.parse, with failures as SourceSyntaxError. Only parses: nothing is compiled or run."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences etc. are not ours to report
            return ast.parse(source)
    except SyntaxError as err:
        newer = newer_syntax(err)
        if newer is not None:
            raise AnalysisLimit(newer) from err
        text = (err.msg or "invalid syntax").strip().splitlines()[0] if err.msg else "invalid syntax"
        if len(text) > 90:
            text = text[:87] + "..."
        raise SourceSyntaxError(f"invalid Python syntax ({text})", err.lineno or 1, max(err.offset or 1, 1)) from err
    except (RecursionError, MemoryError) as err:
        raise SourceSyntaxError("nesting too deep") from err
    except ValueError as err:  # null bytes
        raise SourceSyntaxError(f"invalid Python source ({err})") from err


@dataclass(slots=True, repr=False, eq=False)
class Application:
    """A call that applies LoRA configs to a model."""

    kind: ApplicationKind
    call: ast.Call
    point: Point
    qualname: str | None
    config_node: ast.expr | None
    model_node: ast.expr | None
    configs: list[Obj] = field(default_factory=list)  # what the config argument may be
    exact: bool = False  # the config argument is always one of `configs` (no unknown alternative)
    models: list[Obj] = field(default_factory=list)  # what the model argument may be
    result: Obj | None = None  # the PEFT model it returns (get_peft_model, PeftModel(...))


@dataclass(slots=True, repr=False, eq=False)
class Preparation:
    """prepare_model_for_kbit_training(model): the objects it acts on."""

    call: ast.Call
    point: Point
    model_node: ast.expr | None
    models: list[Obj]


_APPLYING = frozenset(
    {"get_peft_model", "PeftModel", "PeftMixedModel", "inject_adapter_in_model", "add_adapter"}
)
_PREPARING = frozenset({"prepare_model_for_kbit_training", "prepare_model_for_int8_training"})


class Program:
    def __init__(self, path: str, source: str, tree: ast.Module | None = None) -> None:
        self.text = SourceText(path, source)
        self.tree = tree if tree is not None else parse(source)
        try:
            self.flow: FlowModel = walk(self.tree)
        except RecursionError as err:
            raise AnalysisLimit("the code nests too deeply to analyse") from err
        self.evaluator = Evaluator(self.flow, self.text)
        self._points: dict[ast.Call, Point] | None = None
        self._aliases: dict[frozenset[str], frozenset[str]] = {}
        self._calls_named: dict[frozenset[str], list[tuple[ast.Call, Point]]] = {}
        self._applications: list[Application] | None = None
        self._facts: dict[str, Any] = {}  # once(): module-wide facts that several sites ask for

    def once(self, name: str, compute: Callable[[], T]) -> T:
        """A fact about the whole module, computed on the first request (each site asks again)."""
        if name not in self._facts:
            self._facts[name] = compute()
        return self._facts[name]

    def release(self) -> None:
        """Drop the model once extraction is done. Scopes, bindings and points refer to each other, so
        without this the whole tree (~100k objects a file) waits for the cycle collector, whose pass
        over it cost a tenth of the extraction; with the cycles cut, reference counting frees it."""
        self.flow.release()
        self.evaluator.release()
        self._facts.clear()
        self._points = self._applications = None
        self._aliases.clear()
        self._calls_named.clear()

    # --- values ------------------------------------------------------------------------------
    def value(self, node: ast.AST) -> Value:
        return self.evaluator.eval(node)

    def qualname(self, node: ast.AST) -> str | None:
        return self.evaluator.qualname(node)

    def objects(self, node: ast.AST | None) -> list[Obj]:
        return objects_in(self.evaluator.eval(node)) if node is not None else []

    def model_ids(self, node: ast.AST) -> tuple[frozenset[int], frozenset[int]]:
        """The identities (id()) of objects(node) and of the models under them (base_models): what
        extraction compares with a site's models, for every trainer and checkpointing call, site after
        site (hundreds of times a test file). The objects live as long as the model. Kept a module once
        the evaluator keeps the value, so the answer is the one eval gives."""
        memo: dict[ast.AST, tuple[frozenset[int], frozenset[int]]] = self.once("model_ids", dict)
        found = memo.get(node)
        if found is None:
            theirs = self.objects(node)
            found = (frozenset(map(id, theirs)), frozenset(map(id, base_models(theirs))))
            if self.evaluator.settled(node):
                memo[node] = found
        return found

    def point_of(self, call: ast.Call) -> Point | None:
        if self._points is None:
            self._points = {c: p for c, p in self.flow.calls}
        return self._points.get(call)

    # --- finding calls -----------------------------------------------------------------------
    def names_for(self, lasts: frozenset[str]) -> frozenset[str]:
        """Local names that may refer to something whose import path ends in one of `lasts`: the
        names themselves, import aliases (`import LoraConfig as LC`), plain aliases (`LC = LoraConfig`)."""
        cached = self._aliases.get(lasts)
        if cached is not None:
            return cached
        aliases = self.flow.aliases  # the last part of what a name may stand for -> the names (flow.py bind)
        names = set(lasts)
        new: frozenset[str] | set[str] = lasts
        for _ in range(4):  # aliases of aliases, four deep; each round looks up only the names the last one added
            grew = {name for target in new for name in aliases.get(target, ()) if name not in names}
            if not grew:
                break
            names |= grew
            new = grew
        result = frozenset(names)
        self._aliases[lasts] = result
        return result

    def callee_names(self) -> frozenset[str]:
        """The last name of every callee in the module (`f` in `a.b.f(...)` and in `f(...)`)."""
        return self.once("callee_names", lambda: frozenset(
            name for name in (*self.flow.by_name, *self.flow.by_attribute) if name))

    def calls_named(self, lasts: frozenset[str]) -> list[tuple[ast.Call, Point]]:
        """Calls whose callee's last name (`f` in `a.b.f(...)`) may be one of `lasts`, in source order
        (found once for each set of names: every site asks the same; the list is not to be changed)."""
        found = self._calls_named.get(lasts)
        if found is not None:
            return found
        out = self.flow.calls_by_last(self.names_for(lasts))
        out.sort(key=lambda item: (item[0].lineno, item[0].col_offset))
        self._calls_named[lasts] = out
        return out

    # --- how configurations are applied ------------------------------------------------------
    def applications(self) -> list[Application]:
        if self._applications is not None:
            return self._applications
        found: list[Application] = []
        candidates = {id(c): (c, p) for c, p in self.calls_named(_APPLYING)}
        # An ASCII text spells every keyword and attribute as the parser reads it: without either word
        # no other call can apply a configuration, and the walk over every call is left out.
        source = self.text
        others = not source.ascii or "peft_config" in source.text or "PeftModelFor" in source.text
        if others:  # calls given peft_config=, and `x.PeftModelFor*(...)`, in flow order
            flow = self.flow
            positions = set(flow.by_keyword.get("peft_config", ()))
            for name, at in flow.by_attribute.items():
                if name.startswith("PeftModelFor"):
                    positions.update(at)
            for call, point in flow.calls_at(positions):
                if id(call) not in candidates:
                    candidates[id(call)] = (call, point)
        for call, point in sorted(candidates.values(), key=lambda item: (item[0].lineno, item[0].col_offset)):
            func = call.func
            qual = self.qualname(func)
            method = func.attr if isinstance(func, ast.Attribute) else None
            keywords = frozenset(k.arg for k in call.keywords if k.arg)
            kind = application_of(qual, method, keywords)
            if kind is None:
                continue
            if kind.kind == "add_adapter":
                config_node = argument(call, "adapter_config", None)
                if config_node is None:
                    config_node = next(
                        (a for a in call.args if not isinstance(a, ast.Starred) and self._configs(a)), None
                    )
                model_node = func.value if isinstance(func, ast.Attribute) else None
            else:
                config_node = argument(call, kind.config_keyword, kind.config_position)
                model_node = argument(call, kind.model_keyword, kind.model_position)
            if config_node is None:
                continue
            app = Application(kind, call, point, qual, config_node, model_node)
            app.configs = self._configs(config_node)
            app.exact = all(isinstance(o.value, Obj) for o in options_of(self.evaluator.eval(config_node)))
            app.models = self.objects(model_node)
            if kind.kind in ("get_peft_model", "wrapper"):
                self.evaluator.eval(call)
                app.result = self.evaluator.created(call)
            found.append(app)
        self._applications = found
        return found

    def applications_of(self, config: Obj | None) -> list[Application]:
        """The applications whose config argument may be `config`, in the order of applications()
        (indexed once a module: every site asks, and a test file has hundreds of each)."""
        if config is None:
            return []
        def index() -> dict[int, list[Application]]:
            out: dict[int, list[Application]] = {}
            for app in self.applications():
                for key in dict.fromkeys(id(o) for o in app.configs):
                    out.setdefault(key, []).append(app)
            return out
        return self.once("applications_by_config", index).get(id(config), [])

    def _configs(self, node: ast.AST) -> list[Obj]:
        return [o for o in self.objects(node) if o.kind == "lora_config" or o.kind == "config_site"]

    def preparations(self) -> list[Preparation]:
        """The k-bit preparations of the module (found once: every site asks)."""
        return self.once("preparations", self._find_preparations)

    def _find_preparations(self) -> list[Preparation]:
        out = []
        for call, point in self.calls_named(_PREPARING):
            qual = self.qualname(call.func) or ""
            if not qual.startswith("peft.") or qual.rsplit(".", 1)[-1] not in _PREPARING:
                continue
            model_node = argument(call, "model", 0)
            out.append(Preparation(call, point, model_node, self.objects(model_node)))
        return out

    def same_names(self, a: ast.AST | None, b: ast.AST | None) -> bool:
        """Two reads of a name that the same bindings reach (the same object, whatever it is)."""
        if not isinstance(a, ast.Name) or not isinstance(b, ast.Name) or a.id != b.id:
            return False
        ra, rb = self.flow.reach.get(a), self.flow.reach.get(b)
        return bool(ra) and ra == rb


class ModelIds:
    """Some models (a site's: the bases its configuration is applied to, the PEFT models made from it) and the
    models under them, by identity: what extraction compares each call's objects with, site after site."""

    __slots__ = ("bases", "models")

    def __init__(self, models: list[Obj], bases: list[Obj] | None = None) -> None:
        self.models = frozenset(map(id, models))
        self.bases = frozenset(map(id, base_models(models) if bases is None else bases))

    def meet(self, ids: tuple[frozenset[int], frozenset[int]]) -> bool:
        """Program.model_ids(...) of a node holds one of these models, or the models under both meet."""
        theirs, bases = ids
        return not self.models.isdisjoint(theirs) or not self.bases.isdisjoint(bases)

    def touches(self, objects: list[Obj]) -> bool:
        """One of `objects` is one of these models, or the models under them meet."""
        if any(id(o) in self.models for o in objects):
            return True
        return any(id(o) in self.bases for o in base_models(objects))

    def touched(self, program: Program, node: ast.AST) -> bool:
        """touches(program.objects(node)), from the identities the program keeps for `node`."""
        return self.meet(program.model_ids(node))


def base_models(objects: list[Obj]) -> list[Obj]:
    """The models under PEFT wrappers (a PeftModel's base, recursively), each once."""
    out: list[Obj] = []
    stack = list(objects)
    seen = 0
    while stack and seen < 64:
        seen += 1
        obj = stack.pop()
        if obj.kind == "peft_model":
            stack.extend(obj.base)
        elif obj.kind == "model" and not any(o is obj for o in out):
            out.append(obj)
    return out
