"""The training around a LoRA configuration, read from the program model: which trainer trains it,
with which arguments (and DeepSpeed config), what the tokenizer and collator do, and what happens
after training. Facts only (rules decide): each is a span in the script, or None when not seen.

Also the one training fact that needs no LoraConfig in the file: an adapter loaded with
`PeftModel.from_pretrained` (frozen unless `is_trainable=True`, peft/peft_model.py
`config.inference_mode = not is_trainable`) that a trainer then trains (LORA407).
"""

from __future__ import annotations

import ast
from collections import deque
from typing import TYPE_CHECKING, Any

from loralint.extract.deepspeed import zero_facts_of
from loralint.extract.trainers import MERGES, adapter_loads, trainer_calls, trainer_of
from loralint.program import Program
from loralint.program.evaluate import argument, plain, provenance_of
from loralint.program.model import ModelIds, base_models
from loralint.program.text import holds_line
from loralint.program.values import Obj, OneOf
from loralint.sites import ConfigSite, Diagnostic, Field, Span, TrainingContext, Unknown

if TYPE_CHECKING:
    from loralint.dependencies import Dependency

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


def attach_training(
    program: Program, sites: dict[ast.Call, ConfigSite], installs: dict[str, tuple[str, ...]] | None = None,
    reads: list[Dependency] | None = None,
) -> None:
    """Fill `site.hints.training` for every site a trainer (or the file's tokenizer code) concerns;
    `installs`: the library versions the file installs for itself (extract/pins.py); `reads`: the other
    files read (a DeepSpeed JSON the trainer names), for the cache to check again."""
    by_config: dict[int, ConfigSite] = {}
    # The models each site's configuration is applied to, and the PEFT models that makes.
    models: dict[int, list[Obj]] = {}
    for call, site in sites.items():
        obj = program.evaluator.created(call)
        if obj is not None and obj.kind == "peft_model":
            # A site that is itself the PEFT model (Unsloth's get_peft_model, an adapter loaded to resume
            # training): that model is what a trainer gets.
            models[id(site)] = [obj]
        elif obj is not None:
            by_config[id(obj)] = site
    applied_at: dict[int, list[Any]] = {}  # the points where each site's configuration is applied
    for app in program.applications():
        for config in app.configs:
            site = by_config.get(id(config))
            if site is not None:
                mine = models.setdefault(id(site), [])
                mine.extend(o for o in (*app.models, app.result) if o is not None)
                applied_at.setdefault(id(site), []).append(app.point)
    trainers = trainer_calls(program)
    file_facts = _file_facts(program)
    facts: dict[int, _TrainerFacts] = {}  # each trainer's, found on the first site that asks (see _trains)
    only_pair = len(sites) == 1 and len(trainers) == 1
    for site_call, site in sites.items():
        context = TrainingContext(**file_facts, installs=dict(installs or {}))
        mine = models.get(id(site), [])
        mine_bases = base_models(mine)
        ours = ModelIds(mine, mine_bases)
        for call in trainers:
            if not _trains(program, call, site, by_config, ours, only_pair, facts):
                continue
            _describe_trainer(program, call, context, reads)
            break
        _checkpointing(program, context, ours, applied_at.get(id(site), []))
        _checkpointing_on(program, context, site_call, site, ours)
        _placement(program, context, mine_bases)
        site.hints.training = context


class _TrainerFacts:
    """What one trainer call is given, as _trains compares it with each site, found on the first site
    that asks and kept once the evaluator keeps the value (every later evaluation gives the same): the
    ids of the sites whose configuration its peft_config may be (its model argument's are kept by
    Program.model_ids). Sites x trainers was most of attach_training on a test file."""

    __slots__ = ("config_node", "config_sites", "model_node")

    def __init__(self, call: ast.Call) -> None:
        self.config_node = argument(call, "peft_config", None)
        self.model_node = argument(call, "model", 0)
        self.config_sites: frozenset[int] | None = None

    def configured(self, program: Program, by_config: dict[int, ConfigSite]) -> frozenset[int]:
        found = self.config_sites
        if found is None:
            node = self.config_node
            found = frozenset(id(s) for o in program.objects(node) if (s := by_config.get(id(o))) is not None)
            if program.evaluator.settled(node):
                self.config_sites = found
        return found


