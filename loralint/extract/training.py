"""The training around a LoRA configuration, read from the program model: which trainer trains it,
with which arguments (and DeepSpeed config), what the tokenizer and collator do, and what happens
after training. Facts only (rules decide): each is a span in the script, or None when not seen.

Also the one training fact that needs no LoraConfig in the file: an adapter loaded with
`PeftModel.from_pretrained` (frozen unless `is_trainable=True`, peft/peft_model.py
`config.inference_mode = not is_trainable`) that a trainer then trains (LORA407).
"""

from __future__ import annotations

import ast
import json
import os
from typing import Any

from loralint.program import Program
from loralint.program.evaluate import argument, plain, provenance_of
from loralint.program.model import base_models
from loralint.program.objects import call_kind
from loralint.program.values import Obj, OneOf
from loralint.sites import ConfigSite, Diagnostic, Field, Span, TrainingContext

# transformers' TrainingArguments and TRL's per-trainer configs (trl/trainer/*_config.py)
ARGS_CLASSES = frozenset(
    {
        "TrainingArguments", "Seq2SeqTrainingArguments", "SFTConfig", "DPOConfig", "GRPOConfig", "ORPOConfig",
        "KTOConfig", "CPOConfig", "RewardConfig", "PPOConfig", "RLOOConfig", "OnlineDPOConfig", "GKDConfig",
        "XPOConfig", "NashMDConfig", "PRMConfig", "BCOConfig",
    }
)
_TOKEN_ADDERS = frozenset({"add_tokens", "add_special_tokens", "setup_chat_format"})
_SAVES = frozenset({"save_pretrained", "save_model", "push_to_hub"})
_MERGES = frozenset({"merge_and_unload", "merge_adapter"})
MAX_DEEPSPEED_BYTES = 1 << 20  # a DeepSpeed JSON is a few KB; a larger one is not read


def attach_training(program: Program, sites: dict[ast.Call, ConfigSite]) -> None:
    """Fill `site.hints.training` for every site a trainer (or the file's tokenizer code) concerns."""
    by_config: dict[int, ConfigSite] = {}
    for call, site in sites.items():
        obj = program.evaluator.created(call)
        if obj is not None:
            by_config[id(obj)] = site
    # The models each site's configuration is applied to, and the PEFT models that makes.
    models: dict[int, list[Obj]] = {}
    applied_at: dict[int, list[Any]] = {}  # the points where each site's configuration is applied
    for app in program.applications():
        for config in app.configs:
            site = by_config.get(id(config))
            if site is not None:
                mine = models.setdefault(id(site), [])
                mine.extend(o for o in (*app.models, app.result) if o is not None)
                applied_at.setdefault(id(site), []).append(app.point)
    trainers = _trainer_calls(program)
    file_facts = _file_facts(program)
    for site_call, site in sites.items():
        context = TrainingContext(**file_facts)
        mine = models.get(id(site), [])
        mine_bases = base_models(mine)
        for call in trainers:
            if not _trains(program, call, site, by_config, mine, mine_bases, len(sites) == 1 and len(trainers) == 1):
                continue
            _describe_trainer(program, call, context)
            break
        _checkpointing(program, context, mine, mine_bases, applied_at.get(id(site), []))
        _checkpointing_on(program, context, site_call, site, mine, mine_bases)
        _placement(program, context, mine_bases)
        site.hints.training = context


def _trainer_calls(program: Program) -> list[ast.Call]:
    return program.once("trainer_calls", lambda: _find_trainer_calls(program))


def _find_trainer_calls(program: Program) -> list[ast.Call]:
    out = []
    for call, _ in program.flow.calls:
        qual = program.qualname(call.func)
        if qual and call_kind(qual) == "trainer":
            out.append(call)
    return out


def _trains(program, call, site, by_config, mine, mine_bases, only_pair: bool) -> bool:
    config_node = argument(call, "peft_config", None)
    if config_node is not None and any(by_config.get(id(o)) is site for o in program.objects(config_node)):
        return True
    model_node = argument(call, "model", 0)
    theirs = program.objects(model_node) if model_node is not None else []
    if any(o is m for o in theirs for m in mine) or any(o is m for o in base_models(theirs) for m in mine_bases):
        return True
    return only_pair and not theirs  # one config, one trainer, a model the model cannot follow


