"""LORA2xx: target modules against the base model's real architecture.

These run only when the base model resolved to a known architecture (loralint.resolve), never on a
guess from the name. The matching itself is PEFT's, mirrored in loralint.knowledge.targeting.
"""

from __future__ import annotations

import re
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any, Iterable

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import (
    append_argument,
    close_matches,
    effective,
    item_spans,
    known_field,
    replace_value,
)
from loralint.checks.targets import misread_string_target
from loralint.checks.vllm import NO_EMBEDDING_LORA
from loralint.limits import AnalysisLimit
from loralint.sites import ConfigSite

# What people write, and what the same layer is called in other families (for "did you mean").
_QKV = ("c_attn", "query_key_value", "qkv_proj", "Wqkv", "W_pack", "qkv", "in_proj")
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "q_proj": (*_QKV, "q", "query", "q_lin", "query_proj", "q_a_proj", "q_b_proj"),
    "k_proj": (*_QKV, "k", "key", "k_lin", "key_proj", "kv_a_proj_with_mqa", "kv_b_proj"),
    "v_proj": (*_QKV, "v", "value", "v_lin", "value_proj", "kv_a_proj_with_mqa", "kv_b_proj"),
    "o_proj": ("c_proj", "dense", "out_proj", "o", "out_lin", "wo"),
    "gate_proj": ("gate_up_proj", "c_fc", "dense_h_to_4h", "fc1", "fc_in", "wi", "wi_0", "w1", "lin1", "up_proj"),
    "up_proj": ("gate_up_proj", "c_fc", "dense_h_to_4h", "fc1", "fc_in", "wi", "wi_1", "w3", "lin1"),
    "down_proj": ("c_proj", "dense_4h_to_h", "fc2", "fc_out", "wo", "w2", "lin2"),
    "query": ("q_proj", "q", "query_proj", "q_lin"),
    "key": ("k_proj", "k", "key_proj", "k_lin"),
    "value": ("v_proj", "v", "value_proj", "v_lin"),
    "dense": ("o_proj", "out_proj", "c_proj"),
    "c_attn": ("q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value"),
    "query_key_value": ("q_proj", "k_proj", "v_proj", "qkv_proj", "c_attn", "Wqkv"),
    "qkv_proj": ("q_proj", "k_proj", "v_proj", "query_key_value", "c_attn", "Wqkv"),
    "w1": ("gate_proj", "fc1", "gate_up_proj"),
    "w2": ("down_proj", "fc2"),
    "w3": ("up_proj", "gate_up_proj"),
}
_ATTENTION = re.compile(r"att", re.I)
_MAMBA_TYPES = {"mamba", "mamba2", "falcon_mamba", "falcon_h1", "nemotron_h"}


def architecture_context(site: ConfigSite) -> tuple[Any, Any, Any] | None:
    """(resolution, ModelInfo, TargetingResult) when the architecture is known for sure."""
    resolution = site.model
    if resolution is None or resolution.guessed or resolution.info is None or resolution.advice is None:
        return None
    if resolution.info.unmodelled_nulls:  # module names not known for sure: no name-based finding
        return None
    if any(e.startswith("re.error") for e in resolution.advice.result.errors):
        return None  # PEFT stops at an invalid pattern before anything else: LORA014 / LORA209 say which
    return resolution, resolution.info, resolution.advice.result


_context = architecture_context


# Unsloth maps these onto gpt-oss's fused experts itself (unslothai/unsloth PR #6936), so on gpt-oss they are
# not the dead entries they would be under plain PEFT.
_UNSLOTH_GPT_OSS_EXPERTS = frozenset({"gate_proj", "up_proj", "down_proj"})


def _unsloth_maps_experts(site: ConfigSite, info) -> bool:
    """An Unsloth site on gpt-oss whose target list names an MLP projection: Unsloth adapts the experts."""
    if not site.origin.startswith("unsloth") or info.model_type != "gpt_oss":
        return False
    targets, _ = effective(site, "target_modules")
    return isinstance(targets, (list, tuple, set, frozenset)) and bool(_UNSLOTH_GPT_OSS_EXPERTS & set(targets))


def _peft_applied(site: ConfigSite) -> Any | None:
    """The advice --verify put on this site when real PEFT applied the configuration without an error
    (verify/report.py: VerifiedAdvice), else None. A static error that this run's PEFT contradicts is not
    reported: the real library is the reference."""
    advice = site.model.advice if site.model is not None else None
    return advice if getattr(advice, "counted_by", None) == "peft" else None


def _peft_reached(applied: Any, entry: str) -> bool:
    """Whether PEFT, in this --verify run, used a target_modules entry: it matched a module, or PEFT's own
    MoE conversion rewrote it into target_parameters that matched parameters."""
    names = getattr(applied, "targeted", None) or []
    if any(n == entry or n.endswith("." + entry) for n in names):
        return True
    return entry in (getattr(applied, "rewritten_targets", None) or ()) and bool(getattr(applied, "targeted_parameters", None))


def _model(resolution) -> str:
    info = resolution.info
    return f"{info.model_type} ({info.model_class}, from {resolution.origin})"


def _per_model(info, key: str, compute: Callable[[], Any]) -> Any:
    """`compute()` once per ModelInfo (kept in its memo of analyses): facts of the model alone, which checks ask
    for at every site. The value is shared: callers do not change it."""
    memo = getattr(info, "_analyses", None)
    if memo is None:
        return compute()
    key = f"checks:{key}"  # advice's keys are reprs of lists, targeting's start with "targeting:"
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _adaptable_names(info, layers_only: bool = False) -> dict[str, str]:
    """Leaf name → class of every module LoRA can wrap (first seen class), in model order."""
    return _per_model(info, f"adaptable:{layers_only}", lambda: _find_adaptable_names(info, layers_only))


