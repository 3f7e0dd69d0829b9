"""The real size of the data set a configuration trains on (LORA104's "large data set").

Extraction records what each file names (`Hints.datasets`: local files, Hub ids, LLaMA-Factory
dataset names, splits and caps); this stage, run once after extraction, turns them into a number:
local files are counted by streaming (loralint.datasets.count, bounded by max-data-file-size),
Hub ids come from the local datasets cache's dataset_info.json or the shipped index. Nothing is
loaded or executed, and nothing is fetched. A number is only given when every data set of the
configuration is sized, or when the ones that are already reach the total (a lower bound)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loralint.datasets.count import NotCounted, count_file, kind_of
from loralint.datasets.hub import hub_split_sizes
from loralint.datasets.splits import parse_split, part_size
from loralint.safe_read import DEFAULT_MAX_DATA_FILE_SIZE, read_limited
from loralint.sites import ConfigSite, DatasetRef, Field

if TYPE_CHECKING:
    from loralint.cache import CountCache

_MAX_FILES = 64  # data files counted for one configuration


class Sizer:
    """Sizes data sets for one run; each file is counted once (by path, size and mtime)."""

    def __init__(self, root: Path | None, max_bytes: int = DEFAULT_MAX_DATA_FILE_SIZE, counts: CountCache | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._counted: dict[tuple, tuple[int, str] | None] = {}
        self._counts = counts  # across runs (the cache's directory), keyed like _counted
        self._registries: dict[Path, Any] = {}  # dataset_info.json files read, by path (one read a run)

    def size_site(self, site: ConfigSite, config_path: Path) -> None:
        refs = site.hints.datasets
        if not refs:
            return
        total, parts, complete = 0, [], True
        for ref in refs:
            sized = self.size_ref(ref, config_path)
            if sized is None:
                complete = False
                continue
            total += sized[0]
            parts.append(sized[1])
        if not parts:
            return
        provenance = "; ".join(parts[:3]) + ("; ..." if len(parts) > 3 else "")
        if not complete:
            provenance = f"at least: {provenance}; other data sets not sized"
        site.hints.dataset_size = Field("dataset_size", total, refs[0].span, provenance=provenance)

    def size_ref(self, ref: DatasetRef, config_path: Path) -> tuple[int, str] | None:
        if ref.exact is not None:
            return ref.exact, f"{ref.exact:,} selected by .select(range(...)) ({ref.where})"
        splits: dict[str, int] | None = None
        what, source = "", ""
        if ref.kind == "files":
            counted = self._files(ref.files, ref.name, config_path)
            if counted is None:
                return None
            splits, what = {"train": counted[0]}, counted[1]
        elif ref.kind == "hub":
            found = hub_split_sizes(ref.name, ref.config)
            if found is None:
                return None
            splits, what, source = found[0], ref.name, found[1]
        elif ref.kind == "llamafactory":
            return self._llamafactory(ref, config_path)
        if splits is None:
            return None
        size = _apply_split(ref.split or "train", splits)
        if size is None:
            return None
        if ref.split and ref.split != "train":
            what += f" split={ref.split!r}"
        if source:
            what += f", split sizes from {source}"
        if ref.cap is not None and size > ref.cap:
            size, what = ref.cap, f"{what}, capped by max_samples={ref.cap:,}"
        return size, f"{what}; {ref.where}" if ref.where else what

    # --- local files --------------------------------------------------------------------------
    def _files(self, files: list[str], builder: str, config_path: Path) -> tuple[int, str] | None:
        if not files or len(files) > _MAX_FILES:
            return None
        total, shown = 0, []
        for written in files:
            found = self._locate(written, config_path)
            kind = kind_of(written, builder or None)
            if found is None or kind is None:
                return None
            counted = self._count(found, kind)
            if counted is None:
                return None
            total += counted[0]
            shown.append((written, counted[1]))
        how = shown[0][1]
        names = ", ".join(w for w, _ in shown[:3]) + (", ..." if len(shown) > 3 else "")
        return total, f"{how} counted in {names}"

    def _locate(self, written: str, config_path: Path) -> Path | None:
        """A path as the config names it: absolute, else next to the config, else from the root
        (trainers resolve it against the working directory, usually the repository's root)."""
        if any(ch in written for ch in "*?[") or "://" in written:
            return None  # globs and remote URLs are not counted
        path = Path(os.path.expanduser(written))
        candidates = [path] if path.is_absolute() else [config_path.parent / path, *([self.root / path] if self.root else [])]
        for candidate in candidates:
            try:
                if candidate.is_file():
                    return candidate
            except OSError:
                continue
        return None

    def _count(self, path: Path, kind: str) -> tuple[int, str] | None:
        try:
            info = path.stat()
        except OSError:
            return None
        key = (str(path.resolve()), info.st_size, info.st_mtime_ns, kind)
        if key not in self._counted:
            self._counted[key] = self._count_once(path, kind, key)
        return self._counted[key]

    def _count_once(self, path: Path, kind: str, key: tuple[str, int, int, str]) -> tuple[int, str] | None:
        store = self._counts
        stored_key = store.key(*key, self.max_bytes) if store is not None else ""
        if store is not None:
            found, value = store.get(stored_key)
            if found:
                return value
        try:
            counted = count_file(path, kind, self.max_bytes)
            value = (counted.records, counted.how)
        except OSError:
            return None  # refused or unreadable now: tried again next run, never kept
        except (NotCounted, UnicodeError, ValueError, csv.Error):
            value = None  # a file that cannot be counted leaves the size unknown
        if store is not None:
            store.put(stored_key, value)
        return value

    # --- LLaMA-Factory ------------------------------------------------------------------------
    def _registry(self, info_path: Path) -> Any:
        """A dataset_info.json as JSON, or None when it cannot be read."""
        if info_path not in self._registries:
            import json

            try:
                self._registries[info_path] = json.loads(read_limited(info_path))
            except (OSError, ValueError):
                self._registries[info_path] = None
        return self._registries[info_path]

    def _llamafactory(self, ref: DatasetRef, config_path: Path) -> tuple[int, str] | None:
        """`dataset: name` looked up in `<dataset_dir>/dataset_info.json` (LLaMA-Factory's
        data/parser.py::get_dataset_list); `num_samples` resamples to exactly that many and
        `max_samples` truncates each data set (data/loader.py::_load_single_dataset)."""
        directory = ref.dataset_dir or "data"
        info_path = self._locate(str(Path(directory) / "dataset_info.json"), config_path)
        if info_path is None:
            return None
        registry = self._registry(info_path)
        entry = registry.get(ref.name) if isinstance(registry, dict) else None
        if not isinstance(entry, dict):
            return None
        where = f"{ref.name} in {directory}/dataset_info.json"
        num = entry.get("num_samples")
        size: int | None = None
        if isinstance(num, int) and not isinstance(num, bool) and num >= 0:
            size, what = num, f"num_samples={num:,} for {where}"
        else:
            split = entry.get("split", "train") if isinstance(entry.get("split", "train"), str) else None
            if split is None:
                return None
            file_name = entry.get("file_name")
            if isinstance(file_name, str):
                base = info_path.parent / file_name
                if base.is_dir():
                    return None  # a folder of files: not counted
                counted = self._files([str(base)], "", config_path)
                if counted is None:
                    return None
                size, what = _apply_split(split, {"train": counted[0]}), f"{counted[1]} ({where})"
            else:
                hub = entry.get("hf_hub_url")
                if not isinstance(hub, str):
                    return None
                subset = entry.get("subset") if isinstance(entry.get("subset"), str) else None
                found = hub_split_sizes(hub, subset)
                if found is None:
                    return None
                size, what = _apply_split(split, found[0]), f"{hub} for {where}, split sizes from {found[1]}"
        if size is None:
            return None
        if ref.cap is not None and size > ref.cap:
            size, what = ref.cap, f"{what}, capped by max_samples={ref.cap:,}"
        return size, what


def _apply_split(text: str, splits: dict[str, int]) -> int | None:
    parts = parse_split(text)
    if parts is None:
        return None
    total = 0
    for part in parts:
        n = part_size(part, splits.get(part.split))
        if n is None:
            return None
        total += n
    return total


def size_datasets(sites: list[ConfigSite], fs_paths: dict[str, Path], settings: Any, cached: bool = False) -> None:
    """Give each site that names its data sets a `hints.dataset_size` with its provenance. `cached`: keep
    the counts of local files in the settings root's cache (loralint.cache.CountCache)."""
    todo = [s for s in sites if s.hints.datasets]
    if not todo:
        return
    root = getattr(settings, "root", None)
    counts = None
    if cached and root is not None:
        from loralint.cache import CountCache

        counts = CountCache(root)
    sizer = Sizer(root, getattr(settings, "max_data_file_size", DEFAULT_MAX_DATA_FILE_SIZE), counts)
    for site in todo:
        sizer.size_site(site, fs_paths.get(site.path, Path(site.path)))
