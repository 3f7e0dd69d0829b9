"""Adapters a script loads to train again (resumed training), as sites apart from the configurations it
builds: `PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)` (or
`AutoPeftModelFor*.from_pretrained(adapter_dir, is_trainable=True)`) whose model a trainer then trains.

The LoRA settings of such an adapter are in its saved adapter_config.json. When that file is in the
repository (the directory named relative to the script, then to the working directory; read bounded,
never anything else) the site carries its fields; otherwise it has none and is marked opaque, so no rule
assumes PEFT's default rank. The sites go to `FileResult.loaded`: they are not configurations the file
builds (the JSON report's `configs` does not list them), and only the training rules run on them
(engine.py, LOADED_CHECKS). A loaded adapter left frozen is LORA407's (extract/training.py).
"""

from __future__ import annotations

import ast
import os
from typing import TYPE_CHECKING

from loralint.extract.trainers import adapter_loads, trainer_of
from loralint.program.evaluate import argument, plain
from loralint.program.values import OneOf
from loralint.sites import ConfigSite

if TYPE_CHECKING:
    from loralint.dependencies import Dependency
    from loralint.extract.python import PythonExtractor

LOADED_ORIGIN = "peft.PeftModel.from_pretrained"


def loaded_sites(ex: PythonExtractor) -> dict[ast.Call, ConfigSite]:
    """A site for each adapter loaded trainable (is_trainable=True, statically) that a trainer trains."""
    program = ex.program
    out: dict[ast.Call, ConfigSite] = {}
    for call, qual, loaded in adapter_loads(program):
        flag = argument(call, "is_trainable", None)
        if flag is None or plain(program.value(flag)) is not True:
            continue  # frozen (LORA407) or not known
        if loaded is None or trainer_of(program, [loaded]) is None:
            continue
        auto = qual.split(".")[-2].startswith("AutoPeftModel")
        site = ConfigSite(path=ex.path, span=ex.span(call), origin=LOADED_ORIGIN)
        path_node = argument(call, "pretrained_model_name_or_path" if auto else "model_id", 0 if auto else 1)
        _read_saved_config(ex, site, path_node)
        if not auto:
            base = argument(call, "model", 0)
            if base is not None:
                ex._link_model(site, base, None)
        out[call] = site
    return out


def _read_saved_config(ex: PythonExtractor, site: ConfigSite, node: ast.AST | None) -> None:
    """The fields of the adapter_config.json in the directory `node` names, when it is in the repository."""
    value = ex.program.value(node) if node is not None else None
    name = plain(value) if value is not None else None
    if not isinstance(name, str) or isinstance(value.value, OneOf):
        site.opaque = "the adapter directory it loads is not known statically"
        return
    found = _adapter_config(ex.path, name, ex.reads)
    if found is None:
        site.opaque = f"the saved adapter_config.json of {name!r} is not in the repository"
        return
    display, text = found
    from loralint.extract.adapter_json import extract_json
    from loralint.extract.bounds import LimitReached
    from loralint.extract.source import SourceSyntaxError
    from loralint.limits import AnalysisLimit

    try:
        saved = extract_json(display, text)
    except (SourceSyntaxError, LimitReached, AnalysisLimit, ValueError, RecursionError):
        saved = []  # a malformed file is the JSON extractor's to report when it is checked itself
    if len(saved) != 1 or saved[0].origin != "adapter_config":
        site.opaque = f"{display} is not one readable adapter configuration"
        return
    site.fields = saved[0].fields
    site.opaque = saved[0].opaque
    site.hints.loaded_from = display


def _adapter_config(script: str, name: str, reads: list[Dependency]) -> tuple[str, str] | None:
    """(display path, text) of `name`/adapter_config.json next to the script, else from the working directory.
    Each path tried goes to `reads`, with what was there: the cache re-checks them (loralint/dependencies.py)."""
    from loralint.dependencies import read_dependency

    if os.path.isabs(name):
        return None  # a path on the training machine, not a file of this repository
    for directory in (os.path.join(os.path.dirname(script), name), name):
        path = os.path.join(directory, "adapter_config.json")
        try:
            return os.path.normpath(path), read_dependency(path, reads).decode("utf-8", errors="replace")
        except (OSError, ValueError):
            continue
    return None
