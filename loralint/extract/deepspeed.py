"""The ZeRO facts LORA410 needs from a DeepSpeed configuration: a dict written in place or a JSON file
named by path (a script's `deepspeed=`, a trainer YAML's `deepspeed:`, accelerate's
`deepspeed_config_file`). Files are read bounded, relative to the file that names them, then to the
working directory; nothing else is read."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loralint.dependencies import Dependency

MAX_DEEPSPEED_BYTES = 1 << 20  # a DeepSpeed JSON is a few KB; a larger one is not read
# DeepSpeed's own zero config (deepspeed/runtime/zero/config.py) names the flag
# gather_16bit_weights_on_model_save, with stage3_gather_16bit_weights_on_model_save as its alias and the
# deprecated stage3_gather_fp16_weights_on_model_save; accelerate's get_state_dict and transformers' save_model
# ask the engine (zero_gather_16bit_weights_on_model_save()), so every spelling counts.
GATHER_KEYS = ("stage3_gather_16bit_weights_on_model_save", "gather_16bit_weights_on_model_save",
               "stage3_gather_fp16_weights_on_model_save")


def zero_facts(config: Any, source: str) -> dict[str, Any] | None:
    """{"stage", "gather" (bool or None when not judged), "gather_set", "source"}; None without a ZeRO stage."""
    if not isinstance(config, dict):
        return None
    zero = config.get("zero_optimization")
    if not isinstance(zero, dict):
        return None
    stage = zero.get("stage")
    if isinstance(stage, bool) or not isinstance(stage, int):
        return None
    gather = next((zero[key] for key in GATHER_KEYS if key in zero), None)
    return {"stage": stage, "gather": gather if isinstance(gather, bool) else None,
            "gather_set": any(key in zero for key in GATHER_KEYS), "source": source}


def read_json_near(referrer: str, name: str, reads: list[Dependency] | None = None) -> Any:
    """The JSON file `name` names, relative to `referrer`'s folder, then to the working directory; None
    when it cannot be read or parsed. `reads`: where a cached result must note each path tried and what it
    held (loralint/dependencies.py), so that editing the JSON alone is seen by a warm run."""
    from loralint.dependencies import read_dependency
    from loralint.safe_read import read_text_limited

    candidates = [name] if os.path.isabs(name) else [os.path.join(os.path.dirname(referrer), name), name]
    for path in candidates:
        try:
            if reads is None:
                return json.loads(read_text_limited(path, MAX_DEEPSPEED_BYTES))
            return json.loads(read_dependency(path, reads))  # bytes: json detects UTF-8/16/32
        except (OSError, ValueError, RecursionError):
            continue
    return None


def zero_facts_of(value: Any, referrer: str, in_place: str = "the deepspeed mapping written in place",
                  reads: list[Dependency] | None = None) -> dict[str, Any] | None:
    """ZeRO facts of a `deepspeed` value: a mapping, or the path of a JSON file (read near `referrer`)."""
    if isinstance(value, str) and value.endswith(".json"):
        return zero_facts(read_json_near(referrer, value, reads), value)
    return zero_facts(value, in_place)
