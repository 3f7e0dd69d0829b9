"""LORA3xx: quantization and QLoRA, from how the script loads the base model."""

from __future__ import annotations

from typing import Iterable

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import known_field
from loralint.sites import ConfigSite

# Initialisations that rewrite or decompose the base weights (peft/tuners/lora/layer.py:
# pissa_init, olora_init, corda_init, mica_init, lora_ga_init; utils/loftq_utils.py).
_WEIGHT_INITS = ("pissa", "olora", "corda", "mica", "lora_ga")


@check("init_on_quantized")
def init_on_quantized(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    f = known_field(site, "init_lora_weights")
    quant = site.hints.quantization
    if f is None or not isinstance(f.value, str) or quant is None:
        return
    init = f.value.lower()
    loaded = f"the base model is loaded in {quant} (line {site.hints.quantization_span.line})" if site.hints.quantization_span else f"the base model is loaded in {quant}"
    if init == "loftq":
        yield Finding(
            f.span,
            f"init_lora_weights='loftq' but {loaded}: LoftQ quantizes the weights itself and must start from the"
            " full-precision model; load it without quantization (or use replace_lora_weights_loftq on the QLoRA model)",
        )
    elif init.startswith(_WEIGHT_INITS):
        yield Finding(
            f.span,
            f"init_lora_weights={f.value!r} decomposes the base weights, but {loaded}: PEFT raises TypeError"
            " ('Please initialize PiSSA under float32, float16, or bfloat16') or, with a float quant storage, silently"
            " decomposes the packed data; initialise on the bf16 model, then quantize the residual",
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
