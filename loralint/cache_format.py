"""The on-disk form of a cached `FileResult`: plain JSON that can only ever become data.

Decoding builds nothing but JSON values, a few builtin containers and the dataclasses of
`loralint.sites` (a fixed list): unlike pickle, a planted entry cannot run code. Values keep their
exact Python types: tuples stay tuples, sets stay sets, dict keys need not be strings, floats may be
inf or nan. A value of any other type makes the entry unencodable (the file is simply not cached).

Encoding: JSON scalars and lists stand for themselves; everything else is a one-key object
`{tag: payload}`: "t" tuple, "s" set, "f" frozenset, "d" dict (flat key/value list), "b" bytes
(latin-1), "c" complex, "e" Ellipsis, "date"/"datetime" (ISO), or a sites dataclass by class name
with its init fields in order. A frozenset written before is `{"r": n}`, its number among the entry's
frozensets in the order their encodings end: extraction gives every site of a file the same set of
the names it calls, which written out in full made most of a large file's entry (and of a warm run's
decoding). A span in the same file as the span written before it is `{"S": [line, column, end_line,
end_column]}`: nearly all spans of an entry name one file, and spans are most of its objects.
A Field whose spans are spans is `{"F": [name, value, span, key_span, provenance, raw_name, items]}` with
each span written as a bare [line, column, end_line, end_column] in the file of the span written last once
the Field's other values are (which the decoder's hook has read when it meets the Field), else as
`{"P": [path, line, column, end_line, end_column]}`, which leaves that file as it was; key_span may be null.
Half an entry's spans are a field's two: written bare, the decoding calls no hook for them.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable
from typing import Any

from loralint import sites
from loralint.sites import FileResult


class FormatError(ValueError):
    """The payload is not a FileResult this version wrote."""


def _dataclasses() -> dict[str, tuple[type, tuple[str, ...]]]:
    found = {}
    for name, obj in vars(sites).items():
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == sites.__name__:
            found[name] = (obj, tuple(f.name for f in dataclasses.fields(obj) if f.init))
    return found


_CLASSES = _dataclasses()
_BY_TYPE = {cls: (name, names) for name, (cls, names) in _CLASSES.items()}
_SCALARS = (str, int, float, bool, type(None))
_Span = sites.Span
_Field = sites.Field
# "F" holds exactly these fields, in this order: a Field with others is written by name, as any dataclass.
_COMPACT_FIELD = _CLASSES["Field"][1] == ("name", "value", "span", "key_span", "provenance", "raw_name", "items")


class _Written:
    """What an entry's encoding has written so far, which later values refer to."""

    __slots__ = ("frozensets", "path")

    def __init__(self) -> None:
        self.frozensets: dict[int, tuple[int, frozenset]] = {}  # by id: its number, and the set kept alive
        self.path: str | None = None  # the path of the span written last