def _find_adaptable_names(info, layers_only: bool) -> dict[str, str]:
    from loralint.knowledge.models import LORA_KINDS  # (loaded with the model already)

    names: dict[str, str] = {}
    supported = ("linear", "conv1d") if layers_only else LORA_KINDS  # (m.is_linear / m.lora_supported)
    for m in info.modules:
        if m.kind not in supported or (layers_only and m.layer_index is None):
            continue
        leaf = m.name.rsplit(".", 1)[-1]  # (m.leaf_name)
        if leaf not in names:
            names[leaf] = m.cls
    return names


def _has_list(info, limit: int = 12) -> str:
    """The linear layers of the transformer blocks, by class: what a target list usually names."""
    by_cls: dict[str, list[str]] = {}
    for name, cls in (_adaptable_names(info, layers_only=True) or _adaptable_names(info)).items():
        by_cls.setdefault(cls, []).append(name)
    parts = []
    shown = 0
    for cls, names in by_cls.items():
        take = names[: max(limit - shown, 0)]
        if not take:
            break
        shown += len(take)
        parts.append(f"{', '.join(take)} ({cls})")
    more = sum(len(v) for v in by_cls.values()) - shown
    return "; ".join(parts) + (f"; … {more} more" if more > 0 else "")


def suggestions(entry: str, info, names: dict[str, str] | None = None) -> list[str]:
    names = _adaptable_names(info) if names is None else names
    leaf = entry.rsplit(".", 1)[-1]
    # The same layer under this family's name first (q_proj → c_attn); spelling only as a fallback.
    picked = [s for s in _SYNONYMS.get(leaf, ()) if s in names]
    if not picked:
        picked = close_matches(leaf, names, n=3, cutoff=0.6)
    return picked[:2]


