"""The libraries `loralint verify` needs (torch, transformers, peft), imported once per process."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from loralint.engine import UsageError

INSTALL_HINT = "pip install 'loralint[verify]'"


class VerifyUnavailable(UsageError):
    """torch / transformers / peft are not installed: `--verify` cannot run (exit 2)."""


@dataclass(slots=True)
class Stack:
    torch: Any
    transformers: Any
    peft: Any
    import_seconds: float

    @property
    def versions(self) -> dict[str, str]:
        return {
            "peft": self.peft.__version__,
            "transformers": self.transformers.__version__,
            "torch": self.torch.__version__,
        }


_STACK: Stack | None = None


def load_stack() -> Stack:
    """Import torch, transformers and peft (once per process); one clear line when they are missing."""
    global _STACK
    if _STACK is not None:
        return _STACK
    start = time.perf_counter()
    try:
        import peft
        import torch
        import transformers
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise VerifyUnavailable(
            f"verification needs torch, transformers and peft ({missing} is not installed): {INSTALL_HINT}"
        ) from None
    _STACK = Stack(torch, transformers, peft, time.perf_counter() - start)
    return _STACK