def _trains(program: Program, call: ast.Call, site: ConfigSite, by_config: dict[int, ConfigSite], ours: ModelIds,
            only_pair: bool, memo: dict[int, _TrainerFacts]) -> bool:
    facts = memo.get(id(call))
    if facts is None:
        facts = memo[id(call)] = _TrainerFacts(call)
    if facts.config_node is not None and id(site) in facts.configured(program, by_config):
        return True
    if facts.model_node is None:
        return only_pair  # one config, one trainer, a model the model cannot follow
    ids = program.model_ids(facts.model_node)
    return ours.meet(ids) or (only_pair and not ids[0])


def _describe_trainer(program: Program, call: ast.Call, context: TrainingContext,
                      reads: list[Dependency] | None = None) -> None:
    text = program.text
    qual = program.qualname(call.func) or ""
    context.trainer = qual.rsplit(".", 1)[-1]
    context.trainer_span = text.span(call)
    for keyword in call.keywords:
        if keyword.arg:
            context.trainer_kwargs[keyword.arg] = text.span(keyword)
            if keyword.arg in _TRAINER_SEQUENCE_LENGTH:
                context.trainer_args[keyword.arg] = _field(program, keyword)
    model_node = argument(call, "model", 0)
    if argument(call, "peft_config", None) is not None and model_node is not None:
        if any(o.kind == "peft_model" for o in program.objects(model_node)) and qual.startswith("trl."):
            context.peft_model_to_trainer = text.span(model_node)
    args_call = _args_call(program, argument(call, "args", 1))
    if args_call is not None:
        context.args_class = (program.qualname(args_call.func) or "").rsplit(".", 1)[-1]
        for keyword in args_call.keywords:
            if keyword.arg is not None:
                context.args[keyword.arg] = _field(program, keyword)
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
        context.deepspeed = _deepspeed(program, ds, reads)
        context.deepspeed_span = ds.span


# SFTTrainer(max_seq_length=...) before TRL's SFTConfig held it (and Unsloth's SFTTrainer, which still takes it).
_TRAINER_SEQUENCE_LENGTH = frozenset({"max_seq_length", "max_length"})


def _field(program: Program, keyword: ast.keyword) -> Field:
    """A keyword argument as written: its value as far as the program model knows it, and where."""
    value = program.value(keyword.value)
    data = plain(value)
    return Field(keyword.arg, data, program.text.span(keyword.value), program.text.span(keyword),
                 provenance_of(value, data))


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


def _deepspeed(program: Program, ds: Field, reads: list[Dependency] | None) -> dict[str, Any] | None:
    """ZeRO stage and the 16-bit gather on save, from a dict in the script or the JSON file it names
    (read bounded, relative to the script, then to the working directory; never anything else)."""
    return zero_facts_of(ds.value, program.text.path, "the dict passed as deepspeed=", reads)


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
    chat_format: Span | None = None
    for call, _ in program.calls_named(_TOKEN_ADDERS):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        if name == "setup_chat_format":  # trl.setup_chat_format adds the ChatML tokens and resizes
            chat_format = chat_format or text.span(call)
            continue
        if not _adds_tokens(program, call, name):
            continue
        facts.setdefault("tokens_added", text.span(call))
    if chat_format is not None:
        facts.setdefault("embeddings_resized", chat_format)
        if "tokens_added" not in facts:
            facts["tokens_added"], facts["tokens_by_chat_format"] = chat_format, True
    trained = _embeddings_trained(program) if "tokens_added" in facts else None
    if trained is not None:
        facts["embeddings_trained"] = trained
    for call, _ in program.calls_named(frozenset({"resize_token_embeddings"})):
        facts.setdefault("embeddings_resized", text.span(call))
    for call, _ in program.calls_named(_SAVES):
        facts.setdefault("saved", text.span(call))
    for call, _ in program.calls_named(MERGES):
        facts.setdefault("merged", text.span(call))
    return facts


