"""Quantization facts of a Python training script, as facts about the objects it handles.

How the base model is loaded (a `BitsAndBytesConfig` followed to `from_pretrained(quantization_config=...)`,
the old `load_in_4bit=`/`load_in_8bit=` keywords, Unsloth's default, a pre-quantized checkpoint by name),
whether that model is made ready for k-bit training, which trainer trains the PEFT model the script
wraps itself, and whether that PEFT model is merged (the trainer and the merge as extract/trainers.py
finds them). `PythonExtractor` calls these once per site.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any

# The checks' wording of LORA405/LORA306, imported with this module (not in the functions): the main process
# imports the extractors before it forks its workers, which then share these instead of each importing them.
from loralint.checks.quantization import kbit_kwarg_message, merge_message, quantized_here
from loralint.extract.trainers import adapter_loads, merge_of, trainer_of
from loralint.program.evaluate import argument, plain
from loralint.program.model import Application, ModelIds, base_models
from loralint.program.values import Obj, OneOf
from loralint.sites import ConfigSite, Diagnostic, Span

if TYPE_CHECKING:
    from loralint.extract.python import PythonExtractor

# Pre-quantized checkpoints by the suffix their publishers give them (unsloth/*-bnb-4bit,
# TheBloke/*-GPTQ, Qwen/*-GPTQ-Int4, *-AWQ): their config.json carries the quantization_config, so
# from_pretrained loads them quantized without any argument saying so.
_BNB_NAME = re.compile(r"[-_]bnb[-_]?(4|8)bit$", re.IGNORECASE)
_GPTQ_NAME = re.compile(r"[-_]gptq(?:[-_][\w.]+)?$", re.IGNORECASE)
_AWQ_NAME = re.compile(r"[-_]awq(?:[-_][\w.]+)?$", re.IGNORECASE)

# Calls on a model that make a quantized base trainable the way prepare_model_for_kbit_training does
# for the failure that matters (peft/utils/other.py: enable_input_require_grads for reentrant checkpointing).
_PREPARING_METHODS = frozenset({"enable_input_require_grads", "gradient_checkpointing_enable"})


def quantization_hints(ex: PythonExtractor, site: ConfigSite, call: ast.Call, load: Obj) -> None:
    """Fill site.hints with how `call` (the from_pretrained that made the base model) quantizes it."""
    hints = site.hints
    for key, value_node, span in _keywords(ex, call):
        if key in ("load_in_4bit", "load_in_8bit"):
            if load.library == "transformers" or load.qualname.startswith("peft."):
                hints.kbit_kwarg = span
            value = ex.program.value(value_node)
            if load.library == "transformers" or load.qualname.startswith("peft."):
                # The value only when it is written so: a parameter's default (load_in_8bit=load_8bit) may be overridden.
                literal = value.known and isinstance(value.value, bool) and value.provenance == "literal"
                hints.kbit_kwarg_written = f"{key}={value.value!r}" if literal else f"{key}=..."
            if value.known and value.value is True and hints.quantization is None:
                hints.quantization = "4bit" if key.endswith("4bit") else "8bit"
                hints.quantization_span = span
                hints.quant_method = "bitsandbytes"
                hints.quantization_source = f"{key}=True"
        elif key == "quantization_config":
            config = bnb_config(ex, value_node)
            if config is None:
                continue
            values, config_span = config
            hints.bnb_spans = bnb_keyword_spans(ex, value_node)
            if values.get("load_in_4bit") is True:
                hints.quantization = "4bit"
            elif values.get("load_in_8bit") is True:
                hints.quantization = "8bit"
            hints.quantization_span = config_span
            hints.bnb_config = values
            if hints.quantization is not None:
                hints.quant_method = "bitsandbytes"
                hints.quantization_source = f"BitsAndBytesConfig(load_in_{hints.quantization}=True)"
    if hints.quantization is None and load.library == "unsloth" and argument(call, "load_in_4bit", None) is None:
        if not any(k.arg in ("load_in_8bit", "load_in_16bit", "full_finetuning") or k.arg is None for k in call.keywords):
            hints.quantization = "4bit"  # FastLanguageModel.from_pretrained defaults to load_in_4bit=True
            hints.quantization_span = ex.span(call)
            hints.quant_method = "bitsandbytes"
            hints.quantization_source = "Unsloth's default load_in_4bit=True"
    if hints.quantization is None and hints.quant_method is None and argument(call, "quantization_config", None) is None:
        _by_name(ex, site, call, load)


def _keywords(ex: PythonExtractor, call: ast.Call) -> list[tuple[str, ast.AST, Span]]:
    """(name, value, span) of each keyword, `**model_kwargs` built in this file included."""
    out: list[tuple[str, ast.AST, Span]] = []
    for keyword in call.keywords:
        if keyword.arg is not None:
            out.append((keyword.arg, keyword.value, ex.span(keyword)))
            continue
        entries = ex._dict_entries(keyword.value, ex.program.point_of(call), 0)
        if isinstance(entries, list):
            out.extend((key, value, span) for key, value, span, why in entries if why is None)
    return out


def _by_name(ex: PythonExtractor, site: ConfigSite, call: ast.Call, load: Obj) -> None:
    """A checkpoint published quantized, recognised by its name's suffix."""
    name_arg = argument(call, "model_name", 0) if load.library == "unsloth" else None
    if name_arg is None:
        name_arg = argument(call, "pretrained_model_name_or_path", 0)
    if name_arg is None:
        return
    value = ex.program.value(name_arg)
    name = plain(value)
    if not isinstance(name, str) or isinstance(value.value, OneOf):
        return
    hints = site.hints
    tail = name.rstrip("/").rsplit("/", 1)[-1]
    bnb = _BNB_NAME.search(tail)
    if bnb:
        hints.quantization = f"{bnb.group(1)}bit"
        hints.quant_method = "bitsandbytes"
    elif _GPTQ_NAME.search(tail):
        hints.quant_method = "gptq"
    elif _AWQ_NAME.search(tail):
        hints.quant_method = "awq"
    else:
        return
    hints.quantization_span = ex.span(name_arg)
    hints.quantization_source = f"the checkpoint {tail!r} is published quantized"


