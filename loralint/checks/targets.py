"""Target-module mistakes visible in the source alone (no architecture needed).

peft/tuners/tuners_utils.py: check_target_module_exists — a string target_modules is
`re.fullmatch`ed against each module's full dotted name (except the special "all-linear");
a list entry matches the full name exactly or as a suffix after a dot, never as a regex.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import known_field, literal, replace_value
from loralint.lazy_re import lazy
from loralint.limits import AnalysisLimit
from loralint.safe_regex import compile_checked
from loralint.sites import ConfigSite

_IDENTIFIER = lazy(r"^[A-Za-z_][\w.]*$")
_CSV = lazy(r"^\s*[\w.]+\s*(,\s*[\w.]+\s*)+,?\s*$")
_ALL_LINEAR_NEAR = {"all_linear", "all linear", "alllinear", "all-linears", "all", "linear", "all-linear-layers", "all_linear_layers"}
_REGEX_CHARS = lazy(r"[*+?|^$()\[\]\\{}]")


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


# A list entry written as a regex around one module name (`.*q_proj`, `.*\.(q_proj|v_proj)$`, `*q_proj`):
# the name(s) it was meant to reach.
_NAME = r"[A-Za-z_]\w*(?:\\\.\w+)*"
_AROUND_NAMES = lazy(rf"^\^?(?:\.\*\\\.|\(\.\*\\\.\)\?|\.\*|\*)?(?:({_NAME})|\((?:\?:)?({_NAME}(?:\|{_NAME})*)\))\$?$")


def _meant_names(entries: list[str]) -> list[str] | None:
    """The plain module names a list of entries means (regex entries reduced to the names they wrap);
    None when a regex entry is more than a name with a prefix (`layers.[0-3].q_proj`)."""
    names: list[str] = []
    for entry in entries:
        if not _REGEX_CHARS.search(entry):
            found = [entry]
        else:
            match = _AROUND_NAMES.match(entry.strip())
            if match is None:
                return None
            found = (match.group(1) or match.group(2)).split("|")
        names += [n.replace("\\.", ".") for n in found if n.replace("\\.", ".") not in names]
    return names


def _takes_regex(site: ConfigSite, name: str) -> bool:
    """Whether the format can hand PEFT one regex string for `name`. LLaMA-Factory (v0 splits
    `lora_target` on commas, v1 wraps a string in a list), Unsloth's YAML (splits on commas) and TRL
    (ModelConfig.lora_target_modules is a list) cannot; modules_to_save is never a regex in PEFT
    (other.py: _set_trainable uses str.endswith)."""
    if name == "modules_to_save":
        return False
    # axolotl passes lora_target_modules / lora_exclude_modules to LoraConfig as written (loaders/adapter.py).
    return site.syntax in ("python", "json") or site.origin == "axolotl"


def _setting(site: ConfigSite, f, value: Any, *, regex: bool = False) -> str:
    """`key = value` as the file's format writes it: `target_modules=[...]` in Python,
    `"target_modules": [...]` in JSON, `lora_target: q_proj,v_proj` in LLaMA-Factory's YAML."""
    key = f.raw_name or f.name
    if site.syntax == "python":
        text = literal(site, value)
        if regex and "\\" in value and '"' not in value and not value.endswith("\\"):
            text = f'r"{value}"'  # a raw string, as regexes are written
        return f"{key}={text}"
    if site.syntax == "json":
        return f"{json.dumps(key)}: {json.dumps(value)}"
    if site.origin == "llamafactory" and f.raw_name in ("lora_target", "additional_target") and isinstance(value, list):
        return f"{key}: {','.join(value)}"  # LLaMA-Factory's own form: one comma-separated string
    if regex:
        return f"{key}: '{value.replace(chr(39), chr(39) * 2)}'"  # single-quoted: backslashes stay as written
    return f"{key}: {literal(site, value)}"


def _all_linear_message(site: ConfigSite, f) -> str:
    """Why "all-linear" in a list matches nothing, and how the format asks for every linear layer."""
    if site.origin == "llamafactory":
        # finetuning_args.py (v0) / v1 peft.py: only "all" means every linear layer; anything else is a name.
        return (f"'all-linear' is not LLaMA-Factory's spelling: it hands PEFT target_modules={list(f.value)!r}, where"
                f" 'all-linear' is a module name that matches nothing; every linear layer is {_setting(site, f, 'all')}")
    spelling = _setting(site, f, "all-linear")
    if site.origin == "axolotl":
        spelling += " (or lora_target_linear: true)"
    return f"'all-linear' only works as the plain string {spelling}; inside a list it is a module name that matches nothing"


# What hands PEFT a list whatever is written, in words.
_LIST_ONLY = {
    "llamafactory": "LLaMA-Factory hands PEFT a list of names",
    "unsloth": "Unsloth's config hands PEFT a list of names",
    "trl": "TRL's lora_target_modules is a list of names",
}


@check("regex_in_list")
def regex_in_list(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    for name in ("target_modules", "exclude_modules", "modules_to_save"):
        f = known_field(site, name)
        if f is None or not isinstance(f.value, (list, tuple, set)):
            continue
        key = f.raw_name or f.name
        entries = [e for e in f.value if isinstance(e, str)]
        if name == "target_modules" and any(e.lower() == "all-linear" for e in entries):
            fix = None
            if len(entries) == 1:
                fix = replace_value(site, name, "all-linear", "Use the string 'all-linear'", "safe")
            yield Finding(f.span, _all_linear_message(site, f), fix=fix)
        regexy = [e for e in entries if _REGEX_CHARS.search(e)]
        if regexy:
            yield Finding(
                f.span,
                f"{key} entries {regexy!r} look like regular expressions, but list entries match module names"
                f" exactly or as a dotted suffix (since peft 0.6), so they match nothing; {_instead(site, f, entries)}",
            )
        empty = [e for e in entries if not e.strip()]
        if empty and name == "target_modules":
            yield Finding(f.span, f"{key} contains an empty string, which matches nothing (and raises for 20+ entries)")


def _instead(site: ConfigSite, f, entries: list[str]) -> str:
    """What to write instead, in the file's own syntax: the names the entries wrap, and one regex
    string where the format passes one to PEFT."""
    names = _meant_names([e for e in entries if e.strip() and e.lower() != "all-linear"])
    regex_ok = _takes_regex(site, f.name)
    if names:
        advice = f"list the names themselves: {_setting(site, f, names)}"
        if regex_ok:
            escaped = [re.escape(n) for n in names]
            regex = r".*\." + (escaped[0] if len(names) == 1 else f"({'|'.join(escaped)})")
            advice += f", or use one regex string: {_setting(site, f, regex, regex=True)}"
        return advice
    if regex_ok:
        return (f"use one regex string for {f.raw_name or f.name}, which PEFT matches against the whole dotted"
                f" module name (such as {_full_name_example(site, 'q_proj')})")
    if f.name == "modules_to_save":
        return "list the module names themselves (PEFT matches modules_to_save entries by name suffix, never as a regex)"
    return f"list the module names themselves ({_LIST_ONLY.get(site.origin, 'this format hands PEFT a list')}, never a regex)"