def _describe_trainer(program: Program, call: ast.Call, context: TrainingContext) -> None:
    text = program.text
    qual = program.qualname(call.func) or ""
    context.trainer = qual.rsplit(".", 1)[-1]
    context.trainer_span = text.span(call)
    for keyword in call.keywords:
        if keyword.arg:
            context.trainer_kwargs[keyword.arg] = text.span(keyword)
    model_node = argument(call, "model", 0)
    if argument(call, "peft_config", None) is not None and model_node is not None:
        if any(o.kind == "peft_model" for o in program.objects(model_node)) and qual.startswith("trl."):
            context.peft_model_to_trainer = text.span(model_node)
    args_call = _args_call(program, argument(call, "args", 1))
    if args_call is not None:
        context.args_class = (program.qualname(args_call.func) or "").rsplit(".", 1)[-1]
        for keyword in args_call.keywords:
            if keyword.arg is None:
                continue
            value = program.value(keyword.value)
            data = plain(value)
            context.args[keyword.arg] = Field(
                keyword.arg, data, text.span(keyword.value), text.span(keyword), provenance_of(value, data)
            )
    collator = _constructed(program, argument(call, "data_collator", None))
    if collator is not None and (program.qualname(collator.func) or "") in (
        "transformers.DataCollatorForLanguageModeling",
        "transformers.data.data_collator.DataCollatorForLanguageModeling",
    ):
        mlm = argument(collator, "mlm", None)
        if mlm is not None and plain(program.value(mlm)) is False:
            context.masking_collator = text.span(collator)
    ds = context.args.get("deepspeed")
    if ds is not None:
        context.deepspeed = _deepspeed(program, ds)
        context.deepspeed_span = ds.span


def _constructed(program: Program, node: ast.AST | None) -> ast.Call | None:
    """The call that builds `node`'s value: the call itself, or a name's one assignment."""
    if isinstance(node, ast.Call):
        return node
    if isinstance(node, ast.Name):
        bindings = program.flow.reach.get(node, ())
        if len(bindings) == 1 and bindings[0].kind == "assign" and isinstance(bindings[0].value, ast.Call):
            return bindings[0].value
    return None


def _args_call(program: Program, node: ast.AST | None) -> ast.Call | None:
    call = _constructed(program, node)
    if call is None:
        return None
    qual = program.qualname(call.func) or ""
    if qual.split(".", 1)[0] in ("transformers", "trl") and qual.rsplit(".", 1)[-1] in ARGS_CLASSES:
        return call
    return None


def _deepspeed(program: Program, ds: Field) -> dict[str, Any] | None:
    """ZeRO stage and the 16-bit gather on save, from a dict in the script or the JSON file it names
    (read bounded, relative to the script, then to the working directory; never anything else)."""
    value, source = ds.value, "the dict passed as deepspeed="
    if isinstance(value, str) and value.endswith(".json"):
        value, source = _read_json(program.text.path, value), value
    if not isinstance(value, dict):
        return None
    zero = value.get("zero_optimization")
    if not isinstance(zero, dict):
        return None
    stage = zero.get("stage")
    if isinstance(stage, bool) or not isinstance(stage, int):
        return None
    gather = zero.get("stage3_gather_16bit_weights_on_model_save", zero.get("stage3_gather_fp16_weights_on_model_save"))
    return {"stage": stage, "gather": gather if isinstance(gather, bool) else None,
            "gather_set": "stage3_gather_16bit_weights_on_model_save" in zero
            or "stage3_gather_fp16_weights_on_model_save" in zero, "source": source}


def _read_json(script: str, name: str) -> Any:
    from loralint.safe_read import read_text_limited

    candidates = [os.path.join(os.path.dirname(script), name), name] if not os.path.isabs(name) else [name]
    for path in candidates:
        try:
            return json.loads(read_text_limited(path, MAX_DEEPSPEED_BYTES))
        except (OSError, ValueError, RecursionError):
            continue
    return None


def _file_facts(program: Program) -> dict[str, Any]:
    """Tokenizer edits and post-training calls: facts about the script as a whole."""
    text = program.text
    facts: dict[str, Any] = {}
    for store in program.flow.stores:
        target, value = store.target, store.value
        if (
            isinstance(target, ast.Attribute) and target.attr in ("pad_token", "pad_token_id")
            and isinstance(value, ast.Attribute) and value.attr in ("eos_token", "eos_token_id")
        ):
            facts.setdefault("pad_is_eos", store_span(store, text))
    for call, _ in program.calls_named(_TOKEN_ADDERS):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        if name == "add_special_tokens" and _only_pad(program, call):
            continue  # a new pad token is masked out of the loss: its random row does no harm
        facts.setdefault("tokens_added", text.span(call))
        if name == "setup_chat_format":  # trl.setup_chat_format adds the ChatML tokens and resizes
            facts.setdefault("embeddings_resized", text.span(call))
    for call, _ in program.calls_named(frozenset({"resize_token_embeddings"})):
        facts.setdefault("embeddings_resized", text.span(call))
    for call, _ in program.calls_named(_SAVES):
        facts.setdefault("saved", text.span(call))
    for call, _ in program.calls_named(_MERGES):
        facts.setdefault("merged", text.span(call))
    return facts


