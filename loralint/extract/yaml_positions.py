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
from itertools import compress
from operator import attrgetter, itemgetter
from typing import Any, Iterator

from loralint.extract.bounds import (
    MAX_DATA_DEPTH,
    MAX_DATA_NODES,
    MAX_VALUE_SIZE,
    LimitReached,
    note,
)
from loralint.extract.source import LINE_BREAK, LineIndex, SourceSyntaxError, line_column
from loralint.limits import MAX_INT_BITS
from loralint.sites import Unknown

Position = tuple[int, int]  # 1-based line, 1-based column

# PyYAML (~10 ms to import) is imported by the first YAML document composed (_import_yaml), not with this
# module: JSON files and notebooks, which use this module's JSON half, never need it.
yaml: Any = None
_Loader: Any = None  # libyaml's CSafeLoader when available, else the pure-Python SafeLoader
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"  # PyYAML's DEFAULT_SCALAR_TAG, taken from it by _import_yaml
# The first characters of a plain scalar that SafeLoader's implicit resolvers may tag otherwise than as a
# string (bool, int, float, null, merge, timestamp, ...). A plain scalar that begins with any other one, and a
# quoted scalar, is a string: the resolver, which would try each pattern, is not called (on a trainer YAML most
# keys and many values). A wildcard resolver (key None) would apply to every first character: then all go.
_RESOLVED_FIRST: frozenset[str] | None = None
# The tag of a short plain scalar that needs the resolver, once a process: the same keys and values (`true`,
# `num_epochs`, `0.0002`) come back in every config of a tree. The resolver's answer depends on the text alone.
_PLAIN_TAGS: dict[str, str] = {}
_PLAIN_TAGS_MAX, _PLAIN_TAG_LENGTH = 50_000, 64
_STANDARD_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_VALUE, _END = itemgetter(1), attrgetter("end")
# The value SafeConstructor builds for a short scalar of an int, float, bool or null tag, once a process: it
# depends on the tag and the text alone (`true`, `2e-4` and `0.05` recur in every config of a tree), and the
# value is immutable, so nodes may share it.
_CONSTRUCTED: dict[tuple[str, str], Any] = {}
_CONSTRUCTED_TYPES = frozenset({int, float, bool, type(None)})


class _Unset:
    pass


_UNSET = _Unset()


