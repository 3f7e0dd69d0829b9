"""advice: what a configuration does to its resolved model — matched modules and parameter counts,
exactly as PEFT counts them (loralint.knowledge.targeting mirrors peft 0.21.2), without torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loralint.checks._util import effective
from loralint.sites import ConfigSite

# The LoraConfig fields that decide targeting and counting.
TARGETING_FIELDS = (
    "target_modules",
    "exclude_modules",
    "layers_to_transform",
    "layers_pattern",
    "modules_to_save",
    "rank_pattern",
    "alpha_pattern",
    "target_parameters",
    "trainable_token_indices",
    "task_type",
)
COUNTING_FIELDS = ("r", "lora_alpha", "use_rslora", "bias", "use_dora", "lora_bias", "inference_mode")
# A saved adapter_config.json says inference_mode=true whatever it is used for; it is trained again
# through PeftModel.from_pretrained(..., is_trainable=True), which sets it to False: count that.
SAVED_ADAPTER_ORIGIN = "adapter_config"


@dataclass(slots=True, repr=False, eq=False)
class Advice:
    """PEFT's targeting and counting for one site on its model, and how much of it is known."""

    result: Any  # loralint.knowledge.targeting.TargetingResult
    targets_known: bool  # every targeting field is statically known
    counts_known: bool  # r, alpha, bias, ... are known too: the counts are exact
    unknown_fields: list[str] = field(default_factory=list)
    counted_by: str = "loralint"  # the static knowledge base; --verify replaces it with PEFT's own count

    @property
    def trainable_params(self) -> int | None:
        return self.result.trainable_params if self.counts_known and self.result.ok else None

    @property
    def total_params(self) -> int | None:
        return self.result.total_params if self.counts_known and self.result.ok else None

    @property
    def matched_modules(self) -> dict[str, Any] | None:
        if not self.targets_known:
            return None
        folded = self.result.folded_summary()
        return {
            "count": len(self.result.targeted) + len(self.result.targeted_parameters),
            "modules": {name: entry["count"] for name, entry in folded.items()},
        }


def site_fields(site: ConfigSite, names: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    """The values in force (set, or the origin's defaults), and the names that are not known."""
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for name in names:
        value, known = effective(site, name)
        if known:
            values[name] = value
        else:
            unknown.append(name)
    return values, unknown


def advise(site: ConfigSite, info: Any, **overrides: Any) -> Advice | None:
    """Run PEFT's targeting and counting for `site` on `info`; None when the targets are unknown."""
    from loralint.knowledge.targeting import analyze_lora

    if getattr(info, "unmodelled_nulls", ()):
        return None  # the module names themselves are uncertain (see ModelInfo.unmodelled_nulls)
    targeting, unknown_targeting = site_fields(site, TARGETING_FIELDS)
    counting, unknown_counting = site_fields(site, COUNTING_FIELDS)
    if unknown_targeting:
        return None
    fields = {**targeting, **counting, **overrides}
    if site.origin == SAVED_ADAPTER_ORIGIN:
        fields["inference_mode"] = False
    counts_known = not unknown_counting
    if not counts_known:
        # The modules a config selects do not depend on r/alpha; count with placeholders, report no numbers.
        fields.setdefault("r", 8)
        fields.setdefault("lora_alpha", 8)
    # Sites that share a model and its fields (the same script in many folders, LORA205's "all-linear"
    # comparison) share one analysis: the result is never mutated.
    memo = getattr(info, "_analyses", None)
    key = repr(sorted((name, _frozen(value)) for name, value in fields.items()))
    result = memo.get(key) if memo is not None else None
    if result is None:
        try:
            result = analyze_lora(info, fields)
        except (TypeError, ValueError):  # a value of a type PEFT itself would choke on: LORA0xx says so
            return None
        if memo is not None:
            memo[key] = result
    return Advice(result, True, counts_known, unknown_counting)


def _frozen(value: Any) -> Any:
    """A value with a deterministic repr: sets sorted, containers recursed."""
    if isinstance(value, (set, frozenset)):
        return ("set", sorted((_frozen(v) for v in value), key=repr))
    if isinstance(value, dict):
        return ("dict", sorted(((k, _frozen(v)) for k, v in value.items()), key=repr))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_frozen(v) for v in value])
    return value
