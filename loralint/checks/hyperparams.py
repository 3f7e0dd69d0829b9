"""LORA1xx: hyper-parameters that PEFT accepts but that waste a run."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Iterable

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import (
    append_argument,
    effective,
    fmt,
    known_field,
    nice_alpha,
    number,
    replace_value,
)
from loralint.datasets import dropout_in_play
from loralint.lazy_re import lazy
from loralint.limits import AnalysisLimit, Budget
from loralint.safe_regex import PATTERN_KEY, Matcher, Prepared, Profile, Refused
from loralint.sites import ConfigSite, Fix


def scaling_of(alpha: float, r: float, rslora: bool) -> float:
    """peft/tuners/lora/layer.py: LoraLayer.update_layer — alpha / sqrt(r) with rsLoRA, else alpha / r."""
    return alpha / math.sqrt(r) if rslora else alpha / r


def rslora_would_fix(r: float, alpha: float, rslora: bool, low: float, high: float, min_rank: int) -> bool:
    """High rank, lora_alpha below r and no rsLoRA, where turning rsLoRA on with this same alpha lands the
    scaling in [low, high] (the QLoRA recipe r=64, alpha=16: 0.25 becomes 2). That one-flag advice is
    LORA102's; LORA101 stays silent, so a config never gets two different alphas recommended."""
    return not rslora and r >= min_rank and alpha < r and low <= alpha / math.sqrt(r) <= high


