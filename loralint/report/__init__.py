"""report: one formatter a format. Each takes a RunResult and returns the text to print."""

from __future__ import annotations

import math
from typing import Any

from loralint.sites import ConfigSite, is_known

FORMATS = ("text", "json", "sarif", "github", "lsp")


def jsonable(value: Any) -> Any:
    """A field value as JSON: sets become sorted lists, Unknown becomes null."""
    if not is_known(value):
        return None
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def site_scaling(site: ConfigSite) -> float | None:
    from loralint.checks._util import effective, number
    from loralint.checks.hyperparams import scaling_of

    r, r_known = effective(site, "r")
    alpha, alpha_known = effective(site, "lora_alpha")
    rslora, rslora_known = effective(site, "use_rslora")
    if not (r_known and alpha_known and rslora_known):
        return None
    r, alpha = number(r), number(alpha)
    if r is None or alpha is None or r <= 0:
        return None
    return scaling_of(alpha, r, bool(rslora))