def bnb_config(ex: PythonExtractor, expr: ast.AST) -> tuple[dict[str, Any], Span] | None:
    """The arguments of the BitsAndBytesConfig an expression is, followed through names, helpers
    and dicts (the evaluator turns a BitsAndBytesConfig(...) call into the dict of its arguments)."""
    value = ex.program.value(expr)
    node = value.node
    if not value.known or not isinstance(value.value, dict) or not isinstance(node, ast.Call):
        return None
    if not (ex.program.qualname(node.func) or "").endswith("BitsAndBytesConfig"):
        return None
    return value.value, ex.span(node)


def bnb_keyword_spans(ex: PythonExtractor, expr: ast.AST) -> dict[str, Span]:
    """`name=value` spans of the BitsAndBytesConfig call an expression is (bnb_config's), for findings about one argument."""
    node = ex.program.value(expr).node
    if not isinstance(node, ast.Call):
        return {}
    return {k.arg: ex.span(k) for k in node.keywords if k.arg is not None}


def model_quantized(ex: PythonExtractor, load: Obj) -> bool:
    """`load` (a from_pretrained model object) is loaded in 4 or 8 bits by bitsandbytes, as far as the file says."""
    if not isinstance(load.node, ast.Call):
        return False
    probe = ConfigSite(path=ex.path, span=ex.span(load.node), origin="probe")
    quantization_hints(ex, probe, load.node, load)
    return probe.hints.quantization in ("4bit", "8bit") and probe.hints.quant_method == "bitsandbytes"


