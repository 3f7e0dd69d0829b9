"""Target-module mistakes visible in the source alone (no architecture needed).

peft/tuners/tuners_utils.py: check_target_module_exists — a string target_modules is
`re.fullmatch`ed against each module's full dotted name (except the special "all-linear");
a list entry matches the full name exactly or as a suffix after a dot, never as a regex.
"""

from __future__ import annotations

import re
from typing import Iterable

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import known_field, replace_value
from loralint.limits import AnalysisLimit
from loralint.safe_regex import compile_checked
from loralint.sites import ConfigSite

_IDENTIFIER = re.compile(r"^[A-Za-z_][\w.]*$")
_CSV = re.compile(r"^\s*[\w.]+\s*(,\s*[\w.]+\s*)+,?\s*$")
_ALL_LINEAR_NEAR = {"all_linear", "all linear", "alllinear", "all-linears", "all", "linear", "all-linear-layers", "all_linear_layers"}
_REGEX_CHARS = re.compile(r"[*+?|^$()\[\]\\{}]")


def misread_string_target(value: str) -> bool:
    """A string target LORA209 explains (a bare name, a comma list, a near-miss of "all-linear",
    an invalid regex): other rules leave it to LORA209."""
    stripped = value.strip().lower()
    if value.lower() == "all-linear":
        return False
    if stripped == "all-linear" or stripped in _ALL_LINEAR_NEAR or _CSV.match(value) or _IDENTIFIER.match(value):
        return True
    try:
        compile_checked(value)
    except re.error:
        return True
    except AnalysisLimit:
        return False  # not evaluated (LORA906)
    return False


def _full_name_example(site: ConfigSite, leaf: str) -> str:
    """A full module name to show what a string is matched against: the resolved model's own (its module
    of that name, or its first layer's first linear), else a Llama-style one."""
    info = getattr(site.model, "info", None) if site.model is not None and not site.model.guessed else None
    if info is not None:
        named = next((m.name for m in info.modules if m.name.endswith("." + leaf)), None)
        linear = next((m.name for m in info.modules if m.is_linear and m.layer_index is not None), None)
        if named or linear:
            return repr(named or linear)
    return f"'model.layers.0.self_attn.{leaf}'"


@check("string_target")
def string_target(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    f = known_field(site, "target_modules")
    if f is None or not isinstance(f.value, str):
        return
    value = f.value
    if value.lower() == "all-linear":
        return
    stripped = value.strip().lower()
    if stripped == "all-linear" or stripped in _ALL_LINEAR_NEAR:
        yield Finding(
            f.span,
            f"target_modules={value!r} is not the special value 'all-linear' (only that exact spelling is), so PEFT"
            " treats it as a regex that must match a whole module name: it matches nothing and get_peft_model raises",
            fix=replace_value(site, "target_modules", "all-linear", "Use 'all-linear'", "unsafe"),
        )
        return
    if _CSV.match(value):
        names = [part.strip() for part in value.split(",") if part.strip()]
        yield Finding(
            f.span,
            f"target_modules={value!r} is one string, which PEFT reads as a regex over full module names, not a"
            f" comma-separated list: it matches nothing; use a list {names!r}",
            fix=replace_value(site, "target_modules", names, "Split into a list", "safe"),
        )
        return
    if _IDENTIFIER.match(value):
        if site.hints.model_library == "custom" or (site.hints.model_library is None and site.hints.defines_modules):
            # The script's own nn.Module (or, in a file that defines some, a model it cannot follow): its
            # top-level children's full names are bare names ("lin0"), which a string does match.
            # loralint does not know this architecture, so it stays silent.
            return
        example = _full_name_example(site, value.rsplit(".", 1)[-1])
        if site.origin == "trl" or site.origin == "trl.ModelConfig":
            # TRL's ModelConfig collapses a one-element list into this very string: a list of one
            # name is not a way out there, two names or a regex are.
            yield Finding(
                f.span,
                f"target_modules={value!r} ({f.provenance}): PEFT re.fullmatch-es a string against full names such"
                f" as {example}, so it matches nothing; list two or more names or use a regex such as"
                f" '.*\\.{re.escape(value)}'",
            )
            return
        yield Finding(
            f.span,
            f"target_modules={value!r} is a string, so PEFT re.fullmatch-es it against full names such as"
            f" {example}: it matches nothing; use a list [{value!r}] or a regex r'.*\\.{re.escape(value)}'",
            fix=replace_value(site, "target_modules", [value], "Use a one-element list", "safe"),
        )
        return
    try:
        compile_checked(value)
    except re.error as exc:
        yield Finding(f.span, f"target_modules={value!r} is not a valid regular expression ({exc}); PEFT raises re.error")
    except AnalysisLimit:
        return  # too long or too deep to compile safely: LORA906 says so


@check("regex_in_list")
def regex_in_list(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    for name in ("target_modules", "exclude_modules", "modules_to_save"):
        f = known_field(site, name)
        if f is None or not isinstance(f.value, (list, tuple, set)):
            continue
        entries = [e for e in f.value if isinstance(e, str)]
        if name == "target_modules" and any(e.lower() == "all-linear" for e in entries):
            fix = None
            if len(entries) == 1:
                fix = replace_value(site, name, "all-linear", "Use the string 'all-linear'", "safe")
            yield Finding(
                f.span,
                "'all-linear' only works as the plain string target_modules='all-linear'; inside a list it is a module"
                " name that matches nothing",
                fix=fix,
            )
        regexy = [e for e in entries if _REGEX_CHARS.search(e)]
        if regexy:
            how = {
                "target_modules": "use one regex string such as target_modules=r'.*\\.(q_proj|v_proj)' instead",
                "exclude_modules": "use one regex string for exclude_modules instead",
                "modules_to_save": "list the module names themselves",
            }[name]
            yield Finding(
                f.span,
                f"{name} entries {regexy!r} look like regular expressions, but list entries match module names"
                f" exactly or as a dotted suffix (since peft 0.6), so they match nothing; {how}",
            )
        empty = [e for e in entries if not e.strip()]
        if empty and name == "target_modules":
            yield Finding(f.span, "target_modules contains an empty string, which matches nothing (and raises for 20+ entries)")
