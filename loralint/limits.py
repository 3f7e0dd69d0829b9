"""Bounds on analysis. When one is reached, the part it guards is *not evaluated* (rules that need it
stay quiet) and LORA906 analysis-limit says which bound and where: never a hang, never gigabytes,
never a wrong answer. Stdlib only: the knowledge base and the checks both raise it."""

from __future__ import annotations

__all__ = ["MAX_INT_BITS", "AnalysisLimit", "Budget"]

# Bits of an integer read from a checked file (Python, YAML, JSON) or computed from one: larger ones
# are unknown. No LoRA setting needs more than 64, and the rules turn values into floats (at most
# 2**1024) and multiply them by model sizes; 256 leaves room for both.
MAX_INT_BITS = 256


class AnalysisLimit(Exception):
    """A bound of loralint's own was reached. Not a ValueError on purpose: callers that turn a
    config PEFT would reject into "no advice" must not swallow it; it is reported (LORA906).

    `field` names the LoraConfig field whose value reached the bound, when one did."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Budget:
    """Work allowed for one analysis, in units of roughly a nanosecond of matching (see safe_regex).
    Charged before the work is done, so running out stops before the expensive call, and the same
    input always stops at the same place. A hot path may decrement `left` itself and call
    `charge(0)` when it goes negative."""

    __slots__ = ("left", "limit", "what")

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.left = limit
        self.what = what  # what the budget is for, for the message

    def charge(self, units: int, field: str | None = None) -> None:
        self.left -= units
        if self.left < 0:
            raise AnalysisLimit(f"{self.what} needs more work than loralint's bound ({self.limit:,} units); "
                                "not evaluated", field)
