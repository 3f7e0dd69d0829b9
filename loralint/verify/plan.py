"""Planning a site: the LoraConfig keyword arguments, the base model id, and where a PEFT error points."""

from __future__ import annotations

import re
from typing import Any

from loralint.sites import ConfigSite, Span

# LoraConfig fields that only describe where the adapter came from: get_peft_model overwrites
# base_model_name_or_path (and warns when it differs, which from-config models always would).
_METADATA_FIELDS = frozenset({"base_model_name_or_path", "revision", "peft_version", "auto_mapping", "peft_type"})


# Initialisations that need data or real weights that no config can give (preprocess_corda,
# LoftQ's quantise-and-SVD). Their construction checks still run on the real value; the model is
# then built with the default initialisation, which gives the same modules and counts.
_DATA_DEPENDENT_INITS = ("corda", "loftq")


# Origins that do not apply LoRA through PEFT: their module names are not PEFT's to match.
_NOT_PEFT_ORIGINS = ("torchtune",)


def lora_kwargs(site: ConfigSite) -> tuple[dict[str, Any], list[str], list[str]]:
    """(kwargs, unknown, dropped): the LoraConfig arguments in force (set, or the origin's
    defaults), the relevant ones that are not statically known, and the irrelevant unknown ones
    left to PEFT's default."""
    from loralint.checks._util import effective
    from loralint.peft_fields import LORA_FIELDS

    irrelevant = {"lora_dropout", "megatron_core", "runtime_config"}
    kwargs: dict[str, Any] = {}
    unknown: list[str] = []
    dropped: list[str] = []
    for name in sorted({*site.fields, *site.defaults}):
        if name not in LORA_FIELDS or name in _METADATA_FIELDS:
            continue
        value, known = effective(site, name)
        if not known:
            if name in irrelevant and not (name == "lora_dropout" and site.fields.get("target_parameters")):
                dropped.append(name)
                continue
            unknown.append(name)
            continue
        kwargs[name] = _plain(value)
    return kwargs, unknown, dropped


def _plain(value: Any) -> Any:
    """Field values as a user would pass them: tuples stay lists, sets stay sets."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _model_id(site: ConfigSite, options, settings) -> str | None:
    if getattr(options, "model", None):
        return options.model
    if getattr(settings, "model", None):
        return settings.model
    if site.base_model is not None and isinstance(site.base_model.value, str):
        return site.base_model.value
    return None


def _model_span(site: ConfigSite) -> Span:
    """Findings about the base model point at its id in the source when it is there."""
    base = site.base_model
    if base is not None and base.span.path == site.path and isinstance(base.value, str):
        model = getattr(site.model, "source", "") or ""
        if not model.startswith(("--model", "settings")):
            return base.span
    return site.span


def _where(site: ConfigSite) -> str:
    return f"{site.path}:{site.span.line}"


_PHRASES = (
    ("target module", "target_modules"),
    ("target_modules", "target_modules"),
    ("requested bias", "bias"),
    ("dropout probability", "lora_dropout"),
    ("`r` should be", "r"),
    ("unknown initialization", "init_lora_weights"),
    ("fan_in_fan_out", "fan_in_fan_out"),
    ("rank_pattern", "rank_pattern"),
    ("alpha_pattern", "alpha_pattern"),
    ("modules_to_save", "modules_to_save"),
    ("exclude_modules", "exclude_modules"),
    ("layers_to_transform", "layers_to_transform"),
)


_BACKTICKED = re.compile(r"`(\w+)`")


def _span_for_error(site: ConfigSite, message: str) -> Span:
    """Point at the argument the message is about, when one is named and set; else the call."""
    for name in _BACKTICKED.findall(message):
        if name in site.fields:
            return site.fields[name].span
    lower = message.lower()
    for phrase, name in _PHRASES:
        if phrase in lower and name in site.fields:
            return site.fields[name].span
    return site.span


_PATTERN_WARNING = re.compile(r"The following (rank_pattern|alpha_pattern) keys did not match any targeted module.*?(\[.*\])")


def _own_pattern_keys(message: str, kwargs: dict[str, Any]) -> bool:
    """True for PEFT's unmatched-pattern-key warning when none of the keys is one the user wrote."""
    import ast

    match = _PATTERN_WARNING.search(message)
    if not match:
        return False
    try:
        keys = ast.literal_eval(match.group(2))
    except (ValueError, SyntaxError):
        return False
    written = kwargs.get(match.group(1)) or {}
    return isinstance(keys, list) and not any(k in written for k in keys)


def _short(exc: BaseException | str, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
