"""The code behind the rules. A check is a function registered under a name; rules in `rules/`
name the check they use and pass it parameters, so several rules can share one check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from loralint.sites import ConfigSite, Fix, Span

# Names of the modules that register checks; imported by load_checks().
_CHECK_MODULES = ("generic", "invalid", "hyperparams", "targets", "patterns", "quantization", "training", "training_context", "architecture")


@dataclass(slots=True, repr=False, eq=False)
class Finding:
    """What a check reports; the engine makes it a Diagnostic of the rule."""

    span: Span
    message: str
    fix: Fix | None = None
    related: list[tuple[Span, str]] = field(default_factory=list)
    # Severity steps below the rule's: the check could not establish everything the rule assumes
    # (LORA107 on a model whose class the script does not show).
    demote: int = 0


@dataclass(slots=True, repr=False, eq=False)
class CheckContext:
    """What a check may know besides the site: the rule's parameters and run-wide hints."""

    params: dict[str, Any]
    dataset_size: int | None = None
    dataset_size_source: str | None = None
    message: str | None = None  # a custom rule's message template


CheckFn = Callable[[ConfigSite, CheckContext], Iterable[Finding]]
# The checks that judge the training around an adapter rather than the settings it is built with: the only
# ones run on an adapter a script loads to train again (FileResult.loaded, extract/loaded.py), whose
# settings are those of a saved adapter_config.json, checked where that file is.
LOADED_ADAPTER_CHECKS = frozenset(
    {"learning_rate", "eos_masked", "zero3_adapter_save", "trl_renamed_args", "device_map_ddp", "fp16_bf16_only_model",
     "checkpointing_input_grads"}
)
CHECKS: dict[str, CheckFn] = {}


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        CHECKS[name] = fn
        return fn

    return register


def load_checks() -> dict[str, CheckFn]:
    import importlib

    for module in _CHECK_MODULES:
        importlib.import_module(f"loralint.checks.{module}")
    return CHECKS
