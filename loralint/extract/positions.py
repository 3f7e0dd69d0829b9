"""Source positions for libcst nodes without `libcst.metadata`.

`libcst.metadata` costs ~0.5 s to import and its resolvers many times a parse. A position is all
we need, so we regenerate the code once through a CodegenState that tracks line and column, the
same mechanism libcst's own PositionProvider uses (libcst/metadata/position_provider.py).
"""

from __future__ import annotations

import re
from typing import Iterator

import libcst as cst
from libcst._nodes.internal import CodegenState

Position = tuple[int, int, int, int]  # start line, start column, end line, end column (0-based cols)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # as the fixer and the other formats count lines: CR-only files too


class _Recorder(CodegenState):
    def __init__(self, module: cst.Module) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.line = 1
        self.column = 0
        self._stack: list[tuple[int, int]] = []
        self.positions: dict[cst.CSTNode, Position] = {}

    def _advance(self, text: str) -> None:
        if "\r" in text:
            breaks = _LINE_BREAK.findall(text)
            if breaks:
                self.line += len(breaks)
                self.column = len(text) - max(text.rfind("\n"), text.rfind("\r")) - 1
                return
        newlines = text.count("\n")
        if newlines:
            self.line += newlines
            self.column = len(text) - text.rfind("\n") - 1
        else:
            self.column += len(text)

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        for token in self.indent_tokens:
            self._advance(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self._advance(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._stack.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._stack.pop()
        # A syntactic position (recorded below) is more precise than this whitespace-inclusive one.
        self.positions.setdefault(node, (start[0], start[1], self.line, self.column))

    # Nodes call this around their syntactic part (without owned whitespace or trailing commas).
    def record_syntactic_position(
        self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None, end_node: cst.CSTNode | None = None
    ) -> Iterator[None]:
        return _SyntacticRecord(self, node, start_node, end_node)


class _SyntacticRecord:
    def __init__(self, rec: _Recorder, node, start_node, end_node) -> None:
        self.rec, self.node, self.start_node, self.end_node = rec, node, start_node, end_node

    def __enter__(self) -> None:
        self.start = (self.rec.line, self.rec.column)

    def __exit__(self, *exc) -> None:
        rec = self.rec
        start = self.start
        end = (rec.line, rec.column)
        if self.start_node is not None and self.start_node in rec.positions:
            p = rec.positions[self.start_node]
            start = (p[0], p[1])
        if self.end_node is not None and self.end_node in rec.positions:
            p = rec.positions[self.end_node]
            end = (p[2], p[3])
        rec.positions[self.node] = (start[0], start[1], end[0], end[1])


def compute_positions(module: cst.Module) -> dict[cst.CSTNode, Position]:
    recorder = _Recorder(module)
    module._codegen(recorder)
    return recorder.positions
