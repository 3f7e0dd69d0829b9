"""What verify observed per configuration, and the advice that replaces the static one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loralint.sites import ConfigSite, Diagnostic


@dataclass(slots=True)
class ModuleGroup:
    """Matched modules that differ only by their indices: `model.layers.{i}.self_attn.q_proj` × 28."""

    pattern: str
    count: int = 0
    indices: list[int] = field(default_factory=list)  # the first index ({i}) of each match
    kind: str = ""  # the base layer's class: Linear, Conv1D, Embedding, Parameter, ...
    in_features: int | None = None
    out_features: int | None = None
    ranks: list[int] = field(default_factory=list)
    scalings: list[float] = field(default_factory=list)
    lora_params: int = 0  # adapter parameters PEFT added to these modules

    @property
    def shape(self) -> str:
        """`3072→1024` (in → out features), or "" when the layer has no such sizes."""
        if self.in_features is None or self.out_features is None:
            return ""
        return f"{self.in_features}→{self.out_features}"

    def as_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "count": self.count,
            "indices": sorted(self.indices) if self.indices else None,
            "type": self.kind,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "r": self.ranks[0] if len(self.ranks) == 1 else self.ranks,
            "scaling": self.scalings[0] if len(self.scalings) == 1 else self.scalings,
            "lora_params": self.lora_params,
        }


@dataclass(slots=True)
class SiteReport:
    site: ConfigSite
    status: str = "skipped"  # verified | rejected | skipped | unresolved | refused
    reason: str = ""
    model_id: str | None = None
    resolved_from: str | None = None
    model_type: str | None = None
    model_class: str | None = None
    groups: list[ModuleGroup] = field(default_factory=list)
    parameter_groups: list[ModuleGroup] = field(default_factory=list)  # target_parameters
    modules_to_save: list[ModuleGroup] = field(default_factory=list)
    trainable: int | None = None
    total: int | None = None
    scaling: float | None = None
    notes: list[str] = field(default_factory=list)
    device: dict[str, Any] | None = None  # the real-tensor step (--device)
    targeted: list[str] = field(default_factory=list)  # PEFT's targeted_module_names, unfolded
    targeted_parameters: list[str] = field(default_factory=list)  # targeted_parameter_names
    # target_modules entries PEFT itself rewrote (its transformers-v5 MoE conversion moves w1/w2/w3 to target_parameters)
    rewritten_targets: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def percent(self) -> float | None:
        if self.trainable is None or not self.total:
            return None
        return 100 * self.trainable / self.total

    def matched_counts(self) -> dict[str, Any]:
        """The same shape as the static advice's `matched_modules`: the total and the folded names."""
        groups = [*self.groups, *self.parameter_groups]
        return {"count": sum(g.count for g in groups), "modules": {g.pattern: g.count for g in groups}}


@dataclass(slots=True)
class VerifyReport:
    sites: list[SiteReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    device: str = "meta"
    timings: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        from loralint.report import jsonable

        configs = []
        for rep in self.sites:
            s = rep.site
            configs.append({
                "path": s.path,
                "line": s.span.line,
                "column": s.span.column,
                "origin": s.origin,
                "status": rep.status,
                "reason": rep.reason or None,
                "fields": {name: jsonable(f.value) for name, f in s.fields.items()},
                "base_model": rep.model_id,
                "resolved_from": rep.resolved_from,
                "model_type": rep.model_type,
                "model_class": rep.model_class,
                "matched_modules": [g.as_json() for g in rep.groups],
                "matched_parameters": [g.as_json() for g in rep.parameter_groups],
                "modules_to_save": [g.as_json() for g in rep.modules_to_save],
                "trainable_params": rep.trainable,
                "total_params": rep.total,
                "trainable_percent": round(rep.percent, 6) if rep.percent is not None else None,
                "scaling": rep.scaling,
                "counted_by": "peft" if rep.status == "verified" else None,
                "device": rep.device,
                "notes": rep.notes,
                "seconds": round(rep.seconds, 4),
            })
        return {
            "version": 1,
            "versions": self.versions,
            "device": self.device,
            "configs": configs,
            "notes": self.notes,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


class VerifiedAdvice:
    """What `check --verify` puts in place of the static advice: PEFT's own numbers.

    Reporters read `trainable_params`, `total_params`, `matched_modules` (and `counted_by`);
    anything else falls through to the static advice it replaces.
    """

    counted_by = "peft"

    def __init__(self, static: Any, report: SiteReport) -> None:
        self._static = static
        self.trainable_params = report.trainable
        self.total_params = report.total
        self.matched_modules = report.matched_counts()
        self.scaling = report.scaling
        # what real PEFT targeted: static checks read these to drop an error this run contradicts
        self.targeted = list(report.targeted)
        self.targeted_parameters = list(report.targeted_parameters)
        self.rewritten_targets = list(report.rewritten_targets)

    def __getattr__(self, name: str) -> Any:
        static = self.__dict__.get("_static")
        if static is None:
            raise AttributeError(name)
        return getattr(static, name)
