"""Find every LoRA configuration built in a Python file, without running it.

Recognised: `peft.LoraConfig(...)` however imported, Unsloth's `Fast*Model.get_peft_model(...)`,
TRL's `ModelConfig(...)`. Each becomes a ConfigSite whose fields carry their values (or Unknown),
provenance and spans. The program model (`loralint.program`) says which objects each call acts
on, so the base model, the k-bit preparation and a reused config are facts about objects, not
about variable names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from loralint.extract.bounds import MAX_SITES_PER_FILE, bound_pattern_keys, note
from loralint.extract.loaded import loaded_sites
from loralint.extract.pins import pip_installs
from loralint.extract.quantized import attach as attach_quantized
from loralint.extract.quantized import loaded_kbit_kwargs, merged_loaded_adapters, quantization_hints
from loralint.extract.training import attach_training, frozen_adapter_findings
from loralint.extract.trl import finish_trl, link_trl, model_config_site
from loralint.extract.unsloth import finetune_flags
from loralint.lazy_re import lazy
from loralint.peft_fields import (
    LORA_FIELDS,
    PEFT_DEFAULTS,
    UNSLOTH_DEFAULTS,
    UNSLOTH_EXTRA_KEYWORDS,
    UNSLOTH_VISION_DEFAULTS,
)
from loralint.program import Application, Program
from loralint.program.evaluate import argument, plain, provenance_of
from loralint.program.flow import Point
from loralint.program.model import base_models
from loralint.program.objects import trl_model_class
from loralint.program.text import holds_line
from loralint.program.values import LimitReached, Obj, OneOf
from loralint.sites import ConfigSite, Diagnostic, Field, Span, Unknown

if TYPE_CHECKING:
    from loralint.dependencies import Dependency

# Unsloth's get_peft_model(model, r, target_modules, lora_alpha, lora_dropout, bias, ...) positional order.
_UNSLOTH_POSITIONAL = ("model", "r", "target_modules", "lora_alpha", "lora_dropout", "bias")
_LORA_POSITIONAL = tuple(PEFT_DEFAULTS)  # dataclass __init__ order

_SITE_NAMES = frozenset({"LoraConfig", "get_peft_model", "ModelConfig"})  # and get_peft_config: extract/trl.py
_DICT = frozenset({"dict"})
# Context managers a test wraps around code that must raise or warn (pytest, unittest).
_EXPECTING = frozenset({"raises", "warns", "deprecated_call", "assertRaises", "assertRaisesRegex", "assertWarns",
                        "assertWarnsRegex"})
_SPLIT_SIZE_RE = lazy(r"^\s*\w+\s*\[\s*(?:0\s*)?:\s*(\d+)\s*\]\s*$")
# (entry key, value node, key span, whether the value may differ on some path)
_Entry = tuple[str, ast.AST, Span, str | None]


class PythonExtractor:
    def __init__(self, program: Program, installs: dict[str, tuple[str, ...]] | None = None) -> None:
        self.program = program
        self.installs = installs or {}  # the library versions the file installs for itself (extract/pins.py)
        self.text = program.text
        self.path = program.text.path
        self.sites: dict[ast.Call, ConfigSite] = {}
        self.reads: list[Dependency] = []  # other files read (a loaded adapter's adapter_config.json)
        self.points: dict[ast.Call, Point] = {}
        # A dict entry's span (key to value) → the span of the key's name alone, what a rename replaces.
        self._key_names: dict[Span, Span] = {}
        # TRL (extract/trl.py): a later get_peft_config call -> the key of the site it reads, and a
        # site keyed by its first get_peft_config call -> the ModelConfig(...) call that made it.
        self._trl_aliases: dict[ast.Call, ast.Call] = {}
        self._trl_model_configs: dict[ast.Call, ast.Call] = {}

    def span(self, node: ast.AST) -> Span:
        return self.text.span(node)

    def _key_name_span(self, key: ast.AST) -> Span:
        """A dict key's name without its prefix and quotes; the whole key when its text is not the
        name itself (escapes, implicit concatenation, a constant), so no rename is offered there."""
        span = self.span(key)
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and span.line == span.end_line:
            written = self.text.segment(key)
            body = written.lstrip("rRuU")
            prefix = len(written) - len(body)
            for quote in ('"""', "'''", '"', "'"):
                if body.startswith(quote) and body.endswith(quote) and body[len(quote):-len(quote)] == key.value:
                    start = span.column + prefix + len(quote)
                    return Span(span.path, span.line, start, span.line, start + len(key.value))
        return span

    # --- the pass ----------------------------------------------------------------------------
    def extract(self) -> list[ConfigSite]:
        for call, point in self.program.calls_named(_SITE_NAMES):
            if self._full(call):
                break
            qual = self.program.qualname(call.func)
            if not qual:
                continue
            site = self._site_for(call, qual)
            if site is not None:
                self.sites[call] = site
                self.points[call] = point
        for call, point in self.program.calls_named(_DICT):
            if self._full(call):
                break
            site = self._registry_site(call)
            if site is not None:
                self.sites[call] = site
                self.points[call] = point
        link_trl(self)
        if not self.sites:
            return []
        self.sites = dict(sorted(self.sites.items(), key=lambda item: (item[0].lineno, item[0].col_offset)))
        self._link_applications()
        finish_trl(self)
        self._mark_mutations()
        self._attach_file_hints()
        attach_training(self.program, self.sites, self.installs, self.reads)
        attach_quantized(self)
        self._mark_expected_failures()
        return list(self.sites.values())

    def _mark_expected_failures(self) -> None:
        """Configurations a test builds wrong on purpose, inside a block that expects the error or
        warning: reporting them would report the test's intent."""
        blocks: list[tuple[int, int, str]] = []
        text = self.program.text
        # Only the statements on whose lines the text spells such a name are walked (a non-ASCII text may
        # spell one otherwise, normalised: all walked).
        lines = text.lines_with(_EXPECTING) if text.ascii else None
        if lines is not None and not lines:
            return
        for node in _statements(self.program.tree.body, lines):
            if not isinstance(node, (ast.With, ast.AsyncWith)) or not node.body:
                continue
            for item in node.items:
                call = item.context_expr
                if not isinstance(call, ast.Call):
                    continue
                func = call.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name in _EXPECTING:
                    end = node.body[-1].end_lineno or node.body[-1].lineno
                    blocks.append((node.body[0].lineno, end, f"{name} at line {node.lineno}"))
        if not blocks:
            return

        known: dict[int, str | None] = {}  # by line: every site asks, and its applications

        def block_of(line: int) -> str | None:
            if line not in known:
                known[line] = next((where for first, last, where in blocks if first <= line <= last), None)
            return known[line]

        for call, site in self.sites.items():
            where = block_of(call.lineno)
            if where is None:
                # Built before the block and applied only inside it (`config = LoraConfig(r=7, ...)`, then
                # `with pytest.raises(ValueError): get_peft_model(model, config)`): the same intent.
                obj = self.program.evaluator.created(call)
                inside = [block_of(app.call.lineno) for app in self.program.applications_of(obj)]
                if inside and all(inside):
                    where = inside[0]
            if where is not None:
                site.hints.expected_to_fail = where

    def _full(self, call: ast.Call) -> bool:
        """The per-file cap on configurations (extract/bounds.py): past it, one LORA906 and no more sites."""
        if len(self.sites) < MAX_SITES_PER_FILE:
            return False
        note("sites", f"more than {MAX_SITES_PER_FILE:,} configurations in one file; only the first "
             f"{MAX_SITES_PER_FILE:,} are checked", call.lineno, call.col_offset + 1)
        return True

    def _site_for(self, call: ast.Call, qual: str) -> ConfigSite | None:
        parts = qual.split(".")
        if parts[0] == "peft" and parts[-1] == "LoraConfig":
            return self._build_site(call, "peft.LoraConfig", _LORA_POSITIONAL, {}, frozenset())
        if parts[0] == "unsloth" and parts[-1] == "get_peft_model":
            vision = any(p in ("FastVisionModel", "FastModel", "FastBaseModel") for p in parts)
            defaults = UNSLOTH_VISION_DEFAULTS if vision else UNSLOTH_DEFAULTS
            site = self._build_site(call, "unsloth.get_peft_model", _UNSLOTH_POSITIONAL, defaults, UNSLOTH_EXTRA_KEYWORDS)
            site.hints.applied.append("unsloth")
            site.hints.applied_span = site.span
            if vision:  # the targets it builds from finetune_* (extract/unsloth.py, knowledge/unsloth.py)
                site.hints.unsloth_finetune = finetune_flags(self, call, site)
            model_arg = argument(call, "model", 0)
            if model_arg is not None:
                self._link_model(site, model_arg, None)
            return site
        if parts[0] == "trl" and parts[-1] == "ModelConfig":
            return model_config_site(self, call)  # extract/trl.py; None when use_peft=False
        return None

    def _registry_site(self, call: ast.Call) -> ConfigSite | None:
        """mmengine / xtuner configs: `dict(type=LoraConfig, r=64, ...)`, built by the framework's registry."""
        kind = argument(call, "type", None)
        if kind is None or self.program.qualname(call.func) != "builtins.dict":
            return None
        qual = self.program.qualname(kind) or ""
        if not (qual.startswith("peft.") and qual.endswith(".LoraConfig")):
            return None
        return self._build_site(call, "peft.LoraConfig", (), {}, frozenset({"type"}))

    def _build_site(
        self,
        call: ast.Call,
        origin: str,
        positional: tuple[str, ...],
        defaults: dict[str, Any],
        extra_known: frozenset[str],
        rename: dict[str, str] | None = None,
    ) -> ConfigSite:
        site = ConfigSite(path=self.path, span=self.span(call), origin=origin, defaults=dict(defaults), extra_known=extra_known)
        arguments: list[ast.AST] = [*call.args, *call.keywords]
        if arguments:
            site.append_at = self.span(max(arguments, key=lambda a: (a.end_lineno, a.end_col_offset)))
        for index, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                site.opaque = f"*{self.text.short(arg.value)} passes positional arguments that cannot be read"
            elif index < len(positional):
                self._add_argument(site, positional[index], arg, self.span(arg), None, rename, extra_known)
        for keyword in call.keywords:
            if keyword.arg is None:
                self._expand_kwargs(site, keyword.value, call, rename, extra_known)
            else:
                key_span = self.span(keyword)
                self._add_argument(
                    site, keyword.arg, keyword.value, key_span, self.text.name_span(keyword, keyword.arg, key_span),
                    rename, extra_known,
                )
        return site

    def _add_argument(
        self,
        site: ConfigSite,
        name: str,
        value_node: ast.AST,
        key_span: Span | None,
        name_span: Span | None,
        rename: dict[str, str] | None,
        extra_known: frozenset[str],
        override: str | None = None,
    ) -> None:
        canonical = rename.get(name, name) if rename is not None else name
        known_names = set(rename.values()) if rename is not None else LORA_FIELDS
        if name == "model" and site.origin == "unsloth.get_peft_model":
            return
        if canonical in known_names and (rename is None or name in rename):
            field = self._field(canonical, value_node, key_span)
            if override is not None:
                field.value = Unknown(override)
                field.provenance = "unknown"
            if name != canonical:
                field.raw_name = name
            site.fields[canonical] = field
        elif name in extra_known:
            return
        else:
            field = self._field(name, value_node, key_span)
            if name_span is not None:
                field.span = name_span
            site.unknown_args.append(field)

    def _field(self, name: str, value_node: ast.AST, key_span: Span | None) -> Field:
        value = self.program.value(value_node)
        data = plain(value)
        provenance = provenance_of(value, data)
        span = self.span(value_node)
        data = bound_pattern_keys(name, data, span.line, span.column)
        field = Field(name=name, value=data, span=span, key_span=key_span, provenance=provenance)
        written = value.node
        if isinstance(written, (ast.List, ast.Tuple, ast.Set)) and isinstance(data, (list, tuple, set)):
            for element in written.elts:
                if isinstance(element, ast.Constant) and isinstance(element.value, str):
                    field.items.append((element.value, self.span(element)))
        return field

    # --- **kwargs ----------------------------------------------------------------------------
    def _expand_kwargs(self, site: ConfigSite, expr: ast.AST, call: ast.Call, rename, extra_known) -> None:
        entries = self._dict_entries(expr, self.program.point_of(call), 0)
        if isinstance(entries, Unknown):
            site.opaque = f"**{self.text.short(expr)}: {entries.reason}"
            return
        for key, value_node, key_span, override in entries:
            name_span = self._key_names.get(key_span, key_span)
            self._add_argument(site, key, value_node, key_span, name_span, rename, extra_known, override)

    def _dict_entries(self, expr: ast.AST, use: Point | None, depth: int) -> list[_Entry] | Unknown:
        """(key, value node, key span, why it may differ) for each entry of a dict built in this file."""
        if depth > 8:
            return Unknown("nested too deeply")
        if isinstance(expr, ast.Name):
            bindings = self.program.flow.reach.get(expr, ())
            if len(bindings) != 1 or bindings[0].kind != "assign" or bindings[0].value is None:
                reason = "assigned more than once" if len(bindings) > 1 else "not a dict built in this file"
                return Unknown(f"{expr.id} is {reason}")
            binding = bindings[0]
            entries = self._dict_entries(binding.value, binding.point, depth + 1)
            if isinstance(entries, Unknown) or use is None:
                return entries
            return self._edited(entries, binding, use)
        entries: list[_Entry] = []
        if isinstance(expr, ast.Dict):
            for key, value in zip(expr.keys, expr.values):
                if key is None:
                    inner = self._dict_entries(value, use, depth + 1)
                    if isinstance(inner, Unknown):
                        return inner
                    entries.extend(inner)
                    continue
                k = self.program.value(key)
                if not k.known or not isinstance(k.value, str):
                    return Unknown("a key is not a string literal")
                entry_span = self.text.span_between(key, value)
                self._key_names[entry_span] = self._key_name_span(key)
                entries.append((k.value, value, entry_span, None))
            return entries
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "dict":
            if self.program.qualname(expr.func) not in (None, "builtins.dict"):
                return Unknown(f"{self.text.short(expr)} is not a dict literal")
            for arg in expr.args:
                inner = self._dict_entries(arg.value if isinstance(arg, ast.Starred) else arg, use, depth + 1)
                if isinstance(inner, Unknown):
                    return inner
                entries.extend(inner)
            for keyword in expr.keywords:
                if keyword.arg is None:
                    inner = self._dict_entries(keyword.value, use, depth + 1)
                    if isinstance(inner, Unknown):
                        return inner
                    entries.extend(inner)
                else:
                    entry_span = self.span(keyword)
                    self._key_names[entry_span] = self.text.name_span(keyword, keyword.arg)
                    entries.append((keyword.arg, keyword.value, entry_span, None))
            return entries
        return Unknown(f"{self.text.short(expr)} is not a dict literal")

    def _dict_edits(self) -> dict[str, tuple[list[Any], list[tuple[ast.Call, Point]]]]:
        """The module's `name[...] = ...` stores and `name.update/pop/setdefault(...)` calls, in flow order,
        by the name (a name's reads reach only its own bindings): indexed once, each `**kw` asks."""
        index: dict[str, tuple[list[Any], list[tuple[ast.Call, Point]]]] = {}
        for store in self.program.flow.stores:
            target = store.target
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                index.setdefault(target.value.id, ([], []))[0].append(store)
        for call, point in self.program.flow.calls_by_last(("update", "pop", "setdefault"), attribute_only=True):
            func = call.func
            if isinstance(func.value, ast.Name):
                index.setdefault(func.value.id, ([], []))[1].append((call, point))
        return index

    def _edited(self, entries: list[_Entry], binding, use: Point) -> list[_Entry] | Unknown:
        """Apply `kw["key"] = v`, `kw.update(...)`, `del kw["key"]`, `kw.pop("key")` made to the dict
        between its binding and its use. An edit on a path the use may not share makes the key unknown."""
        edits: list[tuple[Point, str, Any]] = []  # (point, op, payload)
        reach = self.program.flow.reach
        stores, calls = self.program.once("dict_edits", self._dict_edits).get(binding.name, ((), ()))
        for store in stores:
            target = store.target
            if reach.get(target.value) == (binding,):
                edits.append((store.point, "set", (target, store.value, store.augmented)))
        for call, point in calls:
            if reach.get(call.func.value) == (binding,):
                edits.append((point, call.func.attr, call))
        if not edits:
            return entries
        out = {key: (key, value, span, override) for key, value, span, override in entries}
        for point, op, payload in sorted(edits, key=lambda e: e[0].order):
            if not point.before(use) and point.scope is use.scope:
                continue  # after the use, or on a path that excludes it
            if point.scope is not use.scope:
                line = (payload[0] if op == "set" else payload).lineno
                return Unknown(f"the dict is changed in another function (line {line})")
            conditional = not _always_before(point, use)
            line = (payload[0] if op == "set" else payload).lineno
            if op == "set":
                target, value, augmented = payload
                key = self.program.value(target.slice)
                if not key.known or not isinstance(key.value, str):
                    return Unknown(f"a key set at line {line} is not a string literal")
                if value is None:
                    out.pop(key.value, None)
                    continue
                why = f"set at line {line} only on some paths" if conditional else None
                if augmented:
                    why = f"changed with an augmented assignment at line {line}"
                out[key.value] = (key.value, value, self.span(target), why)
            elif op in ("pop",):
                key_node = payload.args[0] if payload.args else None
                key = self.program.value(key_node) if key_node is not None else None
                if key is None or not key.known or not isinstance(key.value, str):
                    return Unknown(f"a key removed at line {line} is not a string literal")
                if conditional:
                    if key.value in out:
                        k, v, s, _ = out[key.value]
                        out[key.value] = (k, v, s, f"removed at line {line} only on some paths")
                else:
                    out.pop(key.value, None)
            else:  # update / setdefault
                pairs: list[tuple[str, ast.AST, Span]] = []
                if op == "setdefault":
                    args = payload.args
                    key = self.program.value(args[0]) if args else None
                    if key is None or not key.known or not isinstance(key.value, str) or len(args) != 2:
                        return Unknown(f"setdefault at line {line} cannot be read")
                    if key.value in out:
                        continue
                    pairs.append((key.value, args[1], self.span(payload)))
                else:
                    for arg in payload.args:
                        inner = self._dict_entries(arg, point, 1)
                        if isinstance(inner, Unknown):
                            return Unknown(f"update at line {line}: {inner.reason}")
                        pairs.extend((k, v, s) for k, v, s, _ in inner)
                    for keyword in payload.keywords:
                        if keyword.arg is None:
                            inner = self._dict_entries(keyword.value, point, 1)
                            if isinstance(inner, Unknown):
                                return Unknown(f"update at line {line}: {inner.reason}")
                            pairs.extend((k, v, s) for k, v, s, _ in inner)
                        else:
                            pairs.append((keyword.arg, keyword.value, self.span(keyword)))
                why = f"set at line {line} only on some paths" if conditional else None
                for key_name, value, span in pairs:
                    out[key_name] = (key_name, value, span, why)
        return list(out.values())

    # --- applications: which model a configuration is applied to -----------------------------
    def _link_applications(self) -> None:
        by_config: dict[int, list[Application]] = {}
        for call in self.sites:
            self.program.value(call)  # make the config objects
        created: dict[int, ast.Call] = {}
        made_at: dict[int, Point | None] = {}  # where each config object is made
        for call in self.sites:
            obj = self.program.evaluator.created(call)
            if obj is not None:
                created[id(obj)] = call
                made_at[id(obj)] = self.points.get(call)
        for other, key in self._trl_aliases.items():  # each get_peft_config call makes a fresh LoraConfig
            obj = self.program.evaluator.created(other)
            if obj is not None and key in self.sites:
                created[id(obj)] = key
                made_at[id(obj)] = self.program.point_of(other)
        applications = self.program.applications()
        preparations = self.program.preparations()
        for app in applications:
            sites = [self.sites[created[id(o)]] for o in app.configs if id(o) in created]
            for site in sites:
                kind = app.kind.kind
                if app.kind.kind == "trainer" and not app.kind.chooses_task:
                    kind = "peft_config"  # a project's own trainer or helper that takes peft_config
                if kind not in site.hints.applied:
                    site.hints.applied.append(kind)
                if site.hints.applied_span is None:
                    site.hints.applied_span = self.span(app.call)
                if len(app.configs) == 1 and app.exact:
                    by_config.setdefault(id(app.configs[0]), []).append(app)
                if site.base_model is None and site.hints.model_library is None and app.model_node is not None:
                    self._link_model(site, app.model_node, app)
                if app.kind.chooses_task:
                    site.hints.task_chosen = True
                if app.kind.kind in ("get_peft_model", "wrapper"):
                    prepared = self._prepared_after(app, preparations)
                    if prepared is not None and site.hints.kbit_prepared_after is None:
                        site.hints.kbit_prepared_after = prepared
        for site in self.sites.values():
            site.hints.reapplied = []
        for obj_id, apps in by_config.items():  # the same config object applied again (one site may make several)
            self.sites[created[obj_id]].hints.reapplied.extend(self._reapplied(apps, made_at.get(obj_id)))

    def _reapplied(self, apps: list[Application], made: Point | None) -> list[Span]:
        """Applications of one config object after an earlier one in the same function that the same
        run reaches (not an exclusive if/elif arm), and one repeated by a loop the config was built
        outside of. Applications in different functions are not counted: a test class's setUp or
        fixture makes a fresh object for each test."""
        out: list[Span] = []
        for index, app in enumerate(apps):
            if app.kind.kind == "trainer" and any(
                e.result is not None and any(m is e.result for m in app.models) for e in apps[:index]
            ):
                continue  # a trainer given the PEFT model and the config again: LORA414's one mistake, not a reuse
            if any(earlier.point.before(app.point) for earlier in apps[:index]):
                out.append(self.span(app.call))
            elif made is not None and app.point.scope is made.scope and set(app.point.loops) - set(made.loops):
                out.append(self.span(app.call))
        return out

    def _prepared_after(self, app: Application, preparations) -> Span | None:
        """prepare_model_for_kbit_training on the model this application wrapped, later in the same run."""
        mine = [o for o in (*app.models, app.result) if o is not None]
        mine_bases = base_models(mine)
        for prep in preparations:
            if not app.point.before(prep.point):
                continue
            theirs = prep.models
            same = any(o is m for o in theirs for m in mine) or any(
                o is m for o in base_models(theirs) for m in mine_bases
            )
            if not same and not theirs and not mine:
                same = self.program.same_names(app.model_node, prep.model_node)
            if same:
                return self.span(prep.call)
        return None

    def _link_model(self, site: ConfigSite, expr: ast.AST, app: Application | None) -> None:
        """The base model id for a model expression: a literal id, or the from_pretrained that built it."""
        value = self.program.value(expr)
        data = plain(value)
        if isinstance(data, str) and not isinstance(value.value, OneOf):
            site.base_model = Field("base_model", data, self.span(expr), provenance=value.provenance)
            if app is not None and app.kind.kind == "trainer" and (app.qualname or "").startswith("trl."):
                # TRL trainers load a model id themselves, with the class their task needs.
                site.hints.model_class = trl_model_class(app.qualname or "")
                site.hints.model_library = "transformers"
            return
        models = base_models(self.program.objects(expr))
        if not models:
            return
        libraries = {m.library for m in models}
        if len(libraries) == 1:
            site.hints.model_library = libraries.pop()
        if len(models) != 1:
            return
        load = models[0]
        if load.library == "custom":
            return
        call = load.node
        if not isinstance(call, ast.Call):
            return
        self._quantization_hints(site, call, load)
        site.hints.model_class = load.class_name
        name_arg = argument(call, "model_name", 0) if load.library == "unsloth" else None
        if name_arg is None:
            name_arg = argument(call, "pretrained_model_name_or_path", 0)
        if name_arg is not None and load.qualname.rsplit(".", 1)[-1] == "from_pretrained":
            site.base_model = self._field("base_model", name_arg, None)

    def _quantization_hints(self, site: ConfigSite, call: ast.Call, load: Obj) -> None:
        quantization_hints(self, site, call, load)  # loralint/extract/quantized.py

    # --- file-level facts --------------------------------------------------------------------
    def _mark_mutations(self) -> None:
        """`cfg.r = 64` after `cfg = LoraConfig(...)`: the built value is no longer what the call says."""
        created: dict[int, ConfigSite] = {}
        for call, site in self.sites.items():
            obj = self.program.evaluator.created(call)
            if obj is not None:
                created[id(obj)] = site
        for store in self.program.flow.stores:
            target = store.target
            if not isinstance(target, ast.Attribute):
                continue
            attr = target.attr
            if attr not in LORA_FIELDS:
                continue
            for obj in self.program.objects(target.value):
                site = created.get(id(obj))
                if site is None:
                    continue
                name = self.text.short(target.value)
                line = target.lineno
                if attr in site.fields:
                    site.fields[attr].value = Unknown(f"{name}.{attr} is changed at line {line}")
                else:
                    site.fields[attr] = Field(
                        attr, Unknown(f"{name}.{attr} is set at line {line}"), self.span(target), provenance=f"set at line {line}"
                    )

    def _attach_file_hints(self) -> None:
        calls = self.program.callee_names()
        dataset_size: Field | None = None
        for call, _ in self.program.calls_named(frozenset({"load_dataset"})):
            split = argument(call, "split", None)
            if split is None:
                continue
            value = self.program.value(split)
            match = _SPLIT_SIZE_RE.match(value.value) if value.known and isinstance(value.value, str) else None
            if match:
                dataset_size = Field("dataset_size", int(match.group(1)), self.span(split), provenance=f"split={value.value!r}")
                break
        datasets = self._datasets()
        modules = any(self.program.evaluator.is_module_class(info) for info in self.program.flow.classes.values())
        for site in self.sites.values():
            site.hints.calls = calls
            site.hints.defines_modules = modules
            if dataset_size is not None and site.hints.dataset_size is None:
                site.hints.dataset_size = dataset_size
            site.hints.datasets = datasets(site)

    def _datasets(self):
        """Which data set each configuration trains on (sized later by loralint.datasets): the
        train_dataset of the trainer it is applied with (or of the file's only trainer), else the
        file's only data set."""
        from loralint.datasets.python_refs import file_datasets, trainer_datasets

        trainers = trainer_datasets(self.program)
        single = file_datasets(self.program) if not trainers else None
        by_span: dict[Span, Any] = {}  # each trainer's span, the first trainer's where two share one
        for call, refs in trainers:
            by_span.setdefault(self.span(call), refs)

        def pick(site: ConfigSite):
            if len(trainers) == 1:
                return trainers[0][1]
            applied = site.hints.applied_span
            return by_span.get(applied, single) if applied is not None else single

        return pick


