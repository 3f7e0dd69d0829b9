"""LORA406-LORA415: the training around the adapter (trainer arguments, tokenizer, DeepSpeed,
serving), from the facts loralint/extract/training.py attaches as `site.hints.training`.
Each check stays quiet when a fact it needs is not known."""

from __future__ import annotations

import math
import re
from typing import Iterable

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import effective, fmt, number
from loralint.checks.architecture import TOWER, architecture_context
from loralint.checks.hyperparams import task_type_for_class
from loralint.checks.vllm import NO_EMBEDDING_LORA
from loralint.extract.pins import pinned_below
from loralint.lazy_re import lazy
from loralint.sites import ConfigSite, TrainingContext

# TRL's preference / RL trainers (trl/trainer/): they fine-tune an already aligned policy with a
# much smaller step than SFT (DPOConfig's default learning_rate is 1e-6, GRPOConfig's 1e-6).
_RL_TRAINERS = frozenset(
    {"DPOTrainer", "GRPOTrainer", "ORPOTrainer", "KTOTrainer", "CPOTrainer", "PPOTrainer", "RLOOTrainer",
     "OnlineDPOTrainer", "XPOTrainer", "NashMDTrainer", "BCOTrainer"}
)


_TRL_LM_TRAINERS = _RL_TRAINERS | {"SFTTrainer", "IterativeSFTTrainer", "GKDTrainer"}
_LM_TASKS = ("CAUSAL_LM", "SEQ_2_SEQ_LM")


def _training(site: ConfigSite) -> TrainingContext | None:
    return site.hints.training


def _language_model(site: ConfigSite, training: TrainingContext) -> bool:
    """Whether the adapter is trained on a generative language model, as far as the script says: a TRL
    trainer or Unsloth, a *ForCausalLM / *ForSeq2SeqLM / *ForConditionalGeneration class, or (class not
    known) task_type CAUSAL_LM / SEQ_2_SEQ_LM. An image or sequence classifier is not one."""
    if site.origin.startswith("unsloth") or training.trainer in _TRL_LM_TRAINERS:
        return True
    model_class = site.hints.model_class
    if model_class:
        return task_type_for_class(model_class) in _LM_TASKS or model_class.endswith("ForConditionalGeneration")
    task, known = effective(site, "task_type")
    return known and task in _LM_TASKS


