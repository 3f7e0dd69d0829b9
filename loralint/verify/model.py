"""The transformers side: which class to build, remote code, and the modules PEFT adapted (folded by layer)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from loralint.verify.report import ModuleGroup
from loralint.verify.stack import Stack

DEVICES = ("meta", "auto", "cuda", "cpu")


ADAPTER = "default"


_UNSLOTH_CLASSES = {"FastLanguageModel": "causal", "FastVisionModel": "vision", "FastModel": "vision"}


_TASK_CLASSES = {
    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "TOKEN_CLS": "AutoModelForTokenClassification",
    "QUESTION_ANS": "AutoModelForQuestionAnswering",
    "FEATURE_EXTRACTION": "AutoModel",
}


_MODEL_CLASS = re.compile(
    r"^(AutoModel\w*|\w+(Model|ForCausalLM|ForConditionalGeneration|ForSequenceClassification|"
    r"ForTokenClassification|ForQuestionAnswering|ForMaskedLM|LMHeadModel|ForImageTextToText))$"
)


# Path segments of vision / audio towers in multimodal models (transformers 5 naming).
_TOWER_SEGMENTS = frozenset(
    {"visual", "vision_tower", "vision_model", "vision_encoder", "vision", "image_encoder", "audio_tower",
     "audio_model", "audio_encoder", "multi_modal_projector", "mm_projector"}
)


# peft/peft_model.py: PeftModelForSequenceClassification & co. add these heads to modules_to_save.
_HEAD_NAMES = ("score", "classifier", "qa_outputs")


_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)")


_PLACEHOLDERS = "ijklmn"


def choose_model_class(stack: Stack, hinted: str | None, task: str | None, config: dict[str, Any]) -> tuple[str, str]:
    """The transformers class to build: the one the script loads, else the one the task implies.
    Returns (class name, a note when the choice needed a guess)."""
    from transformers.models.auto import modeling_auto

    transformers = stack.transformers
    model_type = config.get("model_type")
    causal = modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    vision = modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    def causal_or_vision() -> str:
        if model_type in vision and (model_type not in causal or "vision_config" in config):
            return "AutoModelForImageTextToText"
        return "AutoModelForCausalLM"

    if hinted in _UNSLOTH_CLASSES:
        if _UNSLOTH_CLASSES[hinted] == "vision":
            return causal_or_vision(), ""
        return "AutoModelForCausalLM", ""
    if hinted and _MODEL_CLASS.match(hinted) and _exists(transformers, hinted):
        if hinted == "AutoModelForCausalLM" and model_type not in causal and model_type in vision:
            return "AutoModelForImageTextToText", (
                f"transformers has no AutoModelForCausalLM for model_type {model_type!r}; built "
                "AutoModelForImageTextToText instead")
        return hinted, ""
    if task == "CAUSAL_LM":
        return causal_or_vision(), ""
    if task in _TASK_CLASSES:
        return _TASK_CLASSES[task], ""
    architectures = config.get("architectures")
    if (isinstance(architectures, list) and architectures and isinstance(architectures[0], str)
            and _exists(transformers, architectures[0])):
            return architectures[0], (f"no task_type and no model class in the source: built {architectures[0]}, "
                                      "the class config.json names")
    if model_type in causal:
        return "AutoModelForCausalLM", "no task_type and no model class in the source: built AutoModelForCausalLM"
    return "AutoModel", "no task_type and no model class in the source: built AutoModel"


def _exists(transformers, name: str) -> bool:
    try:
        obj = getattr(transformers, name)
    except (AttributeError, ImportError, RuntimeError):
        return False
    return hasattr(obj, "from_config") or hasattr(obj, "_from_config")


def _needs_remote_code(stack: Stack, config: dict[str, Any]) -> bool:
    """True when transformers' own classes cannot build this config: an unknown model_type (the
    model repository's code would define it, through auto_map)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = config.get("model_type")
    return not (isinstance(model_type, str) and model_type in CONFIG_MAPPING)


def _remote_reason(stack: Stack, config: dict[str, Any]) -> str:
    model_type = config.get("model_type")
    auto_map = config.get("auto_map")
    version = stack.transformers.__version__
    if isinstance(auto_map, dict) and auto_map:
        files = sorted({str(v).split(".", 1)[0] if isinstance(v, str) else str(v[0]).split(".", 1)[0]
                        for v in auto_map.values() if v})
        return (f"model_type {model_type!r} is defined by code in the model repository (auto_map: "
                f"{', '.join(f + '.py' for f in files)}); loralint does not import or run it without "
                "--trust-remote-code")
    if not isinstance(model_type, str):
        return "its config.json has no model_type, so transformers cannot tell which architecture to build"
    return (f"transformers {version} does not know model_type {model_type!r} and config.json has no auto_map: "
            "it may need a newer transformers, or the repository's code (--trust-remote-code)")


