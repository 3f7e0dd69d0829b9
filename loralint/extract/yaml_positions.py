"""YAML and JSON documents as one small tree of positioned nodes.

Trainer formats are mapped by `loralint.extract.formats`, which must not care whether a key was
written in YAML or in JSON. Both parsers here produce the same `Node`: its kind, its Python value
(built only when asked for), and exact positions (1-based lines and columns, end exclusive).

YAML: `yaml.compose_all` with libyaml's CSafeLoader when available (9-10x faster), else the
pure-Python SafeLoader. Scalars are built by PyYAML's SafeConstructor, so no arbitrary Python
object is ever constructed; a value under a tag the safe constructor does not know (`!include`,
`!!python/...`) becomes `Unknown` instead of failing the file.

JSON: the stdlib decoder decides validity and builds every scalar (so values are exactly what
`json.load` gives); a small scanner only records where each value is. It runs only on files whose
top-level keys look like a LoRA configuration, so a large tokenizer.json never pays for it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import yaml

from loralint.extract.source import LINE_BREAK, LineIndex, SourceSyntaxError, line_column
from loralint.sites import Unknown

try:  # libyaml
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Position = tuple[int, int]  # 1-based line, 1-based column

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STANDARD_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class Node:
    """One YAML/JSON value: a mapping, a sequence or a scalar, with where it is written."""

    __slots__ = ("kind", "start", "end", "items", "_value", "_raw", "_constructor", "_keys")

    def __init__(self, kind: str, start: Position, end: Position) -> None:
        self.kind = kind  # "map" | "seq" | "scalar"
        self.start = start
        self.end = end
        # map: [(key node, value node)], later entries win; seq: [node]
        self.items: list[Any] = []
        self._value: Any = _UNSET
        self._raw: Any = None
        self._constructor: Any = None
        self._keys: dict[str, int] | None = None

    # --- values ------------------------------------------------------------------------------
    @property
    def value(self) -> Any:
        """The Python value (dicts, lists, str, int, float, bool, None), or Unknown."""
        if self._value is _UNSET:
            if self._expanded_size(0) > _MAX_ELEMENTS:
                # Aliases share nodes, so a small file can describe a huge value ("billion laughs").
                self._value = Unknown(
                    f"a value of more than {_MAX_ELEMENTS:,} elements once YAML aliases are expanded"
                )
            else:
                self._value = self._build()
        return self._value

    def _expanded_size(self, depth: int) -> int:
        if self.kind == "scalar":
            return 1
        if depth > 200:
            raise RecursionError("YAML nesting too deep")
        total = 1
        for item in self.items:
            children = item if self.kind == "map" else (item,)
            for child in children:
                total += child._expanded_size(depth + 1)
                if total > _MAX_ELEMENTS:
                    return total
        return total

    def _child(self) -> Any:
        if self._value is _UNSET:
            self._value = self._build()
        return self._value

    def _build(self) -> Any:
        if self.kind == "map":
            if isinstance(self._raw, Unknown):
                return self._raw
            out: dict[Any, Any] = {}
            for key, value in self.items:
                k = key._child()
                try:
                    out[k] = value._child()
                except TypeError:  # an unhashable key (a mapping used as a key)
                    return Unknown("a mapping key that is not a plain value")
            return out
        if self.kind == "seq":
            if isinstance(self._raw, Unknown):
                return self._raw
            return [item._child() for item in self.items]
        if self._constructor is not None:
            try:
                return self._constructor.construct_object(self._raw, deep=True)
            except yaml.YAMLError as exc:
                return Unknown(f"YAML value with tag {getattr(self._raw, 'tag', '?')}: {_first_line(exc)}")
            except Exception as exc:  # a malformed timestamp, a bad base64 binary, ...
                return Unknown(f"YAML value that cannot be read ({type(exc).__name__})")
        return self._raw

    # --- mapping access ----------------------------------------------------------------------
    def _index(self) -> dict[str, int]:
        """String key → index of its last occurrence in `items` (a repeated key: the last wins)."""
        if self._keys is None:
            self._keys = {}
            if self.kind == "map":
                for index, (k, _) in enumerate(self.items):
                    if k.kind == "scalar":
                        key = k.value
                        if isinstance(key, str):
                            self._keys[key] = index
        return self._keys

    def get(self, key: str) -> Node | None:
        """The value node of `key` in a mapping."""
        index = self._index().get(key)
        return None if index is None else self.items[index][1]

    def entry(self, key: str) -> tuple[Node, Node] | None:
        index = self._index().get(key)
        return None if index is None else self.items[index]

    def entries(self) -> Iterator[tuple[str, Node, Node]]:
        """(key text, key node, value node) for every string key, in file order, last occurrence only."""
        for key, index in sorted(self._index().items(), key=lambda kv: kv[1]):
            k, v = self.items[index]
            yield key, k, v

    def keys(self) -> set[str]:
        return set(self._index())

    def __repr__(self) -> str:
        return f"Node({self.kind}, {self.start}-{self.end})"


class _Unset:
    pass


_MAX_ELEMENTS = 100_000


_UNSET = _Unset()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- YAML ------------------------------------------------------------------------------------


# Line ends to YAML (and PyYAML's marks) but not to editors, the LSP or the other outputs.
_YAML_ONLY_BREAKS = ("\x85", "\u2028", "\u2029")


class _YamlBuilder:
    def __init__(self, text: str) -> None:
        # PyYAML's marks count NEL, LS and PS as line ends; with one of those in the text, positions
        # come from the mark's offset instead, so that every output agrees on the line.
        unusual = any(ch in text for ch in _YAML_ONLY_BREAKS)
        self.index = LineIndex(text) if unusual else None
        self.lines = LINE_BREAK.split(text) if unusual else text.splitlines()
        self.constructor = yaml.constructor.SafeConstructor()
        # id(yaml node) → (yaml node, Node): aliases reuse the Node; the yaml node is kept so that
        # its id cannot be reused by another node while this builder lives.
        self.memo: dict[int, tuple[Any, Node]] = {}

    def position(self, mark: Any) -> Position:
        if self.index is not None:
            return self.index.position(mark.index)
        return mark.line + 1, mark.column + 1

    def end_of(self, node: Any) -> Position:
        """End of a scalar or flow collection; a block scalar's end mark sits at the start of the
        next line, which is moved back to the end of the last line with text."""
        line, column = (n - 1 for n in self.position(node.end_mark))
        start_line = self.position(node.start_mark)[0] - 1
        if column == 0 and line > start_line:
            line -= 1
            while line > start_line and not self._text(line).strip():
                line -= 1
            return line + 1, len(self._text(line).rstrip()) + 1
        return line + 1, column + 1

    def _text(self, line: int) -> str:
        return self.lines[line] if 0 <= line < len(self.lines) else ""

    def build(self, node: Any, depth: int = 0) -> Node:
        cached = self.memo.get(id(node))
        if cached is not None and cached[0] is node:  # an alias: the same node again
            return cached[1]
        if depth > 200:
            raise RecursionError("YAML nesting too deep")
        start = self.position(node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            out = Node("scalar", start, self.end_of(node))
            out._raw = node
            out._constructor = self.constructor
            self.memo[id(node)] = (node, out)
            return out
        kind = "map" if isinstance(node, yaml.MappingNode) else "seq"
        out = Node(kind, start, start)
        self.memo[id(node)] = (node, out)
        if node.tag not in _STANDARD_COLLECTION_TAGS:
            out._raw = Unknown(f"YAML collection with tag {node.tag}")
        if kind == "map":
            merged: list[tuple[Node, Node]] = []
            own: list[tuple[Node, Node]] = []
            for key, value in node.value:
                if key.tag == _MERGE_TAG:
                    sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                    for source in sources:
                        built = self.build(source, depth + 1)
                        if built.kind == "map":
                            merged.extend(built.items)
                    continue
                own.append((self.build(key, depth + 1), self.build(value, depth + 1)))
            out.items = merged + own  # explicit keys override merged ones (the last one wins)
            children = [v for _, v in own] or [k for k, _ in own]
        else:
            out.items = [self.build(item, depth + 1) for item in node.value]
            children = out.items
        if node.flow_style or not children:
            out.end = self.end_of(node)
        else:  # a block collection ends where its last value ends (comments and blank lines excluded)
            out.end = max(c.end for c in children)
        if not children and not node.flow_style:
            out.end = (start[0], start[1] + 1)
        return out


def compose_yaml(text: str) -> list[Node]:
    """Every document of a YAML stream as a Node (a document that is empty is skipped)."""
    builder = _YamlBuilder(text)
    documents: list[Node] = []

    def where(mark: Any) -> str:
        line, column = builder.position(mark)
        return f"line {line}, column {column}"
    try:
        for document in yaml.compose_all(text, Loader=_Loader):
            if document is not None:
                documents.append(builder.build(document))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = exc.context or ""
        if context and exc.context_mark is not None and exc.context_mark is not mark:
            # libyaml notices an unclosed `[` or quote only later: say where it was opened.
            context += f" ({where(exc.context_mark)})"
        message = ": ".join(part for part in (context, exc.problem) if part) or "invalid YAML"
        line, column = builder.position(mark) if mark is not None else (1, 1)
        raise SourceSyntaxError(f"invalid YAML ({message})", line, column) from exc
    except yaml.reader.ReaderError as exc:
        line, column = line_column(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or " ")
        raise SourceSyntaxError(
            f"invalid YAML (special character U+{char:04X} is not allowed)", line, column
        ) from exc
    except yaml.YAMLError as exc:
        raise SourceSyntaxError(f"invalid YAML ({_first_line(exc)})") from exc
    return documents


# --- JSON ------------------------------------------------------------------------------------

_JSON_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
  | (?P<word>true|false|null|NaN|-?Infinity)
  | (?P<punct>[{}\[\]:,])
    """,
    re.VERBOSE | re.DOTALL,
)
_JSON_WORDS = {"true": True, "false": False, "null": None}


