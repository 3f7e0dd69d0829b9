"""Which calls of a script train or merge which objects: the trainer calls (transformers' Trainer /
Seq2SeqTrainer, TRL's *Trainer, as `program.objects.call_kind` names them), the trainer that trains a
given model object, and the merges of the adapter into its base. One place for the quantization
facts (extract/quantized.py) and the training facts (extract/training.py) to ask.
"""

from __future__ import annotations

import ast

from loralint.program import Program
from loralint.program.evaluate import argument
from loralint.program.objects import call_kind
from loralint.program.values import Obj

# peft/tuners/tuners_utils.py BaseTuner.merge_and_unload / merge_adapter (PeftModel forwards both)
MERGES = frozenset({"merge_and_unload", "merge_adapter"})


def trainer_calls(program: Program) -> list[ast.Call]:
    """Every trainer constructed in the file, in the order the flow visits them (one walk a module:
    every site of the file asks)."""
    return program.once("trainer_calls", lambda: _find_trainer_calls(program))


def _find_trainer_calls(program: Program) -> list[ast.Call]:
    if not _may_name_trainers(program):
        return []
    attrs = _attributes_with_values(program)
    flow = program.flow
    reach = flow.reach
    out = []
    # every `f(...)` (and other callee) is looked at; `x.f(...)` only when f may hold a trainer's path (_may_be_trainer)
    positions = [i for found in flow.by_name.values() for i in found]
    positions.extend(i for name, found in flow.by_attribute.items() if name.endswith("Trainer") or name in attrs for i in found)
    for call, _ in flow.calls_at(positions):
        if not _may_be_trainer(call.func, attrs, reach):
            continue
        qual = program.qualname(call.func)
        if qual and call_kind(qual) == "trainer":
            out.append(call)
    return out


# Evaluating the callee of every call of a module was most of the cost of finding its trainers. The
# filters below skip only callees whose evaluation cannot be a trainer's import path, which (objects.py
# call_kind) always ends in "Trainer": they mirror where the evaluator (program/evaluate.py) makes an
# ImportRef. Its last part is an imported name, an attribute read off another ImportRef, or the string
# given to importlib.import_module / pytest.importorskip.


def _may_name_trainers(program: Program) -> bool:
    """False when no import path the evaluator can build ends in "Trainer": the source never spells it,
    and cannot spell it otherwise (non-ASCII identifiers are normalised, NFKC; an imported module's name
    is a string that may be escaped or split)."""
    source = program.text.text
    return not program.text.ascii or "Trainer" in source or "import_module" in source or "importorskip" in source


def _attributes_with_values(program: Program) -> frozenset[str]:
    """Attribute names that may hold an ImportRef other than `<import path>.<name>`: `self.x = ...` in a
    method, a class-level binding other than a def or class (`self.x` reads it), a keyword of a call (an instance of a local
    dataclass or TRL's ModelConfig answers `obj.x` with what `X(x=...)` passed)."""
    names: set[str] = set()
    for info in program.flow.classes.values():
        names.update(info.self_attrs)
        # a class attribute bound only by `def` or `class` reads a local function or class, never an import
        # path (most of a test class's methods, `self.get_model()`)
        names.update(name for name, bindings in info.scope.bindings.items()
                     if any(b.kind != "def" and b.kind != "class" for b in bindings))
    names.update(key for key in program.flow.by_keyword if key)
    return frozenset(names)


def _may_be_trainer(func: ast.expr, attrs: frozenset[str], reach: dict) -> bool:
    """Whether the callee may evaluate to a trainer's import path (False only when it certainly cannot)."""
    t = type(func)
    if t is ast.Attribute:
        # `<import path>.attr` ends in attr; other receivers answer only for the attributes in `attrs`
        attr = func.attr  # type: ignore[attr-defined]
        return attr.endswith("Trainer") or attr in attrs
    if t is ast.Name:
        # a name is what its reaching bindings hold: an import is its own path, a def or class a local
        # reference; no binding reads a builtin (or nothing). Any other binding (`T = SFTTrainer`, a
        # parameter) is evaluated.
        for binding in reach.get(func, ()):
            kind = binding.kind
            if kind == "import":
                if call_kind(binding.qualname or binding.name) == "trainer":
                    return True
            elif kind != "def" and kind != "class":
                return True
        return False
    return t is ast.Call or t is ast.Subscript  # the evaluator gives other expressions no import path


def trainer_of(program: Program, objects: list[Obj]) -> ast.Call | None:
    """The first trainer whose model is one of `objects`, given no peft_config (a trainer that gets a
    peft_config applies a configuration of its own: another application, checked on its own)."""
    if not objects:
        return None
    for call in trainer_calls(program):
        if argument(call, "peft_config", None) is not None:
            continue
        model_node = argument(call, "model", 0)
        if model_node is not None and any(o is m for o in program.objects(model_node) for m in objects):
            return call
    return None


def adapter_loads(program: Program) -> list[tuple[ast.Call, str, Obj | None]]:
    """Each saved adapter the file loads (`PeftModel.from_pretrained(base, path)`, `PeftModelFor*` /
    `AutoPeftModelFor*.from_pretrained(path)`): the call, its qualified name and the model object it
    makes (None when the flow does not reach it). One walk a module: several extractors ask."""
    return program.once("adapter_loads", lambda: _find_adapter_loads(program))


def _find_adapter_loads(program: Program) -> list[tuple[ast.Call, str, Obj | None]]:
    out = []
    for call, _ in program.calls_named(frozenset({"from_pretrained"})):
        qual = program.qualname(call.func) or ""
        if call_kind(qual) != "peft_loaded":
            continue
        program.value(call)
        out.append((call, qual, program.evaluator.created(call)))
    return out


def merge_of(program: Program, objects: list[Obj]) -> ast.Call | None:
    """The first `x.merge_and_unload()` / `x.merge_adapter()` where x is one of `objects`."""
    if not objects:
        return None
    for call in _merge_calls(program):
        if any(t is o for t in program.objects(call.func.value) for o in objects):  # type: ignore[attr-defined]
            return call
    return None


def _merge_calls(program: Program) -> list[ast.Call]:
    """The module's `*.merge_and_unload()` / `*.merge_adapter()` calls in flow order (found once a module:
    every site asks, and a test file has hundreds of sites and thousands of calls)."""
    return program.once("merge_calls", lambda: [call for call, _ in program.flow.calls_by_last(MERGES, attribute_only=True)])