def store_span(store: Any, text: Any) -> Span:
    node = store.value if store.value is not None else store.target
    start = text.span(store.target)
    end = text.span(node)
    return Span(start.path, start.line, start.column, end.end_line, end.end_column)


_SPECIAL_KEYS = frozenset({"pad_token", "eos_token", "bos_token", "unk_token", "sep_token", "cls_token", "mask_token"})


def _adds_tokens(program: Program, call: ast.Call, name: str) -> bool:
    """Whether an add_tokens / add_special_tokens call is known to put new rows into the vocabulary.
    Not: an argument whose value is not known here (a helper's parameter that nothing in the file passes);
    a new pad token alone (masked out of the loss: its random row does no harm); the standard special
    tokens re-registered from what the tokenizer or model already holds (`tokenizer.convert_ids_to_tokens(
    model.config.eos_token_id)`), which adds no row."""
    arg = argument(call, "special_tokens_dict" if name == "add_special_tokens" else "new_tokens", 0)
    if arg is None:
        return False
    value = plain(program.value(arg))
    if isinstance(value, Unknown):
        return False
    if name != "add_special_tokens" or not isinstance(value, dict):
        return True
    if set(value) <= {"pad_token"}:
        return False
    reregistered = set(value) <= _SPECIAL_KEYS and all(isinstance(v, Unknown) for k, v in value.items() if k != "pad_token")
    return not reregistered


def _embeddings_trained(program: Program) -> Span | None:
    """Where the script makes embedding rows trainable itself: `<...embeddings>.requires_grad_(True)`, or
    `<x>.requires_grad = True` inside an `if` whose test is about an embedding (`if "token_embedding" in name:`)."""
    for call, _ in program.calls_named(frozenset({"requires_grad_"})):
        func = call.func
        flag = argument(call, "requires_grad", 0)
        on = flag is None or plain(program.value(flag)) is True
        if on and isinstance(func, ast.Attribute) and _about_embeddings(func.value):
            return program.text.span(call)
    for store in program.flow.stores:
        target, value = store.target, store.value
        if isinstance(target, ast.Attribute) and target.attr == "requires_grad" and _is_true(value) \
                and _about_embeddings(target.value):
            return store_span(store, program.text)
    for node in _if_statements(program):
        if _about_embeddings(node.test):
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and _is_true(stmt.value) \
                        and any(isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in stmt.targets):
                    return program.text.span(stmt)
    return None


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _about_embeddings(node: ast.AST) -> bool:
    """An expression that names an embedding: `te.text_model.embeddings`, `model.get_input_embeddings()`,
    `"token_embedding" in name`."""
    for sub in ast.walk(node):
        word = sub.attr if isinstance(sub, ast.Attribute) else sub.id if isinstance(sub, ast.Name) else \
            sub.value if isinstance(sub, ast.Constant) and isinstance(sub.value, str) else ""
        if "embed" in word.lower():
            return True
    return False


# --- LORA413: reentrant checkpointing; LORA416: device_map="auto" under DDP --------------------------
_GC_ENABLES = frozenset({"gradient_checkpointing_enable", "activation_checkpointing_enable"})
# What gives the inputs of the checkpointed blocks a gradient (transformers/modeling_utils.py
# enable_input_require_grads; peft/utils/other.py prepare_model_for_kbit_training calls it for reentrant
# checkpointing) or unfreezes parameters the script chooses itself.
_INPUT_GRADS = frozenset({"enable_input_require_grads", "prepare_model_for_kbit_training", "requires_grad_"})


def _reentrant_kwargs(program: Program, node: ast.AST | None) -> bool:
    value = plain(program.value(node)) if node is not None else None
    return isinstance(value, dict) and value.get("use_reentrant") is True


