"""LORA0xx: configurations PEFT rejects or mishandles at run time, decided from the source.

Each check cites the PEFT 0.21.2 code it mirrors. Most of these are *not* checked when the
LoraConfig is built: PEFT only fails once the (possibly multi-GB) base model is loaded.
"""

from __future__ import annotations

from typing import Any, Iterable

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import (
    close_matches,
    effective,
    fmt,
    known_field,
    number,
    quote_list,
    rename_key,
    replace_value,
    similarity,
)
from loralint.lazy_re import lazy
from loralint.peft_fields import (
    BIAS_VALUES,
    INIT_METHODS,
    KNOWN_CONFUSIONS,
    LORA_FIELDS,
    REMOVED_FIELDS,
    TASK_TYPES,
)
from loralint.sites import ConfigSite

_PISSA_NITER = lazy(r"^pissa_niter_(\d+)$")


def _known_names(site: ConfigSite) -> frozenset[str] | set[str]:
    """The argument or key names the site's API takes (what an unknown one is compared with)."""
    peft_like = site.origin in ("peft.LoraConfig", "unsloth.get_peft_model", "adapter_config")
    return (LORA_FIELDS | site.extra_known) if peft_like else site.extra_known


def _suggestions(site: ConfigSite, name: str, known: frozenset[str] | set[str]) -> tuple[list[str], str | None]:
    """(the names LORA001 suggests for the unknown `name`, the known confusion it is, if any)."""
    meant = KNOWN_CONFUSIONS.get(name)
    return ([meant] if meant and meant in known else _closest(name, close_matches(name, known))), meant


# axolotl has no default for these: a missing key reaches PEFT as None (extract/formats.py, _axolotl), which
# LORA002 / LORA012 report, unless the key is there but misspelt (LORA001 says so: one mistake, one error).
_NONE_WHEN_MISSING = {("axolotl", "r"): "lora_r", ("axolotl", "lora_alpha"): "lora_alpha"}


def _misspelt(site: ConfigSite, field_name: str) -> bool:
    """Whether the site's value of `field_name` is a default only because its key is written misspelt."""
    key = _NONE_WHEN_MISSING.get((site.origin, field_name))
    if key is None or not site.unknown_args:
        return False
    known = _known_names(site)
    return any(_suggestions(site, f.raw_name or f.name, known)[0] == [key] for f in site.unknown_args)