@check("alpha_scaling")
def alpha_scaling(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    low, high = float(ctx.params.get("min", 0.5)), float(ctx.params.get("max", 4.0))
    min_rank = int(ctx.params.get("high_rank", 64))
    r, r_known = effective(site, "r")
    alpha, alpha_known = effective(site, "lora_alpha")
    rslora, rslora_known = effective(site, "use_rslora")
    if not (r_known and alpha_known and rslora_known):
        return
    r, alpha = number(r), number(alpha)
    if r is None or alpha is None or r <= 0 or alpha <= 0:
        return  # invalid values are LORA002 / LORA012's to report
    rslora = bool(rslora)
    formula = "lora_alpha/sqrt(r)" if rslora else "lora_alpha/r"
    scaling = scaling_of(alpha, r, rslora)
    if not low <= scaling <= high and not rslora_would_fix(r, alpha, rslora, low, high, min_rank):
        unit = math.sqrt(r) if rslora else r
        one, two = nice_alpha(unit), nice_alpha(2 * unit)
        direction = f"scaled down {1 / scaling:.3g}x" if scaling < 1 else f"scaled up {scaling:.3g}x"
        parts = [_short(site, "lora_alpha", "alpha"), _short(site, "r", "r")]
        if rslora:
            parts.append("use_rslora=True")
        message = (
            f"{formula} = {fmt(scaling)} ({', '.join(parts)}): updates are {direction}"
            f" (outside [{fmt(low)}, {fmt(high)}]); use lora_alpha={fmt(one)} for scaling 1 or {fmt(two)} for 2"
        )
        target = one if scaling < 1 else two
        description = f"Set lora_alpha={fmt(target)} (scaling {1 if target == one else 2})"
        fix: Fix | None = replace_value(site, "lora_alpha", target, description, "unsafe")
        if fix is None and not site.is_set("lora_alpha"):
            fix = append_argument(site, "lora_alpha", target, description, "unsafe")
        span = site.span_of("lora_alpha") if site.is_set("lora_alpha") else site.span_of("r")
        yield Finding(span, message, fix=fix)
    # Per-layer overrides: rank_pattern / alpha_pattern feed the same formula (research §3.7).
    ranks = known_field(site, "rank_pattern")
    alphas = known_field(site, "alpha_pattern")
    rank_map = ranks.value if ranks is not None and isinstance(ranks.value, dict) else {}
    alpha_map = alphas.value if alphas is not None and isinstance(alphas.value, dict) else {}
    for key in dict.fromkeys([*rank_map, *alpha_map]):
        layer_r = number(rank_map.get(key, r))
        layer_alpha = number(alpha_map.get(key, alpha))
        if layer_r is None or layer_alpha is None or layer_r <= 0 or layer_alpha <= 0:
            continue
        s = scaling_of(layer_alpha, layer_r, rslora)
        if not low <= s <= high:
            where = ranks if key in rank_map else alphas
            assert where is not None
            missing = " (rank_pattern sets r but alpha_pattern has no matching key)" if key not in alpha_map else ""
            yield Finding(
                where.span,
                f"layers matching {key!r}: {formula} = {fmt(s)} (alpha={fmt(layer_alpha)}, r={fmt(layer_r)}){missing};"
                f" outside [{fmt(low)}, {fmt(high)}]",
            )


def _short(site: ConfigSite, name: str, label: str) -> str:
    """`alpha=16` for a literal, `alpha=16 (default of --lora_alpha)` otherwise."""
    f = site.get(name)
    if f is not None and f.written_here:
        return f"{label}={fmt(f.value)}"
    return f"{label}={site.describe(name).split('=', 1)[1]}"


@check("rslora_high_rank")
def rslora_high_rank(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """Only where the update really shrinks (lora_alpha below r at a high rank), and only where LORA101
    does not already speak for the same config (see rslora_would_fix)."""
    threshold = int(ctx.params.get("min_rank", 64))
    low, high = float(ctx.params.get("min", 0.5)), float(ctx.params.get("max", 4.0))
    r, r_known = effective(site, "r")
    alpha, alpha_known = effective(site, "lora_alpha")
    rslora, rslora_known = effective(site, "use_rslora")
    r = number(r) if r_known else None
    alpha = number(alpha) if alpha_known else None
    if r is None or alpha is None or not rslora_known or rslora or r < threshold or alpha <= 0 or alpha >= r:
        return
    scaling = alpha / r
    keeps_alpha = rslora_would_fix(r, alpha, False, low, high, threshold)
    if not keeps_alpha and not low <= scaling <= high:
        return  # LORA101 reports this scaling and its fix
    rs = alpha / math.sqrt(r)
    if keeps_alpha:
        advice = f"set use_rslora=True, which keeps lora_alpha={fmt(alpha)} at a scaling of lora_alpha/sqrt(r) = {fmt(rs)}"
    else:
        advice = (
            f"set use_rslora=True with lora_alpha≈{nice_alpha(math.sqrt(r))}–{nice_alpha(2 * math.sqrt(r))}"
            " (scaling 1–2)"
        )
    fix = None
    if keeps_alpha:
        fix = replace_value(site, "use_rslora", True, "Set use_rslora=True", "unsafe") if site.is_set("use_rslora") else (
            append_argument(site, "use_rslora", True, "Set use_rslora=True", "unsafe")
        )
    yield Finding(
        site.span_of("r"),
        f"{site.describe('r')} without use_rslora and {_short(site, 'lora_alpha', 'lora_alpha')}: lora_alpha/r ="
        f" {fmt(scaling)} scales the update down {1 / scaling:.3g}x, and with lora_alpha/r the update shrinks as"
        f" the rank grows, so a high rank learns no better than a low one (rsLoRA, arXiv:2312.03732); {advice}",
        fix=fix,
    )


@check("dropout_large_dataset")
def dropout_large_dataset(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    threshold = int(ctx.params.get("min_examples", 100_000))
    size, source = ctx.dataset_size, ctx.dataset_size_source
    if size is None and site.hints.dataset_size is not None and isinstance(site.hints.dataset_size.value, int):
        size, source = site.hints.dataset_size.value, site.hints.dataset_size.provenance
    if size is None or size < threshold or dropout_in_play(site) is None:
        return
    description = "Set lora_dropout=0"
    fix = replace_value(site, "lora_dropout", 0.0, description, "unsafe")
    yield Finding(
        site.span_of("lora_dropout"),
        f"{site.describe('lora_dropout')} with {size:,} training examples ({source}): with this much data a LoRA"
        f" adapter rarely over-fits, so dropout mostly slows learning; use lora_dropout=0",
        fix=fix,
    )


@check("bias_trained")
def bias_trained(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    f = known_field(site, "bias")
    if f is None or f.value not in ("all", "lora_only"):
        return
    scope = "every bias in the model" if f.value == "all" else "the biases of the adapted layers"
    advice = getattr(site.model, "advice", None) if site.model is not None and not site.model.guessed else None
    result = getattr(advice, "result", None)
    if result is not None and result.ok and result.exact and result.bias_params == 0:
        return  # the resolved model has no such biases (Llama, Mistral, ...): nothing extra trains
    counted = f" ({result.bias_params:,} parameters here)" if result is not None and result.bias_params else ""
    unsloth = ", and Unsloth leaves its fast path" if site.origin.startswith("unsloth") else ""
    yield Finding(
        f.span,
        f"{f.describe()} trains {scope}{counted}, which change the base model: disabling or unmerging the adapter no"
        f" longer restores it, and only one adapter per model may train biases{unsloth}; use bias='none'",
        fix=replace_value(site, "bias", "none", "Set bias='none'", "unsafe"),
    )


_TASK_FROM_CLASS = (
    ("ForSequenceClassification", "SEQ_CLS"),
    ("ForTokenClassification", "TOKEN_CLS"),
    ("ForQuestionAnswering", "QUESTION_ANS"),
    ("ForSeq2SeqLM", "SEQ_2_SEQ_LM"),
    ("ForCausalLM", "CAUSAL_LM"),
    ("LMHeadModel", "CAUSAL_LM"),
)
_SEQ2SEQ_FAMILIES = ("T5", "MT5", "UMT5", "LongT5", "Bart", "MBart", "Pegasus", "Marian", "Blenderbot")


def task_type_for_class(model_class: str | None) -> str | None:
    if not model_class:
        return None
    if model_class.endswith("ForConditionalGeneration") and model_class.startswith(_SEQ2SEQ_FAMILIES):
        return "SEQ_2_SEQ_LM"
    for suffix, task in _TASK_FROM_CLASS:
        if suffix in model_class:
            return task
    if model_class == "AutoModel":
        return "FEATURE_EXTRACTION"
    return None


# The heads PeftModelFor<task> adds to modules_to_save (peft/peft_model.py: PeftModelForSequenceClassification
# and PeftModelForTokenClassification add "classifier", "score"; PeftModelForQuestionAnswering "qa_outputs").
_HEADS = {"SEQ_CLS": ("classifier", "score"), "TOKEN_CLS": ("classifier", "score"), "QUESTION_ANS": ("qa_outputs",)}


@check("missing_task_type")
def missing_task_type(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/mapping_func.py: get_peft_model picks PeftModelFor<Task> from task_type; without it the
    model is a plain PeftModel, and for classification PEFT does not add the head to modules_to_save
    (peft_model.py: PeftModelForSequenceClassification). Only where PEFT makes that choice
    (get_peft_model, a TRL trainer's peft_config): add_adapter, inject_adapter_in_model and a directly
    built PeftModelFor*(...) never read task_type, and diffusers models or the script's own nn.Module
    have no task wrapper to miss."""
    if not site.hints.applied or site.is_set("task_type") or "task_type" in site.defaults or site.opaque:
        return
    if not site.hints.task_chosen or site.hints.model_library in ("diffusers", "custom"):
        return
    task = task_type_for_class(site.hints.model_class)
    if task is None:
        # What the model is cannot be read here: say what is certain, at a lower severity.
        yield Finding(
            site.hints.applied_span or site.span,
            "task_type is not set on a config that get_peft_model applies: it returns a plain PeftModel, not the"
            " PeftModelFor* class of the model's task; if the model has a task head (classification, causal LM),"
            " set task_type to match it",
            demote=1,
        )
        return
    if task in _HEADS:
        saved, saved_known = effective(site, "modules_to_save")
        names = [saved] if isinstance(saved, str) else saved if isinstance(saved, (list, tuple)) else []
        if saved_known and any(isinstance(n, str) and n.rsplit(".", 1)[-1] in _HEADS[task] for n in names):
            return  # the head is trained and saved already (TRL's RewardTrainer docs: modules_to_save=["score"])
        effect = (
            "PEFT does not know a classification head is there: the new, randomly initialised head is neither"
            " trained nor saved, so the reloaded model predicts at random"
        )
    else:
        effect = "get_peft_model returns a plain PeftModel instead of the task's PeftModelFor* class"
    message = f"task_type is not set on a config that is applied to a model: {effect}"
    message += f" (it is loaded with {site.hints.model_class}); set task_type={task!r}"
    # A language model's task class trains the same adapter (safe); a classification task type also
    # makes PEFT train and save the new head, which changes training (unsafe).
    heads = task in ("SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS")
    fix = append_argument(site, "task_type", task, f"Add task_type={task!r}", "unsafe" if heads else "safe")
    yield Finding(site.hints.applied_span or site.span, message, fix=fix)


@check("unsloth_dropout")
def unsloth_dropout(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    if not site.origin.startswith("unsloth"):
        return
    f = known_field(site, "lora_dropout")
    if f is None or number(f.value) in (None, 0):
        return
    yield Finding(
        f.span,
        f"{f.describe()}: Unsloth's fused LoRA kernels run only with lora_dropout=0 (and bias='none'); with dropout"
        " it patches the other layers but not the LoRA matrices, a slowdown. Use lora_dropout=0",
        # Unsafe: dropout=0 changes how the adapter trains (no regularisation), not just how fast.
        fix=replace_value(site, "lora_dropout", 0, "Set lora_dropout=0", "unsafe"),
    )


_PLAIN_NAME = lazy(r"^[\w.]+$")
SHADOW_KEYS = 300  # keys compared with each other for LORA109: 44,850 pairs at most
_SHADOW_BUDGET = 500_000_000  # units of safe_regex work (about half a second at worst)


@lru_cache(maxsize=32)
def shadowing(name: str, keys: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """((later, earlier) for each plain key an earlier key shadows, the bounds reached as LORA906 messages).

    The keys are untrusted regexes matched against other keys (also untrusted): through safe_regex,
    the first SHADOW_KEYS keys only, on one budget."""
    limits: list[str] = []
    if len(keys) > SHADOW_KEYS:
        limits.append(f"{name} has {len(keys):,} keys: only the first {SHADOW_KEYS} are compared with each other for"
                      " shadowing (LORA109)")
        keys = keys[:SHADOW_KEYS]
    plain = [k for k in keys if _PLAIN_NAME.match(k)]
    if not plain:
        return (), tuple(limits)
    rx = Matcher(Profile(plain), Budget(_SHADOW_BUDGET, f"comparing the {name} keys for shadowing (LORA109)"))
    prepared: dict[str, Prepared | None] = {}
    found: list[tuple[str, str]] = []
    try:
        for j, later in enumerate(keys):
            if not _PLAIN_NAME.match(later):
                continue
            for earlier in keys[:j]:
                if earlier not in prepared:
                    try:
                        prepared[earlier] = rx.prepare(earlier, PATTERN_KEY, name)
                    except re.error:
                        prepared[earlier] = None  # LORA014
                    except Refused as exc:
                        prepared[earlier] = None
                        limits.append(f"{name}: {exc.message}; LORA109 did not compare it with the other keys")
                pattern = prepared[earlier]
                if pattern is not None and rx.match(pattern, later, name):
                    found.append((later, earlier))
                    break
    except AnalysisLimit as exc:
        limits.append(exc.message)
    return tuple(found), tuple(limits)


@check("pattern_shadowed")
def pattern_shadowed(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/utils/other.py: get_pattern_key returns the FIRST key, in dict order, whose regex
    `(.*\\.)?(key)$` matches the module name — not the most specific one."""
    for name in ("rank_pattern", "alpha_pattern"):
        f = known_field(site, name)
        if f is None or not isinstance(f.value, dict):
            continue
        pairs, _ = shadowing(name, tuple(k for k in f.value if isinstance(k, str)))
        for later, earlier in pairs:
            yield Finding(
                f.span,
                f"{name} key {later!r} never applies: the earlier key {earlier!r} also matches it, and PEFT"
                f" uses the first matching key in dict order; put {later!r} first",
            )