class Node:
    """One YAML/JSON value: a mapping, a sequence or a scalar, with where it is written."""

    __slots__ = ("kind", "start", "end", "items", "_value", "_raw", "_constructor", "_keys", "_measured")

    def __init__(self, kind: str, start: Position, end: Position, value: Any = _UNSET) -> None:
        self.kind = kind  # "map" | "seq" | "scalar"
        self.start = start
        self.end = end
        # map: [(key node, value node)], later entries win; seq: [node]
        self.items: list[Any] = []
        self._value: Any = value  # a YAML string scalar's text is its value from the start (see _compose)
        self._raw: Any = None
        self._constructor: Any = None
        self._keys: dict[str, int] | None = None
        self._measured: tuple[int, int] | None = None  # see _expanded

    # --- values ------------------------------------------------------------------------------
    @property
    def value(self) -> Any:
        """The Python value (dicts, lists, str, int, float, bool, None), or Unknown."""
        if self._value is _UNSET:
            if self.kind == "scalar":  # one element, one level: within both bounds
                self._value = self._build()
                return self._value
            size, depth = self._expanded()
            if size > _MAX_ELEMENTS or depth > MAX_DATA_DEPTH:
                # Aliases share nodes, so a small file can describe a huge value ("billion laughs"), or
                # an endless one (`&a [*a]`): it is never built.
                what = (
                    f"of more than {_MAX_ELEMENTS:,} elements" if size > _MAX_ELEMENTS
                    else f"nested deeper than {MAX_DATA_DEPTH} levels"
                )
                self._value = Unknown(f"a value {what} once YAML aliases are expanded")
                note("data-size", f"a value {what} once YAML aliases are expanded; treated as unknown", *self.start)
            else:
                self._value = self._build()
        return self._value

    def _children(self) -> list[Node]:
        if self.kind == "map":
            return [node for pair in self.items for node in pair]
        return self.items if self.kind == "seq" else []

    def _expanded(self) -> tuple[int, int]:
        """(elements, depth) of the value with aliases expanded, capped; each node is measured once
        (without recursion), so shared nodes cost nothing more and a cycle counts as endless."""
        stack = [self]
        while stack:
            node = stack[-1]
            measured = node._measured
            if measured is not None and measured is not _MEASURING:
                stack.pop()
            elif node.kind == "scalar":
                node._measured = (1, 1)
                stack.pop()
            elif measured is None:  # first visit: measure the children first
                node._measured = _MEASURING
                stack.extend(child for child in node._children() if child._measured is None)
            else:  # the children are measured; one still being measured is an ancestor: a cycle
                size, depth = 1, 1
                for child in node._children():
                    got = child._measured
                    if got is _MEASURING or got is None:
                        size = depth = _ENDLESS
                        break
                    size, depth = min(_ENDLESS, size + got[0]), max(depth, got[1] + 1)
                node._measured = (size, depth)
                stack.pop()
        return self._measured  # type: ignore[return-value]

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
        scalar = self._raw
        if self._constructor is not None:  # a YAML scalar of another tag than str (see _compose)
            key = (scalar.tag, scalar.value)
            built = _CONSTRUCTED.get(key, _UNSET)
            if built is not _UNSET:
                scalar = built
            else:
                try:
                    scalar = self._constructor.construct_object(self._raw, deep=True)
                except yaml.YAMLError as exc:
                    return Unknown(f"YAML value with tag {getattr(self._raw, 'tag', '?')}: {_first_line(exc)}")
                except Exception as exc:  # a malformed timestamp, a bad base64 binary, ...
                    return Unknown(f"YAML value that cannot be read ({type(exc).__name__})")
                if (type(scalar) in _CONSTRUCTED_TYPES and len(key[1]) <= _PLAIN_TAG_LENGTH
                        and len(_CONSTRUCTED) < _PLAIN_TAGS_MAX):
                    _CONSTRUCTED[key] = scalar
        if isinstance(scalar, int) and scalar.bit_length() > MAX_INT_BITS:  # no float holds it
            note("value-size", f"an integer of more than {MAX_INT_BITS} bits; treated as unknown", *self.start)
            return Unknown(f"an integer of more than {MAX_INT_BITS} bits")
        return scalar

    # --- mapping access ----------------------------------------------------------------------
    def _index(self) -> dict[str, int]:
        """String key → index of its last occurrence in `items` (a repeated key: the last wins), in the order of
        those indexes: a repeated key moves to where it was last written, so `entries` needs no sort."""
        if self._keys is None:
            keys: dict[str, int] = {}
            if self.kind == "map":
                for index, (k, _) in enumerate(self.items):
                    if k.kind == "scalar":
                        key = k.value
                        if isinstance(key, str):
                            keys.pop(key, None)
                            keys[key] = index
            self._keys = keys
        return self._keys

    def get(self, key: str) -> Node | None:
        """The value node of `key` in a mapping."""
        index = (self._keys if self._keys is not None else self._index()).get(key)
        return None if index is None else self.items[index][1]

    def entry(self, key: str) -> tuple[Node, Node] | None:
        index = (self._keys if self._keys is not None else self._index()).get(key)
        return None if index is None else self.items[index]

    def entries(self) -> Iterator[tuple[str, Node, Node]]:
        """(key text, key node, value node) for every string key, in file order, last occurrence only."""
        items = self.items
        for key, index in self._index().items():
            k, v = items[index]
            yield key, k, v

    def keys(self) -> set[str]:
        return set(self._index())

    def values(self) -> list[Node]:
        """The value node of every string key (a repeated key's last), in file order."""
        items = self.items
        return [items[index][1] for index in self._index().values()]

    def __repr__(self) -> str:
        return f"Node({self.kind}, {self.start}-{self.end})"


