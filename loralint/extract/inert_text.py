"""Before the parse: whether every word of a Python file is, by its text alone, in an import or an annotation.

extract/inert_names.py answers the same question on the parse (and more: it reads f-strings, and anything
else this cannot pin down). For the modules it leaves out, the parse was most of their cost and found nothing:
peft's tuners, which import LoraConfig for their annotations (21 of its candidates, 460 KB). So the common
shapes are told from the text first:
- `import ...` and `from M import ...` (parenthesised or not), the word among the names imported, not
  followed by `as`;
- a `def` whose parameter list holds the word in a parameter's annotation (after `name:`, before the
  parameter's `=` or `,`), or whose return annotation does (after `->`, before the header's `:`);
- `target: annotation` with a name or dotted name as the target (not a keyword: `else: x` is no
  annotation), the word in the annotation before any `=`.
The text is read as the tokenizer reads it, for where a statement begins: comments and strings skipped with
the prefilter's pattern, brackets counted, a statement ending at a line break or `;` outside any bracket (a
backslash before the line break continues it). Anything else counts as a use here, a word inside an f-string
included: the file is then parsed and inert_names decides. A file that does not parse and names the words
only so is left out without LORA901, as a file naming them only in comments is.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable

from loralint.extract import NOT_CODE

# Tokens that end, open or continue a statement, found from the start of the text: a comment or string (the
# prefilter's pattern: a lone quote opens none), a bracket, a backslash continuation, a line break, `;`.
_SCAN = re.compile(NOT_CODE + rb"|[()\[\]{}]|\\\r?\n|[\n;]", re.S)
_STRINGS = re.compile(NOT_CODE, re.S)
_BRACKETS = re.compile(rb"[()\[\]{}]")
_WORD = re.compile(rb"\w+")
# What follows a word that may be inert: the end of an imported name, a parameter's annotation, an annotation.
# A call, an attribute, a subscript or `as` follow a use (or a place this does not read).
_END = re.compile(rb"[ \t]*(?:[,)\]|:=;#\r\n]|$)")
_IMPORT = re.compile(rb"[ \t]*(?:import[ \t]|from[ \t][\w. \t]*?\bimport[ \t]*\(?)[\w \t\r\n,.]*")
_DEF = re.compile(rb"[ \t]*(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(")
_PARAMETER = re.compile(rb"[ \t\r\n]*\**[ \t\r\n]*\w+[ \t\r\n]*:[^=]*")
_RETURNS = re.compile(rb"[ \t\r\n]*->[^:=]*")
_ANNOTATED = re.compile(rb"[ \t]*([A-Za-z_]\w*)(?:[ \t]*\.[ \t]*[A-Za-z_]\w*)*[ \t]*:[^=]*")
_LAMBDA = re.compile(rb"\blambda\b")  # its parameters' commas and its `:` sit at the level of a def's parameters
_KEYWORDS = frozenset(word.encode() for word in keyword.kwlist)


def only_inert_text(data: bytes, starts: Iterable[int]) -> bool:
    """True when each offset of `starts` (where a word begins, ascending, each outside comments and plain
    strings; -1: a quote opens no string) is in an import without `as` or in an annotation, as told from the
    text; False when one is not, or this cannot tell. `starts` is read no further than the first word that is
    plainly a use."""
    found = []
    for at in starts:  # most modules use a word at once (a call, an attribute): known without a scan
        if at < 0 or _END.match(data, _WORD.match(data, at).end()) is None:  # type: ignore[union-attr]
            return False
        found.append(at)
    if not found:
        return False
    words = iter(found)
    at: int | None = next(words)
    depth, statement = 0, 0
    for token in _SCAN.finditer(data):
        begin = token.start()
        while at is not None and at < begin:
            if not _inert(data, statement, at):
                return False
            at = next(words, None)
        if at is None:
            return True
        if at < token.end():
            return False  # inside a string (an f-string's field): inert_names reads it
        kind = data[begin]
        if kind in b"([{":
            depth += 1
        elif kind in b")]}":
            depth -= 1
            if depth < 0:
                return False
        elif (kind == 0x0A or kind == 0x3B) and depth == 0:  # \n, ;
            statement = token.end()
        elif token.end() - begin == 1 and kind in b"'\"":
            return False  # a quote that opens no string: the file does not tokenize
    while at is not None:
        if not _inert(data, statement, at):
            return False
        at = next(words, None)
    return True


def _inert(data: bytes, statement: int, at: int) -> bool:
    """Whether the word at `at`, in the statement that begins at `statement`, is an imported name or in an
    annotation."""
    head = _STRINGS.sub(lambda m: b" " * (m.end() - m.start()), data[statement:at])
    if _IMPORT.fullmatch(head):
        return True
    found = _DEF.match(head)
    if found is not None:
        parameters = head[found.end():]
        view, closed = _level(parameters)
        if closed is None:  # in the parameter list: the last parameter's annotation
            return _PARAMETER.fullmatch(view.rsplit(b",", 1)[-1]) is not None and _LAMBDA.search(view) is None
        view, closed = _level(parameters[closed + 1:])
        return closed is None and _RETURNS.fullmatch(view) is not None
    view, closed = _level(head)
    found = _ANNOTATED.fullmatch(view) if closed is None else None
    return found is not None and found.group(1) not in _KEYWORDS


def _level(text: bytes) -> tuple[bytes, int | None]:
    """`text` at its own bracket level: a closed group's content left out (its brackets kept), an open one
    cut after its bracket; and where a bracket closes one opened before the text (None if none does)."""
    kept, depth, last = [], 0, 0
    for found in _BRACKETS.finditer(text):
        at = found.start()
        if text[at] in b"([{":
            if depth == 0:
                kept.append(text[last:at + 1])
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                kept.append(text[last:at])
                return b"".join(kept), at
            if depth == 0:
                last = at
    if depth == 0:
        kept.append(text[last:])
    return b"".join(kept), None
