"""The knowledge base's indexes, read on first use: which model types it covers (data/index.json), the
hand-curated hub ids (checkpoints.json), and the model type of a transformers class (data/config_keys.json).

Apart from loralint.knowledge.models (which re-exports all of it) so that resolving a model id, as every run
with a base model does, even a warm one whose findings come from the cache, does not import the module
expansion: its dataclasses and the expression evaluator were 5 ms of such a run's start-up.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints.json"


@lru_cache(maxsize=1)
def _index() -> dict[str, Any]:
    with open(DATA_DIR / "index.json", encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=64)
def _arch(model_type: str) -> dict[str, Any] | None:
    entry = _index()["model_types"].get(model_type)
    if entry is None:
        return None
    with open(DATA_DIR / entry["file"], encoding="utf-8") as fh:
        return json.load(fh)


def known_model_types() -> list[str]:
    """Model types the knowledge base covers (remote-code and unbuildable types excluded)."""
    return sorted(_index()["model_types"])


def knowledge_versions() -> dict[str, Any]:
    """transformers / peft / torch versions the data was generated with, plus coverage numbers."""
    idx = _index()
    out = dict(idx["versions"])
    out["generated"] = idx.get("generated")
    out["coverage"] = idx.get("coverage")
    return out


def peft_facts() -> dict[str, Any]:
    """PEFT constants mirrored into the data (default targets, MoE conversion tables, head names)."""
    return _index()["peft"]


def peft_default_targets(model_type: str) -> list[str] | str | None:
    """What ``target_modules=None`` resolves to for this model type
    (peft/utils/constants.py: TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING); None: absent (PEFT raises)."""
    v = _index()["peft"]["default_target_modules"].get(model_type)
    return list(v) if isinstance(v, list) else v


def model_type_summary(model_type: str) -> dict[str, Any] | None:
    """The index entry of a model type (exactness, file), or the failure reason, or None if unknown."""
    idx = _index()
    if model_type in idx["model_types"]:
        return dict(idx["model_types"][model_type])
    if model_type in idx.get("failed", {}):
        return {"failed": idx["failed"][model_type]}
    if model_type in idx.get("remote_code_model_types", []):
        return {"failed": "remote code (trust_remote_code): not a transformers model type"}
    return None


@lru_cache(maxsize=1)
def _checkpoints() -> dict[str, dict[str, Any]]:
    with open(_CHECKPOINTS, encoding="utf-8") as fh:
        raw = json.load(fh)
    out: dict[str, dict[str, Any]] = {}
    for family in raw["checkpoints"]:
        shared = {k: v for k, v in family.items() if k not in ("ids", "config")}
        cfg = family.get("config", {})
        for mid in family["ids"]:
            out[mid.lower()] = {"model_id": mid, **shared, "config": dict(cfg)}
    return out


def lookup_checkpoint(model_id: str) -> dict[str, Any] | None:
    """A hand-curated hub id -> ``{"model_id", "model_type", "config": {shape fields}, ...}``, case-insensitive.

    ``config`` holds the well-known published config.json shape fields and can be passed straight to
    :func:`load_model_info`.
    """
    if not model_id:
        return None
    key = model_id.strip().lower().rstrip("/")
    quantized = quantization_of_id(key)
    hit = _checkpoints().get(key)
    if hit is None:
        hit = _mirror_of(key, quantized)
    if hit is None:
        return None
    return {**hit, "config": dict(hit["config"]), "quantized": quantized}


# Pre-quantized repositories, by the suffix their publishers give them (TheBloke's -GPTQ / -AWQ / -GGUF,
# unsloth's -bnb-4bit and -unsloth-bnb-4bit, Qwen's -GPTQ-Int4 / -AWQ, hugging-quants' -AWQ-INT4 ...).
_QUANT_SUFFIX = re.compile(
    r"[-_.](?:(?P<gptq>gptq(?:[-_.]?int[48])?)|(?P<awq>awq(?:[-_.]?int4)?)|(?P<gguf>gguf)"
    r"|(?:unsloth[-_.])?(?P<bnb4>bnb[-_.]?4bit)|(?P<bnb8>bnb[-_.]?8bit))$")


# Organisations that republish other people's checkpoints under the same name (mirrors, quantizers).
_MIRROR_ORGS = frozenset({
    "unsloth", "nousresearch", "thebloke", "hugging-quants", "casperhansen", "techxgenus", "modelcloud",
    "bartowski", "maziyarpanahi", "lonestriker", "solidrust", "study-hjt", "llm-research", "modelscope",
    "neuralmagic", "redhatai", "lmstudio-community", "qwen", "mistralai", "meta-llama", "google",
})


def quantization_of_id(model_id: str) -> str | None:
    """"gptq" / "awq" / "gguf" / "bnb-4bit" / "bnb-8bit" when the repository name says the weights are
    pre-quantized, else None."""
    m = _QUANT_SUFFIX.search(model_id.strip().lower().rstrip("/"))
    if m is None:
        return None
    kind = m.lastgroup
    return {"bnb4": "bnb-4bit", "bnb8": "bnb-8bit"}.get(kind, kind)


def _strip_quant(name: str) -> str:
    prev = None
    while prev != name:  # "...-Instruct-AWQ-INT4", "...-unsloth-bnb-4bit"
        prev, name = name, _QUANT_SUFFIX.sub("", name)
    return name


@lru_cache(maxsize=1)
def _by_name() -> dict[str, list[dict[str, Any]]]:
    """Index entries by repository name without the organisation, "-hf" and quantization suffixes."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, entry in _checkpoints().items():
        name = _strip_quant(key.rsplit("/", 1)[-1]).removesuffix("-hf")
        out.setdefault(name, []).append(entry)
    return out


def _mirror_of(key: str, quantized: str | None) -> dict[str, Any] | None:
    """The family of a mirror or pre-quantized copy ("TheBloke/Llama-2-7B-Chat-GPTQ" -> Llama-2-7b-chat-hf):
    only when its organisation republishes checkpoints or its name says it is quantized, and only when every
    index entry of that name has the same shape."""
    org, _, name = key.rpartition("/")
    if quantized is None and org not in _MIRROR_ORGS:
        return None
    found = _by_name().get(_strip_quant(name).removesuffix("-hf"), [])
    shapes = {json.dumps([e["model_type"], e["config"]], sort_keys=True) for e in found}
    if len(shapes) != 1:
        return None
    return {**found[0], "model_id": key, "mirror_of": found[0]["model_id"]}


@lru_cache(maxsize=1)
def _config_keys() -> dict[str, Any]:
    """data/config_keys.json (generated): per model type, the keys a config class accepts under another name
    and the top-level keys a composite class moves into a sub-config; class name -> model_type."""
    try:
        with open(DATA_DIR / "config_keys.json", encoding="utf-8") as fh:
            return json.load(fh)
    except OSError:  # an older data directory: attribute_map from the per-type files only
        return {"probed": [], "aliases": {}, "flat": {}, "classes": {}}


def model_type_of_class(class_name: str) -> str | None:
    """The model_type a transformers model class belongs to (``Qwen2VLForConditionalGeneration`` ->
    ``qwen2_vl``), from transformers' Auto mappings; None for Auto classes and unknown names."""
    return _config_keys()["classes"].get(class_name)


def short_repr(v: Any, width: int = 60) -> str:
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = width
    r.maxlist = r.maxdict = 4
    return r.repr(v)