def store_span(store: Any, text: Any) -> Span:
    node = store.value if store.value is not None else store.target
    start = text.span(store.target)
    end = text.span(node)
    return Span(start.path, start.line, start.column, end.end_line, end.end_column)


def _only_pad(program: Program, call: ast.Call) -> bool:
    arg = argument(call, "special_tokens_dict", 0)
    value = plain(program.value(arg)) if arg is not None else None
    return isinstance(value, dict) and set(value) <= {"pad_token"}


# --- LORA413: reentrant checkpointing; LORA416: device_map="auto" under DDP --------------------------
_GC_ENABLES = frozenset({"gradient_checkpointing_enable", "activation_checkpointing_enable"})
# What gives the inputs of the checkpointed blocks a gradient (transformers/modeling_utils.py
# enable_input_require_grads; peft/utils/other.py prepare_model_for_kbit_training calls it for reentrant
# checkpointing) or unfreezes parameters the script chooses itself.
_INPUT_GRADS = frozenset({"enable_input_require_grads", "prepare_model_for_kbit_training", "requires_grad_"})


def _touches(program: Program, node: ast.AST, mine: list[Obj], mine_bases: list[Obj]) -> bool:
    theirs = program.objects(node)
    return any(o is m for o in theirs for m in mine) or any(o is m for o in base_models(theirs) for m in mine_bases)


def _reentrant_kwargs(program: Program, node: ast.AST | None) -> bool:
    value = plain(program.value(node)) if node is not None else None
    return isinstance(value, dict) and value.get("use_reentrant") is True


def _checkpointing(program: Program, context: TrainingContext, mine: list[Obj], mine_bases: list[Obj],
                   applied_at: list[Any]) -> None:
    """use_reentrant=True written for this adapter's model, and whether anything gives inputs gradients."""
    for on, kwargs in (("gradient_checkpointing", "gradient_checkpointing_kwargs"),
                       ("activation_checkpointing", "activation_checkpointing_kwargs")):
        flag, extra = context.args.get(on), context.args.get(kwargs)
        if flag is not None and flag.value is True and extra is not None and isinstance(extra.value, dict) \
                and extra.value.get("use_reentrant") is True:
            context.reentrant_checkpointing = extra.span
    for call, point in program.calls_named(_GC_ENABLES):
        func = call.func
        if not isinstance(func, ast.Attribute) or not _touches(program, func.value, mine, mine_bases):
            continue
        # peft/peft_model.py __init__: a model that already checkpoints gets enable_input_require_grads
        # (non-quantized) when get_peft_model wraps it; quiet for any enable before the wrapping.
        if any(point.before(app) for app in applied_at):
            context.input_grads = True
        kwargs = argument(call, "gradient_checkpointing_kwargs", 0)
        if kwargs is None:
            kwargs = argument(call, "activation_checkpointing_kwargs", 0)
        if _reentrant_kwargs(program, kwargs) and context.reentrant_checkpointing is None:
            context.reentrant_checkpointing = program.text.span(call)
    if program.calls_named(_INPUT_GRADS) or any(
        isinstance(s.target, ast.Attribute) and s.target.attr == "requires_grad" for s in program.flow.stores
    ):
        context.input_grads = True


def _checkpointing_on(program: Program, context: TrainingContext, site_call: ast.Call, site: ConfigSite,
                      mine: list[Obj], mine_bases: list[Obj]) -> None:
    """What switches gradient checkpointing on for this adapter's model besides the training arguments;
    a value that is not known switches nothing (the memory estimate then says "without")."""
    text = program.text

    def on(node: ast.AST | None) -> bool:  # an argument left out (None) takes the default, True
        return node is None or plain(program.value(node)) not in (False, None, 0)

    if site.origin.startswith("unsloth"):
        # unsloth/models/llama.py get_peft_model(use_gradient_checkpointing="unsloth"): on unless False
        flag = argument(site_call, "use_gradient_checkpointing", None)
        if on(flag) and (flag is None or program.value(flag).known):
            context.checkpointing = (text.span(site_call), "Unsloth's get_peft_model(use_gradient_checkpointing)")
            return
    for call, _ in program.calls_named(_GC_ENABLES):
        func = call.func
        if isinstance(func, ast.Attribute) and _touches(program, func.value, mine, mine_bases):
            context.checkpointing = (text.span(call), f"{func.attr}()")
            return
    for prep in program.preparations():
        if prep.model_node is None or not _touches(program, prep.model_node, mine, mine_bases):
            continue
        # peft/utils/other.py prepare_model_for_kbit_training(model, use_gradient_checkpointing=True, ...)
        flag = argument(prep.call, "use_gradient_checkpointing", 1)
        if on(flag) and (flag is None or program.value(flag).known):
            context.checkpointing = (text.span(prep.call), "prepare_model_for_kbit_training (use_gradient_checkpointing=True by default)")
            return


