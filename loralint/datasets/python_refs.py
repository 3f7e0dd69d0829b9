"""The data set a Python script trains on, as DatasetRefs: the trainer's `train_dataset` followed
back through the script to `load_dataset(...)` / `Dataset.from_json(...)`, through the calls that
keep every row (`.map`, `.shuffle`, `["train"]`, ...) and `.select(range(N))`. Nothing is run; an
expression that cannot be followed leaves the size unknown."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace

from loralint.datasets.kinds import BUILDERS
from loralint.datasets.yaml_refs import _HUB_ID
from loralint.program.evaluate import argument, plain
from loralint.sites import DatasetRef, is_known

# Dataset methods that return every row (datasets.arrow_dataset.Dataset); `.map(batched=True)` may not.
_SAME_ROWS = frozenset(
    {"map", "shuffle", "with_format", "set_format", "with_transform", "rename_column", "rename_columns",
     "remove_columns", "select_columns", "cast", "cast_column", "flatten", "sort", "flatten_indices"}
)
_FROM_FILES = {"from_json": "json", "from_csv": "csv", "from_parquet": "parquet", "from_text": "text", "from_file": "arrow"}
_MAX_DEPTH = 24
# Calls that may change how many rows reach training when the script's data set is not followed to a trainer.
_SHRINKING = frozenset({"select", "filter", "train_test_split", "shard", "take", "skip", "concatenate_datasets",
                        "interleave_datasets", "map"})


@dataclass(slots=True, repr=False, eq=False)
class _Load:
    """What an expression holds: one data set (split chosen) or a DatasetDict (split None)."""

    ref: DatasetRef
    by_split: dict[str, list[str]] | None = None  # data_files given per split
    is_dict: bool = False
    either: bool = False  # load_from_disk: a Dataset or a DatasetDict, as the folder holds
    steps: list[str] = field(default_factory=list)


class DatasetTracer:
    def __init__(self, program) -> None:
        self.program = program

    def _plain(self, node: ast.AST | None):
        if node is None:
            return None
        value = plain(self.program.value(node))
        return value if is_known(value) else None

    def refs_for(self, expr: ast.AST) -> list[DatasetRef] | None:
        load = self._trace(expr, 0)
        if load is None or load.is_dict:
            return None  # a DatasetDict given as the training set would fail; nothing to size
        return [load.ref]  # an `either` folder is sized only if it holds a Dataset

    def _trace(self, expr: ast.AST, depth: int) -> _Load | None:
        if depth > _MAX_DEPTH:
            return None
        if isinstance(expr, ast.Name):
            bindings = self.program.flow.reach.get(expr, ())
            if len(bindings) != 1 or bindings[0].kind != "assign" or bindings[0].value is None:
                return None
            return self._trace(bindings[0].value, depth + 1)
        if isinstance(expr, ast.Subscript):
            key = self._plain(expr.slice)
            inner = self._trace(expr.value, depth + 1)
            if inner is None or not (inner.is_dict or inner.either) or not isinstance(key, str):
                return None
            return self._choose(inner, key)
        if not isinstance(expr, ast.Call):
            return None
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr == "select":
            count = self._range_length(expr.args[0] if expr.args else argument(expr, "indices", None))
            inner = self._trace(func.value, depth + 1)
            if count is None:
                return None
            ref = inner.ref if inner is not None and not inner.is_dict else DatasetRef(self.program.text.span(expr), "selected", "")
            where = f".select(range(...)) at line {expr.lineno}"
            return _Load(replace(ref, exact=count, where=where, span=self.program.text.span(expr)))
        if isinstance(func, ast.Attribute) and func.attr in _SAME_ROWS:
            batched = argument(expr, "batched", None)
            if func.attr == "map" and batched is not None and self._plain(batched) is not False:
                return None  # a batched map may return more or fewer rows than it gets
            return self._trace(func.value, depth + 1)
        qual = self.program.qualname(func) or ""
        parts = qual.split(".")
        if parts[0] != "datasets":
            return None
        if parts[-1] == "load_dataset":
            return self._load_dataset(expr)
        if parts[-1] == "load_from_disk":
            return self._load_from_disk(expr, parts)
        if parts[-1] in _FROM_FILES and len(parts) >= 2 and parts[-2] == "Dataset":
            if parts[-1] == "from_file":  # Dataset.from_file(filename, info, split, indices_filename, in_memory)
                if argument(expr, "indices_filename", 3) is not None:
                    return None  # rows chosen through an indices mapping
                files = self._files(argument(expr, "filename", 0))
            else:
                files = self._files(argument(expr, "path_or_paths", 0))
            if not files:
                return None
            where = f"Dataset.{parts[-1]} at line {expr.lineno}"
            return _Load(DatasetRef(self.program.text.span(expr), "files", _FROM_FILES[parts[-1]], files, where=where))
        return None

    def _files(self, node: ast.AST | None) -> list[str] | None:
        value = self._plain(node)
        if isinstance(value, str):
            return [value]
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return list(value)
        return None

    def _range_length(self, node: ast.AST | None) -> int | None:
        if not isinstance(node, ast.Call) or self.program.qualname(node.func) not in ("builtins.range", None):
            return None
        if not isinstance(node.func, ast.Name) or node.func.id != "range" or node.keywords:
            return None
        bounds = [self._plain(a) for a in node.args]
        if not bounds or len(bounds) > 2 or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            return None
        start, stop = (0, bounds[0]) if len(bounds) == 1 else bounds
        return max(stop - start, 0)

    def _load_dataset(self, call: ast.Call) -> _Load | None:
        """load_dataset(path, name=None, data_dir=None, data_files=None, split=None, ...) (datasets/load.py)."""
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return None
        path = self._plain(argument(call, "path", 0))
        if not isinstance(path, str) or argument(call, "data_dir", 2) is not None:
            return None
        split_node = argument(call, "split", 4)
        split = self._plain(split_node) if split_node is not None else None
        if split_node is not None and not isinstance(split, str):
            return None
        where = f"load_dataset at line {call.lineno}"
        span = self.program.text.span(call)
        if path in BUILDERS:
            data_files = self._plain(argument(call, "data_files", 3))
            by_split: dict[str, list[str]] = {}
            if isinstance(data_files, dict):
                for key, value in data_files.items():
                    files = [value] if isinstance(value, str) else value
                    if not isinstance(key, str) or not isinstance(files, (list, tuple)) or not all(isinstance(f, str) for f in files):
                        return None
                    by_split[key] = list(files)
            else:
                files = [data_files] if isinstance(data_files, str) else data_files
                if not isinstance(files, (list, tuple)) or not files or not all(isinstance(f, str) for f in files):
                    return None
                by_split["train"] = list(files)  # data_files without split names are the train split
            load = _Load(DatasetRef(span, "files", path, where=where), by_split=by_split, is_dict=True)
        else:
            if argument(call, "data_files", 3) is not None or not (_HUB_ID.match(path) or path.isidentifier()):
                return None
            name = self._plain(argument(call, "name", 1))
            if argument(call, "name", 1) is not None and not isinstance(name, str):
                return None
            load = _Load(DatasetRef(span, "hub", path, config=name, where=where), is_dict=True)
        return self._choose(load, split) if split is not None else load

    def _load_from_disk(self, call: ast.Call, parts: list[str]) -> _Load | None:
        """load_from_disk(dataset_path, ...) (datasets/load.py): a Dataset or a DatasetDict, after the
        folder's dataset_dict.json; Dataset.load_from_disk / DatasetDict.load_from_disk name which."""
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return None
        path = self._plain(argument(call, "dataset_path", 0))
        if not isinstance(path, str) or not path.strip():
            return None
        owner = parts[-2] if len(parts) >= 3 else ""
        where = f"{owner + '.' if owner else ''}load_from_disk at line {call.lineno}"
        ref = DatasetRef(self.program.text.span(call), "disk", "", [path], where=where)
        if owner == "Dataset":
            return _Load(ref)
        return _Load(ref, is_dict=owner == "DatasetDict", either=owner != "DatasetDict")

    def _choose(self, load: _Load, split: str) -> _Load | None:
        """One split of a DatasetDict (or `split=` of load_dataset)."""
        ref = replace(load.ref, split=split)
        if load.ref.kind == "disk" and not split.isidentifier():
            return None  # a DatasetDict is indexed by a split's name, not a slice
        if load.by_split is not None:
            base = split.split("[", 1)[0].strip()
            if "+" in split or base not in load.by_split:
                return None
            # the files of that split are counted whole; a slice applies to them as the "train" split
            ref = replace(ref, files=load.by_split[base], split="train" + split[len(split.split("[", 1)[0]):])
        return _Load(ref)


