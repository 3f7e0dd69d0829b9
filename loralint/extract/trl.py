"""TRL's ModelConfig and get_peft_config as configuration sites (Python scripts).

TRL builds the LoraConfig itself (trl/trainer/utils.py get_peft_config):

    if model_args.use_peft is False: return None
    LoraConfig(task_type=model_args.lora_task_type, r=model_args.lora_r, target_modules=model_args.lora_target_modules,
               target_parameters=..., lora_alpha=..., lora_dropout=..., bias="none", use_rslora=..., use_dora=...,
               modules_to_save=model_args.lora_modules_to_save)

so the configuration is the ModelConfig: one built with `ModelConfig(...)`, or one parsed from the
command line (`TrlParser((ScriptArguments, SFTConfig, ModelConfig)).parse_args_and_config()`,
`HfArgumentParser(...).parse_args_into_dataclasses()`). The site is written there and keyed by the
first get_peft_config call that reads it, so the LoraConfig that call returns (and the trainer it is
given to) is this site's config object. use_peft False (TRL's default) means no LoRA at all: no site.
use_peft not known (a flag) keeps the site but marks it opaque, so rules about what is absent stay quiet.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from loralint.peft_fields import TRL_DEFAULTS, TRL_MODEL_CONFIG_KEYS
from loralint.program.evaluate import argument, plain
from loralint.program.objects import is_trl_model_config
from loralint.sites import ConfigSite, Field, Unknown

if TYPE_CHECKING:
    from loralint.extract.python import PythonExtractor

# ModelConfig's other fields: accepted, not LoRA settings (not reported as unknown arguments).
_OTHER_FIELDS = frozenset(
    {
        "model_name_or_path",
        "model_revision",
        "dtype",
        "torch_dtype",
        "trust_remote_code",
        "attn_implementation",
        "use_peft",
        "load_in_8bit",
        "load_in_4bit",
        "bnb_4bit_quant_type",
        "use_bnb_nested_quant",
        "bnb_4bit_quant_storage",
        "model_init_kwargs",
    }
)
_WATCHED = frozenset({*TRL_MODEL_CONFIG_KEYS, "use_peft"})


def _use_peft(ex: PythonExtractor, obj: Any) -> Any:
    """use_peft of a ModelConfig object: True / False, or Unknown with the reason."""
    value = ex.program.evaluator.trl_attribute(obj, "use_peft")
    changed = ex.program.evaluator._changed_at(obj, "use_peft")
    if changed is not None:
        return Unknown(f"use_peft is changed at line {changed}")
    if value is None:
        return Unknown("use_peft is not known")
    data = plain(value)
    return data if isinstance(data, bool) else Unknown(data.reason if isinstance(data, Unknown) else "use_peft is not a bool")


def model_config_site(ex: PythonExtractor, call: ast.Call) -> ConfigSite | None:
    """`ModelConfig(...)`: a site unless use_peft is statically False (get_peft_config returns None)."""
    obj = ex.program.evaluator.objects(call)
    obj = next((o for o in obj if is_trl_model_config(o)), None)
    use_peft = _use_peft(ex, obj) if obj is not None else Unknown("not a ModelConfig")
    if use_peft is False:
        return None
    site = ex._build_site(
        call, "trl.ModelConfig", (), TRL_DEFAULTS, _OTHER_FIELDS | frozenset(TRL_MODEL_CONFIG_KEYS), TRL_MODEL_CONFIG_KEYS
    )
    target = site.fields.get("target_modules")
    if target is not None and isinstance(target.value, (list, tuple)) and len(target.value) == 1:
        # ModelConfig.__post_init__ turns a one-element list into its only element, a string PEFT
        # re.fullmatch-es against full module names (as the YAML form, extract/formats.py _trl).
        target.value = target.value[0]
        target.provenance = f"TRL's ModelConfig turns the one-element list lora_target_modules into the plain string {target.value!r}"
        target.items = []
    if isinstance(use_peft, Unknown):
        site.opaque = f"whether get_peft_config builds a LoraConfig at all is not known ({use_peft.reason})"
    if obj is not None:
        _mark_changes(ex, site, obj)
    return site


def _parsed_site(ex: PythonExtractor, obj: Any) -> ConfigSite:
    """A ModelConfig parsed from the command line: TRL's defaults, which flags may change; the site is
    written at the parse call."""
    parse_call = getattr(obj.node, "node", obj.node)
    site = ConfigSite(
        path=ex.path,
        span=ex.span(parse_call),
        origin="trl.ModelConfig",
        defaults=dict(TRL_DEFAULTS),
        extra_known=_OTHER_FIELDS | frozenset(TRL_MODEL_CONFIG_KEYS),
    )
    use_peft = _use_peft(ex, obj)
    if use_peft is not True:
        reason = use_peft.reason if isinstance(use_peft, Unknown) else "use_peft"
        site.opaque = f"the ModelConfig is read from the command line; whether LoRA is used is not known ({reason})"
    _mark_changes(ex, site, obj)
    return site


def _mark_changes(ex: PythonExtractor, site: ConfigSite, obj: Any) -> None:
    """`model_args.lora_r = 64` after the ModelConfig is made: that field is not what the call says."""
    for store in ex.program.flow.stores:
        target = store.target
        if not isinstance(target, ast.Attribute) or target.attr not in TRL_MODEL_CONFIG_KEYS:
            continue
        if not any(o is obj for o in ex.program.objects(target.value)):
            continue
        name = TRL_MODEL_CONFIG_KEYS[target.attr]
        line = target.lineno
        why = Unknown(f"{ex.text.short(target.value)}.{target.attr} is changed at line {line}")
        site.fields[name] = Field(name, why, ex.span(target), provenance=f"set at line {line}", raw_name=target.attr)


def link_trl(ex: PythonExtractor) -> None:
    """Key each ModelConfig's site by the first get_peft_config call that reads it (its LoraConfig is
    the config object trainers receive); later calls on the same ModelConfig are aliases of it."""
    sites_by_obj: dict[int, ast.Call] = {}
    for key in list(ex.sites):
        site = ex.sites[key]
        if site.origin == "trl.ModelConfig":
            for o in ex.program.evaluator.objects(key):
                if is_trl_model_config(o):
                    sites_by_obj[id(o)] = key
    for call, point in ex.program.calls_named(frozenset({"get_peft_config"})):
        qual = ex.program.qualname(call.func) or ""
        if not (qual.startswith("trl.") and qual.rsplit(".", 1)[-1] == "get_peft_config"):
            continue
        made = ex.program.value(call).value
        if getattr(made, "kind", None) != "lora_config":
            continue  # use_peft=False: get_peft_config returns None
        configs = made.extra.get("model_configs", [])
        if len(configs) != 1:
            continue  # not one ModelConfig that is known here
        obj = configs[0]
        key = sites_by_obj.get(id(obj))
        if key is None:
            if isinstance(obj.node, ast.Call):
                continue  # a ModelConfig(...) that is not a site (it has no site when use_peft=False)
            if ex._full(call):
                return
            ex.sites[call] = _parsed_site(ex, obj)
            ex.points[call] = point
            sites_by_obj[id(obj)] = call
        elif isinstance(key, ast.Call) and key is not call and ex.program.evaluator.created(key) is obj:
            # still keyed by the ModelConfig(...) call: re-key it by this get_peft_config call
            ex.sites[call] = ex.sites.pop(key)
            ex.points[call] = point
            ex.points.pop(key, None)
            ex._trl_model_configs[call] = key
            sites_by_obj[id(obj)] = call
        elif key is not call:
            ex._trl_aliases[call] = key


def finish_trl(ex: PythonExtractor) -> None:
    """After applications are linked: a ModelConfig site whose model was not found through a trainer
    or get_peft_model gets its model_name_or_path as the base model."""
    for key, site in ex.sites.items():
        if site.origin != "trl.ModelConfig" or site.base_model is not None or site.hints.model_library is not None:
            continue
        made_by = ex._trl_model_configs.get(key, key)
        if not isinstance(made_by, ast.Call):
            continue
        name_arg = argument(made_by, "model_name_or_path", None)
        if name_arg is not None:
            site.base_model = ex._field("base_model", name_arg, None)