@check("unknown_argument")
def unknown_argument(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/config.py: LoraConfig is a dataclass, so an unknown keyword raises TypeError at once;
    from adapter_config.json (peft >= 0.14) it is dropped with a warning instead."""
    known = _known_names(site)
    api = {
        "peft.LoraConfig": "LoraConfig",
        "unsloth.get_peft_model": "Unsloth's get_peft_model",
        "adapter_config": "LoraConfig (adapter_config.json)",
        "axolotl": "axolotl's LoraConfig schema",
        "llamafactory": "LLaMA-Factory's FinetuningArguments",
        "torchtune": "torchtune's LoRA model builder",
        "trl": "TRL's ModelConfig",
        "unsloth": "the Unsloth CLI's LoraConfig",
    }.get(site.origin, site.origin)
    for f in site.unknown_args:
        name = f.raw_name or f.name
        fix = None
        if name in REMOVED_FIELDS:
            message = f"{name} is not an argument of {api}: {REMOVED_FIELDS[name]}"
        else:
            matches, meant = _suggestions(site, name, known)
            effect = _UNKNOWN_EFFECT.get(site.origin, f"{api}(...) raises TypeError: unexpected keyword argument {name!r}")
            message = f"{name} is not an argument of {api}; {effect}"
            if matches:
                message += f"; did you mean {' or '.join(matches)}?"
                for (origin, field_name), key in _NONE_WHEN_MISSING.items():
                    missing = site.fields.get(field_name)
                    if origin == site.origin and matches == [key] and missing is not None and missing.value is None \
                            and missing.key_span is None:
                        message += f" Without it, axolotl passes {field_name}=None, which fails when PEFT injects the adapter"
                # Rename automatically only when the intent is unambiguous: one candidate, set by no key or
                # argument already (axolotl's lora_alpha=None for a missing key is set by none), and either
                # a known confusion or a near-typo (use_rslora is not use_dora).
                present = site.fields.get(matches[0])
                if (
                    len(matches) == 1
                    and (present is None or (present.key_span is None and not present.written_here))
                    and (meant == matches[0] or similarity(name, matches[0]) >= 0.85)
                ):
                    fix = rename_key(site, f, matches[0], f"Rename {name} to {matches[0]}")
        yield Finding(f.span, message, fix=fix)


def _closest(name: str, matches: list[str]) -> list[str]:
    """The suggestions about as close as the best one: `lora_droput` is lora_dropout (0.96), not also lora_on_cpu
    (0.73) or lora_r (0.71), which difflib's cutoff lets through; use_rslora / use_dora stay a choice."""
    if len(matches) < 2:
        return matches
    scores = {m: similarity(name, m) for m in matches}
    best = max(scores.values())
    return [m for m in matches if scores[m] >= best - 0.1]


# What happens to an unknown key, per origin (research/trainer-formats.md, §8 "unknown keys").
_UNKNOWN_EFFECT = {
    "adapter_config": "PEFT >= 0.14 drops it with a warning when it loads the adapter, so it has no effect",
    "unsloth.get_peft_model": "Unsloth passes unknown keywords to LoraConfig, which raises TypeError",
    "axolotl": "axolotl drops unknown keys silently, so the setting has no effect",
    "llamafactory": "LLaMA-Factory refuses to start (Some keys are not used by the HfArgumentParser)",
    "trl": "TRL's parser rejects it (trl/scripts/sft.py ignores it silently)",
    "unsloth": "the Unsloth CLI ignores unknown keys, so the setting has no effect",
    "torchtune": "torchtune's builder raises TypeError when it instantiates the model",
    "trl.ModelConfig": "ModelConfig(...) raises TypeError: unexpected keyword argument",
}


@check("invalid_rank")
def invalid_rank(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/tuners/lora/layer.py: LoraLayer.update_layer raises
    "`r` should be a positive integer value but the value passed is {r}" at injection;
    a float r fails inside torch. rank_pattern values go through the same check per layer."""
    f = known_field(site, "r")
    if f is not None and not _positive_int(f.value) and not (f.value is None and _misspelt(site, "r")):
        yield Finding(f.span, f"{f.describe()} is not a positive integer; {_rank_failure(f.value)}")
    patterns = known_field(site, "rank_pattern")
    if patterns is not None and isinstance(patterns.value, dict):
        for key, value in patterns.value.items():
            if not _positive_int(value):
                yield Finding(
                    patterns.span,
                    f"rank_pattern[{key!r}]={fmt(value)} is not a positive integer; {_rank_failure(value)}",
                )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _rank_failure(value: Any) -> str:
    if isinstance(value, float):
        return "LoRA builds nn.Linear(in, r), so torch raises TypeError when PEFT injects the adapter"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "PEFT raises ValueError (`r` should be a positive integer) after the model is loaded"
    return f"a {type(value).__name__} rank fails when PEFT injects the adapter"


@check("invalid_dropout")
def invalid_dropout(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """torch.nn.Dropout raises "dropout probability has to be between 0 and 1" when PEFT builds the
    LoRA layer (peft/tuners/lora/layer.py: update_layer); p=1 is accepted but zeroes every input."""
    f = known_field(site, "lora_dropout")
    if f is None:
        return
    p = number(f.value)
    if p is None:
        yield Finding(f.span, f"{f.describe()} is not a number; nn.Dropout rejects it when PEFT injects the adapter")
    elif p < 0 or p > 1:
        yield Finding(f.span, f"{f.describe()} is outside [0, 1): torch raises ValueError when PEFT injects the adapter")
    elif p == 1:
        yield Finding(f.span, f"{f.describe()} drops every input to the LoRA path: the adapter can never learn")


@check("invalid_bias")
def invalid_bias(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/tuners/tuners_utils.py: _mark_only_adapters_as_trainable raises
    NotImplementedError("Requested bias: {bias}, is not implemented.") at injection."""
    f = known_field(site, "bias")
    if f is None or f.value in BIAS_VALUES:
        return
    message = f"{f.describe()} is not one of {quote_list(BIAS_VALUES)}; PEFT raises NotImplementedError at injection"
    fix = None
    if isinstance(f.value, str) and f.value.strip().lower() in BIAS_VALUES:
        fixed = f.value.strip().lower()
        message += f"; did you mean {fixed!r}?"
        fix = replace_value(site, "bias", fixed, f"Set bias to {fixed!r}")
    elif f.value is None or f.value is False:
        message += "; use 'none' to train no biases"
        fix = replace_value(site, "bias", "none", "Set bias to 'none'")
    yield Finding(f.span, message, fix=fix)


@check("invalid_task_type")
def invalid_task_type(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/config.py: PeftConfigMixin.__post_init__ raises ValueError("Invalid task type: ...")
    (since peft 0.14; older versions silently used a plain PeftModel). The match is case-sensitive."""
    f = known_field(site, "task_type")
    if f is None or f.value is None or f.value in TASK_TYPES:
        return
    text = str(f.value)
    guess = _task_type_guess(text)
    message = f"{f.describe()} is not a PEFT TaskType ({', '.join(TASK_TYPES)}); LoraConfig raises ValueError"
    fix = None
    if guess:
        message += f"; did you mean {guess!r}?"
        fix = replace_value(site, "task_type", guess, f"Set task_type to {guess!r}")
    yield Finding(f.span, message, fix=fix)


_TASK_ALIASES = {
    "QUESTION_ANSWERING": "QUESTION_ANS",
    "CAUSAL": "CAUSAL_LM",
    "CAUSALLM": "CAUSAL_LM",
    "SEQ2SEQ": "SEQ_2_SEQ_LM",
    "SEQ2SEQ_LM": "SEQ_2_SEQ_LM",
    "SEQ_TO_SEQ_LM": "SEQ_2_SEQ_LM",
    "SEQUENCE_CLASSIFICATION": "SEQ_CLS",
    "TOKEN_CLASSIFICATION": "TOKEN_CLS",
    "FEATURE_EXTRACTION": "FEATURE_EXTRACTION",
}


def _task_type_guess(text: str) -> str | None:
    upper = text.strip().upper().replace("-", "_").replace(" ", "_")
    if upper in TASK_TYPES:
        return upper
    if upper in _TASK_ALIASES:
        return _TASK_ALIASES[upper]
    matches = close_matches(upper, TASK_TYPES, n=1, cutoff=0.6)
    return matches[0] if matches else None


@check("invalid_init")
def invalid_init(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/tuners/lora/layer.py: update_layer dispatches on init_lora_weights; an unknown string
    raises ValueError("Unknown initialization init_lora_weights=...") at injection, and
    "pissa_niter_x" fails in int()."""
    f = known_field(site, "init_lora_weights")
    if f is None or isinstance(f.value, bool):
        return
    value = f.value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in INIT_METHODS or _PISSA_NITER.match(lowered):
            return
        if lowered.startswith("pissa_niter_"):
            yield Finding(f.span, f"{f.describe()}: the PiSSA iteration count must be an integer, e.g. 'pissa_niter_16'")
            return
        matches = close_matches(lowered, INIT_METHODS, n=1, cutoff=0.6)
        message = (
            f"{f.describe()} is not an initialisation PEFT knows (True, False, {', '.join(repr(m) for m in INIT_METHODS)},"
            " 'pissa_niter_<n>'); PEFT raises ValueError when it injects the adapter"
        )
        fix = None
        if matches:
            message += f"; did you mean {matches[0]!r}?"
            fix = replace_value(site, "init_lora_weights", matches[0], f"Set init_lora_weights to {matches[0]!r}", "unsafe")
        yield Finding(f.span, message, fix=fix)
    else:
        yield Finding(f.span, f"{f.describe()} must be True, False or the name of an initialisation method")


@check("conflicting_options")
def conflicting_options(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """Combinations PEFT rejects: peft/tuners/lora/config.py LoraConfig.__post_init__ (C3–C6, C14,
    C15), LoraLayer.resolve_lora_variant (one variant at a time), ParamWrapper (target_parameters),
    orthogonal_init (even r)."""
    target_modules, tm_known = effective(site, "target_modules")
    ltt = site.get("layers_to_transform")
    lp = site.get("layers_pattern")
    if tm_known and isinstance(target_modules, str):
        for f in (ltt, lp):
            if f is not None and f.known and f.value is not None:
                yield Finding(
                    f.key_span or f.span,
                    f"{f.name} cannot be used when target_modules is a string (a regex): LoraConfig raises ValueError;"
                    " give target_modules as a list, or put the layer numbers in the regex",
                )
    if lp is not None and lp.known and lp.value and ltt is None and not site.opaque:
        yield Finding(
            lp.key_span or lp.span,
            "layers_pattern without layers_to_transform: LoraConfig raises ValueError; add layers_to_transform"
            " or remove layers_pattern",
        )
    if _truthy(site, "use_dora") and _set_value(site, "megatron_config"):
        yield Finding(site.span_of("use_dora"), "DoRA does not support megatron_core: LoraConfig raises ValueError")
    if _truthy(site, "lora_bias"):
        init, init_known = effective(site, "init_lora_weights")
        if init_known and init not in (True, False):
            yield Finding(
                site.span_of("lora_bias"),
                f"lora_bias=True works only with init_lora_weights=True or False, not {init!r}: LoraConfig raises ValueError",
            )
        if _truthy(site, "use_dora"):
            yield Finding(site.span_of("lora_bias"), "lora_bias=True is not supported with DoRA: LoraConfig raises ValueError")
    variants = _variants(site)
    if len(variants) > 1:
        yield Finding(
            site.span_of(variants[1]),
            f"{' and '.join(variants)} are separate LoRA variants; PEFT allows one at a time and raises"
            f" ValueError (Invalid or unsupported variant combination) when it builds the layers",
        )
    if _set_value(site, "target_parameters"):
        for name, bad, why in (
            ("lora_dropout", lambda v: number(v) not in (None, 0), "lora_dropout != 0"),
            ("use_dora", lambda v: v is True, "use_dora=True"),
            ("lora_bias", lambda v: v is True, "lora_bias=True"),
            ("fan_in_fan_out", lambda v: v is True, "fan_in_fan_out"),
        ):
            f = known_field(site, name)
            if f is not None and bad(f.value):
                yield Finding(
                    f.span,
                    f"target_parameters (LoRA on nn.Parameter, e.g. fused MoE experts) does not work with {why}:"
                    " PEFT's ParamWrapper raises ValueError at injection",
                )
    init = known_field(site, "init_lora_weights")
    r = known_field(site, "r")
    if init is not None and isinstance(init.value, str) and init.value.lower() == "orthogonal":
        if r is not None and isinstance(r.value, int) and r.value % 2:
            yield Finding(r.span, f"orthogonal initialisation needs an even rank, not r={r.value}: PEFT raises ValueError")


_VARIANT_FIELDS = (
    "use_dora",
    "alora_invocation_tokens",
    "velora_config",
    "monteclora_config",
    "use_bdlora",
    "arrow_config",
    "kasa_config",
)


def _variants(site: ConfigSite) -> list[str]:
    found = [name for name in _VARIANT_FIELDS if _set_value(site, name)]
    init = known_field(site, "init_lora_weights")
    if init is not None and isinstance(init.value, str) and init.value.lower() == "mica":
        found.append("init_lora_weights='mica'")
    return found


def _truthy(site: ConfigSite, name: str) -> bool:
    f = known_field(site, name)
    return f is not None and bool(f.value)


def _set_value(site: ConfigSite, name: str) -> bool:
    """Set to something other than None/False/empty (unknown values count as not set)."""
    f = known_field(site, name)
    return f is not None and f.value not in (None, False) and f.value != {} and f.value != []


@check("loftq_config")
def loftq_config(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/tuners/lora/config.py: init_lora_weights="loftq" without loftq_config raises ValueError
    (C8); peft/utils/loftq_utils.py: loftq_init accepts 4 or 8 bits and iter > 0 only."""
    init = known_field(site, "init_lora_weights")
    loftq = site.get("loftq_config")
    if init is not None and init.value == "loftq" and (loftq is None or (loftq.known and not loftq.value)):
        if not site.opaque:
            yield Finding(
                init.span,
                "init_lora_weights='loftq' needs loftq_config=LoftQConfig(loftq_bits=4): LoraConfig raises ValueError",
            )
    if loftq is None or not loftq.known or not isinstance(loftq.value, dict):
        return
    values = loftq.value
    unknown_keys = sorted(set(values) - {"loftq_bits", "loftq_iter"})
    for key in unknown_keys:
        meant = close_matches(f"loftq_{key}" if not key.startswith("loftq_") else key, ["loftq_bits", "loftq_iter"], n=1, cutoff=0.5)
        hint = f"; did you mean {meant[0]}?" if meant else ""
        yield Finding(loftq.span, f"loftq_config has no key {key!r} (only loftq_bits, loftq_iter){hint}")
    bits = values.get("loftq_bits", 4)
    if bits not in (4, 8):
        yield Finding(loftq.span, f"loftq_bits={fmt(bits)}: LoftQ supports 4 or 8 bits only (loftq_init raises ValueError)")
    iters = values.get("loftq_iter", 1)
    if number(iters) is None or iters <= 0:
        yield Finding(loftq.span, f"loftq_iter={fmt(iters)} must be a positive integer (loftq_init raises ValueError)")


@check("ignored_sub_config")
def ignored_sub_config(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/tuners/lora/config.py: a loftq/eva/corda config given for another initialisation is
    ignored with a warning (loftq_config is even reset to {}). PEFT checks these in one if/elif
    chain, so it reports at most one; each is checked on its own here."""
    init, known = effective(site, "init_lora_weights")
    if not known:
        return
    init_name = init.lower() if isinstance(init, str) else init
    for config_field, method in (("loftq_config", "loftq"), ("eva_config", "eva"), ("corda_config", "corda"), ("lora_ga_config", "lora_ga")):
        if _set_value(site, config_field) and init_name != method:
            f = site.get(config_field)
            assert f is not None
            yield Finding(
                f.key_span or f.span,
                f"{config_field} is set but init_lora_weights={init!r}, so PEFT ignores it; "
                f"set init_lora_weights={method!r} or remove {config_field}",
            )


@check("wrong_type")
def wrong_type(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """Types LoraConfig does not check but PEFT relies on (research §1.6, §3.4)."""
    f = known_field(site, "modules_to_save")
    if f is not None and isinstance(f.value, str):
        yield Finding(
            f.span,
            f"modules_to_save={f.value!r} is a string: PEFT iterates it character by character and wraps every module"
            f" whose name ends in one of them (the whole model); use a list: [{f.value!r}]",
            # Unsafe: the string does train (far too much); the list trains other modules than that run did.
            fix=replace_value(site, "modules_to_save", [f.value], f"Wrap {f.value!r} in a list", "unsafe"),
        )
    f = known_field(site, "target_parameters")
    if f is not None and isinstance(f.value, str):
        yield Finding(
            f.span,
            "target_parameters must be a list of strings: LoraConfig raises TypeError",
            fix=replace_value(site, "target_parameters", [f.value], f"Wrap {f.value!r} in a list"),
        )
    f = known_field(site, "target_modules")
    if f is not None and not (f.value is None or isinstance(f.value, (str, list, tuple, set))):
        yield Finding(f.span, f"{f.describe()} must be a list of module names, a regex string, or 'all-linear'")
    elif f is not None and isinstance(f.value, (list, tuple, set)) and not all(isinstance(v, str) for v in f.value):
        yield Finding(f.span, f"{f.describe()}: every target_modules entry must be a string")
    f = known_field(site, "layers_to_transform")
    if f is not None and f.value is not None:
        values = f.value if isinstance(f.value, (list, tuple)) else [f.value]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            yield Finding(f.span, f"{f.describe()} must be an int or a list of ints (layer indices)")
    # peft/tuners/lora/config.py: _get_lora_subconfig — a variant's config must be an instance of
    # its class, a dict, or None (our extractor reads `EvaConfig(...)` calls as dicts).
    for name, cls in _SUB_CONFIGS.items():
        f = known_field(site, name)
        if f is not None and f.value is not None and not isinstance(f.value, dict):
            hint = " (BD-LoRA is enabled with a BdLoraConfig, not a flag)" if name == "use_bdlora" else ""
            yield Finding(
                f.span,
                f"{f.describe()} must be {cls}(...), a dict or None: LoraConfig raises TypeError{hint}",
            )
    for name in ("rank_pattern", "alpha_pattern"):
        f = known_field(site, name)
        if f is not None and f.value is not None and not isinstance(f.value, dict):
            yield Finding(f.span, f"{f.describe()} must be a dict of {{module-name regex: value}}")
    for name in ("use_rslora", "use_dora", "fan_in_fan_out", "lora_bias", "use_qalora", "ensure_weight_tying"):
        f = known_field(site, name)
        if f is not None and not isinstance(f.value, bool):
            yield Finding(
                f.span,
                f"{f.describe()} should be True or False; PEFT only tests its truth, so {f.value!r} means"
                f" {bool(f.value)}",
            )


_SUB_CONFIGS = {
    "velora_config": "VeloraConfig",
    "kasa_config": "KasaConfig",
    "eva_config": "EvaConfig",
    "corda_config": "CordaConfig",
    "lora_ga_config": "LoraGAConfig",
    "arrow_config": "ArrowConfig",
    "use_bdlora": "BdLoraConfig",
    "monteclora_config": "MontecloraConfig",
}


@check("construction_warning")
def construction_warning(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """The warnings LoraConfig.__post_init__ itself emits (peft/tuners/lora/config.py), raised here
    before anything runs: each marks a setting that will not do what it seems to."""
    tokens = site.get("alora_invocation_tokens")
    task, task_known = effective(site, "task_type")
    if tokens is not None and tokens.known and tokens.value is not None and task_known and task != "CAUSAL_LM":
        yield Finding(
            tokens.key_span or tokens.span,
            f"aLoRA (alora_invocation_tokens) is only supported for task_type='CAUSAL_LM', not {task!r}:"
            " PEFT warns and the activated-LoRA behaviour is not applied as intended",
        )
    init, init_known = effective(site, "init_lora_weights")
    rslora, rslora_known = effective(site, "use_rslora")
    patterns = _set_value(site, "rank_pattern") or _set_value(site, "alpha_pattern")
    if init_known and rslora_known and rslora and patterns and isinstance(init, str) and (
        init.lower().startswith("pissa") or init.lower() in ("olora", "corda", "lora_ga")
    ):
        yield Finding(
            site.span_of("init_lora_weights"),
            f"init_lora_weights={init!r} with use_rslora and rank_pattern/alpha_pattern: the modified base weights"
            " cannot be restored with save_pretrained(path_initial_model_for_weight_conversion=...); drop rsLoRA"
            " or the patterns if you need the plain-LoRA conversion",
        )


@check("alpha_not_positive")
def alpha_not_positive(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """Scaling is lora_alpha / r (peft/tuners/lora/layer.py: update_layer): alpha 0 makes the adapter
    a permanent no-op, a negative alpha flips the update's sign. PEFT accepts both silently."""
    f = known_field(site, "lora_alpha")
    if f is None:
        return
    alpha = number(f.value)
    if f.value is None:
        r = known_field(site, "r")
        if r is not None and r.value is None and r.provenance == f.provenance and not f.written_here:
            return  # `r=args.r, lora_alpha=args.r` with --r missing: one mistake, which LORA002 reports
        if _misspelt(site, "lora_alpha"):
            return  # axolotl's lora_alpah: LORA001 reports the one mistake
        yield Finding(f.span, "lora_alpha=None: PEFT computes lora_alpha / r and raises TypeError at injection")
    elif alpha is not None and alpha <= 0:
        effect = "the adapter output is multiplied by 0 and never changes the model" if alpha == 0 else (
            "the update is applied with its sign flipped"
        )
        yield Finding(f.span, f"{f.describe()}: {effect}")
    patterns = known_field(site, "alpha_pattern")
    if patterns is not None and isinstance(patterns.value, dict):
        for key, value in patterns.value.items():
            a = number(value)
            if a is not None and a <= 0:
                yield Finding(patterns.span, f"alpha_pattern[{key!r}]={fmt(value)} disables or inverts those layers' updates")


@check("sub_config_values")
def sub_config_values(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """Value checks of the variant configs (peft/tuners/lora/config.py: EvaConfig, VeloraConfig,
    KasaConfig, ArrowConfig, MontecloraConfig __post_init__), which raise ValueError."""
    rules: dict[str, list[tuple[str, Any, str]]] = {
        "eva_config": [("rho", lambda v: v >= 1.0, "rho must be >= 1.0"), ("tau", lambda v: 0 <= v <= 1, "tau must be between 0 and 1")],
        "velora_config": [("num_groups", lambda v: v > 0, "num_groups must be positive"), ("scale", lambda v: v > 0, "scale must be positive")],
        "kasa_config": [("beta", lambda v: v >= 0, "beta must be non-negative"), ("gamma", lambda v: v >= 0, "gamma must be non-negative")],
        "arrow_config": [("top_k", lambda v: v > 0, "top_k must be positive"), ("router_temperature", lambda v: v > 0, "router_temperature must be > 0")],
        "monteclora_config": [
            ("num_samples", lambda v: v > 0, "num_samples must be positive"),
            ("dirichlet_prior", lambda v: v > 0, "dirichlet_prior must be positive"),
            ("buffer_size", lambda v: v > 0, "buffer_size must be positive"),
        ],
    }
    for config_name, constraints in rules.items():
        f = known_field(site, config_name)
        if f is None or not isinstance(f.value, dict):
            continue
        for key, ok, text in constraints:
            value = number(f.value.get(key))
            if value is not None and not ok(value):
                yield Finding(f.span, f"{config_name}: {key}={fmt(value)}: {text} (PEFT raises ValueError)")