def _remote_location(resolution, online: bool):
    source = getattr(resolution, "source", "") or ""
    detail = getattr(resolution, "detail", "") or ""
    if ("local folder" in source or "Hugging Face cache" in source) and detail:
        return str(Path(detail).parent)
    if "Hugging Face Hub" in source and online:
        return resolution.model_id
    return None


def _config_from_dict(transformers, data: dict[str, Any]):
    """A PretrainedConfig from config.json's dict, with transformers' own class for its model_type
    (never AutoConfig.from_pretrained on a path: that could read the repository's code)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    data = dict(data)
    model_type = data.pop("model_type")
    data.pop("auto_map", None)  # the built-in class serves; auto_map would name repository code
    return CONFIG_MAPPING[model_type].from_dict(data)


def fold(name: str) -> tuple[str, int | None]:
    """`model.layers.3.mlp.experts.7.w1` → (`model.layers.{i}.mlp.experts.{j}.w1`, 3)."""
    counter = iter(_PLACEHOLDERS)
    first: list[int] = []

    def sub(match: re.Match) -> str:
        if not first:
            first.append(int(match.group(0)))
        return "{" + next(counter, "n") + "}"

    return _INDEX.sub(sub, name), (first[0] if first else None)


def _group(groups: dict[str, ModuleGroup], name: str) -> ModuleGroup:
    pattern, index = fold(name)
    group = groups.get(pattern)
    if group is None:
        group = groups[pattern] = ModuleGroup(pattern)
    group.count += 1
    if index is not None and index not in group.indices:
        group.indices.append(index)
    return group


def _describe_layer(group: ModuleGroup, layer, torch, parameter: bool = False) -> None:
    base = layer.get_base_layer()
    if not parameter:
        group.kind = type(base).__name__
    in_f, out_f = getattr(layer, "in_features", None), getattr(layer, "out_features", None)
    if isinstance(in_f, int) and isinstance(out_f, int) and group.in_features is None:
        group.in_features, group.out_features = in_f, out_f
    r = layer.r.get(ADAPTER) if isinstance(getattr(layer, "r", None), dict) else None
    if r is not None and r not in group.ranks:
        group.ranks.append(r)
    scaling = layer.scaling.get(ADAPTER) if isinstance(getattr(layer, "scaling", None), dict) else None
    if isinstance(scaling, (int, float)):
        scaling = float(scaling)
        if scaling not in group.scalings:
            group.scalings.append(scaling)
    for pname, param in layer.named_parameters():
        if "lora_" in pname and ADAPTER in pname.split(".") and not pname.startswith("base_layer."):
            group.lora_params += param.numel()


def _special_modules(stack: Stack, model) -> dict[str, Any]:
    """Names, in the model PEFT sees, of modules that are rarely meant as LoRA targets."""
    torch = stack.torch
    names = {id(m): n for n, m in model.named_modules()}
    out: dict[str, Any] = {"output": None, "heads": [], "routers": set()}
    get_out = getattr(model, "get_output_embeddings", None)
    if callable(get_out):
        try:
            module = get_out()
        except Exception:  # noqa: BLE001 - some models raise NotImplementedError
            module = None
        if module is not None:
            out["output"] = names.get(id(module))
    out["heads"] = [h for h in _HEAD_NAMES if isinstance(getattr(model, h, None), torch.nn.Module)]
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("gate", "router"):
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            if hasattr(parent, "experts"):
                out["routers"].add(name)
    return out


def _in_tower(name: str) -> bool:
    return any(seg in _TOWER_SEGMENTS for seg in name.split("."))


def _fold_list(names: list[str], limit: int = 3) -> str:
    groups: dict[str, int] = {}
    for n in names:
        pattern, _ = fold(n)
        groups[pattern] = groups.get(pattern, 0) + 1
    items = [f"{p} × {c}" if c > 1 else p for p, c in groups.items()]
    return ", ".join(items[:limit]) + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → "0-2, 5, 7-8"."""
    values = sorted(set(indices))
    parts: list[str] = []
    start = prev = values[0]
    for v in values[1:]:
        if v == prev + 1:
            prev = v
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        start = prev = v
    parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ", ".join(parts)
