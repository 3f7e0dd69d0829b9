"""datasets' split strings: `train`, `train[:5000]`, `train[:10%]`, `train[10%:20%]`, `train+test`.

Mirrors datasets/arrow_reader.py (ReadInstruction, `_rel_to_abs_instr`): percent boundaries round
to the closest example (`round(boundary * num_examples / 100)`), Python slice semantics otherwise."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PART = re.compile(r"^\s*([\w.\-]+)\s*(?:\[\s*(-?\d+%?)?\s*:\s*(-?\d+%?)?\s*\])?\s*$")


@dataclass(frozen=True, slots=True)
class SplitPart:
    split: str
    start: str | None = None  # "100", "10%", "-5"
    end: str | None = None

    @property
    def sliced(self) -> bool:
        return self.start is not None or self.end is not None


def parse_split(text: str) -> list[SplitPart] | None:
    """The parts of a split string, or None when it is not one datasets reads."""
    parts = []
    for piece in text.split("+"):
        match = _PART.match(piece)
        if not match:
            return None
        parts.append(SplitPart(match.group(1), match.group(2), match.group(3)))
    return parts or None


def _bound(text: str | None, total: int) -> int | None:
    if text is None:
        return None
    if text.endswith("%"):
        return round(int(text[:-1]) * total / 100.0)
    return int(text)


def part_size(part: SplitPart, total: int | None) -> int | None:
    """The examples a part selects from a split of `total` (None: not known). Without the total, an
    absolute slice `[a:b]` (0 <= a <= b) selects b - a examples when the split is at least that long,
    which is what the user asked for; anything else needs the total."""
    if total is None:
        if part.end is not None and not part.end.endswith("%") and not part.end.startswith("-"):
            start = 0 if part.start is None else part.start
            if isinstance(start, int) or (not start.endswith("%") and not start.startswith("-")):
                return max(int(part.end) - int(start), 0)
        return None
    if not part.sliced:
        return total
    return len(range(total)[slice(_bound(part.start, total), _bound(part.end, total))])
