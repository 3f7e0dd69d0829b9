"""Unsloth's FastVisionModel / FastModel.get_peft_model: the finetune_* flags it builds its targets from.

Read here (every flag statically known, or nothing); turned into the target regex by the resolve
stage, which knows the model's modules (loralint/knowledge/unsloth.py mirrors get_peft_regex).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from loralint.knowledge.unsloth import FLAG_DEFAULTS, FLAGS
from loralint.program.evaluate import argument, plain
from loralint.sites import ConfigSite

if TYPE_CHECKING:
    from loralint.extract.python import PythonExtractor

# FastBaseModel.get_peft_model(model, r, target_modules, lora_alpha, lora_dropout, bias, <four flags>, ...)
_FLAG_POSITIONS = {name: 6 + index for index, name in enumerate(FLAGS[:4])}


def finetune_flags(ex: PythonExtractor, call: ast.Call, site: ConfigSite) -> dict[str, bool] | None:
    """The flags in force, or None when one of them (or **kwargs) cannot be read."""
    if site.opaque:
        return None
    flags: dict[str, bool] = {}
    for name in FLAGS:
        node = argument(call, name, _FLAG_POSITIONS.get(name))
        if node is None:
            flags[name] = FLAG_DEFAULTS[name]
            continue
        value = plain(ex.program.value(node))
        if not isinstance(value, bool):
            return None
        flags[name] = value
    return flags