def trainer_datasets(program) -> list[tuple[ast.Call, list[DatasetRef] | None]]:
    """Each call given `train_dataset=` (a trainer), with the refs of that data set."""
    tracer = DatasetTracer(program)
    out = []
    for call, _ in program.flow.calls_at(program.flow.by_keyword.get("train_dataset", ())):
        for keyword in call.keywords:
            if keyword.arg == "train_dataset":
                out.append((call, tracer.refs_for(keyword.value)))
    return out


def file_datasets(program) -> list[DatasetRef] | None:
    """The file's single data set, when it makes exactly one (load_dataset / Dataset.from_*); a
    DatasetDict stands for its train split."""
    made = []
    for call, _ in program.calls_named(frozenset({"load_dataset", "load_from_disk", *_FROM_FILES})):
        qual = program.qualname(call.func) or ""
        if qual.startswith("datasets."):
            made.append(call)
    if len(made) != 1:
        return None
    if program.calls_named(_SHRINKING):
        return None  # the rows that reach training may be fewer than the data set's: not known
    tracer = DatasetTracer(program)
    load = tracer._trace(made[0], 0)
    if load is not None and load.is_dict:
        load = tracer._choose(load, "train")
    elif load is not None and load.either:
        load = _Load(replace(load.ref, or_train=True))
    return [load.ref] if load is not None else None
