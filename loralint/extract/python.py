"""Find every LoRA configuration built in a Python file, without running it.

Recognised: `peft.LoraConfig(...)` however imported, Unsloth's `Fast*Model.get_peft_model(...)`,
TRL's `ModelConfig(...)`. Each becomes a ConfigSite whose fields carry their values (or Unknown),
provenance and spans. The base model is linked when the configuration is applied to a model loaded
in the same file (`get_peft_model(model, cfg)`, `SFTTrainer(..., peft_config=cfg)`, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import libcst as cst

from loralint.extract.bounds import MAX_SITES_PER_FILE, bound_pattern_keys, note
from loralint.extract.positions import compute_positions
from loralint.extract.python_scope import CallRecord, Scope, ScopeCollector, collect, dotted_name
from loralint.extract.python_values import ArgparseOption, Evaluator
from loralint.peft_fields import (
    LORA_FIELDS,
    TRL_MODEL_CONFIG_KEYS,
    PEFT_DEFAULTS,
    UNSLOTH_DEFAULTS,
    UNSLOTH_EXTRA_KEYWORDS,
    UNSLOTH_VISION_DEFAULTS,
)
from loralint.sites import ConfigSite, Field, Span, Unknown

# Unsloth's get_peft_model(model, r, target_modules, lora_alpha, lora_dropout, bias, ...) positional order.
_UNSLOTH_POSITIONAL = ("model", "r", "target_modules", "lora_alpha", "lora_dropout", "bias")
_LORA_POSITIONAL = tuple(PEFT_DEFAULTS)  # dataclass __init__ order

TRL_MODEL_CONFIG_DEFAULTS: dict[str, Any] = {
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "task_type": "CAUSAL_LM",
    "bias": "none",
}
TRL_MODEL_CONFIG_OTHER = frozenset(
    {
        "model_name_or_path",
        "model_revision",
        "dtype",
        "torch_dtype",
        "trust_remote_code",
        "attn_implementation",
        "use_peft",
        "load_in_8bit",
        "load_in_4bit",
        "bnb_4bit_quant_type",
        "use_bnb_nested_quant",
        "bnb_4bit_quant_storage",
        "model_init_kwargs",
    }
)

_TRL_MODEL_CLASSES = {
    "RewardTrainer": "AutoModelForSequenceClassification",
    "PRMTrainer": "AutoModelForTokenClassification",
}
_NOT_MODELS = ("Tokenizer", "Processor", "Config", "FeatureExtractor", "GenerationConfig", "PeftModel")
_SPLIT_SIZE_RE = re.compile(r"^\s*\w+\s*\[\s*(?:0\s*)?:\s*(\d+)\s*\]\s*$")
_FLAG_RE = re.compile(r"^--?([\w-]+)$")


@dataclass(slots=True)
class _ModelLoad:
    call: cst.Call
    scope: Scope
    qualname: str


class PythonExtractor:
    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.source = source
        self.module = cst.parse_module(source)  # raises cst.ParserSyntaxError
        self._positions: dict[cst.CSTNode, tuple[int, int, int, int]] | None = None
        self.collector: ScopeCollector = collect(self.module)
        self.argparse_options = self._collect_argparse()
        self.evaluator = Evaluator(
            code_for=self.code_for,
            line_of=lambda node: self.span(node).line,
            resolve_qualname=self.qualname,
            dataclasses=self.collector.dataclasses,
            argparse_options=self.argparse_options,
            function_returns=lambda node: _returns(node) if isinstance(node, cst.FunctionDef) else [],
        )
        self.sites_by_call: dict[cst.Call, ConfigSite] = {}
        self.scope_by_call: dict[cst.Call, Scope] = {}

    # --- positions and text ------------------------------------------------------------------
    def span(self, node: cst.CSTNode) -> Span:
        if self._positions is None:
            self._positions = compute_positions(self.module)
        pos = self._positions.get(node)
        if pos is None:
            return Span.point(self.path)
        return Span(self.path, pos[0], pos[1] + 1, pos[2], pos[3] + 1)

    def code_for(self, node: cst.CSTNode) -> str:
        text = self.module.code_for_node(node).strip()
        return text if len(text) <= 60 else text[:57] + "..."

    # --- names -------------------------------------------------------------------------------
    def qualname(self, node: cst.CSTNode, scope: Scope, _depth: int = 0) -> str | None:
        """The import path a Name/Attribute refers to (`peft.LoraConfig`), or None if not imported."""
        name = dotted_name(node)
        if name is None or _depth > 8:
            return None
        root, _, rest = name.partition(".")
        bindings = scope.lookup(root)
        if not bindings:
            return None
        resolved: set[str | None] = set()
        for binding in bindings:
            if binding.kind == "import":
                resolved.add(binding.qualname)
            elif binding.kind == "assign" and isinstance(binding.value, (cst.Name, cst.Attribute)):
                resolved.add(self.qualname(binding.value, binding.scope or scope, _depth + 1))
            else:
                return None  # a local class, function or value shadows any import
        if len(resolved) != 1 or None in resolved:
            return None
        base = resolved.pop()
        return f"{base}.{rest}" if rest else base

    # --- the pass ----------------------------------------------------------------------------
    def extract(self) -> list[ConfigSite]:
        loads: dict[cst.Call, _ModelLoad] = {}
        full = False
        for record in self.collector.calls:
            qual = self.qualname(record.node.func, record.scope)
            if not qual:
                continue
            site = None if full else self._site_for(record, qual)
            if site is not None and len(self.sites_by_call) >= MAX_SITES_PER_FILE:
                note("sites", f"more than {MAX_SITES_PER_FILE:,} configurations in one file; only the first "
                     f"{MAX_SITES_PER_FILE:,} are checked", site.span.line, site.span.column)
                full = True
            elif site is not None:
                self.sites_by_call[record.node] = site
                self.scope_by_call[record.node] = record.scope
            elif _is_model_load(qual):
                loads[record.node] = _ModelLoad(record.node, record.scope, qual)
        if not self.sites_by_call:
            return []
        self._link_applications(loads)
        self._mark_mutations()
        self._attach_file_hints()
        return list(self.sites_by_call.values())

    def _site_for(self, record: CallRecord, qual: str) -> ConfigSite | None:
        parts = qual.split(".")
        if parts[0] == "peft" and parts[-1] == "LoraConfig":
            return self._build_site(record, "peft.LoraConfig", _LORA_POSITIONAL, {}, frozenset())
        if parts[0] == "unsloth" and parts[-1] == "get_peft_model":
            vision = any(p in ("FastVisionModel", "FastModel", "FastBaseModel") for p in parts)
            defaults = UNSLOTH_VISION_DEFAULTS if vision else UNSLOTH_DEFAULTS
            site = self._build_site(record, "unsloth.get_peft_model", _UNSLOTH_POSITIONAL, defaults, UNSLOTH_EXTRA_KEYWORDS)
            site.hints.applied.append("unsloth")
            site.hints.applied_span = site.span
            model_arg = _argument(record.node, "model", 0)
            if model_arg is not None:
                site.base_model, _ = self._model_of(model_arg, record.scope, None, site)
            return site
        if parts[0] == "trl" and parts[-1] == "ModelConfig":
            keywords = {a.keyword.value for a in record.node.args if a.keyword is not None}
            if not (keywords & (set(TRL_MODEL_CONFIG_KEYS) | {"use_peft"})):
                return None
            site = self._build_site(
                record,
                "trl.ModelConfig",
                (),
                TRL_MODEL_CONFIG_DEFAULTS,
                TRL_MODEL_CONFIG_OTHER | frozenset(TRL_MODEL_CONFIG_KEYS),
                TRL_MODEL_CONFIG_KEYS,
            )
            name_arg = _argument(record.node, "model_name_or_path", None)
            if name_arg is not None:
                site.base_model = self._field("base_model", name_arg, record.scope, key=None)
            return site
        return None

    def _build_site(
        self,
        record: CallRecord,
        origin: str,
        positional: tuple[str, ...],
        defaults: dict[str, Any],
        extra_known: frozenset[str],
        rename: dict[str, str] | None = None,
    ) -> ConfigSite:
        call = record.node
        site = ConfigSite(
            path=self.path,
            span=self.span(call),
            origin=origin,
            defaults=dict(defaults),
            extra_known=extra_known,
        )
        if call.args:
            last = call.args[-1]
            site.append_at = self.span(last)
        for index, arg in enumerate(call.args):
            if arg.star == "**":
                self._expand_kwargs(site, arg.value, record.scope, rename, extra_known)
            elif arg.star == "*":
                site.opaque = f"*{self.code_for(arg.value)} passes positional arguments that cannot be read"
            elif arg.keyword is not None:
                self._add_argument(site, arg.keyword.value, arg.value, record.scope, arg, rename, extra_known)
            elif index < len(positional):
                self._add_argument(site, positional[index], arg.value, record.scope, arg, rename, extra_known)
        return site

    def _add_argument(self, site, name, value_node, scope, key_node, rename, extra_known) -> None:
        canonical = rename.get(name, name) if rename is not None else name
        known_names = set(rename.values()) if rename is not None else LORA_FIELDS
        if name in ("model",) and site.origin == "unsloth.get_peft_model":
            return
        if canonical in known_names and (rename is None or name in rename):
            field = self._field(canonical, value_node, scope, key_node)
            if name != canonical:
                field.raw_name = name
            site.fields[canonical] = field
        elif name in extra_known:
            return
        else:
            field = self._field(name, value_node, scope, key_node)
            if isinstance(key_node, cst.Arg) and key_node.keyword is not None:
                field.span = self.span(key_node.keyword)
            elif isinstance(key_node, cst.DictElement):
                field.span = self._key_name_span(key_node.key)
            site.unknown_args.append(field)

    def _key_name_span(self, key: cst.BaseExpression) -> Span:
        """A dict key's name without its prefix and quotes (what a rename replaces); the whole key
        when its text is not the name itself (escapes, concatenation, a constant)."""
        span = self.span(key)
        if isinstance(key, cst.SimpleString) and span.line == span.end_line:
            opening = len(key.prefix) + len(key.quote)
            if key.raw_value == key.evaluated_value:
                return Span(span.path, span.line, span.column + opening, span.line, span.end_column - len(key.quote))
        return span

    def _field(self, name: str, value_node: cst.BaseExpression, scope: Scope, key: cst.CSTNode | None) -> Field:
        value = self.evaluator.eval(value_node, scope)
        span = self.span(value_node)
        field = Field(
            name=name,
            value=bound_pattern_keys(name, value.value, span.line, span.column),
            span=span,
            key_span=self.span(key) if key is not None else None,
            provenance=value.provenance,
        )
        written = value.node if isinstance(value.node, (cst.List, cst.Tuple, cst.Set)) else None
        if written is not None and isinstance(value.value, (list, tuple, set)):
            for element in written.elements:
                if isinstance(element.value, cst.SimpleString):
                    field.items.append((element.value.evaluated_value, self.span(element.value)))
        return field

    def _expand_kwargs(self, site, expr, scope, rename, extra_known) -> None:
        entries = self._dict_entries(expr, scope, 0)
        if isinstance(entries, Unknown):
            site.opaque = f"**{self.code_for(expr)}: {entries.reason}"
            return
        for key, value_node, key_node, entry_scope in entries:
            self._add_argument(site, key, value_node, entry_scope, key_node, rename, extra_known)

    def _dict_entries(self, expr, scope: Scope, depth: int):
        """(key, value node, key node, scope) for each entry of a dict literal / dict(...) call."""
        if depth > 8:
            return Unknown("nested too deeply")
        if isinstance(expr, cst.Name):
            bindings = scope.lookup(expr.value)
            if len(bindings) != 1 or bindings[0].kind != "assign" or bindings[0].value is None:
                reason = "assigned more than once" if len(bindings) > 1 else "not a dict built in this file"
                return Unknown(f"{expr.value} is {reason}")
            return self._dict_entries(bindings[0].value, bindings[0].scope or scope, depth + 1)
        entries: list[tuple[str, cst.BaseExpression, cst.CSTNode, Scope]] = []
        if isinstance(expr, cst.Dict):
            for element in expr.elements:
                if isinstance(element, cst.StarredDictElement):
                    inner = self._dict_entries(element.value, scope, depth + 1)
                    if isinstance(inner, Unknown):
                        return inner
                    entries.extend(inner)
                    continue
                key = self.evaluator.eval(element.key, scope)
                if not key.known or not isinstance(key.value, str):
                    return Unknown("a key is not a string literal")
                entries.append((key.value, element.value, element, scope))
            return entries
        if isinstance(expr, cst.Call) and dotted_name(expr.func) == "dict":
            for arg in expr.args:
                if arg.keyword is not None:
                    entries.append((arg.keyword.value, arg.value, arg, scope))
                else:
                    inner = self._dict_entries(arg.value, scope, depth + 1)
                    if isinstance(inner, Unknown):
                        return inner
                    entries.extend(inner)
            return entries
        return Unknown(f"{self.code_for(expr)} is not a dict literal")

    # --- applications: which model a configuration is applied to -----------------------------
    def _link_applications(self, loads: dict[cst.Call, _ModelLoad]) -> None:
        applications: dict[ConfigSite, list[Span]] = {}
        for record in self.collector.calls:
            call, scope = record.node, record.scope
            qual = self.qualname(call.func, scope) or ""
            parts = qual.split(".")
            config_arg = model_arg = None
            kind = None
            if parts[0] == "peft" and parts[-1] in ("get_peft_model", "PeftModel", "PeftMixedModel") or (
                parts[0] == "peft" and parts[-1].startswith("PeftModelFor")
            ):
                config_arg, model_arg, kind = _argument(call, "peft_config", 1), _argument(call, "model", 0), "get_peft_model"
            elif parts[0] == "peft" and parts[-1] == "inject_adapter_in_model":
                config_arg, model_arg, kind = _argument(call, "peft_config", 0), _argument(call, "model", 1), "get_peft_model"
            elif _argument(call, "peft_config", None) is not None:
                config_arg, model_arg, kind = _argument(call, "peft_config", None), _argument(call, "model", 0), "trainer"
            elif isinstance(call.func, cst.Attribute) and call.func.attr.value == "add_adapter":
                config_arg = _argument(call, "adapter_config", None)
                if config_arg is None:
                    config_arg = next((a.value for a in call.args if self._sites_of(a.value, scope)), None)
                model_arg, kind = call.func.value, "add_adapter"
            if config_arg is None or kind is None:
                continue
            for site in self._sites_of(config_arg, scope):
                if kind not in site.hints.applied:
                    site.hints.applied.append(kind)
                applications.setdefault(site, []).append(self.span(call))
                if site.hints.applied_span is None:
                    site.hints.applied_span = self.span(call)
                if model_arg is not None and site.base_model is None:
                    site.base_model, load = self._model_of(model_arg, scope, loads, site)
                    if kind == "trainer" and load is None and site.base_model is not None and qual.startswith("trl."):
                        # TRL trainers load a model id themselves, with the class their task needs.
                        site.hints.model_class = _TRL_MODEL_CLASSES.get(parts[-1], "AutoModelForCausalLM")
        for site, spans in applications.items():
            site.hints.reapplied = spans[1:]

    def _sites_of(self, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> list[ConfigSite]:
        """The configurations an expression can evaluate to: a call, a name bound to one, or a
        call to a local function that returns one (`def lora_config(): return LoraConfig(...)`)."""
        if depth > 4:
            return []
        if isinstance(expr, cst.Call):
            site = self.sites_by_call.get(expr)
            if site is not None:
                return [site]
            if isinstance(expr.func, cst.Name):
                for binding in scope.lookup(expr.func.value):
                    if binding.kind == "def" and isinstance(binding.node, cst.FunctionDef):
                        return self._returned_sites(binding.node, depth)
            return []
        if isinstance(expr, cst.Name):
            out: list[ConfigSite] = []
            for binding in scope.lookup(expr.value):
                if isinstance(binding.value, cst.BaseExpression):
                    out.extend(self._sites_of(binding.value, binding.scope or scope, depth + 1))
            return out
        return []

    def _returned_sites(self, function: cst.FunctionDef, depth: int) -> list[ConfigSite]:
        inner_scope = self.collector.scope_of.get(function)
        if inner_scope is None:
            return []
        out: list[ConfigSite] = []
        for node in _returns(function):
            if node.value is not None:
                out.extend(self._sites_of(node.value, inner_scope, depth + 1))
        return out

    def _model_of(self, expr, scope: Scope, loads, site: ConfigSite) -> tuple[Field | None, Any]:
        """The base model id for a model expression: a literal id, or the from_pretrained that built it."""
        value = self.evaluator.eval(expr, scope)
        if value.known and isinstance(value.value, str):
            return Field("base_model", value.value, self.span(expr), provenance=value.provenance), None
        load = self._load_of(expr, scope)
        if load is None:
            return None, None
        call, load_scope, qual = load
        self._quantization_hints(site, call, load_scope, qual)
        site.hints.model_class = qual.split(".")[-2]
        name_arg = _argument(call, "model_name", 0) if qual.startswith("unsloth.") else None
        if name_arg is None:
            name_arg = _argument(call, "pretrained_model_name_or_path", 0)
        if name_arg is None:
            return None, load
        field = self._field("base_model", name_arg, load_scope, None)
        return field, load

    def _load_of(self, expr, scope: Scope, depth: int = 0):
        if depth > 6:
            return None
        if isinstance(expr, cst.Call):
            qual = self.qualname(expr.func, scope) or ""
            return (expr, scope, qual) if _is_model_load(qual) else None
        if not isinstance(expr, cst.Name):
            return None
        found = []
        for binding in scope.lookup(expr.value):
            value = binding.value
            if isinstance(value, cst.Call):
                qual = self.qualname(value.func, binding.scope or scope) or ""
                if _is_model_load(qual):
                    found.append((value, binding.scope or scope, qual))
        return found[0] if len(found) == 1 else None

    def _quantization_hints(self, site: ConfigSite, call: cst.Call, scope: Scope, qual: str) -> None:
        hints = site.hints
        for arg in call.args:
            if arg.keyword is None:
                continue
            key = arg.keyword.value
            if key in ("load_in_4bit", "load_in_8bit"):
                value = self.evaluator.eval(arg.value, scope)
                if value.known and value.value is True:
                    hints.quantization = "4bit" if key.endswith("4bit") else "8bit"
                    hints.quantization_span = self.span(arg)
            elif key == "quantization_config":
                config = self._bnb_config(arg.value, scope)
                if config is not None:
                    values, span = config
                    if values.get("load_in_4bit") is True:
                        hints.quantization = "4bit"
                    elif values.get("load_in_8bit") is True:
                        hints.quantization = "8bit"
                    hints.quantization_span = span
                    hints.bnb_config = values
        if hints.quantization is None and qual.startswith("unsloth.") and _argument(call, "load_in_4bit", None) is None:
            if not any(a.keyword is not None and a.keyword.value in ("load_in_8bit", "load_in_16bit", "full_finetuning")
                       for a in call.args):
                hints.quantization = "4bit"  # FastLanguageModel.from_pretrained defaults to load_in_4bit=True
                hints.quantization_span = self.span(call)

    def _bnb_config(self, expr, scope: Scope):
        node, node_scope = expr, scope
        if isinstance(expr, cst.Name):
            bindings = scope.lookup(expr.value)
            if len(bindings) != 1 or not isinstance(bindings[0].value, cst.Call):
                return None
            node, node_scope = bindings[0].value, bindings[0].scope or scope
        if not isinstance(node, cst.Call):
            return None
        qual = self.qualname(node.func, node_scope) or ""
        if not qual.endswith("BitsAndBytesConfig"):
            return None
        value = self.evaluator.eval_dict_call(node, node_scope)
        if not value.known:
            return None
        return value.value, self.span(node)

    # --- file-level facts --------------------------------------------------------------------
    def _mark_mutations(self) -> None:
        """`cfg.r = 64` after `cfg = LoraConfig(...)`: the built value is no longer what the call says."""
        # One pass over every scope's bindings, summarised per name (not a scan per configuration:
        # 10,000 configurations assigned to one name made that quadratic).
        named: dict[cst.Call, list[tuple[str, dict[str, tuple[cst.Attribute, int, int, int]]]]] = {}
        for scope in (self.collector.module_scope, *self.collector.scope_of.values()):
            for name, items in scope.bindings.items():
                calls = [b.value for b in items if isinstance(b.value, cst.Call) and b.value in self.sites_by_call]
                if not calls:
                    continue
                # attr → (first target, its line, the last one's line, how many)
                changed: dict[str, tuple[cst.Attribute, int, int, int]] = {}
                for b in items:
                    # site.fields only holds LoRA field names: other attributes change nothing we read
                    if b.kind == "mutate" and isinstance(b.target, cst.Attribute) and b.target.attr.value in LORA_FIELDS:
                        line = self.span(b.target).line
                        seen = changed.get(b.target.attr.value)
                        changed[b.target.attr.value] = (
                            (seen[0], seen[1], line, seen[3] + 1) if seen else (b.target, line, line, 1)
                        )
                if changed:
                    for call in dict.fromkeys(calls):
                        named.setdefault(call, []).append((name, changed))
        for call, site in self.sites_by_call.items():
            for name, changed in named.get(call, ()):
                for attr, (target, first, last, count) in changed.items():
                    if attr in site.fields:
                        site.fields[attr].value = Unknown(f"{name}.{attr} is changed at line {last}")
                    else:
                        how = f"is set at line {first}" if count == 1 else f"is changed at line {last}"
                        site.fields[attr] = Field(
                            attr,
                            Unknown(f"{name}.{attr} {how}"),
                            self.span(target),
                            provenance=f"set at line {first}",
                        )

    def _attach_file_hints(self) -> None:
        calls: set[str] = set()
        dataset_size: Field | None = None
        peft_calls: list[tuple[str, Span]] = []
        for record in self.collector.calls:
            qual = self.qualname(record.node.func, record.scope) or ""
            short = qual.rsplit(".", 1)[-1] if qual else (dotted_name(record.node.func) or "").rsplit(".", 1)[-1]
            calls.add(short)
            if qual.startswith("peft.") and short in ("prepare_model_for_kbit_training", "get_peft_model"):
                peft_calls.append((short, self.span(record.node)))
            if short == "load_dataset" and dataset_size is None:
                split = _argument(record.node, "split", None)
                if split is not None:
                    value = self.evaluator.eval(split, record.scope)
                    match = _SPLIT_SIZE_RE.match(value.value) if value.known and isinstance(value.value, str) else None
                    if match:
                        dataset_size = Field(
                            "dataset_size", int(match.group(1)), self.span(split), provenance=f"split={value.value!r}"
                        )
        prepared_after = None
        seen_peft = False
        for short, span in peft_calls:
            if short == "get_peft_model":
                seen_peft = True
            elif seen_peft:
                prepared_after = span
        for site in self.sites_by_call.values():
            site.hints.calls = frozenset(calls)
            if dataset_size is not None and site.hints.dataset_size is None:
                site.hints.dataset_size = dataset_size
            if prepared_after is not None and "get_peft_model" in site.hints.applied:
                site.hints.kbit_prepared_after = prepared_after

    def _collect_argparse(self) -> dict[str, ArgparseOption]:
        options: dict[str, ArgparseOption] = {}
        for record in self.collector.calls:
            func = record.node.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "add_argument"):
                continue
            flags = [a.value for a in record.node.args if a.keyword is None]
            names = [ast_str(f) for f in flags]
            names = [n for n in names if n]
            if not names:
                continue
            long = next((n for n in names if n.startswith("--")), names[0])
            match = _FLAG_RE.match(long)
            dest = match.group(1).replace("-", "_") if match else long
            keywords = {a.keyword.value: a.value for a in record.node.args if a.keyword is not None}
            if "dest" in keywords and ast_str(keywords["dest"]):
                dest = ast_str(keywords["dest"])
            type_node = keywords.get("type")
            action = ast_str(keywords["action"]) if "action" in keywords else None
            options[dest] = ArgparseOption(
                dest=dest,
                flag=long,
                call=record.node,
                default=keywords.get("default"),
                type_name=dotted_name(type_node) if type_node is not None else None,
                action=action,
            )
        return options


def ast_str(node: cst.CSTNode) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _argument(call: cst.Call, keyword: str, position: int | None) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    if position is not None:
        positional = [a for a in call.args if a.keyword is None and not a.star]
        if position < len(positional):
            return positional[position].value
    return None


def _is_model_load(qual: str) -> bool:
    parts = qual.split(".")
    if len(parts) < 3 or parts[-1] != "from_pretrained":
        return False
    if parts[0] == "unsloth":
        return True
    return parts[0] == "transformers" and not any(word in parts[-2] for word in _NOT_MODELS)


class _ReturnFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.Return] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # returns of nested functions are theirs

    def visit_Return(self, node: cst.Return) -> None:
        self.found.append(node)


def _returns(function: cst.FunctionDef) -> list[cst.Return]:
    finder = _ReturnFinder()
    function.body.visit(finder)
    return finder.found


def extract_python(path: str, source: str) -> list[ConfigSite]:
    return PythonExtractor(path, source).extract()


_PARSER_AT = re.compile(r"error at (\d+):(\d+):\s*(.*)", re.S)


def parse_error_position(exc: Exception, source: str = "") -> tuple[int, int, str] | None:
    """(line, column, message) for a libcst syntax error, None for any other exception."""
    if not isinstance(exc, cst.ParserSyntaxError):
        return None
    text = exc.message.removeprefix("parser error: ").strip()
    line, column = exc.raw_line, exc.raw_column + 1
    if text.startswith("tokenizer error") and source:
        # libcst's tokenizer errors carry no position (1:0); Python's own parser knows it. ast.parse only
        # parses: nothing is compiled to bytecode or run.
        import ast
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse(source)
        except SyntaxError as err:
            line, column = err.lineno or 1, max(err.offset or 1, 1)
        except (ValueError, RecursionError, MemoryError):
            pass
    match = _PARSER_AT.search(text)
    if match:
        # the native parser's "error at L:C" counts columns from 0
        line, column, text = int(match.group(1)), int(match.group(2)) + 1, match.group(3)
    text = text.splitlines()[0] if text else "invalid syntax"
    if len(text) > 90:
        text = text[:87] + "..."
    return line, column, f"invalid Python syntax ({text})"