_MAX_ELEMENTS = MAX_VALUE_SIZE
_ENDLESS = 1 << 62
_MEASURING = (-1, -1)  # the marker of a node whose children are being measured


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
        self.text = text
        self.lines: list[str] | None = None  # split when a block scalar's end is first looked for (_text)
        self.constructor = yaml.constructor.SafeConstructor()
        self.resolver = yaml.resolver.Resolver()  # the implicit tags of SafeLoader (int, bool, merge, ...)

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
        if self.lines is None:
            self.lines = LINE_BREAK.split(self.text) if self.index is not None else self.text.splitlines()
        return self.lines[line] if 0 <= line < len(self.lines) else ""

    def documents(self, text: str) -> Iterator[Node]:
        """The root of each document, composed from the parser's events without recursion. PyYAML's
        own composer is recursive and keeps every node; here nesting is bounded (MAX_DATA_DEPTH), as
        is what one document builds (MAX_DATA_NODES, counting what merge keys copy), and an alias is
        the same Node again, never a copy."""
        loader = _Loader(text)
        try:
            yield from self._compose(loader)
        finally:
            loader.dispose()

    def _compose(self, loader: Any) -> Iterator[Node]:
        anchors: dict[str, Node] = {}
        stack: list[_Frame] = []
        root: Node | None = None
        built = 0
        next_event = loader.get_event
        resolve, ScalarNode, plain_strings, plain_tags = self.resolver.resolve, yaml.ScalarNode, _RESOLVED_FIRST, _PLAIN_TAGS
        constructor = self.constructor
        exact_marks = self.index is None  # else positions come from the marks' offsets (see position)
        # Names bound here once: the loop runs for every event of the file.
        str_tag, new_node, max_nodes = _STR_TAG, Node, MAX_DATA_NODES
        ScalarEvent, AliasEvent, StreamEndEvent = yaml.ScalarEvent, yaml.AliasEvent, yaml.StreamEndEvent
        MappingStartEvent, SequenceStartEvent = yaml.MappingStartEvent, yaml.SequenceStartEvent
        MappingEndEvent, SequenceEndEvent = yaml.MappingEndEvent, yaml.SequenceEndEvent
        DocumentStartEvent, DocumentEndEvent = yaml.DocumentStartEvent, yaml.DocumentEndEvent
        while True:
            event = next_event()
            kind = type(event)
            if kind is ScalarEvent:  # the most frequent first
                tag, value = event.tag, event.value
                if tag is None or tag == "!":
                    implicit = event.implicit
                    if plain_strings is None:  # resolvers of another kind: each scalar is resolved
                        tag = resolve(ScalarNode, value, implicit)
                    elif not implicit[0] or (value and value[0] not in plain_strings):
                        tag = str_tag  # what the resolver would say (see _RESOLVED_FIRST)
                    else:
                        tag = plain_tags.get(value)
                        if tag is None:
                            tag = resolve(ScalarNode, value, implicit)
                            if len(value) <= _PLAIN_TAG_LENGTH and len(plain_tags) < _PLAIN_TAGS_MAX:
                                plain_tags[value] = tag
                start_mark, end_mark = event.start_mark, event.end_mark
                if exact_marks and (end_mark.column or end_mark.line <= start_mark.line):
                    # position() and end_of() of the usual scalar, inline: it ends on its own line, mid-line
                    start, end = (start_mark.line + 1, start_mark.column + 1), (end_mark.line + 1, end_mark.column + 1)
                else:
                    start, end = self.position(start_mark), self.end_of(event)
                if tag == str_tag:  # what SafeConstructor.construct_yaml_str returns: the scalar's text
                    node = new_node("scalar", start, end, value)
                else:  # built when first read (Node._build)
                    node = new_node("scalar", start, end)
                    node._raw = ScalarNode(tag, value, start_mark, end_mark, style=event.style)
                    node._constructor = constructor
                if event.anchor is not None:
                    self._anchor(anchors, event, node)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                frame = stack.pop()
                frame.end_mark = event.end_mark
                node = self._finish(frame)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if len(stack) >= MAX_DATA_DEPTH:
                    raise LimitReached(
                        f"YAML nested deeper than {MAX_DATA_DEPTH} levels, more than loralint analyses",
                        *self.position(event.start_mark),
                    )
                is_map = kind is MappingStartEvent
                start = self.position(event.start_mark)
                collection = Node("map" if is_map else "seq", start, start)
                tag = event.tag
                if tag is not None and tag != "!" and tag not in _STANDARD_COLLECTION_TAGS:
                    collection._raw = Unknown(f"YAML collection with tag {tag}")
                self._anchor(anchors, event, collection)
                stack.append(_Frame(collection, event.flow_style, event.start_mark))
                built = self._count(built, 1, event)
                continue
            elif kind is AliasEvent:
                node = anchors.get(event.anchor)
                if node is None:
                    raise yaml.composer.ComposerError(None, None, "found undefined alias", event.start_mark)
            elif kind is DocumentStartEvent:
                anchors, root, built = {}, None, 0
                continue
            elif kind is DocumentEndEvent:
                if root is not None:
                    yield root
                continue
            elif kind is StreamEndEvent or event is None:
                return
            else:  # the stream's start
                continue
            built += 1
            if built > max_nodes:
                self._count(built, 0, event)  # raises
            if not stack:
                root = node
                continue
            parent = stack[-1]
            if parent.node.kind == "seq":
                parent.node.items.append(node)
            elif parent.key is None:
                parent.key = node
            else:
                key, parent.key = parent.key, None
                if key._constructor is not None and key._raw.tag == _MERGE_TAG:  # `<<:` (a YAML scalar, not a string)
                    for source in node.items if node.kind == "seq" else [node]:
                        if source.kind == "map":
                            parent.merged.extend(source.items)
                            built = self._count(built, len(source.items), event)
                else:
                    parent.own.append((key, node))

    def _anchor(self, anchors: dict[str, Node], event: Any, node: Node) -> None:
        if event.anchor is None:
            return
        first = anchors.get(event.anchor)
        if first is not None:
            line, column = first.start
            raise yaml.composer.ComposerError(
                f"found duplicate anchor; first occurrence (line {line}, column {column})", None,
                "second occurrence", event.start_mark,
            )
        anchors[event.anchor] = node

    def _count(self, built: int, more: int, event: Any) -> int:
        built += more
        if built > MAX_DATA_NODES:
            raise LimitReached(
                f"a YAML document of more than {MAX_DATA_NODES:,} nodes (counting what merge keys copy),"
                " more than loralint analyses",
                *self.position(event.start_mark),
            )
        return built

    def _finish(self, frame: _Frame) -> Node:
        out = frame.node
        if out.kind == "map":
            own = frame.own
            out.items = frame.merged + own if frame.merged else own  # explicit keys override merged ones (the last wins)
            children = list(map(_VALUE, own))
        else:
            children = out.items
        if frame.flow_style or not children:
            out.end = self.end_of(frame)
        else:  # a block collection ends where its last value ends (comments and blank lines excluded)
            out.end = max(map(_END, children))  # not always the last value's: an alias is its anchor's node
        if not children and not frame.flow_style:
            out.end = (out.start[0], out.start[1] + 1)
        return out