def _always_before(edit: Point, use: Point) -> bool:
    """The edit runs on every path that reaches the use (its branch arms are the use's own)."""
    arms = dict(use.branch)
    return all(arms.get(fork) == arm for fork, arm in edit.branch) and not (set(edit.loops) - set(use.loops))


def extract_python(path: str, source: str) -> list[ConfigSite]:
    return PythonExtractor(Program(path, source)).extract()


def extract_python_file(path: str, source: str) -> tuple[list[ConfigSite], list[tuple[Span, str]]]:
    """The sites, and where a bound of the analysis left a configuration value unknown (LORA906)."""
    sites, limits, _, _, _ = extract_python_full(path, source)
    return sites, limits


def extract_python_full(
    path: str, source: str, environment: str | None = None, tree: ast.Module | None = None
) -> tuple[list[ConfigSite], list[tuple[Span, str]], list[Diagnostic], list[ConfigSite], list[Dependency]]:
    """As extract_python_file, plus findings that need no LoraConfig in the file (LORA407, and LORA405 for
    an adapter loaded onto a quantized base and merged), the adapters it loads to train again, and the
    other files read for them (their adapter_config.json, found or not).
    `environment`: the text to read `pip install` lines from when it is not `source` (a notebook's cells
    as written, before its shell lines were blanked); `tree`: `source` already parsed (a notebook's cells)."""
    extractor = PythonExtractor(Program(path, source, tree), pip_installs(source if environment is None else environment))
    sites = extractor.extract()
    found = [*frozen_adapter_findings(extractor.program), *merged_loaded_adapters(extractor),
             *loaded_kbit_kwargs(extractor, sites)]
    loaded = loaded_sites(extractor)
    if loaded:
        attach_training(extractor.program, loaded, extractor.installs)
    extractor.program.release()  # nothing below asks the model again
    return sites, limits_in(sites), found, list(loaded.values()), extractor.reads


