"""The libraries `loralint verify` needs (torch, transformers, peft), imported once per process."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from loralint.engine import UsageError

INSTALL_HINT = "pip install 'loralint[verify]'"

# The libraries whose version decides the modules and counts the knowledge base records.
_COUNTED_BY = ("transformers", "peft")


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


def version_differences(installed: dict[str, str]) -> list[tuple[str, str, str]]:
    """(library, installed, recorded) for each of transformers and peft whose installed version is
    not the one loralint's knowledge base was generated with (a local build tag such as +cpu aside)."""
    from loralint.knowledge.models import knowledge_versions

    recorded = knowledge_versions()
    out = []
    for lib in _COUNTED_BY:
        have, want = installed.get(lib), recorded.get(lib)
        if isinstance(have, str) and isinstance(want, str) and _release(have) != _release(want):
            out.append((lib, have, want))
    return out


def version_note(installed: dict[str, str]) -> str | None:
    """One line for the run when the installed libraries are not the knowledge base's: a static count
    that PEFT contradicts (LORA253) may then be the version difference, not a bug."""
    differences = version_differences(installed)
    if not differences:
        return None
    have = " and ".join(f"{lib} {v}" for lib, v, _ in differences)
    want = " and ".join(f"{lib} {v}" for lib, _, v in differences)
    pins = " ".join(f"{lib}=={v}" for lib, _, v in differences)
    verb = "is not the version" if len(differences) == 1 else "are not the versions"
    return (f"the installed {have} {verb} loralint's knowledge base was generated with ({want}): where they "
            f"build a model differently, loralint's static counts differ from PEFT's (LORA253); "
            f"`pip install {pins}` matches it, or regenerate it from a clone with scripts/generate_knowledge.py")


def _release(version: str) -> str:
    return version.split("+", 1)[0].strip()