_DDP_ENV = frozenset({"LOCAL_RANK", "WORLD_SIZE", "RANK"})


def _placement(program: Program, context: TrainingContext, mine_bases: list[Obj]) -> None:
    """from_pretrained(device_map="auto") of this adapter's base, and what says the script runs under DDP."""
    for load in mine_bases:
        node = load.node
        if not isinstance(node, ast.Call) or load.library not in ("transformers", "unsloth"):
            continue
        arg = argument(node, "device_map", None)
        value = program.value(arg) if arg is not None else None
        if value is not None and not isinstance(value.value, OneOf) and plain(value) == "auto":
            context.device_map_auto = program.text.span(arg)
    if context.device_map_auto is None:
        return
    text = program.text
    for name, field in context.args.items():
        if name.startswith("ddp_"):
            context.ddp_signal = (field.key_span or field.span, f"{context.args_class or 'the training arguments'} sets {name}")
            return
    for call, _ in program.calls_named(frozenset({"Accelerator"})):
        if (program.qualname(call.func) or "").startswith("accelerate."):
            context.ddp_signal = (text.span(call), "accelerate's Accelerator() runs one process a GPU under accelerate launch")
            return
    found = program.once("ddp_environment_read", lambda: _first_environment_read(program))  # one walk a module
    if found is not None:
        node, key = found
        context.ddp_signal = (text.span(node), f"the script reads {key}, which torchrun / accelerate launch set")


def _first_environment_read(program: Program) -> tuple[ast.AST, str] | None:
    """The first read of LOCAL_RANK/WORLD_SIZE/RANK in the module (the same for every site of it)."""
    for node in ast.walk(program.tree):
        key = _environment_key(program, node)
        if key is not None:
            return node, key
    return None


def _environment_key(program: Program, node: ast.AST) -> str | None:
    """LOCAL_RANK/WORLD_SIZE/RANK read as `os.environ[...]`, `os.environ.get(...)`, `os.getenv(...)`."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.ctx, ast.Load)  # `os.environ["LOCAL_RANK"] = ...` sets up a process, it is no launcher's
        and (program.qualname(node.value) or "") == "os.environ"
    ):
        key = node.slice
    elif isinstance(node, ast.Call) and node.args and (program.qualname(node.func) or "") in ("os.environ.get", "os.getenv"):
        key = node.args[0]
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and key.value in _DDP_ENV else None


# --- LORA407: an adapter loaded frozen, then trained ----------------------------------------------
def frozen_adapter_findings(program: Program) -> list[Diagnostic]:
    """`PeftModel.from_pretrained(base, path)` (is_trainable defaults to False: every LoRA weight gets
    requires_grad=False) whose model a trainer then trains. Quiet when the script re-enables
    gradients itself (`requires_grad`, `set_adapter`, which marks the active adapter trainable)."""
    loads = []
    for call, point in program.calls_named(frozenset({"from_pretrained"})):
        qual = program.qualname(call.func) or ""
        if call_kind(qual) != "peft_loaded":
            continue
        flag = argument(call, "is_trainable", None)
        if flag is not None and plain(program.value(flag)) is not False:
            continue  # True, or not known: quiet
        if any(k.arg is None for k in call.keywords):
            continue  # **kwargs may set it
        loads.append((call, point))
    if not loads:
        return []
    unfreezes = any(
        isinstance(s.target, ast.Attribute) and s.target.attr == "requires_grad" for s in program.flow.stores
    ) or bool(program.calls_named(frozenset({"requires_grad_", "set_adapter", "enable_adapter_layers"})))
    if unfreezes:
        return []
    out = []
    text = program.text
    for load, point in loads:
        program.value(load)
        loaded = program.evaluator.created(load)
        if loaded is None:
            continue
        for trainer in _trainer_calls(program):
            model_node = argument(trainer, "model", 0)
            if model_node is None or not any(o is loaded for o in program.objects(model_node)):
                continue
            if argument(trainer, "peft_config", None) is not None:
                continue  # TRL raises on that combination already (LORA414)
            name = (program.qualname(trainer.func) or "").rsplit(".", 1)[-1]
            span = text.span(load)
            diag = Diagnostic(
                "LORA407", "adapter-loaded-frozen", "error",
                "PeftModel.from_pretrained(...) loads the adapter frozen (is_trainable defaults to False), and"
                f" {name} at line {trainer.lineno} trains it: 0 trainable parameters, the run changes nothing;"
                " pass is_trainable=True",
                span,
                related=[(text.span(trainer), f"{name} trains the frozen adapter here")],
            )
            out.append(diag)
            break
    return out
