"""LORA4xx: how the configuration is used in the training script."""

from __future__ import annotations

from typing import Iterable

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import known_field
from loralint.sites import ConfigSite


@check("kbit_prepared_after_peft")
def kbit_prepared_after_peft(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/utils/other.py: prepare_model_for_kbit_training sets requires_grad=False on every
    parameter, so called after get_peft_model it freezes the adapters (trl#3926, peft#2299)."""
    span = site.hints.kbit_prepared_after
    if span is None:
        return
    yield Finding(
        span,
        "prepare_model_for_kbit_training is called after get_peft_model: it freezes every parameter, the LoRA"
        " adapters included, so training updates nothing (0 trainable parameters); call it before get_peft_model",
        related=[(site.hints.applied_span or site.span, "get_peft_model is called here")],
    )


@check("config_reused")
def config_reused(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """get_peft_model mutates the config it is given (all-linear resolved to one model's names,
    fan_in_fan_out flipped, modules_to_save extended; research §3.1)."""
    if not site.hints.reapplied:
        return
    lines = ", ".join(str(s.line) for s in site.hints.reapplied)
    yield Finding(
        site.hints.reapplied[0],
        f"this LoraConfig object is applied again (line {lines}); PEFT mutates the config it is given (all-linear"
        " becomes one model's module names, modules_to_save is extended), so build a fresh LoraConfig each time",
        related=[(site.span, "the config is built here")],
    )


# (method, the call that must come first, what happens otherwise)
_PREREQUISITES = {
    "eva": ("initialize_lora_eva_weights", "the adapter silently trains as plain LoRA (A keeps nn.Linear's default init)"),
    "corda": ("preprocess_corda", "get_peft_model raises ValueError ('`eigens` attribute not found')"),
    "lora_ga": ("preprocess_loraga", "PEFT silently falls back to the default initialisation"),
}


@check("init_prerequisite")
def init_prerequisite(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    f = known_field(site, "init_lora_weights")
    if f is None or not isinstance(f.value, str) or site.hints.calls is None:
        return
    needed = _PREREQUISITES.get(f.value.lower())
    if needed is None or needed[0] in site.hints.calls:
        return
    call, effect = needed
    yield Finding(f.span, f"init_lora_weights={f.value!r} needs {call}(...) in the training script, which is never called here: {effect}")
