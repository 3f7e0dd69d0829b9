"""The target_modules Unsloth's vision models build from their finetune_* flags, without torch.

Mirrors unsloth/models/vision.py FastBaseModel.get_peft_model (unsloth 015bdef0) and
unsloth_zoo/peft_utils.py get_peft_regex (unsloth-zoo ce232d6c) over loralint's module inventory:

* target_modules None or "all-linear" ("all-linear" turns every flag on): a regex from the flags;
* an explicit list with a flag switched off: the same regex, restricted to the list's names;
* any other explicit value: used as written.

get_peft_regex: the Linear leaf names that occur more than once (a name seen once, such as lm_head,
is a projection left out) form the module group; the model-part tags (vision / language) and the
component tags (attention / mlp) surround it:

    .*?(?:<parts>).*?(?:<components>).*?(?:<leaves>)
    | \\bmodel\\.layers\\.\\d+\\.(?:<components>)\\.(?:<leaves>)      (when language layers are on)

and when no Linear name `re.search`-es that, the model-part requirement is dropped. Where Unsloth
adds what loralint does not model (Gemma 3n / Gemma 4 audio and embedder branches, MoE expert
targets it detects on the loaded model, Gemma 4's ClippableLinear), the targets stay unknown.
"""

from __future__ import annotations

import re
from typing import Any

FLAGS = (
    "finetune_vision_layers",
    "finetune_language_layers",
    "finetune_attention_modules",
    "finetune_mlp_modules",
    "finetune_audio_layers",
)
# FastBaseModel.get_peft_model's defaults (finetune_audio_layers is off unless asked for).
FLAG_DEFAULTS: dict[str, bool] = {name: name != "finetune_audio_layers" for name in FLAGS}
# get_peft_regex's tag lists, verbatim.
VISION_TAGS = ["vision", "image", "visual", "patch"]
LANGUAGE_TAGS = ["language", "text"]
ATTENTION_TAGS = ["self_attn", "attention", "attn", "mixer"]
MLP_TAGS = ["mlp", "feed_forward", "ffn", "dense", "mixer"]
_UNMODELLED_TYPES = ("gemma4", "gemma3n")  # extra audio / embedder branches and ClippableLinear


def get_peft_regex(linear_names: list[str], flags: dict[str, bool], target_modules: list[str] | None) -> str | None:
    """get_peft_regex's result for a model whose nn.Linear modules are `linear_names` (in
    named_modules() order); None where Unsloth raises (nothing selected, nothing matched)."""
    vision, language = flags["finetune_vision_layers"], flags["finetune_language_layers"]
    attention, mlp = flags["finetune_attention_modules"], flags["finetune_mlp_modules"]
    if not vision and not language:
        return None  # audio-only (the only way past Unsloth's first check) is not modelled
    if not attention and not mlp:
        return None  # RuntimeError: "No modules to finetune"
    counts: dict[str, int] = {}
    for name in linear_names:
        leaf = name.rsplit(".")[-1]
        counts[leaf] = counts.get(leaf, 0) + 1
    if target_modules is None:
        leaves = [leaf for leaf, count in counts.items() if count != 1]
    else:
        leaves = list(target_modules)
    parts = (VISION_TAGS if vision else []) + (LANGUAGE_TAGS if language else [])
    components = (ATTENTION_TAGS if attention else []) + (MLP_TAGS if mlp else [])
    model_parts, regex_components = "|".join(parts), "|".join(components)
    match_linear = r"(?:" + "|".join(re.escape(x) for x in leaves) + r")"
    regex = r".*?(?:" + model_parts + r").*?(?:" + regex_components + r").*?" + match_linear
    if language:
        regex = (
            r"(?:" + regex + r")|(?:\bmodel\.layers\.[\d]{1,}\.(?:" + regex_components + r")\.(?:" + match_linear + r"))"
        )
    if not any(re.search(regex, name, flags=re.DOTALL) for name in linear_names):
        regex = r".*?(?:" + regex_components + r").*?" + match_linear
    if not any(re.search(regex, name, flags=re.DOTALL) for name in linear_names):
        return None  # RuntimeError: "No layers to finetune"
    return regex


def unsloth_targets(flags: dict[str, bool], target: Any, info: Any) -> tuple[str, str] | None:
    """(target_modules, how) that FastBaseModel.get_peft_model hands PEFT, or None when it is the
    value as written or cannot be known here."""
    model_type = str(getattr(info, "model_type", "") or "").lower()
    if any(t in model_type for t in _UNMODELLED_TYPES):
        return None
    names = [m.name for m in info.modules]
    if any(".experts." in n or n.endswith(".experts") for n in names) or info.fused_expert_params:
        return None  # Unsloth adds the MoE experts it detects on the loaded model
    flags = dict(flags)
    if target == "all-linear":
        flags = {name: True for name in FLAGS}
    explicit: list[str] | None = None
    if target is None or target == "all-linear":
        how = "Unsloth's get_peft_regex from the finetune_* flags"
    elif isinstance(target, (list, tuple)) and all(isinstance(t, str) for t in target):
        scoping = not all(flags[name] for name in FLAGS[:4])
        if not scoping and not flags["finetune_audio_layers"]:
            return None  # an explicit list is used as written
        explicit = list(target)
        how = "Unsloth's get_peft_regex: the listed names, kept where the finetune_* flags select them"
    else:
        return None
    linear = [m.name for m in info.modules if m.kind == "linear"]  # isinstance(module, torch.nn.Linear)
    regex = get_peft_regex(linear, flags, explicit)
    if regex is None:
        return None
    folded = _folded_equivalent(regex, info)
    return (folded, how) if folded is not None else None


def _folded_equivalent(regex: str, info: Any) -> str | None:
    r"""A pattern that re.fullmatch-es exactly the module names Unsloth's regex selects on this model
    (PEFT matches it against every name of named_modules()), written per folded name
    (`model\.layers\.\d+\.self_attn\.q_proj`). Unsloth's own pattern chains three lazy `.*?`,
    which loralint's bounded matcher refuses to run on user text; here both patterns and names are
    loralint's own, so it is run once, directly, and the result checked against the folded form."""
    compiled = re.compile(regex, re.DOTALL)
    chosen = {m.name for m in info.modules if m.name and compiled.fullmatch(m.name)}
    if not chosen:
        return None
    alternatives = dict.fromkeys(
        re.sub(r"\\\{\w+\\\}", r"\\d+", re.escape(m.folded)) for m in info.modules if m.name in chosen
    )
    folded = "(?:" + "|".join(alternatives) + ")"
    if len(folded) > 9_000:
        return None
    check = re.compile(folded)
    if {m.name for m in info.modules if m.name and check.fullmatch(m.name)} != chosen:
        return None
    return folded