@check("learning_rate")
def learning_rate(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """A learning rate outside the band LoRA trains in. The band is judged on the rate the adapter
    really sees: LoRA's update is scaled by lora_alpha/r (lora_alpha/sqrt(r) with rsLoRA,
    peft/tuners/lora/layer.py update_layer), so a rate is only flagged when it is out of band both
    as written and after normalising the scaling to the usual alpha = 2r."""
    training = _training(site)
    if training is None or training.trainer is None:
        return
    if not _language_model(site, training):
        return  # the bands are LLM fine-tuning's; a ViT classifier trains its adapter and new head at 5e-3
    f = training.args.get("learning_rate")
    lr = number(f.value) if f is not None and f.known else None
    if lr is None or lr <= 0:
        return
    rl = training.stage == "rl" or training.trainer in _RL_TRAINERS \
        or (training.args_class or "").removesuffix("Config") + "Trainer" in _RL_TRAINERS
    low, high = ctx.params.get("rl_range" if rl else "sft_range", [1e-7, 5e-5] if rl else [1e-5, 1e-3])
    r, r_known = effective(site, "r")
    alpha, alpha_known = effective(site, "lora_alpha")
    rslora, rs_known = effective(site, "use_rslora")
    scaled = lr
    judged = True
    if r_known and alpha_known and rs_known and number(r) and number(alpha) and r > 0:
        scaling = alpha / math.sqrt(r) if rslora else alpha / r
        scaled = lr * scaling / 2.0
    else:
        judged = False
    kind = "preference/RL" if rl else "supervised"
    usual = "1e-6 to 5e-6 (DPO/GRPO)" if rl else "2e-4 (1e-4 for large models)"
    if lr > high and scaled > high:
        problem = f"is above the {fmt(high)} that LoRA {kind} training tolerates: expect loss spikes or divergence"
    elif lr < low and scaled < low:
        problem = (f"is below {fmt(low)}: the adapter barely moves. LoRA wants about 10x the full fine-tuning rate,"
                   " because B starts at zero and the update is a low-rank product scaled by alpha/r")
    else:
        return
    related = [(training.trainer_span, f"{training.trainer} trains this adapter")] if training.trainer_span else []
    note = ""
    if site.hints.loaded_from is not None or site.origin == "peft.PeftModel.from_pretrained":
        # an adapter loaded to train again (extract/loaded.py): say whose scaling was used, or that none was
        related.append((site.span, "the adapter is loaded here to train again"))
        note = (f" (judged with the rank and lora_alpha of {site.hints.loaded_from})" if site.hints.loaded_from and judged
                else " (judged as written: the loaded adapter's rank and lora_alpha are not known)")
    yield Finding(
        f.span,
        f"{f.raw_name or 'learning_rate'}={fmt(lr)} for {training.trainer} {problem}; the usual LoRA value is {usual}{note}",
        related=related,
    )


@check("eos_masked")
def eos_masked(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """transformers/data/data_collator.py DataCollatorForLanguageModeling (mlm=False):
    `labels[labels == self.tokenizer.pad_token_id] = -100`: with pad = eos, every EOS leaves the loss."""
    training = _training(site)
    if training is None or training.pad_is_eos is None or training.masking_collator is None:
        return
    yield Finding(
        training.pad_is_eos,
        "pad_token is set to eos_token, and DataCollatorForLanguageModeling(mlm=False) sets every pad id in the"
        " labels to -100: the EOS token never reaches the loss, so the model never learns to stop; add a"
        " dedicated pad token (or use the tokenizer's unk/reserved token) or a collator that keeps EOS",
        related=[(training.masking_collator, "the collator that masks pad ids")],
    )


_EMBEDDING_WORDS = ("embed", "lm_head", "wte", "wpe", "shared", "output")


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [v for v in value if isinstance(v, str)]
    return []


# Tokenizers that already hold ChatML's <|im_start|>/<|im_end|> (Qwen: ids 151644/151645; SmolLM/SmolLM2: ids
# 1/2), where trl's setup_chat_format adds no row.
_CHATML_NATIVE = lazy(r"qwen|smollm", re.IGNORECASE)


def _chatml_is_new(site: ConfigSite) -> bool:
    """setup_chat_format adds new rows: the base model is known, and its vocabulary lacks the ChatML tokens."""
    resolution = site.model
    model_id = getattr(resolution, "model_id", None) or (site.base_model.value if site.base_model else None)
    if not isinstance(model_id, str) or not model_id:
        return False  # which tokenizer it is cannot be read here
    model_type = getattr(resolution, "model_type", None) or ""
    return not (_CHATML_NATIVE.search(model_id) or _CHATML_NATIVE.search(model_type))


@check("new_tokens_untrained")
def new_tokens_untrained(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """New vocabulary rows are random; PEFT only trains and saves them through
    trainable_token_indices, modules_to_save (embed_tokens / lm_head) or LoRA on the embedding
    (peft/utils/save_and_load.py save_embedding_layers)."""
    training = _training(site)
    if training is None or training.tokens_added is None or training.embeddings_resized is None:
        return
    if site.opaque or training.embeddings_trained is not None:
        return  # the script trains the new rows itself (pivotal tuning, textual inversion)
    if training.tokens_by_chat_format and not _chatml_is_new(site):
        return
    for name in ("modules_to_save", "target_modules", "trainable_token_indices"):
        value, known = effective(site, name)
        if not known:
            return
        if name == "trainable_token_indices" and value:
            return
        if name != "trainable_token_indices" and any(w in n for n in _names(value) for w in _EMBEDDING_WORDS):
            return
    yield Finding(
        training.tokens_added,
        "tokens are added and the embeddings resized, but the adapter trains neither the new rows"
        " (trainable_token_indices) nor embed_tokens/lm_head (modules_to_save): the new tokens keep their"
        " random embeddings and are not saved with the adapter",
        related=[(training.embeddings_resized, "the embeddings are resized here"), (site.span, "the LoRA configuration")],
    )


@check("zero3_adapter_save")
def zero3_adapter_save(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """transformers/trainer.py save_model under ZeRO-3: without stage3_gather_16bit_weights_on_model_save
    the weights stay partitioned and the adapter written is empty (the Trainer logs 'Saving the full
    checkpoint instead')."""
    training = _training(site)
    ds = training.deepspeed if training is not None else None
    if ds is None or ds.get("stage") != 3 or ds.get("gather") is True:
        return
    if ds.get("gather_set") and ds.get("gather") is None:
        return  # "auto" or a value we cannot judge
    related = [(training.trainer_span, f"{training.trainer} saves the adapter")] if training.trainer_span else []
    yield Finding(
        training.deepspeed_span,
        f"DeepSpeed ZeRO stage 3 ({ds.get('source')}) without {ds.get('flag', 'stage3_gather_16bit_weights_on_model_save=true')}:"
        " the LoRA weights stay partitioned across ranks at save time and the saved adapter is empty or"
        f" partial; {ds.get('advice', 'set it to true in zero_optimization')}",
        related=related + list(ds.get("launch", [])),  # the accelerate config and the command (loralint/launches.py)
    )


# task_type -> words of the model classes it fits (peft/peft_model.py MODEL_TYPE_TO_PEFT_MODEL_MAPPING)
_TASK_CLASSES = {
    "CAUSAL_LM": ("CausalLM", "LMHeadModel"),
    "SEQ_CLS": ("SequenceClassification",),
    "TOKEN_CLS": ("TokenClassification",),
    "SEQ_2_SEQ_LM": ("Seq2SeqLM",),
    "QUESTION_ANS": ("QuestionAnswering",),
}


# Where a configuration's task_type comes from when it is not written: TRL's ModelConfig defaults
# lora_task_type to "CAUSAL_LM" and get_peft_config passes it on (trl/trainer/model_config.py,
# trl/trainer/utils.py get_peft_config). TRL's trainers never set task_type on a LoraConfig they are
# given (trl/trainer/sft_trainer.py, reward_trainer.py: get_peft_model(model, peft_config)): a config
# without one stays without one, which LORA107 reports.
_DEFAULT_TASK_SOURCES = {"trl.ModelConfig": ("TRL's ModelConfig default lora_task_type", "lora_task_type")}


@check("task_type_mismatch")
def task_type_mismatch(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """get_peft_model picks PeftModelFor<task> from task_type. A model class that clearly belongs to
    another task gets the wrong wrapper (a classifier head left random and frozen, a seq2seq model
    wrapped as causal LM). Classes that do not name their task (…ForConditionalGeneration, AutoModel)
    are left alone. The task type judged is the one in force: written, or the default of the origin
    that builds the LoraConfig (TRL's ModelConfig), never a default whose flag may change it."""
    cls = site.hints.model_class
    if not cls or not site.hints.task_chosen:
        return
    f = site.get("task_type")
    default = _DEFAULT_TASK_SOURCES.get(site.origin)
    if f is not None:
        if not f.known or not isinstance(f.value, str):
            return
        value, span, source = f.value, f.span, None
    elif default is not None and not site.opaque and isinstance(site.defaults.get("task_type"), str):
        value, span, source = site.defaults["task_type"], site.span, default
    else:
        return
    task = value.rsplit(".", 1)[-1].upper()
    if task not in _TASK_CLASSES:
        return
    owner = next((t for t, words in _TASK_CLASSES.items() if any(w in cls for w in words)), None)
    if owner is None or owner == task:
        return
    training = _training(site)
    related = [(training.trainer_span, f"{training.trainer} applies the configuration to a {cls}")] \
        if training is not None and training.trainer_span is not None else []
    if source is None:
        yield Finding(
            span,
            f"task_type={task!r} does not fit {cls}, a {owner} model: PEFT wraps it as the wrong task"
            f" (for SEQ_CLS/TOKEN_CLS models the classifier head stays random, frozen and unsaved); use task_type={owner!r}",
            related=related,
        )
        return
    what, key = source
    yield Finding(
        span,
        f"task_type is {task!r} ({what}), which does not fit {cls}, a {owner} model: PEFT wraps it as the wrong"
        f" task (for SEQ_CLS/TOKEN_CLS models the classifier head stays random, frozen and unsaved); set"
        f" {key}={owner!r}",
        related=related,
    )


@check("serving_limits")
def serving_limits(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """An adapter saved for serving that the engine will not load as is (vLLM: vllm/lora/peft_helper.py
    rejects use_dora and modules_to_save; --max-lora-rank defaults to 16), or whose targets vLLM does not
    serve (_vllm_target_limits)."""
    training = _training(site)
    if training is None or training.saved is None or training.merged is not None:
        return
    engine = ctx.params.get("engine", "vLLM")
    max_rank = ctx.params.get("max_lora_rank", 16)
    problems: list[tuple[str, str | None]] = []  # (what, the field it is about)
    r, known = effective(site, "r")
    if known and number(r) and r > max_rank:
        problems.append((f"r={r} is above {engine}'s default max_lora_rank ({max_rank}): start it with --max-lora-rank {r}", "r"))
    dora, known = effective(site, "use_dora")
    if known and dora is True:
        problems.append((f"{engine} does not serve DoRA adapters", "use_dora"))
    mts, known = effective(site, "modules_to_save")
    if known and _names(mts):
        problems.append((f"{engine} does not load modules_to_save ({', '.join(_names(mts))})", "modules_to_save"))
    if str(engine).lower() == "vllm":
        problems.extend((text, "bias" if text.startswith("bias=") else "target_modules") for text in _vllm_target_limits(site))
    if not problems:
        return
    # On the argument the first problem is about, where the configuration writes it (else the configuration).
    field = site.get(problems[0][1]) if problems[0][1] else None
    span = field.span if field is not None else site.span
    yield Finding(
        span,
        f"if the adapter saved at line {training.saved.line} is served with {engine}: "
        + "; ".join(text for text, _ in problems)
        + " (merge it into the base instead, or change the configuration)",
        related=[(training.saved, "the adapter is saved here")],
    )


def _vllm_target_limits(site: ConfigSite) -> list[str]:
    """What the adapter adapts that vLLM does not serve, from the targets resolved against a model known for
    sure (nothing when it is not). vLLM wraps only its own linear layers (vllm/lora/utils.py from_layer,
    get_supported_lora_modules), an embedding or lm_head only where the model class lists them in
    embedding_modules (Qwen2/3 do not: vllm-project/vllm#32599; only those are reported), applies LoRA to a multimodal model's language
    model only unless the model supports --enable-tower-connector-lora (vllm-project/vllm#31479), and has no
    LoRA bias (vllm/lora/layers/base_linear.py keeps lora_a/lora_b only)."""
    out = []
    bias, known = effective(site, "bias")
    if known and bias in ("all", "lora_only"):
        out.append(f"bias={bias!r} trains biases that vLLM does not apply (it serves lora_A/lora_B only)")
    found = architecture_context(site)
    if found is None or site.opaque:
        return out
    _, info, result = found
    convs = sorted({t.folded for t in result.targeted if t.kind in ("conv", "mha")})
    if convs:
        out.append(f"vLLM has LoRA only for linear layers, so the LoRA on {', '.join(convs)} is not served (the"
                   " loader refuses the adapter or leaves those weights out)")
    heads = sorted({t.folded for t in result.targeted
                    if t.kind == "embedding" or (info.output_layer and t.name == info.output_layer)})
    # Unsloth trains embed_tokens/lm_head as modules_to_save instead (checks/architecture.py LORA203)
    if heads and info.model_type in NO_EMBEDDING_LORA and not site.origin.startswith("unsloth"):
        out.append(f"vLLM has no embedding LoRA for {info.model_type} and refuses an adapter with LoRA on"
                   f" {', '.join(heads)} (\"expected target modules in ... but received ...\")")
    towers = [t for t in result.targeted if TOWER.search(t.name) and t.folded not in convs]
    if towers:
        layers = "1 adapted layer" if len(towers) == 1 else f"{len(towers)} adapted layers"
        out.append(f"vLLM applies LoRA to the language model only, so the {layers} of the vision/audio tower"
                   " are dropped with a warning unless the model supports --enable-tower-connector-lora and the"
                   " server is started with it")
    return out


@check("peft_model_with_config")
def peft_model_with_config(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """TRL's trainers raise ValueError("You passed a `PeftModel` instance together with a `peft_config`
    ...") (trl/trainer/sft_trainer.py and the other trainers) since TRL 0.27 (huggingface/trl#4713); before,
    SFTTrainer merged the PeftModel or kept it, so a file that installs an older TRL is not flagged."""
    training = _training(site)
    if training is None or training.peft_model_to_trainer is None:
        return
    if pinned_below(training.installs.get("trl"), (0, 27)):
        return
    span = training.trainer_kwargs.get("peft_config", training.peft_model_to_trainer)
    yield Finding(
        span,
        f"{training.trainer} gets a PeftModel and a peft_config: TRL raises ValueError. Pass the base model with"
        " peft_config, or the PeftModel alone",
        related=[(training.peft_model_to_trainer, "the model is already a PeftModel")],
    )


# (where, old name, new name, which release dropped the old one)
_RENAMED = (
    ("args", "max_seq_length", "max_length", "TRL's SFTConfig (renamed in 0.16, removed in 0.20)"),
    ("trainer", "tokenizer", "processing_class", "transformers 5's Trainer and TRL's trainers (TRL 0.12+)"),
)


def _old_release(training: TrainingContext, old: str) -> bool:
    """Whether the file installs a release that still takes the old name: every `pip install` of the
    library pins one before the release that dropped it (transformers 5.0 for Trainer's tokenizer=,
    TRL 0.12 for its trainers' tokenizer=, TRL 0.20 for SFTConfig's max_seq_length)."""
    if old == "max_seq_length":
        return pinned_below(training.installs.get("trl"), (0, 20))
    if training.trainer in _TRANSFORMERS_TRAINERS:
        return pinned_below(training.installs.get("transformers"), (5,))
    return pinned_below(training.installs.get("trl"), (0, 12))


@check("trl_renamed_args")
def trl_renamed_args(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    training = _training(site)
    if training is None or training.trainer is None:
        return
    for where, old, new, who in _RENAMED:
        if where == "args":
            f = training.args.get(old)
            span = f.key_span or f.span if f is not None else None
            if span is None or training.args_class != "SFTConfig":
                continue
        else:
            span = training.trainer_kwargs.get(old)
            if span is None:
                continue
            if site.origin.startswith("unsloth") and training.trainer not in _TRANSFORMERS_TRAINERS:
                continue  # importing Unsloth patches TRL's trainers to take tokenizer= (unsloth/trainer.py:
                # _backwards_compatible_trainer moves it to processing_class)
        if _old_release(training, old):
            continue  # the notebook installs a release that still takes it (`!pip install transformers==4.56.2`)
        yield Finding(span, f"{old}= is not accepted by {who}: it raises TypeError; use {new}=")


# Model classes whose main input is not input_ids (their `main_input_name` in transformers 5.24):
# activation_checkpointing_enable only calls enable_input_require_grads for input_ids models or
# add_adapter models (transformers/modeling_utils.py _activation_checkpointing_enable).
_NON_TEXT_PREFIXES = {
    "ViT": "pixel_values", "Dinov2": "pixel_values", "Swin": "pixel_values", "Beit": "pixel_values",
    "DeiT": "pixel_values", "Segformer": "pixel_values", "CLIPVision": "pixel_values", "SiglipVision": "pixel_values",
    "Whisper": "input_features", "Speech2Text": "input_features", "Wav2Vec2": "input_values", "Hubert": "input_values",
    "WavLM": "input_values", "AutoModelForAudioClassification": "input_values or input_features",
    "AutoModelForCTC": "input_values or input_features",
}
_TRANSFORMERS_TRAINERS = frozenset({"Trainer", "Seq2SeqTrainer"})  # TRL's trainers enable input grads themselves


def _main_input(model_class: str | None) -> str | None:
    if not model_class or model_class.endswith("ForCausalLM"):  # WhisperForCausalLM reads input_ids
        return None
    return next((name for prefix, name in _NON_TEXT_PREFIXES.items() if model_class.startswith(prefix)), None)


@check("checkpointing_input_grads")
def checkpointing_input_grads(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """Reentrant torch.utils.checkpoint only records a graph when an input requires grad. Since
    transformers 5 the trap is narrow: checkpointing defaults to use_reentrant=False, and enabling it
    on an input_ids model calls enable_input_require_grads (modeling_utils.py); PEFT does it when it
    wraps a non-quantized model that already checkpoints (peft_model.py __init__ /
    _prepare_model_for_gradient_checkpointing). It survives for an explicit use_reentrant=True on a
    model whose main input is pixel_values / input_features / input_values."""
    training = _training(site)
    if training is None or training.reentrant_checkpointing is None or training.input_grads:
        return
    if training.trainer is not None and training.trainer not in _TRANSFORMERS_TRAINERS:
        return
    if site.hints.model_library != "transformers":
        return
    main_input = _main_input(site.hints.model_class)
    if main_input is None:
        return
    yield Finding(
        training.reentrant_checkpointing,
        f"use_reentrant=True checkpointing on {site.hints.model_class}, whose input is {main_input}: the frozen"
        " base gives the checkpointed blocks no input that requires grad, so the LoRA weights inside them get no"
        " gradient (\"element 0 of tensors does not require grad\" when nothing else is trainable); use"
        " use_reentrant=False or call model.enable_input_require_grads() before training",
        related=[(site.span, "the LoRA configuration of the frozen base")],
    )


@check("device_map_ddp")
def device_map_ddp(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """accelerate/accelerator.py prepare_model: a model whose hf_device_map spans several devices raises
    "You can't train a model that has been loaded with `device_map='auto'` in any distributed mode"."""
    training = _training(site)
    if training is None or training.device_map_auto is None or training.ddp_signal is None:
        return
    span, why = training.ddp_signal
    yield Finding(
        training.device_map_auto,
        f"device_map=\"auto\" in a script launched for DDP ({why}): each process spreads the model over every visible GPU"
        " and accelerate refuses to train it (\"You can't train a model that has been loaded with"
        " device_map='auto' in any distributed mode\"); give each process its own GPU with"
        " device_map={\"\": PartialState().process_index} (or int(os.environ[\"LOCAL_RANK\"]))",
        related=[(span, why)],
    )


# Families whose activations overflow float16 (documented): Gemma 3 (transformers issue #36822 "Gemma 3 is
# broken with fp16"; Unsloth forces bfloat16 for gemma-3, unsloth/models/vision.py) and Gemma 4 (Unsloth's
# FORCE_BFLOAT16, unslothai/unsloth#5074: NaN from step 6 in fp16).
_BF16_ONLY = {"gemma3": "Gemma 3", "gemma3_text": "Gemma 3", "gemma4": "Gemma 4", "gemma4_text": "Gemma 4"}
_BF16_ONLY_NAME = lazy(r"(?:^|/)(?:[\w.-]*[-_])?gemma-?([34])(?![\d.])", re.IGNORECASE)


def _bf16_only_family(site: ConfigSite) -> str | None:
    model = site.model
    if model is not None and not getattr(model, "guessed", True) and getattr(model, "model_type", None):
        return _BF16_ONLY.get(model.model_type)
    f = site.base_model
    if f is not None and f.known and isinstance(f.value, str):
        m = _BF16_ONLY_NAME.search(f.value)
        if m:
            return f"Gemma {m.group(1)}"
    return None


@check("fp16_bf16_only_model")
def fp16_bf16_only_model(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    training = _training(site)
    if training is None or training.trainer is None:
        return
    fp16 = training.args.get("fp16")
    if fp16 is None or fp16.value is not True:
        return
    family = _bf16_only_family(site)
    if family is None:
        return
    yield Finding(
        fp16.span,
        f"fp16=True trains {family}, whose activations overflow float16 (NaN loss or empty output): train in"
        " bf16=True, or in float32 on a GPU without bfloat16",
        related=[(site.base_model.span, f"the {family} base model")] if site.base_model is not None else [],
    )


def _tied(config: object) -> bool | None:
    if not isinstance(config, dict):
        return None
    for part in (config, config.get("text_config")):
        if isinstance(part, dict) and isinstance(part.get("tie_word_embeddings"), bool):
            return part["tie_word_embeddings"]
    return None


@check("tied_head_merge")
def tied_head_merge(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/tuners/tuners_utils.py _check_merge_allowed warns when a tied layer is part of the adapter
    ("Model with `tie_word_embeddings=True` and the tied_target_modules=... are part of the adapter"):
    merging LoRA into lm_head writes into the one matrix lm_head and embed_tokens share."""
    training = _training(site)
    if training is None or training.merged is None or site.opaque:
        return
    model = site.model
    if model is None or getattr(model, "guessed", True) or _tied(getattr(model, "config", None)) is not True:
        return
    targets, known = effective(site, "target_modules")
    tying, tying_known = effective(site, "ensure_weight_tying")
    if not known or (tying_known and tying is True):
        return
    heads = [n for n in _names(targets) if n.rsplit(".", 1)[-1] in ("lm_head", "embed_tokens")]
    if not heads or isinstance(targets, str):
        return
    yield Finding(
        site.span_of("target_modules"),
        f"LoRA on {', '.join(heads)} of {model.model_id}, whose input and output embeddings are tied"
        " (tie_word_embeddings=true): merging writes the lm_head update into the matrix embed_tokens shares,"
        " so the merged model's embeddings change too (PEFT warns at merge); load the base with"
        " tie_word_embeddings=False and copy the embeddings into lm_head before training, or leave lm_head out",
        related=[(training.merged, "the adapter is merged here")],
    )
