"""LORA3xx: quantization and QLoRA, from how the script loads the base model."""

from __future__ import annotations

from typing import Iterable

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import known_field
from loralint.sites import ConfigSite, Span

# Initialisations that read or rewrite the base weights, and what PEFT does with a bitsandbytes weight
# (peft/tuners/lora/layer.py). olora_init dequantizes a bnb weight (get_bnb_param_type /
# dequantize_module_weight), decomposes it and re-quantizes the residual, so OLoRA works on a 4/8-bit base.
_RAISES = ("pissa", "corda", "mica")  # TypeError "Please initialize ... under float32, float16, or bfloat16"
_NO_DTYPE_CHECK = ("lora_ga",)  # lora_ga_init writes `weight.data` back without any dtype check


def quantized_here(site: ConfigSite) -> tuple[str, list[tuple[Span, str]]]:
    """'the base model is loaded in 4bit (line 5)', and the related location of that line."""
    quant = site.hints.quantization or site.hints.quant_method or "a quantized format"
    span = site.hints.quantization_span
    source = f" by {site.hints.quantization_source}" if site.hints.quantization_source else ""
    where = f"the base model is loaded in {quant}"
    if span is None:
        return where + source, []
    return f"{where} (line {span.line}){source}", [(span, f"the base model is quantized here ({quant})")]


