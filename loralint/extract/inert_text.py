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
from collections.abc import Sequence

from loralint.extract import NOT_CODE, has_fields

# Tokens that end, open or continue a statement, found from the start of the text: a comment or string (the
# prefilter's pattern: a lone quote opens none), a bracket, a backslash continuation, a line break, `;`.
_SCAN = re.compile(NOT_CODE + rb"|[()\[\]{}]|\\\r?\n|[\n;]", re.S)
_STRINGS = re.compile(NOT_CODE, re.S)
_BRACKETS = re.compile(rb"[()\[\]{}]")
_WORD = re.compile(rb"\w+")
# What follows a word that may be inert: the end of an imported name, a parameter's annotation, an annotation.
# A call, an attribute, a subscript or `as` follow a use (or a place this does not read).
_END = re.compile(rb"[ \t]*(?:[,)\]|:=;#\r\n\"']|$)")  # a quote: the end of a string (an annotation in quotes)
_IMPORT = re.compile(rb"[ \t]*(?:import[ \t]|from[ \t][\w. \t]*?\bimport[ \t]*\(?)[\w \t\r\n,.]*")
_DEF = re.compile(rb"[ \t]*(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(")
_PARAMETER = re.compile(rb"[ \t\r\n]*\**[ \t\r\n]*\w+[ \t\r\n]*:[^=]*")
_RETURNS = re.compile(rb"[ \t\r\n]*->[^:=]*")
_ANNOTATED = re.compile(rb"[ \t]*([A-Za-z_]\w*)(?:[ \t]*\.[ \t]*[A-Za-z_]\w*)*[ \t]*:[^=]*")
_LAMBDA = re.compile(rb"\blambda\b")  # its parameters' commas and its `:` sit at the level of a def's parameters
_KEYWORDS = frozenset(word.encode() for word in keyword.kwlist)


def only_inert_text(data: bytes, starts: Sequence[int]) -> bool:
    """True when each offset of `starts` (where a word begins, ascending) is in a comment, a plain string, an
    import without `as` or an annotation, as told from the text; False when one is not, or this cannot tell
    (an f-string, a text that does not tokenize). The text is read no further than the first word in use.
    A word followed by what follows no imported name or annotation (`(`, `.`, `as`: a call, an attribute, an
    alias) answers False before any of the text is read, even in a docstring's example: the parse then tells."""
    for at in starts:  # most modules write a word as a call or an attribute: parsed
        if _END.match(data, _WORD.match(data, at).end()) is None:  # type: ignore[union-attr]
            return False
    words = iter(starts)
    at = next(words, None)
    used = False  # a word met in code: a text whose words are all in comments and strings is left to the parse
    depth, statement = 0, 0
    for token in _SCAN.finditer(data):
        begin = token.start()
        while at is not None and at < begin:  # a word in code
            if not _inert(data, statement, at):
                return False
            used = True
            at = next(words, None)
        if at is None:
            return used
        kind = data[begin]
        end = token.end()
        if end - begin == 1 and (kind == 0x27 or kind == 0x22):
            return False  # a quote that opens no string: the file does not tokenize
        if at < end:  # words in a comment or a string: none is a use, unless the string is an f- or t-string
            if kind != 0x23 and has_fields(data, begin):
                return False  # its fields are code: inert_names reads them on the parse
            while at is not None and at < end:
                at = next(words, None)
        elif kind in b"([{":
            depth += 1
        elif kind in b")]}":
            depth -= 1
            if depth < 0:
                return False
        elif (kind == 0x0A or kind == 0x3B) and depth == 0:  # \n, ;
            statement = end
    while at is not None:
        if not _inert(data, statement, at):
            return False
        used = True
        at = next(words, None)
    return used


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