class _Frame:
    """A mapping or sequence being composed: its Node, and for a mapping the key waiting for its value."""

    __slots__ = ("end_mark", "flow_style", "key", "merged", "node", "own", "start_mark")

    def __init__(self, node: Node, flow_style: Any, start_mark: Any) -> None:
        self.node = node
        self.flow_style = flow_style
        self.start_mark = start_mark
        self.end_mark = start_mark
        self.key: Node | None = None
        self.own: list[tuple[Node, Node]] = []
        self.merged: list[tuple[Node, Node]] = []


def _import_yaml() -> None:
    global yaml, _Loader, _STR_TAG, _RESOLVED_FIRST
    if yaml is not None:
        return
    import yaml as module

    try:  # libyaml
        loader = module.CSafeLoader
    except AttributeError:  # pragma: no cover - depends on how PyYAML was built
        loader = module.SafeLoader
    resolvers = module.resolver.Resolver.yaml_implicit_resolvers
    _STR_TAG = module.resolver.Resolver.DEFAULT_SCALAR_TAG
    _RESOLVED_FIRST = None if None in resolvers or module.resolver.Resolver.yaml_path_resolvers else frozenset(resolvers)
    _Loader, yaml = loader, module


def compose_yaml(text: str) -> Iterator[Node]:
    """Every document of a YAML stream as a Node, one at a time (a caller may stop early)."""
    _import_yaml()
    builder = _YamlBuilder(text)

    def where(mark: Any) -> str:
        line, column = builder.position(mark)
        return f"line {line}, column {column}"
    try:
        yield from builder.documents(text)
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


# --- JSON ------------------------------------------------------------------------------------