@check("unknown_target_module")
def unknown_target_module(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    targets, _ = effective(site, "target_modules")
    if isinstance(targets, str) and misread_string_target(targets) and re.fullmatch(r"[\w.]+(\s*,\s*[\w.]+)*\s*,?", targets.strip()):
        # "q_proj" or "q_proj,v_proj" as a string: LORA209 says how PEFT reads it; the names themselves are
        # checked here, as they would be in the list the user meant.
        entries = [n.strip() for n in targets.split(",") if n.strip()]
        unmatched = [n for n in entries if n not in _names_and_suffixes(info)]
    elif isinstance(targets, (list, tuple, set, frozenset)):
        unmatched = result.unmatched_target_entries
        if _matches_nothing(result) and not result.excluded:
            return  # one mistake, one finding: LORA202 reports the whole list and what each entry may mean
    else:
        return
    if not unmatched:
        return
    # Computed once, not per entry: a list of thousands of entries stays linear.
    known = _names_and_suffixes(info)
    has, adaptable, spans = _has_list(info), _adaptable_names(info), item_spans(site, "target_modules")
    others_match = any(result.entry_matches.values())
    applied = _peft_applied(site)
    for entry in unmatched:
        if not isinstance(entry, str) or entry.lower() == "all-linear" or re.search(r"[*+?|^$()\[\]\\{}]", entry):
            continue  # LORA210 explains regex syntax and "all-linear" in a list
        if applied is not None and _peft_reached(applied, entry):
            continue  # --verify: the real PEFT used this entry, whatever the knowledge base says
        if info.get(entry) is not None and info.get(entry).kind == "container":
            continue  # LORA214
        if entry in known:
            continue  # matched, but dropped by layers_to_transform / exclusion: LORA202/206 say why
        if entry in _UNSLOTH_GPT_OSS_EXPERTS and _unsloth_maps_experts(site, info):
            continue
        message = f"{entry!r} matches no module of {_model(resolution)}: {info.model_type} has {has}"
        span = spans.get(entry, site.span_of("target_modules"))
        meant = suggestions(entry, info, adaptable)
        if meant:
            message += f"; did you mean {' or '.join(meant)}?"
        if others_match:
            message += " (the other entries match, so PEFT will silently skip this one)"
        yield Finding(span, message)


def _names_and_suffixes(info) -> set[str]:
    """Every module name and every dotted suffix of one: the list entries that match something
    (`m.name == entry or m.name.endswith("." + entry)`), as one set lookup."""
    return _per_model(info, "names-and-suffixes", lambda: _find_names_and_suffixes(info))


def _find_names_and_suffixes(info) -> set[str]:
    from loralint.knowledge.targeting import dotted_suffixes  # here: a run with no known model never needs it

    out: set[str] = set()
    for m in info.modules:
        out.add(m.name)
        out.update(dotted_suffixes(m.name))
    return out


def _matches_nothing(result) -> bool:
    return not result.targeted and not result.targeted_parameters


@check("target_matches_nothing")
def target_matches_nothing(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    targets, _ = effective(site, "target_modules")
    nothing = not result.targeted and not result.targeted_parameters
    no_match_error = next((e for e in result.errors if e.startswith("NoMatchingPeftModuleError")), None)
    if isinstance(targets, str) and misread_string_target(targets):
        nothing = False  # LORA209 says why this string matches nothing
    if _peft_applied(site) is not None:
        nothing = False  # --verify: the real PEFT applied it without raising
    if _unsloth_maps_experts(site, info):
        nothing = False
    written = site.get("target_modules")
    if isinstance(targets, (list, tuple, set, frozenset)) and not targets and written is not None and not written.written_here:
        nothing = False  # an empty list computed by the script (a helper filling a set from named_modules()) is
        # more likely what the analysis could not follow than what PEFT will receive
    if nothing and (no_match_error or result.default_targets_used or targets is not None):
        if isinstance(targets, str) and targets.lower() != "all-linear":
            message = (
                f"target_modules={targets!r} matches no module of {_model(resolution)}: a string is a regex that must"
                f" match a full name such as {_example_name(info)!r}"
            )
        elif result.excluded and not result.unmatched_exclude_entries:
            message = f"every module targeted on {_model(resolution)} is excluded (exclude_modules / modules_to_save)"
        elif site.is_set("layers_to_transform") or site.is_set("layers_pattern"):
            message = (
                f"no targeted module of {_model(resolution)} survives layers_to_transform/layers_pattern"
                f" ({info.num_layers} layers in {info.layers_path or 'the layer list'})"
            )
        elif isinstance(targets, (list, tuple, set, frozenset)):
            message = f"{site.describe('target_modules')} matches no module of {_model(resolution)}: {info.model_type} has {_has_list(info)}"
            meant: dict[str, list[str]] = {}
            for entry in targets:
                if isinstance(entry, str):
                    for option in suggestions(entry, info)[:1]:
                        meant.setdefault(option, []).append(entry)
            if meant:
                message += "; did you mean " + ", ".join(f"{o} (for {', '.join(e)})" for o, e in meant.items()) + "?"
        else:
            message = f"{site.describe('target_modules')} matches no module of {_model(resolution)}"
        detail = no_match_error.split(": ", 1)[1] if no_match_error else "nothing would be trained"
        yield Finding(site.span_of("target_modules"), f"{message}; get_peft_model raises after loading: {detail}")
    f = known_field(site, "exclude_modules")
    for entry in result.unmatched_exclude_entries:
        where = f.span if f is not None else site.span
        yield Finding(
            where,
            f"exclude_modules entry {entry!r} excludes nothing on {_model(resolution)}: list entries match a full name"
            " or a dotted suffix (a regex string matches full names), so the modules it was meant to protect are adapted",
        )



def _item_span(site: ConfigSite, name: str, item: str):
    """The span of one entry of a list argument when the extractor recorded it, else the argument's."""
    f = site.get(name)
    if f is None:
        return site.span
    for value, span in f.items:
        if value == item:
            return span
    return f.span


def _example_name(info) -> str:
    for m in info.modules:
        if m.is_linear and m.layer_index is not None:
            return m.name
    return next((m.name for m in info.modules if m.is_linear), "")


@check("embedding_or_head_target")
def embedding_or_head_target(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    # Unsloth takes embed_tokens/lm_head out of target_modules and trains them in full as modules_to_save
    # (unsloth/models/llama.py, FastLlamaModel.get_peft_model): no embedding LoRA is built there.
    if site.origin.startswith("unsloth"):
        return
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    embeddings = [t for t in result.targeted if t.kind == "embedding"]
    heads = [t for t in result.targeted if info.output_layer and t.name == info.output_layer]
    tied = info.tied_word_embeddings
    for group, what in ((embeddings, "embedding"), (heads, "output layer")):
        if not group:
            continue
        names = sorted({t.folded for t in group})
        params = sum(t.lora_params for t in group)
        if what == "embedding":
            effect = (
                "PEFT wraps it in an embedding LoRA (lora_embedding_A/B): lora_dropout is ignored there and lora_bias"
                " is not allowed"
            )
        else:
            served = (" and vLLM will not serve LoRA on it" if info.model_type in NO_EMBEDDING_LORA
                      else "")  # vLLM serves lm_head LoRA where the model class lists it (Llama, Mistral)
            effect = (
                f"its adapter alone adds {params:,} parameters (r·(hidden+vocab)){served}"
                if result.trainable_params
                else f"it is a full vocabulary-wide projection{served}"
            )
        tied_note = ""
        if tied:
            tied_note = (
                "; the word embeddings are tied to the output layer (tie_word_embeddings), so merging changes both"
                " — set ensure_weight_tying=True or leave it out"
            )
        yield Finding(
            site.span_of("target_modules"),
            f"{', '.join(names)} is the {what} of {_model(resolution)}: {effect}{tied_note}. To train new tokens use"
            " trainable_token_indices (or modules_to_save)",
        )


# Where the user can set fan_in_fan_out, and how: LoraConfig's argument (Unsloth's get_peft_model passes it on),
# axolotl's lora_fan_in_fan_out (src/axolotl/loaders/adapter.py), a saved adapter_config.json. TRL's ModelConfig
# and CLI config (trl/trainer/utils.py get_peft_config), LLaMA-Factory (model/adapter.py) and Unsloth's CLI build
# the LoraConfig without it: PEFT then flips it itself (tuners/lora/model.py _create_new_module warns "Setting
# fan_in_fan_out to True"), which the user can neither avoid nor needs to, so the rule stays quiet there.
_FAN_IN_FAN_OUT_SETTING = {
    "peft.LoraConfig": "set fan_in_fan_out=True",
    "unsloth.get_peft_model": "set fan_in_fan_out=True",
    "axolotl": "set lora_fan_in_fan_out: true",
    "adapter_config": "set fan_in_fan_out=True",
}


@check("conv1d_fan_in_fan_out")
def conv1d_fan_in_fan_out(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    setting = _FAN_IN_FAN_OUT_SETTING.get(site.origin)
    if setting is None:
        return
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    fan, known = effective(site, "fan_in_fan_out")
    if not known or not result.targeted:
        return
    conv1d = sorted({t.folded.rsplit(".", 1)[-1] for t in result.targeted if t.kind == "conv1d"})
    if conv1d and not fan:
        fix = replace_value(site, "fan_in_fan_out", True, "Set fan_in_fan_out=True") if site.is_set("fan_in_fan_out") else (
            append_argument(site, "fan_in_fan_out", True, "Add fan_in_fan_out=True")
        )
        yield Finding(
            site.span_of("fan_in_fan_out") if site.is_set("fan_in_fan_out") else site.span_of("target_modules"),
            f"{', '.join(conv1d)} on {_model(resolution)} {'is a transformers Conv1D layer' if len(conv1d) == 1 else 'are transformers Conv1D layers'}"
            " (weights stored transposed) but fan_in_fan_out is False: PEFT flips it on the shared config with a"
            f" warning; {setting}",
            fix=fix,
        )
    elif fan and not conv1d:
        yield Finding(
            site.span_of("fan_in_fan_out"),
            f"fan_in_fan_out=True but every target on {_model(resolution)} is an nn.Linear: PEFT resets it to False with"
            " a warning; remove it",
            fix=replace_value(site, "fan_in_fan_out", False, "Set fan_in_fan_out=False"),
        )


@check("attention_only_targets")
def attention_only_targets(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    # The sites that share an analysis share this test: once per result (the memo keeps it, so its id stays its own).
    memo = _per_model(info, "attention-only", dict)
    known = memo.get(id(result))
    if known is None or known[0] is not result:
        in_layers = [t for t in result.targeted if t.layer_index is not None]
        only = bool(in_layers) and all(_ATTENTION.search(folded) for folded in {t.folded for t in in_layers})
        known = memo[id(result)] = (result, in_layers if only else None)
    targeted = known[1]
    if targeted is None:
        return
    if any(not _ATTENTION.search(p.name) for p in result.targeted_parameters):
        return  # MLP experts adapted as parameters (target_parameters, or PEFT's MoE conversion)
    mlp = _per_model(info, "layer-linears-outside-attention", lambda: [
        m for m in info.modules if m.kind in ("linear", "conv1d") and m.layer_index is not None  # (m.is_linear)
        and not _ATTENTION.search(m.folded)])
    if not mlp:
        return
    from loralint.advice import advise

    try:
        wider = advise(site, info, target_modules="all-linear", layers_to_transform=None, layers_pattern=None)
    except AnalysisLimit:
        return  # its own patterns were matched already; only a bound of loralint's can stop this one
    current = sorted({t.folded.rsplit(".", 1)[-1] for t in targeted})
    extra = sorted(set(_adaptable_names(info, layers_only=True)) - set(current))
    if wider is None or not extra:
        return
    suggestion = "\"all-linear\""
    if _in_a_tower(wider.result.targeted) and not _in_a_tower(targeted):
        # A multimodal model: "all-linear" also adapts the vision/audio tower (what LORA211 warns about), so the
        # advice names the language model's MLP projections instead, counted only if they stay out of the tower.
        names = sorted({m.leaf_name for m in mlp if not TOWER.search(m.name)} - set(current))
        if not names:
            return
        try:
            wider = advise(site, info, target_modules=[*current, *names], layers_to_transform=None, layers_pattern=None)
        except AnalysisLimit:
            return
        if wider is None or _in_a_tower(wider.result.targeted):
            yield Finding(site.span_of("target_modules"), (
                f"only attention projections are adapted ({', '.join(current)}: {len(result.targeted)} modules) on"
                f" {_model(resolution)}, whose language model also has MLP projections ({', '.join(names[:8])}); these"
                " names, like \"all-linear\", also reach the vision/audio tower, so add them with a regex limited to"
                " the language model's layers"))
            return
        extra, suggestion = names, f"target_modules={[*current, *names]!r} (the language model's MLP too)"
    added = len(wider.result.targeted) - len(result.targeted)
    message = (
        f"only attention projections are adapted ({', '.join(current)}: {len(result.targeted)} modules) on"
        f" {_model(resolution)}, which also has MLP projections; {suggestion} would add {added} modules"
        f" ({', '.join(extra[:8])})"
    )
    if wider.trainable_params and resolution.advice.trainable_params:
        message += (
            f" and take trainable parameters from {resolution.advice.trainable_params:,} to {wider.trainable_params:,}"
        )
    yield Finding(site.span_of("target_modules"), message)


@check("layers_out_of_range")
def layers_out_of_range(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    f = known_field(site, "layers_to_transform")
    if f is not None and info.num_layers:
        indices = f.value if isinstance(f.value, (list, tuple)) else [f.value]
        bad = [i for i in indices if isinstance(i, int) and not isinstance(i, bool) and not 0 <= i < info.num_layers]
        if bad:
            layers = f"the {info.num_layers} layers (0–{info.num_layers - 1}) of {_model(resolution)}"
            if len(bad) == len(indices):
                if _peft_applied(site) is not None:
                    return  # --verify: the real PEFT applied it, so something did match
                message = (f"layers_to_transform: none of {_short_list(bad)} is within {layers}; nothing matches and"
                           " get_peft_model raises after loading")
            else:
                verb, pronoun = ("is", "it") if len(bad) == 1 else ("are", "them")
                message = f"layers_to_transform: {_short_list(bad)} {verb} outside {layers}; PEFT silently skips {pronoun}"
            yield Finding(f.span, message)
    p = known_field(site, "layers_pattern")
    if p is not None and info.layers_path:
        patterns = p.value if isinstance(p.value, list) else [p.value]
        real = info.layers_path.rsplit(".", 1)[-1]
        if all(isinstance(x, str) for x in patterns) and real not in patterns:
            yield Finding(
                p.span,
                f"layers_pattern={p.value!r}, but {_model(resolution)} keeps its layers in {info.layers_path!r}: use"
                f" layers_pattern={real!r}",
                fix=replace_value(site, "layers_pattern", real, f"Set layers_pattern={real!r}", "unsafe"),
            )


def _short_list(values: list[int]) -> str:
    values = sorted(values)
    if len(values) > 4 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}–{values[-1]}"
    return ", ".join(str(v) for v in values)


@check("pattern_key_matches_nothing")
def pattern_key_matches_nothing(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    for name, keys in (("rank_pattern", result.unmatched_rank_pattern_keys), ("alpha_pattern", result.unmatched_alpha_pattern_keys)):
        written, _ = effective(site, name)
        for key in keys:
            if not isinstance(written, dict) or key not in written:
                continue  # a key PEFT's own MoE conversion added, not the user's
            hint = ""
            if key.startswith("base_model.model."):
                hint = "; keys are relative to the model passed to get_peft_model, without 'base_model.model.'"
            yield Finding(
                site.span_of(name),
                f"{name} key {key!r} matches none of the {len(result.targeted)} targeted modules of"
                f" {_model(resolution)}: it is ignored and those layers keep the global value{hint}",
            )


@check("target_none_default")
def target_none_default(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None or not found[2].default_targets_used or not found[2].targeted:
        return
    resolution, info, result = found
    names = sorted({t.folded.rsplit(".", 1)[-1] for t in result.targeted})
    yield Finding(
        site.span,
        f"target_modules is not set: PEFT's default for {info.model_type} adapts only {', '.join(names)}"
        f" ({len(result.targeted)} modules); name the targets, or use \"all-linear\" for every linear layer",
    )


@check("no_default_targets")
def no_default_targets(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    if not any("Please specify `target_modules`" in e for e in result.errors) or _peft_applied(site) is not None:
        return  # (with --verify, the real PEFT applied it without raising)
    yield Finding(
        site.span,
        f"target_modules is not set and PEFT has no default for model_type {info.model_type!r} ({_model(resolution)}):"
        " get_peft_model raises 'Please specify `target_modules` or `target_parameters`' after loading the model;"
        " set target_modules (e.g. \"all-linear\")",
    )


@check("rank_exceeds_layer")
def rank_exceeds_layer(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None or not site.model.advice.counts_known:
        return
    resolution, info, result = found
    # The sites that share a model and their fields share one analysis: its offenders are worked out once (the
    # memo keeps the result, so its id stays its own).
    memo = _per_model(info, "rank-exceeds-layer", dict)
    known = memo.get(id(result))
    if known is None or known[0] is not result:
        known = memo[id(result)] = (result, _rank_offenders(info, result))
    for folded, (count, low, r) in known[1].items():
        yield Finding(
            site.span_of("r"),
            f"r={r} is not below min(in, out)={low} of {folded} ({count}× on {_model(resolution)}): the update is not"
            " low-rank there, the adapter is as large as the layer, and PiSSA/MiCA/KaSA truncate or refuse it",
        )


def _rank_offenders(info, result) -> dict[str, tuple[int, int, Any]]:
    """Folded name -> (targeted layers, min(in, out), r of the last one) of the layers whose rank is not below
    min(in, out)."""
    offenders: Counter[str] = Counter()
    smallest: dict[str, tuple[int, Any]] = {}
    for t in result.targeted:
        if t.kind not in ("linear", "conv1d") or not isinstance(t.r, int) or not t.in_features or not t.out_features:
            continue
        if t.name in (info.seq_cls_head, info.output_layer):
            continue  # a head is a mistake of its own (LORA203/LORA211), whatever the rank
        low = min(t.in_features, t.out_features)
        if t.r >= low:
            offenders[t.folded] += 1
            smallest[t.folded] = (low, t.r)
    return {folded: (count, *smallest[folded]) for folded, count in offenders.items()}


@check("target_is_container")
def target_is_container(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None or not found[2].containers_hit or _peft_applied(site) is not None:
        return  # (with --verify, the real PEFT applied it without raising)
    resolution, info, result = found
    hit = sorted({info.get(n).folded if info.get(n) else n for n in result.containers_hit})
    classes = sorted({info.get(n).cls for n in result.containers_hit if info.get(n)})
    children = sorted(
        {m.leaf_name for m in info.modules if m.is_linear and any(m.name.startswith(n + ".") for n in result.containers_hit)}
    )
    yield Finding(
        site.span_of("target_modules"),
        f"{', '.join(hit[:3])} on {_model(resolution)} {'is a' if len(hit) == 1 else 'are'} {', '.join(classes)}"
        f" container{'s' if len(hit) > 1 else ''}, not a layer LoRA can wrap: get_peft_model raises 'Target module"
        f" … is not supported'"
        + (f"; target the layers inside: {', '.join(children)}" if children else ""),
    )


@check("moe_experts")
def moe_experts(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """transformers 5 fuses routed experts into 3-D parameters; list targets reach them only where
    PEFT's v4→v5 conversion applies (peft/utils/transformers_weight_conversion.py)."""
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    if _unsloth_maps_experts(site, info):
        return
    fused = _per_model(info, "fused-experts", lambda: [  # not e.g. SigLIP's 3-D `probe`
        p for p in info.fused_expert_params if ".experts." in p.name])
    for error in result.errors:
        if "fused into" in error or "without also targeting" in error:
            if _peft_applied(site) is None:  # --verify: the real PEFT applied it without raising
                yield Finding(site.span_of("target_modules"), f"on {_model(resolution)}: {error.split(': ', 1)[-1]}")
            return
    if result.moe_left_frozen:
        yield Finding(site.span_of("target_modules"), _conversion_message(resolution, info, result))
        return
    if not fused or result.targeted_parameters:
        return
    names = sorted({p.name.rsplit(".", 1)[-1] for p in fused})
    message = (
        f"{_model(resolution)} keeps its routed experts as fused 3-D parameters ({', '.join(names)}) in transformers 5:"
        " target_modules cannot reach them, so only attention and shared layers are adapted; add"
        f" target_parameters={['mlp.experts.' + n for n in names]!r} (with lora_dropout=0)"
    )
    old = _expert_names(info)
    if old:  # PEFT converts the transformers-4 expert names on this model type
        message += f", or name the experts as in transformers 4 ({', '.join(old)}): PEFT converts those"
    yield Finding(site.span_of("target_modules"), message)


def _expert_names(info) -> list[str]:
    """The transformers-4 expert names PEFT's MoE conversion rewrites for this model type (router excluded)."""
    from loralint.knowledge.models import peft_facts

    if not info.moe_conversion:
        return []
    mapping = peft_facts().get("moe_target_module_mapping", {}).get(info.moe_conversion) or {}
    return [old for old, new in mapping.items() if new != "gate.weight"]


def _layers(indices: Iterable[int | None]) -> str:
    found = sorted({i for i in indices if i is not None})
    if not found:
        return ""
    return f"layer {found[0]}" if len(found) == 1 else f"layers {_short_list(found)}"


def _conversion_message(resolution, info, result) -> str:
    """Which layers PEFT's MoE conversion reaches and which nn.Linear layers of the converted names it leaves
    frozen (peft/utils/transformers_weight_conversion.py: _convert_peft_config_moe drops the converted names
    from target_modules; the new target_parameters match only the routed experts' fused tensors)."""
    converted = sorted(e for e, new in result.moe_converted_entries.items() if new != "gate.weight")
    experts = [p for p in result.targeted_parameters if ".experts." in p.name]
    reached = []
    for folded in dict.fromkeys(f"{info.get(p.module).folded if info.get(p.module) else p.module}."
                                f"{p.name.rsplit('.', 1)[-1]}" for p in experts):
        leaf = folded.rsplit(".", 1)[-1]
        text = folded.split("}.", 1)[-1]
        if leaf in result.moe_fused:
            olds, r, alpha = result.moe_fused[leaf]
            times = "doubles" if len(olds) == 2 else f"multiplies by {len(olds)}"
            text += f" (r={r}, lora_alpha={alpha}: {' and '.join(olds)} are fused into it, so PEFT {times} both)"
        reached.append(text)
    layers = _layers(info.get(p.module).layer_index for p in experts if info.get(p.module))
    groups: dict[str, tuple[set[str], list[int | None]]] = {}
    for name in result.moe_left_frozen:
        m = info.get(name)
        if m is None:
            continue
        parent = m.folded.rpartition(".")[0]
        leaves, idx = groups.setdefault(parent, (set(), []))
        leaves.add(m.leaf_name)
        idx.append(m.layer_index)
    frozen = []
    for parent, (leaves, idx) in groups.items():
        what = "the shared experts" if "shared" in parent.rsplit(".", 1)[-1] else "the dense MLP"
        why = ""
        if what == "the dense MLP":  # the config field that makes these layers dense, when there is one
            for key, value in _dense_fields(info.config):
                why = f", {key}={value}"
                break
        where = _layers(idx)
        frozen.append(f"{what} of {where or parent} ({parent.split('}.', 1)[-1]}.{{{','.join(sorted(leaves))}}}{why})")
    message = (
        f"PEFT's MoE conversion for transformers 5 turns {', '.join(converted)} into target_parameters on"
        f" {_model(resolution)}: they reach the routed experts"
        + (f" of {layers}" if layers else "")
        + (f" through {' and '.join(reached)}" if reached else "")
        + f", but no longer the nn.Linear layers of those names, which stay frozen: {' and '.join(frozen)}"
    )
    suggestion = _param_suffixes(info, result.moe_left_frozen)
    if suggestion:
        message += f"; to train them too, add target_parameters={suggestion!r}"
    return message


def _dense_fields(config: dict) -> Iterable[tuple[str, Any]]:
    """Config fields that keep some layers' MLP dense on MoE models (DeepSeek, GLM-4.5, Qwen-MoE)."""
    for key, dense in (("first_k_dense_replace", lambda v: v), ("mlp_only_layers", lambda v: v),
                       ("decoder_sparse_step", lambda v: isinstance(v, int) and v > 1)):
        value = config.get(key)
        if value is not None and dense(value):
            yield key, value


def _param_suffixes(info, names: list[str]) -> list[str]:
    """Short target_parameters entries (`mlp.gate_proj.weight`) that match the weights of `names` and nothing else."""
    wanted = {f"{n}.weight" for n in names}
    every = [p.name for m in info.modules for p in m.params]
    clean: dict[str, bool] = {}  # suffix -> it matches only wanted weights (computed once a suffix)
    out: list[str] = []
    for name in names:
        parts = f"{name}.weight".split(".")
        for size in range(3, len(parts) + 1):
            if any(part.isdigit() for part in parts[-size:]):
                return []  # no index-free suffix tells them apart: no suggestion rather than a wrong one
            suffix = ".".join(parts[-size:])
            if suffix not in clean:
                clean[suffix] = all(p in wanted for p in every if p == suffix or p.endswith("." + suffix))
            if clean[suffix]:
                break
        else:
            return []
        if suffix not in out:
            out.append(suffix)
    return out


@check("mamba_incompatible_target")
def mamba_incompatible_target(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/tuners/lora/model.py: _check_lora_target_modules_mamba raises for out_proj / conv1d."""
    found = _context(site)
    if found is None or found[1].model_type not in _MAMBA_TYPES or _peft_applied(site) is not None:
        return  # (with --verify, the real PEFT applied it without raising)
    resolution, info, result = found
    bad = sorted({t.folded for t in result.targeted if t.name.rsplit(".", 1)[-1] in ("out_proj", "conv1d")})
    if bad:
        yield Finding(
            site.span_of("target_modules"),
            f"{', '.join(bad)} on the Mamba-based {_model(resolution)}: PEFT raises 'Module … is incompatible with"
            " Mamba-based models' (this includes \"all-linear\"); exclude out_proj and conv1d",
        )


# Module names of a multimodal model's vision / audio encoder (not its language model).
TOWER = re.compile(r"(^|\.)(vision|visual|vision_tower|vision_model|audio|audio_tower|image_encoder)(\.|$)")


@check("all_linear_scope")
def all_linear_scope(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    found = _context(site)
    if found is None:
        return
    resolution, info, result = found
    targets, _ = effective(site, "target_modules")
    if not (isinstance(targets, str) and targets.lower() == "all-linear"):
        return
    surprises: list[str] = []
    # The sites that share an analysis share its routers and tower layers: once per result (the memo keeps it).
    memo = _per_model(info, "all-linear-scope", dict)
    known = memo.get(id(result))
    if known is None or known[0] is not result:
        known = memo[id(result)] = (result, *_routers_and_towers(info, result))
    routers, towers = known[1], known[2]
    # transformers 5 routers are not nn.Linear; PEFT's MoE conversion adds their weight for "all-linear"
    # (transformers_weight_conversion.py: _resolve_string_target_modules adds the v4 name "gate" -> "gate.weight")
    param_routers = sorted({f"{info.get(p.module).folded}.{p.name.rsplit('.', 1)[-1]}" for p in result.targeted_parameters
                            if info.get(p.module) is not None and _is_router(info, p.module)})
    if site.origin in ("axolotl", "llamafactory"):
        # axolotl's lora_target_linear and LLaMA-Factory's `lora_target: all` hand PEFT a list of the
        # nn.Linear names they found (axolotl loaders/adapter.py: find_all_linear_names; LLaMA-Factory
        # model/model_utils/misc.py: find_all_linear_modules, "Linear" in the class name), not "all-linear":
        # a transformers 5 router is no nn.Linear, so its name is not listed and PEFT's conversion adds no
        # gate.weight.
        param_routers = []
    if routers:
        surprises.append(f"MoE routers ({', '.join(routers)})")
    if param_routers:
        surprises.append(f"the MoE routers' weights ({', '.join(param_routers)}), through the target_parameters PEFT's"
                         " MoE conversion adds for transformers 5")
    if towers and not site.origin.startswith("unsloth"):
        # Unsloth's "all-linear" switches every finetune_* flag on, the vision layers' included (unsloth/models/
        # vision.py FastBaseModel.get_peft_model): the tower is what the user asked for, not a surprise.
        surprises.append(f"{towers} layers of the vision/audio tower")
    task, _ = effective(site, "task_type")
    if info.seq_cls_head and task != "SEQ_CLS" and any(t.name == info.seq_cls_head for t in result.targeted):
        surprises.append(f"the classification head {info.seq_cls_head!r} (task_type is not SEQ_CLS)")
    if surprises:
        fix = "use exclude_modules (a regex string) or list the targets you mean"
        if param_routers:  # exclude_modules never applies to target_parameters (tuners_utils.py: _inject_parameters)
            listed = list(dict.fromkeys([t.name.rsplit(".", 1)[-1] for t in result.targeted if not _is_router(info, t.name)]
                                        + [e for e in _expert_names(info) if e in result.moe_converted_entries]))
            fix = (f"exclude_modules does not reach target_parameters, so list the targets you mean instead, e.g."
                   f" target_modules={listed!r}")
        yield Finding(site.span_of("target_modules"), f"\"all-linear\" on {_model(resolution)} also adapts"
                      f" {'; '.join(surprises)}; {fix}")


def _routers_and_towers(info, result) -> tuple[list[str], int]:
    """The folded names of the MoE routers `result` targets, and how many targeted modules are in a vision/audio
    tower. A concrete name is its folded name with each "{...}" made a number: it has "gate" / "router" in it, or a
    part TOWER names, just when its folded name does. So only the folded names are searched, and only the modules of
    those with "gate" or "router" are asked whether they are routers (which depends on the layer)."""
    is_router = _routers(info)
    folded = {t.folded for t in result.targeted}
    gated = {f for f in folded if "gate" in f or "router" in f}
    routers = sorted({t.folded for t in result.targeted if t.folded in gated and is_router[t.name]}) if gated else []
    in_tower = {f for f in folded if TOWER.search(f)}
    towers = sum(1 for t in result.targeted if t.folded in in_tower) if in_tower else 0
    return routers, towers


class _PerName(dict):
    """name -> test(model, name), each name tested once per model (all_linear_scope asks of the targeted modules
    whose folded name has "gate" or "router" whether they are routers). It lives in the model's own memo, so it
    holds the model weakly (no cycle: a run's models are freed with the run)."""

    def __init__(self, info, test: Callable[[Any, str], bool]) -> None:
        super().__init__()
        self._info = weakref.ref(info)
        self._test = test

    def __missing__(self, name: str) -> bool:
        found = self[name] = self._test(self._info(), name)
        return found


def _routers(info) -> _PerName:
    return _per_model(info, "routers", lambda: _PerName(info, _find_router))


def _in_a_tower(targeted) -> bool:
    """Whether one of these targeted modules is in a vision/audio tower: asked of their folded names (a part TOWER
    names is in a module's name just when it is in its folded name, see _routers_and_towers)."""
    return any(TOWER.search(folded) for folded in {t.folded for t in targeted})


def _is_router(info, name: str) -> bool:
    return _routers(info)[name]


def _find_router(info, name: str) -> bool:
    """A MoE router, or a layer inside one (AFMoE's `mlp.router.gate`): a `gate`/`router` beside an `experts`
    module, as verify/model.py: _special_modules sees it."""
    if "gate" not in name and "router" not in name:
        return False  # no such part (most names)
    parts = name.split(".")
    for k, leaf in enumerate(parts):
        if leaf in ("gate", "router"):
            parent = ".".join(parts[:k])
            if info.get(f"{parent}.experts" if parent else "experts") is not None:
                return True
    return False


@check("modules_to_save_surprise")
def modules_to_save_surprise(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """peft/utils/other.py: _set_trainable wraps every module whose name ends with an entry (a plain
    str.endswith, no dot boundary), keeping the original plus a trainable full copy."""
    found = _context(site)
    f = known_field(site, "modules_to_save")
    if found is None or f is None or not isinstance(f.value, (list, tuple)):
        return
    resolution, info, result = found
    targets, _ = effective(site, "target_modules")
    target_list = set(targets) if isinstance(targets, (list, tuple, set)) else set()
    spans = item_spans(site, "modules_to_save")
    unmatched = set(result.unmatched_modules_to_save)
    required = _required_to_save(site, info.model_type)
    for entry in f.value:
        if not isinstance(entry, str):
            continue
        span = spans.get(entry, f.span)  # the entry itself where the extractor knows it
        wrapped = [(name, params) for name, params in result.modules_to_save_wrapped if name.endswith(entry)]
        loose = [name for name, _ in wrapped if name != entry and not name.endswith("." + entry)]
        if entry in unmatched or not wrapped:
            yield Finding(span, f"modules_to_save entry {entry!r} matches no module of {_model(resolution)}: PEFT ignores it silently")
            continue
        if loose:
            yield Finding(
                span,
                f"modules_to_save entry {entry!r} also wraps {', '.join(sorted(set(loose))[:3])}: PEFT matches by plain"
                " suffix, without a dot boundary",
            )
        if entry in target_list:
            yield Finding(
                span,
                f"{entry!r} is in both target_modules and modules_to_save: PEFT drops it from LoRA targeting and trains"
                " a full copy instead",
            )
        if entry in required:
            continue  # the trainer refuses the config without it: not the user's choice to undo
        params = sum(p for _, p in wrapped)
        threshold = int(ctx.params.get("large_module_params", 50_000_000))
        if params >= threshold:
            yield Finding(
                span,
                f"modules_to_save entry {entry!r} trains a full copy of {params:,} parameters on {_model(resolution)}"
                f" (memory, optimizer state and checkpoint grow by that much, and vLLM will not serve it){_new_tokens_way(site)}",
            )


def _required_to_save(site: ConfigSite, model_type: str | None) -> frozenset[str]:
    """modules_to_save entries the trainer itself demands. axolotl, when its config adds tokens (hints.
    config_adds_tokens), raises unless lora_modules_to_save holds both embedding layers, named as its
    loaders/utils.py: get_linear_embedding_layers names them for the model type."""
    if site.origin != "axolotl" or site.hints.config_adds_tokens is None:
        return frozenset()
    return frozenset({"gpt_neox": ("embed_in", "embed_out"), "falcon": ("word_embeddings", "lm_head"),
                      "nemotron_h": ("embeddings", "lm_head")}.get(model_type or "", ("embed_tokens", "lm_head")))


def _new_tokens_way(site: ConfigSite) -> str:
    """The cheaper way to train new tokens, under the name the file's format gives it (none in formats
    without one: LLaMA-Factory, torchtune, Unsloth's YAML)."""
    if site.syntax == "python" or site.origin == "adapter_config":
        return "; for new tokens prefer trainable_token_indices"
    if site.origin == "axolotl":
        return "; for new tokens prefer peft_trainable_token_indices"  # axolotl loaders/adapter.py passes it on
    return ""