def training_context(ex: PythonExtractor, site: ConfigSite, apps: list[Application]) -> None:
    """For a site whose base is quantized: its k-bit preparation, the trainer of the PEFT model the
    script wraps itself, a merge of that PEFT model, and FSDP in the training arguments."""
    hints = site.hints
    if hints.quantization is None and hints.quant_method is None:
        return
    loads: list[Obj] = []
    wrapped: list[Obj] = []  # the PEFT models the script builds from this config
    for app in apps:
        loads.extend(o for o in base_models(app.models) if not any(o is l for l in loads))
        if app.result is not None:
            wrapped.append(app.result)
        if app.kind.kind == "trainer" and hints.kbit_prepared_by is None:
            # TRL <= 0.28 (trl/models/utils.py prepare_peft_model) calls prepare_model_for_kbit_training on a
            # quantized model given with peft_config; TRL >= 0.29's SFTTrainer enables input gradients itself.
            hints.kbit_prepared_by = app.qualname or "the trainer"
            hints.kbit_prepared = ex.span(app.call)
    if site.origin.startswith("unsloth"):
        hints.kbit_prepared_by = "unsloth"  # FastLanguageModel.get_peft_model prepares the model itself
    mine = ModelIds([*loads, *wrapped])
    for prep in ex.program.preparations():
        if mine.touches(prep.models):
            hints.kbit_prepared = ex.span(prep.call)
            hints.kbit_prepared_by = "prepare_model_for_kbit_training"
    for call in _preparing_calls(ex):
        func = call.func
        assert isinstance(func, ast.Attribute)
        if hints.kbit_prepared_by is None:
            if func.attr == "gradient_checkpointing_enable" and not _non_reentrant(ex, call):
                continue
            if mine.touched(ex.program, func.value):
                hints.kbit_prepared = ex.span(call)
                hints.kbit_prepared_by = func.attr
    hints.kbit_cast_by_hand = _fp32_cast_by_hand(ex, mine)
    if not wrapped:
        return
    if hints.quant_method == "bitsandbytes":
        merge = merge_of(ex.program, wrapped)
        if merge is not None:
            hints.merged_quantized = ex.span(merge)
    trainer = trainer_of(ex.program, wrapped)
    if trainer is not None:
        hints.peft_model_trainer = (ex.program.qualname(trainer.func) or "", ex.span(trainer))
        _fsdp(ex, site, trainer)


def _preparing_calls(ex: PythonExtractor) -> list[ast.Call]:
    """The module's `x.<preparing method>(...)` calls in flow order, found once a module (each site asks)."""
    return ex.program.once("kbit_preparing_calls", lambda: [
        call for call, _ in ex.program.flow.calls_by_last(_PREPARING_METHODS, attribute_only=True)
    ])


def _data_stores(ex: PythonExtractor) -> list:
    """The module's `name.data = ...` stores in flow order, found once a module (each site asks)."""
    return ex.program.once("data_stores", lambda: [
        store for store in ex.program.flow.stores
        if isinstance(store.target, ast.Attribute) and store.target.attr == "data" and isinstance(store.target.value, ast.Name)
    ])


def _fp32_cast_by_hand(ex: PythonExtractor, mine: ModelIds) -> Span | None:
    """`for p in model.parameters(): p.data = p.data.to(torch.float32)` (or `.float()`, or named_parameters)
    on one of these models: what prepare_model_for_kbit_training does to the 16-bit parameters
    (peft/utils/other.py: `param.data = param.data.to(torch.float32)`), written out by the script."""
    for store in _data_stores(ex):
        target = store.target
        assert isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
        if store.value is None or not _casts_to_fp32(store.value):
            continue
        for binding in ex.program.flow.reach.get(target.value, ()):
            loop = binding.value
            if binding.kind != "loop" or not isinstance(loop, ast.Call) or not isinstance(loop.func, ast.Attribute):
                continue
            if loop.func.attr in ("parameters", "named_parameters") and mine.touched(ex.program, loop.func.value):
                return ex.span(store.target)
    return None