def parse_json(text: str) -> Any:
    """The document as `json.loads` reads it; a SourceSyntaxError (with position) when invalid."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # json counts lines at \n only; a CR-only file has its lines too.
        raise SourceSyntaxError(f"invalid JSON ({exc.msg})", *line_column(text, exc.pos)) from exc
    except RecursionError as exc:
        raise SourceSyntaxError("invalid JSON (nesting too deep)") from exc


def compose_json(text: str) -> Node:
    """Positions for a JSON text already known to be valid (see `parse_json`)."""
    return _JsonScanner(text).document()


class _JsonScanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = LineIndex(text)
        self.tokens = [
            (m.lastgroup, m.group(), m.start(), m.end())
            for m in _JSON_TOKEN.finditer(text)
            if m.lastgroup != "ws"
        ]
        self.index = 0

    def position(self, offset: int) -> Position:
        return self.lines.position(offset)

    def document(self) -> Node:
        return self.value(0)

    def value(self, depth: int) -> Node:
        if depth > 500:
            raise SourceSyntaxError("invalid JSON (nesting too deep)")
        kind, text, start, end = self.tokens[self.index]
        self.index += 1
        if kind == "punct" and text in "{[":
            node = Node("map" if text == "{" else "seq", self.position(start), self.position(start))
            closer = "}" if text == "{" else "]"
            while True:
                kind2, text2, _, end2 = self.tokens[self.index]
                if kind2 == "punct" and text2 == closer:
                    self.index += 1
                    node.end = self.position(end2)
                    return node
                if kind2 == "punct" and text2 == ",":
                    self.index += 1
                    continue
                if node.kind == "map":
                    key = self.value(depth + 1)
                    self.index += 1  # the colon
                    node.items.append((key, self.value(depth + 1)))
                else:
                    node.items.append(self.value(depth + 1))
        node = Node("scalar", self.position(start), self.position(end))
        if kind == "word" and text in _JSON_WORDS:
            node._raw = _JSON_WORDS[text]
        else:
            node._raw = json.loads(text)
        return node
