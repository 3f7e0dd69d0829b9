"""The regular expressions a LoraConfig hands to PEFT (see loralint.safe_regex for the exact forms):
an invalid one (LORA014, PEFT raises re.error), and the bounds of loralint's analysis reached for a
configuration (LORA906: a pattern it will not run, too much matching, an absurd model config).

A string target_modules that is not a valid regex is LORA209's (string-target-not-regex), which
explains string targets as a whole; LORA014 covers the other fields PEFT turns into regexes.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import item_spans, known_field
from loralint.limits import AnalysisLimit
from loralint.safe_regex import FULLMATCH, LAYERS, PATTERN_KEY, SAVED_MODULE, compile_checked
from loralint.sites import ConfigSite, Span

# How PEFT uses each field (for messages): the form the user's text is put in.
_HOW = {
    FULLMATCH: "re.fullmatch-es it against every module name",
    PATTERN_KEY: "matches each key with re.match(rf\"(.*\\.)?({key})$\", name)",
    SAVED_MODULE: "matches each entry with re.match(rf\"(^|.*\\.){entry}($|\\..*)\", name)",
    LAYERS: "matches it with re.match(rf\"(?:^|.*?\\.){pattern}\\.(?P<idx>\\d+)\\.\", name)",
}



def site_patterns(site: ConfigSite, include_target: bool = True) -> Iterator[tuple[str, str, str, str, Span]]:
    """(field, text, PEFT's form, how a message names it, span) for every pattern PEFT would compile."""
    f = known_field(site, "target_modules")
    if include_target and f is not None and isinstance(f.value, str) and f.value.lower() != "all-linear":
        yield "target_modules", f.value, FULLMATCH, "target_modules", f.span
    f = known_field(site, "exclude_modules")
    if f is not None and isinstance(f.value, str) and f.value:
        yield "exclude_modules", f.value, FULLMATCH, "exclude_modules", f.span
    f = known_field(site, "modules_to_save")
    if f is not None and isinstance(f.value, (list, tuple)):
        spans = item_spans(site, "modules_to_save")
        for entry in f.value:
            if isinstance(entry, str):
                yield "modules_to_save", entry, SAVED_MODULE, f"modules_to_save entry {entry!r}", spans.get(entry, f.span)
    for name in ("rank_pattern", "alpha_pattern"):
        f = known_field(site, name)
        if f is not None and isinstance(f.value, dict):
            for key in f.value:
                if isinstance(key, str):
                    yield name, key, PATTERN_KEY, f"{name} key {key!r}", f.span
    f = known_field(site, "layers_pattern")
    if f is not None:
        values = [f.value] if isinstance(f.value, str) else f.value if isinstance(f.value, (list, tuple)) else []
        spans = item_spans(site, "layers_pattern")
        for value in values:
            if isinstance(value, str) and value:
                yield "layers_pattern", value, LAYERS, f"layers_pattern {value!r}", spans.get(value, f.span)


@check("invalid_pattern")
def invalid_pattern(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    for field_name, text, form, shown, span in site_patterns(site, include_target=False):
        try:
            compile_checked(text, form, field_name)
        except re.error as exc:
            yield Finding(
                span,
                f"{shown} is not a valid regular expression ({exc.msg}): PEFT {_HOW[form]}, so get_peft_model raises"
                " re.error",
            )
        except AnalysisLimit:
            continue  # LORA906 says it was not evaluated


@check("analysis_limit")
def analysis_limit(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    seen: set[tuple[str | None, str]] = set()
    # Patterns too long or too deep to parse at all, whatever the model.
    for field_name, text, form, shown, span in site_patterns(site):
        try:
            compile_checked(text, form, field_name)
        except re.error:
            continue  # LORA014 / LORA209
        except AnalysisLimit as exc:
            if (field_name, exc.message) not in seen:
                seen.add((field_name, exc.message))
                yield Finding(span, f"{shown}: {exc.message}")
    # Bounds reached while resolving the model or matching against it (loralint.resolve).
    resolution = site.model
    for field_name, message in getattr(resolution, "limits", None) or ():
        if (field_name, message) in seen:
            continue
        seen.add((field_name, message))
        if field_name is not None and site.is_set(field_name):
            span = site.span_of(field_name)
            text = f"{field_name}: {message}"
        else:
            span = site.base_model.span if site.base_model is not None and field_name is None else site.span
            text = message
        yield Finding(span, f"{text}; the checks against the model's modules are skipped")
    # LORA109's comparison of pattern keys with each other.
    from loralint.checks.hyperparams import shadowing

    for name in ("rank_pattern", "alpha_pattern"):
        f = known_field(site, name)
        if f is None or not isinstance(f.value, dict):
            continue
        _, limits = shadowing(name, tuple(k for k in f.value if isinstance(k, str)))
        for message in limits:
            yield Finding(f.span, message)