def _encode(value: Any, shared: _Written | None = None) -> Any:
    """`shared` (entries only, not fingerprints): what the entry holds before `value`."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is _Span:
        path = value.path
        if shared is not None:
            if path == shared.path:
                return {"S": [value.line, value.column, value.end_line, value.end_column]}
            shared.path = path
        return {"Span": [path, value.line, value.column, value.end_line, value.end_column]}
    if kind is list:
        return [_encode(v, shared) for v in value]
    if kind is tuple:
        return {"t": [_encode(v, shared) for v in value]}
    if kind is dict:
        flat = []
        for key, item in value.items():
            flat.append(_encode(key, shared))
            flat.append(_encode(item, shared))
        return {"d": flat}
    if kind is set:
        return {"s": [_encode(v, shared) for v in value]}
    if kind is frozenset:
        if shared is None:
            return {"f": [_encode(v) for v in value]}
        written = shared.frozensets
        seen = written.get(id(value))
        if seen is not None:
            return {"r": seen[0]}
        encoded = {"f": [_encode(v, shared) for v in value]}
        # Numbered once written, after what it holds: in the order the decoder's hook meets them (bottom-up,
        # in document order). The frozenset is kept with its number so that its id is not reused meanwhile.
        written[id(value)] = (len(written), value)
        return encoded
    if kind is _Field and shared is not None and _COMPACT_FIELD and type(value.span) is _Span \
            and (value.key_span is None or type(value.key_span) is _Span):
        return _encode_field(value, shared)
    if kind in _BY_TYPE:
        name, names = _BY_TYPE[kind]
        if kind is sites.ConfigSite and value.model is not None:
            raise FormatError("a resolved site is not cacheable")
        return {name: [_encode(getattr(value, n), shared) for n in names]}
    if kind is bytes:
        return {"b": value.decode("latin-1")}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    if value is Ellipsis:
        return {"e": 0}
    if kind is datetime.date:
        return {"date": value.isoformat()}
    if kind is datetime.datetime:
        return {"datetime": value.isoformat()}
    raise FormatError(f"cannot encode a {kind.__name__}")


def _encode_field(value: Any, shared: _Written) -> dict:
    """A Field as "F" (see the module's doc): its spans written last, in the file of the span written last."""
    name, item_value = _encode(value.name, shared), _encode(value.value, shared)
    rest = [_encode(value.provenance, shared), _encode(value.raw_name, shared), _encode(value.items, shared)]
    path = shared.path  # what the decoder's "Span" and "S" objects have set once it has all but the two spans
    spans = [None if span is None else [span.line, span.column, span.end_line, span.end_column] if span.path == path
             else {"P": [span.path, span.line, span.column, span.end_line, span.end_column]}
             for span in (value.span, value.key_span)]
    return {"F": [name, item_value, *spans, *rest]}


_BUILTIN_TAGS = {  # "t" and "d" are the hook's own
    "s": set,
    "f": frozenset,
    "b": lambda text: text.encode("latin-1"),
    "c": lambda parts: complex(*parts),
    "e": lambda _: Ellipsis,
    "date": datetime.date.fromisoformat,
    "datetime": datetime.datetime.fromisoformat,
}
_PAYLOAD_TYPES = {"s": list, "f": list, "b": str, "c": list, "date": str, "datetime": str}


def _object_hook(shared: list[frozenset]) -> Callable[[dict], Any]:
    """The hook of one entry's decoding; `shared` collects its frozensets, in order, for "r"."""
    path: str | None = None  # of the span decoded last, for "S": json calls the hook in document order

    def bare(payload: list) -> Any:
        """A field's span written as four integers, in the file `path` names."""
        if len(payload) == 4 and path is not None:
            line, column, end_line, end_column = payload
            if type(line) is type(column) is type(end_line) is type(end_column) is int:
                return _Span(path, line, column, end_line, end_column)
        raise FormatError("a field's span is four integers, after a span")

    def hook(obj: dict) -> Any:
        # json calls this bottom-up, so every nested value is already decoded.
        nonlocal path
        if len(obj) != 1:
            raise FormatError("an encoded value has exactly one tag")
        tag, payload = obj.popitem()  # json's own dict, which the value returned replaces
        if tag == "S":  # most objects are spans in the file of the span before: the fast path
            if type(payload) is list and len(payload) == 4 and path is not None:
                line, column, end_line, end_column = payload
                if type(line) is type(column) is type(end_line) is type(end_column) is int:
                    return _Span(path, line, column, end_line, end_column)
            raise FormatError("a span in the same file is four integers, after a span")
        if tag == "Span":
            if type(payload) is list and len(payload) == 5:
                name, line, column, end_line, end_column = payload
                if type(name) is str and type(line) is type(column) is type(end_line) is type(end_column) is int:
                    path = name
                    return _Span(name, line, column, end_line, end_column)
            raise FormatError("a span is a path and four integers")
        if tag == "F":
            if type(payload) is list and len(payload) == 7:
                name, value, span, key_span, provenance, raw_name, items = payload
                if type(span) is list:
                    span = bare(span)
                if type(key_span) is list:
                    key_span = bare(key_span)
                if type(span) is _Span and (key_span is None or type(key_span) is _Span):
                    return _Field(name, value, span, key_span, provenance, raw_name, items)
            raise FormatError("a field is seven values, its spans spans")
        if tag == "P":
            if type(payload) is list and len(payload) == 5:
                name, line, column, end_line, end_column = payload
                if type(name) is str and type(line) is type(column) is type(end_line) is type(end_column) is int:
                    return _Span(name, line, column, end_line, end_column)
            raise FormatError("a span is a path and four integers")
        if tag == "d":  # then dicts, tuples and sites' dataclasses, by how often they come
            if type(payload) is list and not len(payload) % 2:
                items = iter(payload)
                return dict(zip(items, items))
            raise FormatError("bad payload for 'd'")
        if tag == "t":
            if type(payload) is list:
                return tuple(payload)
            raise FormatError("bad payload for 't'")
        entry = _CLASSES.get(tag)
        if entry is not None:
            cls, names = entry
            if type(payload) is not list or len(payload) != len(names):
                raise FormatError(f"{tag} has {len(names)} fields")
            return cls(*payload)
        if tag == "r":
            if type(payload) is not int or not 0 <= payload < len(shared):
                raise FormatError("a reference to no frozenset written before it")
            return shared[payload]
        builder = _BUILTIN_TAGS.get(tag)
        if builder is not None:
            wanted = _PAYLOAD_TYPES.get(tag)
            if wanted is not None and type(payload) is not wanted:
                raise FormatError(f"bad payload for {tag!r}")
            value = builder(payload)
            if tag == "f":
                shared.append(value)
            return value
        raise FormatError(f"unknown tag {tag!r}")

    return hook


def fingerprint(value: Any) -> bytes:
    """A deterministic byte form of `value` (sites' dataclasses, containers, scalars) for cache keys;
    FormatError when it holds something else."""
    if value is None:  # most sites' facts after extraction (CheckCache.key asks for each site's)
        return b"null"
    if type(value) is tuple and value == (None, None, None):  # a site's launch facts, none found
        return b'{"t":[null,null,null]}'
    return json.dumps(_ordered(_encode(value)), separators=(",", ":")).encode("ascii")


def _ordered(encoded: Any) -> Any:
    """Sets sorted: their iteration order changes between processes (hash randomisation of str)."""
    if type(encoded) is list:
        return [_ordered(v) for v in encoded]
    if type(encoded) is dict:
        ((tag, payload),) = encoded.items()
        payload = _ordered(payload)
        return {tag: sorted(payload, key=repr) if tag in ("s", "f") else payload}
    return encoded


def dumps(result: FileResult) -> bytes:
    """`result` as JSON bytes; FormatError (or ValueError/RecursionError) when it cannot be encoded."""
    return dumps_value(result)


def dumps_value(value: Any) -> bytes:
    """Any cached value (a FileResult, the facts of an accelerate config in loralint.launches) as JSON bytes;
    FormatError (or ValueError/RecursionError) when it cannot be encoded."""
    return json.dumps(_encode(value, _Written()), separators=(",", ":")).encode("ascii")


def loads_value(data: bytes) -> Any:
    """What dumps_value wrote; the caller checks its shape. FormatError (or another ValueError/TypeError)."""
    return json.loads(data, object_hook=_object_hook([]))


def loads(data: bytes) -> FileResult:
    """The FileResult in `data`; FormatError (or another ValueError/TypeError) when it is not one."""
    result = loads_value(data)
    if type(result) is not FileResult:
        raise FormatError("not a FileResult")
    for site in [*result.sites, *result.loaded]:
        if type(site) is not sites.ConfigSite:
            raise FormatError("sites hold ConfigSites")
    for diagnostic in result.diagnostics:
        if type(diagnostic) is not sites.Diagnostic:
            raise FormatError("diagnostics hold Diagnostics")
    if type(result.depends_on) is not list or not all(
            type(d) is tuple and len(d) == 2 and type(d[0]) is str and (d[1] is None or type(d[1]) is str)
            for d in result.depends_on):
        raise FormatError("depends_on holds (path, digest) pairs")
    return result