def _checkpointing(program: Program, context: TrainingContext, ours: ModelIds, applied_at: list[Any]) -> None:
    """use_reentrant=True written for this adapter's model, and whether anything gives inputs gradients."""
    for on, kwargs in (("gradient_checkpointing", "gradient_checkpointing_kwargs"),
                       ("activation_checkpointing", "activation_checkpointing_kwargs")):
        flag, extra = context.args.get(on), context.args.get(kwargs)
        if flag is not None and flag.value is True and extra is not None and isinstance(extra.value, dict) \
                and extra.value.get("use_reentrant") is True:
            context.reentrant_checkpointing = extra.span
    for call, point in program.calls_named(_GC_ENABLES):
        func = call.func
        if not isinstance(func, ast.Attribute) or not ours.touched(program, func.value):
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
    if program.calls_named(_INPUT_GRADS) or _sets_requires_grad(program):
        context.input_grads = True


def _sets_requires_grad(program: Program) -> bool:
    """Some `x.requires_grad = ...` in the module (one walk of its stores a module: each site asks)."""
    return program.once("sets_requires_grad", lambda: any(
        isinstance(s.target, ast.Attribute) and s.target.attr == "requires_grad" for s in program.flow.stores
    ))


def _checkpointing_on(program: Program, context: TrainingContext, site_call: ast.Call, site: ConfigSite,
                      ours: ModelIds) -> None:
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
        if isinstance(func, ast.Attribute) and ours.touched(program, func.value):
            context.checkpointing = (text.span(call), f"{func.attr}()")
            return
    for prep in program.preparations():
        if prep.model_node is None or not ours.touched(program, prep.model_node):
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
    """The first read of LOCAL_RANK/WORLD_SIZE/RANK in the module (the same for every site of it).
    The keys are literals, so only statements on whose lines the source spells one are walked (none: no
    walk). A key spelled with escapes or split across adjacent literals is not seen (the finding stays quiet)."""
    lines = program.text.lines_with(("RANK", "WORLD_SIZE"))
    if lines is not None and not lines:
        return None
    for node in _reads(program, lines):
        key = _environment_key(program, node)
        if key is not None:
            return node, key
    return None


# What a walk for subscripts and calls need not enter (they hold none).
_LEAVES = frozenset({ast.Name, ast.Constant, ast.Load, ast.Store, ast.Del, ast.alias, *(
    c for base in (ast.operator, ast.unaryop, ast.cmpop, ast.boolop) for c in base.__subclasses__())})
_WALK_FIELDS: dict[type, tuple[str, ...]] = {}


def _walk_fields(t: type) -> tuple[str, ...]:
    fields = _WALK_FIELDS.get(t)
    if fields is None:
        fields = _WALK_FIELDS[t] = tuple(f for f in t._fields if f not in ("ctx", "op", "ops", "type_comment"))  # type: ignore[attr-defined]
    return fields


# The fields that hold statements (or the except handlers and match cases around them).
_BLOCKS = ("body", "orelse", "handlers", "finalbody", "cases")
_BLOCK_FIELDS: dict[type, tuple[str, ...]] = {}


def _if_statements(program: Program) -> list[ast.If]:
    """The module's `if` statements in `ast.walk` order, walking statements only: an expression holds no
    statement, and leaving a subtree out of a breadth-first walk keeps the order of the others."""
    def walk() -> list[ast.If]:
        ifs: list[ast.If] = []
        todo = deque([program.tree])
        pop, extend = todo.popleft, todo.extend
        while todo:
            node = pop()
            t = type(node)
            if t is ast.If:
                ifs.append(node)  # type: ignore[arg-type]
            fields = _BLOCK_FIELDS.get(t)
            if fields is None:
                fields = _BLOCK_FIELDS[t] = tuple(f for f in t._fields if f in _BLOCKS)  # type: ignore[attr-defined]
            for name in fields:
                child = getattr(node, name, None)
                if type(child) is list:  # Lambda.body and IfExp.body are expressions, never reached here
                    extend(child)
        return ifs

    return program.once("if_statements", walk)