@check("init_on_quantized")
def init_on_quantized(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    f = known_field(site, "init_lora_weights")
    if f is None or not isinstance(f.value, str) or site.hints.quantization is None:
        return
    if site.hints.quant_method not in (None, "bitsandbytes"):
        return  # GPTQ/AWQ/HQQ/torchao layers: PEFT's behaviour differs per backend; not claimed here
    init = f.value.lower()
    loaded, related = quantized_here(site)
    if init == "loftq":
        yield Finding(
            f.span,
            f"init_lora_weights='loftq' but {loaded}: LoftQ quantizes the weights itself and must start from the"
            " full-precision model; load it without quantization (or use replace_lora_weights_loftq on the QLoRA model)",
            related=related,
        )
    elif init.startswith(_RAISES):
        yield Finding(
            f.span,
            f"init_lora_weights={f.value!r} decomposes the base weights, but {loaded}: PEFT raises TypeError"
            " ('Please initialize ... under float32, float16, or bfloat16') or, with a float bnb_4bit_quant_storage,"
            " silently decomposes the packed data; initialise on the bf16 model, then quantize the residual"
            " (init_lora_weights='olora' is the one that dequantizes and re-quantizes a bitsandbytes base itself)",
            related=related,
        )
    elif init.startswith(_NO_DTYPE_CHECK):
        yield Finding(
            f.span,
            f"init_lora_weights={f.value!r} subtracts its initial update from the base weights, but {loaded}: PEFT's"
            " lora_ga_init has no quantized path and writes float values over the packed 4/8-bit data; initialise"
            " on the bf16 model, then quantize the residual",
            related=related,
        )


@check("bnb_compute_dtype")
def bnb_compute_dtype(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    config = site.hints.bnb_config
    span = site.hints.quantization_span
    if not config or span is None:
        return
    if config.get("load_in_4bit") is True and config.get("load_in_8bit") is True:
        yield Finding(span, "BitsAndBytesConfig sets both load_in_4bit and load_in_8bit: transformers raises ValueError")
        return
    if config.get("load_in_4bit") is True and "bnb_4bit_compute_dtype" not in config:
        yield Finding(
            span,
            "BitsAndBytesConfig(load_in_4bit=True) without bnb_4bit_compute_dtype computes in float32: QLoRA trains"
            " several times slower than needed; set bnb_4bit_compute_dtype=torch.bfloat16 (float16 on pre-Ampere GPUs)",
        )


@check("qalora_without_gptq")
def qalora_without_gptq(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    f = known_field(site, "use_qalora")
    if f is None or f.value is not True or site.hints.quantization not in ("4bit", "8bit"):
        return
    yield Finding(
        f.span,
        f"use_qalora=True is implemented for GPTQ layers only; this model is loaded with bitsandbytes"
        f" {site.hints.quantization}, so PEFT silently trains plain LoRA",
    )


@check("bnb_quant_type")
def bnb_quant_type(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """transformers/utils/quantization_config.py: BitsAndBytesConfig's bnb_4bit_quant_type defaults to "fp4";
    QLoRA's NF4 is information-theoretically optimal for normally distributed weights (QLoRA paper, §3)."""
    config = site.hints.bnb_config
    span = site.hints.quantization_span
    if not config or span is None or config.get("load_in_4bit") is not True:
        return
    quant_type = config.get("bnb_4bit_quant_type", "fp4")
    if not isinstance(quant_type, str) or quant_type.lower() != "fp4":
        return
    how = "bnb_4bit_quant_type='fp4'" if "bnb_4bit_quant_type" in config else "no bnb_4bit_quant_type (the default is 'fp4')"
    yield Finding(
        site.hints.bnb_spans.get("bnb_4bit_quant_type", span),  # the argument when written, else the whole config
        f"4-bit BitsAndBytesConfig with {how}: QLoRA's NF4 (bnb_4bit_quant_type='nf4') fits normally distributed"
        " weights better and is what QLoRA's results were measured with, at the same memory; use 'nf4'",
        related=[(site.hints.applied_span or site.span, "the LoRA adapter is trained on this base")],
    )


@check("dora_on_quantized")
def dora_on_quantized(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/tuners/lora/dora.py: DoRA recomputes the weight norm from the dequantized base weight on every
    forward pass (dequantize_module_weight), on top of LoRA's own cost."""
    f = known_field(site, "use_dora")
    if f is None or f.value is not True:
        return
    if site.hints.quantization is None and site.hints.quant_method is None:
        return
    loaded, related = quantized_here(site)
    slowdown = ctx.params.get("slowdown", "about 2x")
    yield Finding(
        f.span,
        f"use_dora=True and {loaded}: DoRA dequantizes every adapted weight on each forward pass to take its"
        f" norm, so a step costs {slowdown} a LoRA step (PEFT: 'DoRA introduces a bigger overhead than pure LoRA');"
        " for the same budget train plain LoRA (a higher r, or use_rslora=True), or DoRA on a bf16 base",
        related=related,
    )


@check("deprecated_kbit_kwarg")
def deprecated_kbit_kwarg(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """transformers 5 (modeling_utils.py from_pretrained) no longer pops load_in_4bit/load_in_8bit: the config
    returns them as unused kwargs and `cls(config, **model_kwargs)` raises TypeError; 4.x warned and built a
    BitsAndBytesConfig from them."""
    span = site.hints.kbit_kwarg
    if span is None:
        return
    related = [(site.hints.applied_span, "the adapter is applied to this model")] if site.hints.applied_span else []
    yield Finding(span, kbit_kwarg_message(site), related=related)


def kbit_kwarg_message(site: ConfigSite) -> str:
    """LORA306's message; also for a base that a saved adapter is loaded onto (extract/quantized.py loaded_kbit_kwargs)."""
    written = site.hints.kbit_kwarg_written or "load_in_4bit=True"
    key = written.split("=", 1)[0]
    raises = (f"transformers 5 passes {key} on to the model's __init__, which raises TypeError (\"got an"
              f" unexpected keyword argument '{key}'\"); transformers 4.x only warned")
    if written.endswith("=False"):  # nothing to replace it with
        return f"from_pretrained({written}) quantizes nothing, yet {raises}. Remove the keyword"
    bits = "8" if key == "load_in_8bit" else "4"  # the quantization that keyword asks for, when it asks for one
    nf4 = "" if bits == "8" else ", bnb_4bit_quant_type='nf4', bnb_4bit_compute_dtype=torch.bfloat16"
    return (f"from_pretrained({written}) is the removed way to quantize: {raises}. Pass"
            f" quantization_config=BitsAndBytesConfig(load_in_{bits}bit=True{nf4}) instead")


@check("kbit_without_preparation")
def kbit_without_preparation(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/peft_model.py `_prepare_model_for_gradient_checkpointing` enables input gradients only on a model
    that is NOT quantized: on a 4/8-bit base that is left to prepare_model_for_kbit_training (peft/utils/other.py),
    which also casts the remaining 16-bit parameters (layer norms) to fp32 and turns on gradient checkpointing
    (use_gradient_checkpointing=True by default). The message says only what holds for this script: whether
    checkpointing is on, and whether it is reentrant (transformers 5 defaults to use_reentrant=False and
    enables input gradients itself, modeling_utils.py _activation_checkpointing_enable; 4.x was reentrant)."""
    hints = site.hints
    trainer = hints.peft_model_trainer
    if trainer is None or hints.kbit_prepared_by is not None:
        return
    if hints.quant_method != "bitsandbytes" or hints.model_library != "transformers":
        return
    name = trainer[0].rsplit(".", 1)[-1]
    loaded, related = quantized_here(site)
    anchor = hints.applied_span or site.span
    head = (f"the PEFT model is trained by {name} (line {trainer[1].line}) but {loaded} and is never passed through"
            " prepare_model_for_kbit_training")
    advice = ("; call model = prepare_model_for_kbit_training(model) before get_peft_model (or let a TRL trainer do"
              " it: pass peft_config= instead of a PEFT model)")
    training = hints.training
    on = _checkpointing_on(training)
    if hints.kbit_cast_by_hand is not None:
        # The script casts the 16-bit parameters to fp32 itself: what is left of the preparation is input
        # gradients, which only reentrant checkpointing needs.
        if on is None or _non_reentrant_args(training) or (training is not None and training.input_grads):
            return
        cast = hints.kbit_cast_by_hand.line
        body = (f": the parameters are cast to fp32 by hand (line {cast}), but gradient checkpointing is on ({on}) and"
                " PEFT does not enable input gradients on a quantized model, which reentrant checkpointing"
                " (transformers 4.x's default) needs ('element 0 of tensors does not require grad')")
        advice = "; call model.enable_input_require_grads() before get_peft_model, or prepare_model_for_kbit_training"
        yield Finding(anchor, head + body + advice, related=[*related, (trainer[1], f"{name} trains the PEFT model here")])
        return
    if training is not None and training.reentrant_checkpointing is not None and on is not None \
            and not training.input_grads:
        line = training.reentrant_checkpointing.line
        body = (f": PEFT does not enable input gradients on a quantized model, so the reentrant gradient checkpointing"
                f" asked for on line {line} fails ('element 0 of tensors does not require grad'), and the layer norms"
                " stay in 16-bit (prepare_model_for_kbit_training casts them to fp32)")
    elif on is not None:
        body = (f": gradient checkpointing is on ({on}) but the layer norms stay in 16-bit, which"
                " prepare_model_for_kbit_training casts to fp32")
        if not _non_reentrant_args(training):
            body += ("; and PEFT does not enable input gradients on a quantized model, which reentrant checkpointing"
                     " (transformers 4.x's default) needs ('element 0 of tensors does not require grad')")
    else:
        body = (": the layer norms stay in 16-bit and nothing here turns gradient checkpointing on;"
                " prepare_model_for_kbit_training casts them to fp32, enables input gradients and turns checkpointing on")
    yield Finding(anchor, head + body + advice, related=[*related, (trainer[1], f"{name} trains the PEFT model here")])


def _non_reentrant_args(training) -> bool:
    kwargs = training.args.get("gradient_checkpointing_kwargs") if training is not None else None
    return kwargs is not None and isinstance(kwargs.value, dict) and kwargs.value.get("use_reentrant") is False


def _checkpointing_on(training) -> str | None:
    """What turns gradient checkpointing on for the trained model, in words; None when nothing known does."""
    if training is None:
        return None
    if training.checkpointing is not None:
        span, what = training.checkpointing
        return f"{what}, line {span.line}"
    flag = training.args.get("gradient_checkpointing")
    if flag is not None:
        return f"gradient_checkpointing=True in {training.args_class or 'the training arguments'}" \
            if flag.known and flag.value is True else None
    if training.args_class == "SFTConfig":  # trl/trainer/sft_config.py: defaults to True in recent TRL
        return "SFTConfig's default gradient_checkpointing=True"
    return None


@check("merge_into_quantized")
def merge_into_quantized(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/tuners/lora/bnb.py merge(): dequantize, add the LoRA delta, re-quantize, with the warning 'Merge lora
    module to 4-bit linear may get different generations due to rounding errors'."""
    span = site.hints.merged_quantized
    if span is None:
        return
    loaded, related = quantized_here(site)
    yield Finding(
        span,
        merge_message(loaded),
        related=[*related, *([(site.hints.applied_span, "the adapter is applied here")] if site.hints.applied_span else [])],
    )


def merge_message(loaded: str) -> str:
    """LORA405's message for a base that `loaded` describes ("the base model is loaded in 4bit (line 5) by ...");
    also the message of a merge-only script's finding (extract/quantized.py merged_loaded_adapters)."""
    return (
        f"merging the adapter into a base that {loaded.removeprefix('the base model ')}: PEFT dequantizes each weight,"
        " adds the LoRA update and quantizes it again, so the rounding eats much of the small update and the result"
        " is still a quantized model; save the adapter, reload the base in bf16 (from_pretrained(..., dtype=torch.bfloat16),"
        " no quantization_config), PeftModel.from_pretrained(base, adapter_dir).merge_and_unload(), then quantize the"
        " merged model if you need to"
    )


def _where(span: Span, here: Span) -> str:
    """`line N` in the same file; `distributed_type: FSDP in path:N` from an accelerate config (loralint/launches.py)."""
    return f"line {span.line}" if span.path == here.path else f"distributed_type: FSDP in {span.path}:{span.line}"


@check("fsdp_qlora_quant_storage")
def fsdp_qlora_quant_storage(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """FSDP flattens each wrapped module's parameters into one tensor and needs one dtype: the 4-bit weights are
    stored as bnb_4bit_quant_storage (default torch.uint8) next to bf16 norms; PEFT/transformers' FSDP-QLoRA guide
    sets bnb_4bit_quant_storage to the model's dtype."""
    config = site.hints.bnb_config
    fsdp = site.hints.fsdp
    span = site.hints.quantization_span
    if fsdp is None or span is None or not config or config.get("load_in_4bit") is not True:
        return
    if "bnb_4bit_quant_storage" in config:
        return
    yield Finding(
        span,
        f"FSDP ({_where(fsdp, span)}) with a 4-bit BitsAndBytesConfig that leaves bnb_4bit_quant_storage at torch.uint8:"
        " FSDP cannot flatten uint8 4-bit weights together with the bf16 parameters beside them ('Must flatten tensors"
        " with uniform dtype') and does not shard them; set bnb_4bit_quant_storage=torch.bfloat16 (the dtype the"
        " model is loaded in)",
        related=[(fsdp, "FSDP is turned on here")],
    )
