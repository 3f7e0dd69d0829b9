"""An accelerate config file (what `accelerate config` writes, read by `accelerate launch --config_file`):
the facts the training rules use, each with its span. Read bounded, through the YAML/JSON safe loader.

Mirrors accelerate/commands/config/config_args.py (ClusterConfig: distributed_type, num_processes,
deepspeed_config, fsdp_config) and accelerate/utils/dataclasses.py DeepSpeedPlugin.__post_init__: without
a deepspeed_config_file the plugin builds the DeepSpeed config itself, with zero_stage defaulting to 2 and
stage3_gather_16bit_weights_on_model_save set from zero3_save_16bit_model, which defaults to false; with
one, the file's zero_optimization governs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loralint.extract.deepspeed import read_json_near, zero_facts
from loralint.sites import Span

if TYPE_CHECKING:
    from loralint.dependencies import Dependency

MAX_ACCELERATE_CONFIG_BYTES = 256 * 1024  # `accelerate config` writes well under 2 KB


@dataclass(frozen=True, slots=True)
class AccelerateConfig:
    """What one accelerate config says, as far as loralint's rules care."""

    path: str  # as messages show it
    distributed_type: str  # "DEEPSPEED" | "FSDP" | "MULTI_GPU" | "NO" | ...
    distributed_span: Span
    num_processes: int | None = None
    # ZeRO facts as loralint.extract.deepspeed.zero_facts gives them, plus "flag"/"advice" for messages
    deepspeed: dict[str, Any] | None = None
    deepspeed_span: Span | None = None


def read_accelerate_config(path: str, display: str, base: str, text: str,
                           reads: list[Dependency]) -> AccelerateConfig | None:
    """The accelerate config at `path` (`display` in messages), whose text its caller read (launches.py, which
    caches the answer); None when it is not one. `base`: the folder the launch runs in, against which a
    deepspeed_config_file is resolved first. `reads` receives each other file tried and what it held
    (loralint.dependencies)."""
    from loralint.extract.bounds import LimitReached
    from loralint.extract.source import SourceSyntaxError
    from loralint.extract.yaml_positions import compose_yaml
    from loralint.limits import AnalysisLimit

    try:
        root = next(iter(compose_yaml(text)), None)  # accelerate reads JSON configs too: JSON is YAML
    except (SourceSyntaxError, LimitReached, AnalysisLimit, RecursionError, ValueError):
        return None  # not an accelerate config we can read: the launch is not used
    if root is None or root.kind != "map":
        return None
    entry = root.entry("distributed_type")
    if entry is None or not isinstance(entry[1].value, str):
        return None

    def span(node: Any) -> Span:
        return Span(display, node.start[0], node.start[1], node.end[0], node.end[1])

    kind = entry[1].value
    processes = root.get("num_processes")
    count = processes.value if processes is not None else None
    config = AccelerateConfig(display, kind, span(entry[1]),
                              count if isinstance(count, int) and not isinstance(count, bool) else None)
    if kind != "DEEPSPEED":
        return config
    section = root.get("deepspeed_config")
    if section is None or section.kind != "map":
        section_value: dict[str, Any] = {}
    else:
        section_value = section.value if isinstance(section.value, dict) else {}
    facts, where = _deepspeed(section_value, display, base, path, reads)
    node = section.get(where) if section is not None and section.kind == "map" and where else None
    return AccelerateConfig(display, kind, config.distributed_span, config.num_processes, facts,
                            span(node) if node is not None else config.distributed_span)


def _deepspeed(section: dict[str, Any], display: str, base: str, path: str,
               reads: list[Dependency]) -> tuple[dict[str, Any] | None, str | None]:
    """(ZeRO facts, the key of deepspeed_config they come from)."""
    file = section.get("deepspeed_config_file")
    if isinstance(file, str) and file and file != "none":
        value = read_json_near(os.path.join(base, "launch"), file, reads)
        if value is None:
            value = read_json_near(path, file, reads)
        facts = zero_facts(value, f"{file}, the deepspeed_config_file of {display}")
        return facts, "deepspeed_config_file"
    stage = section.get("zero_stage", 2)
    if isinstance(stage, bool) or not isinstance(stage, int):
        return None, None
    save = section.get("zero3_save_16bit_model", False)
    facts = {"stage": stage, "gather": save if isinstance(save, bool) else None,
             "gather_set": "zero3_save_16bit_model" in section and not isinstance(save, bool),
             "source": f"zero_stage: {stage} in {display}",
             "flag": "zero3_save_16bit_model: true",
             "advice": f"set zero3_save_16bit_model: true under deepspeed_config in {display}"}
    return facts, "zero_stage" if "zero_stage" in section else None