_JSON_TOKEN = re.compile(
    r"""
    [ \t\r\n]*  # the whitespace before the token, in the same match
    (?:
      (?P<string>"[^"\\]*(?:\\.[^"\\]*)*")  # unrolled: one C loop a run, not one alternation a character
    | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
    | (?P<word>true|false|null|NaN|-?Infinity)
    | (?P<punct>[{}\[\]:,])
    )
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
    except RecursionError:
        raise LimitReached("JSON nested deeper than Python's json module reads") from None
    except ValueError as exc:  # valid JSON that Python refuses: an integer of more than 4,300 digits
        raise LimitReached(f"JSON that Python's json module refuses ({_first_line(exc)})") from None


def compose_json(text: str, only: tuple[str, ...] | None = None, within_limits: bool = False) -> Node:
    """Positions for a JSON text already known to be valid (see `parse_json`).

    `only`: a path of keys (`*` for every item of a list) whose nodes are all the caller reads, as a
    notebook's `("cells", "*", "source")`. Entries off that path are then left out of the tree and
    skipped by the stdlib's C decoder instead of token by token (a notebook's outputs and images are
    most of its bytes); the values under the path's end are composed whole. The nodes kept are the
    ones the full scan makes; the skipped values are still counted against the limits, and a text
    that reaches one (or repeats a key, which the decoder would hide) takes the full scan, so it
    fails exactly alike. `within_limits`: `parse_json_composable` said the text repeats no key and reaches
    no limit, so what is skipped is neither measured nor looked at for a repeated key."""
    if only is not None:
        try:
            return _JsonScanner(text, only, within_limits).document()
        except (LimitReached, _FullScan):
            pass
    return _JsonScanner(text).document()


def parse_json_composable(text: str) -> tuple[Any, bool]:
    """`parse_json`, and whether `compose_json(text, only)` certainly reaches no limit: no repeated key
    (which takes the full scan), at most MAX_DATA_NODES values (keys counted, as the full scan counts
    its nodes) and containers well within MAX_DATA_DEPTH. A reader that needs no positions yet may then
    compose later, as it fails neither way (False: compose now, to fail where it did)."""
    try:
        value = _SKIPPING.decode(text)  # json.loads' own result when no key repeats
    except (_FullScan, ValueError, RecursionError):  # a repeated key, or invalid: parse_json says why
        return parse_json(text), False
    levels, values = _levels(value)
    return value, levels < MAX_DATA_DEPTH and values <= MAX_DATA_NODES


def _separators_over_limit(text: str) -> bool:
    """`1 + (the text's count of ",:]}") > MAX_DATA_NODES`, counting no further than it must: a text
    shorter than the limit cannot hold that many, and a long one is often over it on its commas alone."""
    if len(text) < MAX_DATA_NODES:
        return False
    total = 1
    for separator in ",:]}":
        total += text.count(separator)
        if total > MAX_DATA_NODES:
            return True
    return False


class _FullScan(Exception):
    """The skipping scan cannot tell what the full scan would: it is done instead."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _FullScan  # a repeated key: the entries it overwrote count as values too
    return mapping


_SKIPPING = json.JSONDecoder(object_pairs_hook=_pairs)
_PLAIN = json.JSONDecoder()
_scanstring = json.decoder.scanstring


def _measure(value: Any) -> tuple[int, int]:
    """(values, levels of containers) of a decoded JSON value: keys count as values, as in the scan."""
    count, deepest = 0, 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        count += 1
        if isinstance(item, dict):
            deepest = max(deepest, level)
            count += len(item)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return count, deepest


_CONTAINERS = frozenset({dict, list})


def _levels(value: Any) -> tuple[int, int]:
    """(levels, values) as `_measure(value)` counts them, for what the decoder returns (plain dicts and lists), a level at a
    time with C loops (map, compress): a notebook's outputs are long lists of strings that need no Python
    step each. The values are counted from the lengths: each level's items, and a dict's keys. (Counting
    the text's `,:]}` instead, a bound on them, read each byte of a notebook four times: ~3 ms a MB.)"""
    level, levels, values = [value], 0, 1
    is_container = _CONTAINERS.__contains__
    while True:
        containers = list(compress(level, map(is_container, map(type, level))))
        if not containers:
            return levels, values
        levels += 1
        level = []
        for item in containers:
            if type(item) is dict:
                values += len(item)  # its keys
                level.extend(item.values())
            else:
                level.extend(item)
        values += len(level)


