"""The training around a LoRA configuration in a trainer YAML (axolotl, LLaMA-Factory, torchtune): which
trainer trains it, and its arguments under the names transformers' TrainingArguments gives them (so
LORA406/LORA410/LORA417 and `explain --gpu-memory` read one vocabulary for every format). Each Field
keeps the YAML key as written (`raw_name`) and points at it.

Key names and defaults, from each trainer's source:
* axolotl: src/axolotl/utils/schemas/training.py (micro_batch_size=1, gradient_accumulation_steps=1,
  learning_rate required), schemas/config.py (sequence_len=512, gradient_checkpointing=False or
  "offload"/"offload_disk", bf16="auto", fp16, deepspeed: a path or a dict, rl: dpo|ipo|kto|...).
* LLaMA-Factory: hparams/data_args.py (cutoff_len=2048), hparams/model_args.py
  (disable_gradient_checkpointing=False: model_utils/checkpointing.py turns checkpointing on unless it is
  set), hparams/finetuning_args.py (stage: pt|sft|rm|ppo|dpo|kto, default sft); the rest are
  transformers' TrainingArguments (per_device_train_batch_size=8).
* TRL CLI configs: transformers' TrainingArguments and trl/trainer/sft_config.py names, as written.
* torchtune: recipes/lora_finetune_*.py (batch_size, gradient_accumulation_steps, optimizer.lr,
  enable_activation_checkpointing=False, tokenizer.max_seq_len), recipes/lora_dpo_*.py (loss: rlhf DPOLoss).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from loralint.extract.deepspeed import zero_facts_of
from loralint.sites import Field, Span, TrainingContext

if TYPE_CHECKING:
    from loralint.extract.formats import Document
    from loralint.extract.yaml_positions import Node

# YAML 1.1 reads `2e-4` (no dot) as a string; the trainers' pydantic / OmegaConf read it as a number.
_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$")

# (YAML key, TrainingArguments name, how the value is read: "number" | "int" | "flag" | "any")
_AXOLOTL = (
    ("learning_rate", "learning_rate", "number"),
    ("micro_batch_size", "per_device_train_batch_size", "int"),
    ("gradient_accumulation_steps", "gradient_accumulation_steps", "int"),
    ("sequence_len", "max_length", "int"),
    ("gradient_checkpointing", "gradient_checkpointing", "flag"),
    ("gradient_checkpointing_kwargs", "gradient_checkpointing_kwargs", "any"),
    ("bf16", "bf16", "any"),
    ("fp16", "fp16", "any"),
    ("num_epochs", "num_train_epochs", "number"),
    ("max_steps", "max_steps", "int"),
    ("optimizer", "optim", "any"),
    ("deepspeed", "deepspeed", "any"),
)
_AXOLOTL_DEFAULTS = {"per_device_train_batch_size": ("micro_batch_size", 1), "max_length": ("sequence_len", 512),
                     "gradient_checkpointing": ("gradient_checkpointing", False)}
_AXOLOTL_RL = frozenset({"dpo", "gdpo", "grpo", "ipo", "orpo", "kto", "simpo", "ebft"})

_LLAMAFACTORY = (
    ("learning_rate", "learning_rate", "number"),
    ("per_device_train_batch_size", "per_device_train_batch_size", "int"),
    ("gradient_accumulation_steps", "gradient_accumulation_steps", "int"),
    ("cutoff_len", "max_length", "int"),
    ("bf16", "bf16", "any"),
    ("fp16", "fp16", "any"),
    ("num_train_epochs", "num_train_epochs", "number"),
    ("max_steps", "max_steps", "int"),
    ("optim", "optim", "any"),
    ("deepspeed", "deepspeed", "any"),
)
_LLAMAFACTORY_DEFAULTS = {"per_device_train_batch_size": ("per_device_train_batch_size", 8),
                          "max_length": ("cutoff_len", 2048)}
_LLAMAFACTORY_RL = frozenset({"ppo", "dpo", "kto"})

_TORCHTUNE = (
    ("optimizer.lr", "learning_rate", "number"),
    ("batch_size", "per_device_train_batch_size", "int"),
    ("gradient_accumulation_steps", "gradient_accumulation_steps", "int"),
    ("tokenizer.max_seq_len", "max_length", "int"),
    ("enable_activation_checkpointing", "gradient_checkpointing", "flag"),
    ("epochs", "num_train_epochs", "number"),
)
_TORCHTUNE_DEFAULTS = {"gradient_checkpointing": ("enable_activation_checkpointing", False)}


# TRL's CLI configs hold TrainingArguments / SFTConfig keys as they are; which trainer reads them (`trl sft`,
# `trl dpo`, ...) is named on the command line, so only what is written counts, and no learning-rate band.
_TRL = (
    ("learning_rate", "learning_rate", "number"),
    ("per_device_train_batch_size", "per_device_train_batch_size", "int"),
    ("gradient_accumulation_steps", "gradient_accumulation_steps", "int"),
    ("max_length", "max_length", "int"),
    ("max_seq_length", "max_seq_length", "int"),
    ("gradient_checkpointing", "gradient_checkpointing", "flag"),
    ("gradient_checkpointing_kwargs", "gradient_checkpointing_kwargs", "any"),
    ("bf16", "bf16", "any"),
    ("fp16", "fp16", "any"),
    ("deepspeed", "deepspeed", "any"),
)


def _read(value: Any, how: str) -> Any:
    """The value the trainer reads, or None when it is not one of that kind (then no Field at all)."""
    if isinstance(value, str) and how in ("number", "int") and _NUMBER.match(value):
        value = float(value) if how == "number" else value
    if how == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if how == "int":
        if isinstance(value, str) and _NUMBER.match(value) and float(value).is_integer():
            return int(float(value))
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if how == "flag":  # axolotl's "offload"/"offload_disk" checkpoint too (and offload the activations)
        return True if value in ("offload", "offload_disk") else value if isinstance(value, bool) else None
    return value


def _lookup(root: Node, dotted: str) -> tuple[Node, Node] | None:
    node, entry = root, None
    for part in dotted.split("."):
        if node is None or node.kind != "map":
            return None
        entry = node.entry(part)
        node = entry[1] if entry is not None else None
    return entry


def _fill(doc: Document, root: Node, context: TrainingContext, keys: tuple, defaults: dict, trainer: str,
          anchor: Span) -> None:
    for dotted, name, how in keys:
        entry = _lookup(root, dotted)
        if entry is None or (entry[1].kind == "scalar" and entry[1].value is None):
            continue
        key, node = entry
        value = _read(node.value, how)
        if value is None:
            continue
        raw = dotted.rsplit(".", 1)[-1]
        context.args[name] = Field(name, value, doc.span(node), doc.span(key), f"{doc.label} key {dotted}",
                                   raw_name=raw if raw != name else None)
    for name, (raw, value) in defaults.items():
        if name not in context.args:
            context.args[name] = Field(name, value, anchor, None, f"{trainer} default {raw}: {value!r}",
                                       raw_name=raw if raw != name else None)


def _deepspeed(doc: Document, context: TrainingContext) -> None:
    ds = context.args.get("deepspeed")
    if ds is None:
        return
    context.deepspeed = zero_facts_of(ds.value, doc.path, reads=doc.reads)
    context.deepspeed_span = ds.span


def axolotl_training(doc: Document, anchor: Span) -> TrainingContext:
    root = doc.root
    context = TrainingContext(trainer="axolotl", trainer_span=anchor)
    _fill(doc, root, context, _AXOLOTL, _AXOLOTL_DEFAULTS, "axolotl", anchor)
    rl = root.get("rl")
    if rl is not None and isinstance(rl.value, str):
        if rl.value in _AXOLOTL_RL:
            context.trainer, context.stage = f"axolotl (rl: {rl.value})", "rl"
        else:
            context.trainer = None  # a trainer type we do not know: no band to judge the learning rate in
    elif rl is None or rl.value is None:
        context.stage = "sft"
    _deepspeed(doc, context)
    return context


def llamafactory_training(doc: Document, anchor: Span) -> TrainingContext:
    root = doc.root
    context = TrainingContext(trainer="LLaMA-Factory", trainer_span=anchor)
    _fill(doc, root, context, _LLAMAFACTORY, _LLAMAFACTORY_DEFAULTS, "LLaMA-Factory", anchor)
    disabled = root.get("disable_gradient_checkpointing")
    if disabled is None or disabled.value in (False, None):
        # model_utils/checkpointing.py prepare_model_for_training: on unless disable_gradient_checkpointing
        context.args["gradient_checkpointing"] = Field(
            "gradient_checkpointing", True, doc.span(disabled) if disabled is not None else anchor, None,
            "LLaMA-Factory default: checkpointing is on unless disable_gradient_checkpointing: true",
        )
    elif disabled.value is True:
        context.args["gradient_checkpointing"] = Field(
            "gradient_checkpointing", False, doc.span(disabled), None, f"{doc.label} key disable_gradient_checkpointing",
            raw_name="disable_gradient_checkpointing",
        )
    stage = root.get("stage")
    name = stage.value if stage is not None and isinstance(stage.value, str) else "sft" if stage is None else None
    if name in _LLAMAFACTORY_RL:
        context.trainer, context.stage = f"LLaMA-Factory (stage: {name})", "rl"
    elif name in ("sft", "pt"):
        context.stage = "sft"
    else:
        context.trainer = None  # reward modelling or a stage we do not know: no band to judge the rate in
    _deepspeed(doc, context)
    return context


def torchtune_training(doc: Document, anchor: Span) -> TrainingContext:
    root = doc.root
    context = TrainingContext(trainer="torchtune", trainer_span=anchor)
    _fill(doc, root, context, _TORCHTUNE, _TORCHTUNE_DEFAULTS, "torchtune", anchor)
    loss = _lookup(root, "loss._component_")
    component = loss[1].value if loss is not None and isinstance(loss[1].value, str) else ""
    if ".rlhf." in component or component.endswith(("DPOLoss", "RSOLoss", "SimPOLoss", "PPOLoss")):
        context.trainer, context.stage = f"torchtune ({component.rsplit('.', 1)[-1]})", "rl"
    elif "CrossEntropy" in component or "CEWith" in component:
        context.stage = "sft"
    else:
        context.trainer = None  # the recipe is named on the command line: no band without the loss
    return context


def trl_training(doc: Document, anchor: Span) -> TrainingContext:
    context = TrainingContext()
    _fill(doc, doc.root, context, _TRL, {}, "TRL", anchor)
    _deepspeed(doc, context)
    return context