def _reads(program: Program, lines: list[int] | None) -> list[ast.Subscript | ast.Call]:
    """The module's subscripts and calls, in `ast.walk` order, in the statements that spell a key on
    their lines (all of them for `lines` None). Statements only are left out: their lines are the
    parser's (an expression's, inside an f-string, may not be), and they cover their inner nodes."""
    def walk() -> list[ast.Subscript | ast.Call]:
        reads: list[ast.Subscript | ast.Call] = []
        # ast.walk's order, without its generators, and without the nodes that hold none of these (names,
        # constants, contexts, operators: most of a tree): leaving a subtree out of a breadth-first walk
        # keeps the order of the others.
        todo = deque([program.tree])
        pop, push, extend = todo.popleft, todo.append, todo.extend
        Subscript, Call, stmt = ast.Subscript, ast.Call, ast.stmt
        while todo:
            node = pop()
            t = type(node)
            if t is Subscript or t is Call:
                reads.append(node)  # type: ignore[arg-type]
            for name in _walk_fields(t):
                child = getattr(node, name, None)
                if type(child) is list:
                    extend(item for item in child if isinstance(item, ast.AST) and type(item) not in _LEAVES
                           and (lines is None or not isinstance(item, stmt) or holds_line(item, lines)))
                elif child is not None and type(child) not in _LEAVES and isinstance(child, ast.AST):
                    push(child)
        return reads

    return walk()


def _environment_key(program: Program, node: ast.AST) -> str | None:
    """LOCAL_RANK/WORLD_SIZE/RANK read as `os.environ[...]`, `os.environ.get(...)`, `os.getenv(...)`.
    The key is looked at before the callee is evaluated: most subscripts and calls have no such key."""
    if isinstance(node, ast.Subscript):
        if not isinstance(node.ctx, ast.Load):  # `os.environ["LOCAL_RANK"] = ...` sets up a process, it is no launcher's
            return None
        key, target, wanted = node.slice, node.value, ("os.environ",)
    elif isinstance(node, ast.Call) and node.args:
        key, target, wanted = node.args[0], node.func, ("os.environ.get", "os.getenv")
    else:
        return None
    if not (isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value in _DDP_ENV):
        return None
    return key.value if (program.qualname(target) or "") in wanted else None


# --- LORA407: an adapter loaded frozen, then trained ----------------------------------------------
def frozen_adapter_findings(program: Program) -> list[Diagnostic]:
    """`PeftModel.from_pretrained(base, path)` (is_trainable defaults to False: every LoRA weight gets
    requires_grad=False) whose model a trainer then trains. Quiet when the script re-enables
    gradients itself (`requires_grad`, `set_adapter`, which marks the active adapter trainable)."""
    loads = []
    for call, _, loaded in adapter_loads(program):
        flag = argument(call, "is_trainable", None)
        if flag is not None and plain(program.value(flag)) is not False:
            continue  # True, or not known: quiet
        if any(k.arg is None for k in call.keywords):
            continue  # **kwargs may set it
        loads.append((call, loaded))
    if not loads:
        return []
    unfreezes = _sets_requires_grad(program) or bool(program.calls_named(frozenset({"requires_grad_", "set_adapter", "enable_adapter_layers"})))
    if unfreezes:
        return []
    out = []
    text = program.text
    for load, loaded in loads:
        if loaded is None:
            continue
        trainer = trainer_of(program, [loaded])
        if trainer is None:
            continue
        name = (program.qualname(trainer.func) or "").rsplit(".", 1)[-1]
        loader = ".".join((program.qualname(load.func) or "PeftModel.from_pretrained").split(".")[-2:])
        out.append(Diagnostic(
            "LORA407", "adapter-loaded-frozen", "error",
            f"{loader}(...) loads the adapter frozen (is_trainable defaults to False), and"
            f" {name} at line {trainer.lineno} trains it: 0 trainable parameters, the run changes nothing;"
            " pass is_trainable=True",
            text.span(load),
            related=[(text.span(trainer), f"{name} trains the frozen adapter here")],
        ))
    return out
