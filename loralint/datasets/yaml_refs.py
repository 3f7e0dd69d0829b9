"""The data sets a trainer YAML names, as DatasetRefs (sized later by loralint.datasets)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from loralint.datasets.kinds import SUFFIXES
from loralint.lazy_re import lazy
from loralint.sites import DatasetRef, Field, Span

_HUB_ID = lazy(r"^[\w.\-]+/[\w.\-]+$")


def _text(node: Any) -> str | None:
    if node is None or node.kind != "scalar" or not isinstance(node.value, str) or not node.value.strip():
        return None
    return node.value.strip()


def _int(node: Any) -> int | None:
    value = node.value if node is not None and node.kind == "scalar" else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _is_data_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in SUFFIXES


def axolotl_refs(datasets: Any, span: Callable[[Any], Span]) -> list[DatasetRef] | None:
    """axolotl's `datasets: [{path, ds_type, data_files, name, split, shards}]`
    (axolotl/utils/data/shared.py::load_dataset_with_config: a local file or folder, else the Hub)."""
    if datasets is None or datasets.kind != "seq" or not datasets.items:
        return None
    refs: list[DatasetRef] = []
    for index, item in enumerate(datasets.items):
        if item.kind != "map":
            continue
        path = _text(item.get("path"))
        if path is None or item.get("shards") is not None or item.get("data_files") is not None:
            continue  # sharded or a Hub repo's chosen files: not sized
        where = f"axolotl datasets[{index}]"
        split = _text(item.get("split"))
        builder = _text(item.get("ds_type")) or ""
        if _is_data_file(path) or builder:
            refs.append(DatasetRef(span(item.get("path")), "files", builder, [path], split=split, where=where))
        elif _HUB_ID.match(path):
            refs.append(DatasetRef(span(item.get("path")), "hub", path, config=_text(item.get("name")), split=split,
                                   where=where))
        else:  # a local folder (`./data/prepared`): axolotl gives it to load_from_disk
            refs.append(DatasetRef(span(item.get("path")), "disk", "", [path], split=split, where=where))
    return refs or None


def llamafactory_refs(root: Any, span: Callable[[Any], Span]) -> list[DatasetRef] | None:
    """`dataset: a,b` looked up in `<dataset_dir>/dataset_info.json`; `max_samples` truncates each
    (LLaMA-Factory data/parser.py::get_dataset_list, data/loader.py::_load_single_dataset)."""
    node = root.get("dataset")
    names = _text(node)
    if names is None:
        return None
    directory = _text(root.get("dataset_dir")) or "data"
    cap = _int(root.get("max_samples"))
    streaming = root.get("streaming")
    if streaming is not None and streaming.value is True:
        return None
    refs = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        if directory == "ONLINE":
            refs.append(DatasetRef(span(node), "hub", name, cap=cap, where="LLaMA-Factory dataset (dataset_dir: ONLINE)"))
        else:
            refs.append(DatasetRef(span(node), "llamafactory", name, cap=cap, dataset_dir=directory,
                                   where="LLaMA-Factory dataset"))
    return refs or None


def held_out(node: Any, key: str, floor: float, span: Callable[[Any], Span]) -> Field | None:
    """The evaluation split taken out of the training set: axolotl's `val_set_size` (used when
    nonzero, utils/data/sft.py::_handle_train_dataset_split) and LLaMA-Factory's `val_size` (above
    1e-6, data/data_utils.py::split_dataset); both pass `int(v) if v > 1 else v` to train_test_split."""
    value = node.value if node is not None and node.kind == "scalar" else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > floor:
        return None
    normalized = int(value) if value > 1 else float(value)
    return Field("held_out", normalized, span(node), provenance=f"YAML key {key}", raw_name=key)