def _casts_to_fp32(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr == "float32":
            return True
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "float" \
                and not sub.args and not sub.keywords:
            return True
    return False


def _non_reentrant(ex: PythonExtractor, call: ast.Call) -> bool:
    """gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})."""
    kwargs = argument(call, "gradient_checkpointing_kwargs", 0)
    if kwargs is None:
        return False
    value = plain(ex.program.value(kwargs))
    return isinstance(value, dict) and value.get("use_reentrant") is False


def _fsdp(ex: PythonExtractor, site: ConfigSite, trainer_call: ast.Call) -> None:
    """FSDP sharding in the TrainingArguments/SFTConfig the trainer gets (`fsdp="full_shard auto_wrap"`)."""
    args = argument(trainer_call, "args", 1)
    if args is None:
        return
    value = ex.program.value(args)
    node = value.node
    if isinstance(args, ast.Name):
        bindings = ex.program.flow.reach.get(args, ())
        node = bindings[0].value if len(bindings) == 1 and bindings[0].kind == "assign" else None
    if not isinstance(node, ast.Call):
        return
    fsdp = argument(node, "fsdp", None)
    if fsdp is None:
        return
    setting = plain(ex.program.value(fsdp))
    if isinstance(setting, str) and setting.strip() and setting.strip() != "no_shard" or setting is True:
        site.hints.fsdp = ex.span(fsdp)


def attach(ex: PythonExtractor) -> None:
    """training_context for every site of the file, with the applications of its config object."""
    for call, site in ex.sites.items():
        apps = ex.program.applications_of(ex.program.evaluator.created(call))
        if site.origin.startswith("unsloth"):
            apps = []  # Unsloth's get_peft_model is the site itself
        training_context(ex, site, apps)


def merged_loaded_adapters(ex: PythonExtractor) -> list[Diagnostic]:
    """LORA405 where the script builds no LoRA configuration: a saved adapter loaded onto a 4/8-bit base
    (`PeftModel.from_pretrained(base, adapter)`, or `AutoPeftModelFor*.from_pretrained(adapter,
    quantization_config=...)`, which loads the base with those arguments) and merged. The finding is
    anchored at the merge call; no configuration site is made for the loaded adapter."""
    from loralint.extract.trainers import MERGES

    program = ex.program
    if not program.calls_named(MERGES):
        return []
    out: list[Diagnostic] = []
    for call, _, loaded in adapter_loads(program):
        if loaded is None:
            continue
        merge = merge_of(program, [loaded])
        if merge is None:
            continue
        probe = _loaded_quantization(ex, call, loaded)
        if probe is None:
            continue
        description, related = quantized_here(probe)
        out.append(Diagnostic(
            "LORA405", "merge-into-quantized-base", "warning", merge_message(description), ex.span(merge),
            related=[*related, (ex.span(call), "the adapter is loaded onto that base here")],
        ))
    return out


def loaded_kbit_kwargs(ex: PythonExtractor, sites: list[ConfigSite]) -> list[Diagnostic]:
    """LORA306 on the base a saved adapter is loaded onto (`PeftModel.from_pretrained(base, ...)` to merge or
    to train again): no LoraConfig site covers that from_pretrained, yet its load_in_4bit=/load_in_8bit= raises
    in transformers 5 all the same. Keywords a site reports already are left to it."""
    program = ex.program
    reported = {site.hints.kbit_kwarg for site in sites if site.hints.kbit_kwarg is not None}
    out: list[Diagnostic] = []
    for call, _, loaded in adapter_loads(program):
        if loaded is None:
            continue
        for base in base_models([loaded]):
            if not isinstance(base.node, ast.Call):
                continue
            probe = ConfigSite(path=ex.path, span=ex.span(base.node), origin="probe")
            quantization_hints(ex, probe, base.node, base)
            span = probe.hints.kbit_kwarg
            if span is not None and span not in reported:
                reported.add(span)
                out.append(Diagnostic("LORA306", "deprecated-kbit-kwarg", "warning", kbit_kwarg_message(probe), span,
                                      related=[(ex.span(call), "the adapter is loaded onto this model here")]))
    return out


def _loaded_quantization(ex: PythonExtractor, call: ast.Call, loaded: Obj) -> ConfigSite | None:
    """The quantization facts of the base a loaded adapter sits on, gathered on a probe site that is never
    reported (None when that base is not loaded in 4/8 bits by bitsandbytes, as far as the file says)."""
    candidates = [(b.node, b) for b in base_models([loaded]) if isinstance(b.node, ast.Call)]
    if not candidates:
        candidates = [(call, loaded)]  # AutoPeftModelFor*.from_pretrained loads the base with its own arguments
    for node, obj in candidates:
        probe = ConfigSite(path=ex.path, span=ex.span(node), origin="probe")
        quantization_hints(ex, probe, node, obj)
        if probe.hints.quantization in ("4bit", "8bit") and probe.hints.quant_method == "bitsandbytes":
            return probe
    return None