class _JsonScanner:
    """Reads the tokens one at a time (never a list of them all), nesting at most MAX_DATA_DEPTH
    deep and MAX_DATA_NODES nodes. With `only` (see compose_json), only that path is composed."""

    def __init__(self, text: str, only: tuple[str, ...] | None = None, within_limits: bool = False) -> None:
        self.text = text
        self.lines = LineIndex(text)
        self.offset = 0
        self.nodes = 0
        self._peeked: tuple[str, str, int, int] | None = None
        self.only = only
        self.skipped = 0  # values skipped (with `only`), counted against MAX_DATA_NODES at the end
        # Every value but the last is followed by one of `,:]}`: with fewer of those than the limit
        # allows (strings included), no count can reach it and skipped values need not be counted.
        self._counting = only is not None and not within_limits and _separators_over_limit(text)
        self._within_limits = within_limits

    def position(self, offset: int) -> Position:
        return self.lines.position(offset)

    def document(self) -> Node:
        if self.only is None:
            return self.value(0)
        root = self.value(0, 0)
        if self.nodes + self.skipped > MAX_DATA_NODES:
            raise _FullScan
        return root

    def _skip(self, depth: int) -> None:
        """Past the next value (at `depth`) without composing it: a container is read by the C decoder
        and measured, and one that the full scan would refuse makes it the scan to run."""
        kind, text, start, _ = self._next()
        if kind == "punct" and text in "{[":
            if self._within_limits:
                self.offset = _PLAIN.raw_decode(self.text, start)[1]  # the C decoder alone, no hook an object
                return
            value, self.offset = _SKIPPING.raw_decode(self.text, start)
            openers = self.text.count("{", start, self.offset) + self.text.count("[", start, self.offset)
            if self._counting or depth + openers - 1 >= MAX_DATA_DEPTH:  # else: too few for either limit
                count, levels = _measure(value)
                if depth + levels - 1 >= MAX_DATA_DEPTH:
                    raise _FullScan
                self.skipped += count
        else:
            self.skipped += 1

    def _peek(self) -> tuple[str, str, int, int]:
        if self._peeked is None:
            match = _JSON_TOKEN.match(self.text, self.offset)
            if match is None:  # cannot happen after json.loads accepted the text
                raise SourceSyntaxError("invalid JSON", *self.position(self.offset))
            kind = match.lastgroup or ""  # the token's own group (one always matches), not the whitespace before it
            self.offset = end = match.end()
            self._peeked = (kind, match.group(kind), match.start(kind), end)
        return self._peeked

    def _next(self) -> tuple[str, str, int, int]:
        token = self._peek()
        self._peeked = None
        return token

    def _node(self, kind: str, start: int, end: int) -> Node:
        self.nodes += 1
        if self.nodes > MAX_DATA_NODES:
            raise LimitReached(f"JSON of more than {MAX_DATA_NODES:,} values, more than loralint analyses",
                               *self.position(start))
        return Node(kind, self.position(start), self.position(end))

    def _inner(self, step: int, key: Any) -> int | None:
        """The step of `self.only` for an entry (key None: a list item) of a node at `step`; None: skipped."""
        if step < 0 or self.only is None:
            return -1
        wanted = self.only[step]
        if wanted != ("*" if key is None else key):
            return None
        return step + 1 if step + 1 < len(self.only) else -1

    def value(self, depth: int, step: int = -1) -> Node:
        """The next value; `step`: how far along `self.only` it is (-1: composed whole)."""
        kind, text, start, end = self._next()
        if kind == "punct" and text in "{[":
            if depth >= MAX_DATA_DEPTH:
                raise LimitReached(f"JSON nested deeper than {MAX_DATA_DEPTH} levels, more than loralint analyses",
                                   *self.position(start))
            node = self._node("map" if text == "{" else "seq", start, start)
            closer = "}" if text == "{" else "]"
            while True:
                kind2, text2, _, end2 = self._peek()
                if kind2 == "punct" and text2 == closer:
                    self._next()
                    node.end = self.position(end2)
                    return node
                if kind2 == "punct" and text2 == ",":
                    self._next()
                    continue
                if node.kind == "map":
                    key = self.value(depth + 1)
                    self._next()  # the colon
                    inner = self._inner(step, key._raw)
                    if inner is None:
                        self._skip(depth + 1)
                    else:
                        node.items.append((key, self.value(depth + 1, inner)))
                else:
                    inner = self._inner(step, None)
                    if inner is None:
                        self._skip(depth + 1)
                    else:
                        node.items.append(self.value(depth + 1, inner))
        node = self._node("scalar", start, end)
        if kind == "word" and text in _JSON_WORDS:
            node._raw = _JSON_WORDS[text]
        elif kind == "string":  # what json.loads(text) gives, without its per-call set-up
            node._raw = _scanstring(self.text, start + 1, True)[0]
        elif kind == "number":  # the same: the decoder calls float on a number with a fraction or exponent, else int
            node._raw = float(text) if "." in text or "e" in text or "E" in text else int(text)
        else:  # NaN, Infinity, -Infinity
            node._raw = json.loads(text)
        return node