def limits_in(sites: list[ConfigSite]) -> list[tuple[Span, str]]:
    found: dict[tuple[int, int, str], tuple[Span, str]] = {}
    for site in sites:
        for f in [*site.fields.values(), *site.unknown_args]:
            values = f.value if isinstance(f.value, (list, tuple)) else [f.value]
            for value in values[:1000]:
                if isinstance(value, LimitReached):
                    found.setdefault((f.span.line, f.span.column, value.reason), (f.span, f"{f.name}: {value.reason}"))
    return list(found.values())


def _statements(body: list[ast.stmt], lines: list[int] | None = None) -> Iterator[ast.stmt]:
    """Every statement under `body`, outer before inner (a `with` block sits only where statements do,
    so expressions, most of a tree's nodes, are not visited); with `lines`, only those whose lines
    hold one of them (text.holds_line: the others, and all they hold, are left out in order)."""
    if lines is not None:
        body = [s for s in body if holds_line(s, lines)]
    stack = [iter(body)]
    while stack:
        statement = next(stack[-1], None)
        if statement is None:
            stack.pop()
            continue
        yield statement
        inner: list[ast.stmt] = []
        for name in ("body", "orelse", "finalbody"):
            value = getattr(statement, name, None)
            if isinstance(value, list):
                inner.extend(value)
        for part in (*getattr(statement, "handlers", ()), *getattr(statement, "cases", ())):
            inner.extend(part.body)
        if inner and lines is not None:
            inner = [s for s in inner if holds_line(s, lines)]
        if inner:
            stack.append(iter(inner))
