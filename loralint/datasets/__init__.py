"""The real size of the data set a configuration trains on (LORA104's "large data set").

Extraction records what each file names (`Hints.datasets`: local files, Hub ids, LLaMA-Factory
dataset names, splits and caps); this stage, run once after extraction, turns them into a number:
local files are counted by streaming (loralint.datasets.count, bounded by max-data-file-size),
Hub ids come from the local datasets cache's dataset_info.json or the shipped index. Nothing is
loaded or executed, and nothing is fetched. A number is only given when every data set of the
configuration is sized, or when the ones that are already reach the total (a lower bound)."""

from __future__ import annotations

import math
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loralint.datasets.kinds import kind_of
from loralint.safe_read import DEFAULT_MAX_DATA_FILE_SIZE, read_limited
from loralint.sites import ConfigSite, DatasetRef, Field, effective

if TYPE_CHECKING:
    from loralint.cache import CountCache

_MAX_FILES = 64  # data files counted for one configuration


class Sizer:
    """Sizes data sets for one run; each file is counted once (by path, size and mtime)."""

    def __init__(self, root: Path | None, max_bytes: int = DEFAULT_MAX_DATA_FILE_SIZE, online: bool = False,
                 counts: CountCache | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.online = online  # --online: a Hub data set known nowhere else is looked up on the Hub
        self._counted: dict[tuple, tuple[int, str] | None] = {}
        self._hub: dict[tuple[str, str | None], tuple[dict[str, int], str] | None] = {}
        self.asked: list[str] = []  # Hub data sets looked up online, in order, once each
        self._counts = counts  # across runs (the cache's directory), keyed like _counted
        self._registries: dict[Path, Any] = {}  # dataset_info.json files read, by path (one read a run)
        # (name as written, the config's folder, folder?) -> what _locate found: many configs of a project name the
        # same Hub data sets, each looked for as a local folder and file first
        self._located: dict[tuple[str, str, bool], Path | None] = {}
        self._tops: dict[str, str | None] = {}  # folder -> the top of its git checkout (_checkout)
        self._bases: dict[str, list[Path]] = {}  # a config's folder -> where else _find looks (the root, the checkout's top)
        self._modes: dict[str, int | None] = {}  # path -> its st_mode, None when it cannot be stat'ed (_is)
        # The files sizing read (counted, registries), each with its stat taken before the read (None when it
        # failed): what `check --watch` polls, from that stat, so an edit during the run is seen.
        self.read: dict[str, os.stat_result | None] = {}

    def hub_sizes(self, repo_id: str, config: str | None) -> tuple[dict[str, int], str] | None:
        key = (repo_id, config)
        if key not in self._hub:
            # Imported here: extraction imports this package, and most runs never ask the Hub (start-up).
            from loralint.datasets.hub import hub_split_sizes

            self._hub[key] = hub_split_sizes(repo_id, config, self.online)
            if self.online and repo_id not in self.asked:
                self.asked.append(repo_id)
        return self._hub[key]

    def size_site(self, site: ConfigSite, config_path: Path) -> None:
        refs = site.hints.datasets
        if refs:
            total, parts, complete = 0, [], True
            for ref in refs:
                sized = self.size_ref(ref, config_path, axolotl=site.origin == "axolotl")
                if sized is None:
                    complete = False
                    continue
                total += sized[0]
                parts.append(sized[1])
            if parts:
                provenance = "; ".join(parts[:3]) + ("; ..." if len(parts) > 3 else "")
                if not complete:
                    provenance = f"at least: {provenance}; other data sets not sized"
                site.hints.dataset_size = Field("dataset_size", total, refs[0].span, provenance=provenance)
        if site.hints.held_out is not None and site.hints.dataset_size is not None:
            site.hints.dataset_size = _held_out(site.hints.dataset_size, site.hints.held_out)

    def size_ref(self, ref: DatasetRef, config_path: Path, axolotl: bool = False) -> tuple[int, str] | None:
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
            if self._locate(ref.name, config_path, folder=True) or self._locate(ref.name, config_path):
                # A local path of that name wins over the Hub (datasets' load_dataset and axolotl look
                # there first); axolotl gives a local folder to load_from_disk (utils/data/shared.py).
                if not axolotl:
                    return None
                found = self._disk(replace(ref, kind="disk", files=[ref.name]), config_path, axolotl=True)
                return None if found is None else (found[0], f"{found[1]}; {ref.where}")
            found = self.hub_sizes(ref.name, ref.config)
            if found is None:
                return None
            splits, what, source = found[0], ref.name, found[1]
        elif ref.kind == "llamafactory":
            return self._llamafactory(ref, config_path)
        elif ref.kind == "disk":
            found = self._disk(ref, config_path, axolotl=axolotl)
            return None if found is None else (found[0], f"{found[1]}; {ref.where}" if ref.where else found[1])
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

    def _locate(self, written: str, config_path: Path, folder: bool = False) -> Path | None:
        """A path as the config names it: absolute, else next to the config, else from the root, else from
        the top of the git checkout (trainers resolve it against the working directory, usually the
        repository's root)."""
        key = (written, os.path.dirname(str(config_path)), folder)  # the same folder string: the same parent
        if key not in self._located:
            self._located[key] = self._find(written, config_path, folder)
        return self._located[key]

    def _find(self, written: str, config_path: Path, folder: bool) -> Path | None:
        if any(ch in written for ch in "*?[") or "://" in written:
            return None  # globs and remote URLs are not counted
        path = Path(os.path.expanduser(written))
        if path.is_absolute():
            return path if self._is(path, folder) else None
        near = config_path.parent / path
        if self._is(near, folder):
            return near
        # The top of the git checkout too: a trainer runs from there (`axolotl train configs/x.yml`), and
        # without it the size (and LORA104) would depend on the folder loralint was started from.
        here = os.path.dirname(str(config_path))
        if here not in self._bases:
            parent = config_path.parent
            top = self._checkout(os.path.dirname(os.path.abspath(config_path)))
            bases: list[Path] = []
            for base in (self.root, top):  # run from the checkout's top, the root is often the same folder
                # `path` is relative: base / path is another candidate exactly when base is another folder
                if base is not None and Path(base) != parent and Path(base) not in bases:
                    bases.append(Path(base))
            self._bases[here] = bases
        for base in self._bases[here]:  # the same for every config of the run: _is stats each path once
            candidate = base / path
            if self._is(candidate, folder):
                return candidate
        return None

    def _is(self, candidate: Path, folder: bool) -> bool:
        """Path.is_dir() (`folder`) or Path.is_file(), from one stat a path for the run."""
        name = str(candidate)
        if name not in self._modes:
            try:
                self._modes[name] = os.stat(name).st_mode
            except (OSError, ValueError):  # missing, unreadable, a NUL in the name: neither
                self._modes[name] = None
        mode = self._modes[name]
        return mode is not None and (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode))

    def _checkout(self, folder: str) -> str | None:
        """The top of the git checkout holding `folder` (the nearest folder above with a `.git`), or None."""
        if folder not in self._tops:
            parent = os.path.dirname(folder)
            if os.path.exists(os.path.join(folder, ".git")):
                self._tops[folder] = folder
            else:
                self._tops[folder] = None if parent == folder else self._checkout(parent)
        return self._tops[folder]

    # --- save_to_disk folders -----------------------------------------------------------------
    def _disk(self, ref: DatasetRef, config_path: Path, axolotl: bool = False) -> tuple[int, str] | None:
        """A folder written by save_to_disk (datasets/arrow_dataset.py, dataset_dict.py): a Dataset is
        `state.json` + the `_data_files` it lists (Arrow streams); a DatasetDict is `dataset_dict.json`
        ({"splits": [...]}) with one such folder per split. The rows are counted in the Arrow files:
        the folder's dataset_info.json keeps the split sizes of the data set it was derived from,
        before any filter or select. axolotl takes a DatasetDict's `split` when it has one, else its
        train split, and a Dataset whole (utils/data/sft.py::_load_and_process_single_dataset)."""
        if len(ref.files) != 1:
            return None
        written = ref.files[0]
        folder = self._locate(written, config_path, folder=True)
        if folder is None:
            return None
        shown, split = written, ref.split
        if (folder / "dataset_dict.json").is_file():
            splits = _json_file(folder / "dataset_dict.json")
            names = splits.get("splits") if isinstance(splits, dict) else None
            if axolotl:
                split = split if isinstance(names, list) and split in names else "train"
            split = split or ("train" if ref.or_train else None)
            if split is None or not isinstance(names, list) or split not in names or not split.isidentifier():
                return None  # a DatasetDict as the training set, or a split it does not have
            folder, shown = folder / split, f"{written} split {split!r}"
        elif split is not None and not axolotl:
            return None  # ds["train"] on a Dataset is a column, not a data set
        state = _json_file(folder / "state.json")
        files = state.get("_data_files") if isinstance(state, dict) else None
        if not isinstance(files, list) or not files or len(files) > _MAX_FILES or state.get("_indices_data_files"):
            return None  # no data files, or an indices mapping (datasets < 2 saved selections that way)
        total = 0
        for entry in files:
            name = entry.get("filename") if isinstance(entry, dict) else None
            if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
                return None  # a data file outside the folder: not what save_to_disk writes
            counted = self._count(folder / name, "arrow")
            if counted is None:
                return None
            total += counted[0]
        plural = "s" if len(files) > 1 else ""
        return total, f"rows in the Arrow record batches of the save_to_disk folder {shown} ({len(files)} file{plural})"

    def _count(self, path: Path, kind: str) -> tuple[int, str] | None:
        try:
            info = path.stat()
        except OSError:
            self.read[str(path)] = None
            return None
        self.read[str(path)] = info
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
        import csv  # the counters and csv's Error: only for a file counted afresh (a warm run's counts are stored)

        from loralint.datasets.count import NotCounted, count_file

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
                self.read[str(info_path)] = info_path.stat()
            except OSError:
                self.read[str(info_path)] = None
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
                kind = kind_of(file_name)
                counted = self._count(base, kind) if kind is not None and base.is_file() else None
                if counted is None:
                    return None
                shown = (Path(directory) / file_name).as_posix()  # as the config names it, not this machine's path
                size, what = _apply_split(split, {"train": counted[0]}), f"{counted[1]} counted in {shown} ({where})"
            else:
                hub = entry.get("hf_hub_url")
                if not isinstance(hub, str):
                    return None
                subset = entry.get("subset") if isinstance(entry.get("subset"), str) else None
                found = self.hub_sizes(hub, subset)
                if found is None:
                    return None
                size, what = _apply_split(split, found[0]), f"{hub} for {where}, split sizes from {found[1]}"
        if size is None:
            return None
        if ref.cap is not None and size > ref.cap:
            size, what = ref.cap, f"{what}, capped by max_samples={ref.cap:,}"
        return size, what


def _held_out(sized: Field, held: Field) -> Field | None:
    """What training keeps after `train_test_split(test_size=held)` (axolotl's val_set_size,
    LLaMA-Factory's val_size): datasets/arrow_dataset.py takes ceil(test_size * n) examples for a
    fraction, test_size for a count, and raises when nothing would be left to train on. A lower bound
    stays one: n - ceil(f * n) never falls as n grows."""
    n, value = sized.value, held.value
    if not isinstance(n, int) or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        if not 0 < value < 1:
            return None
        taken = math.ceil(value * n)
    else:
        taken = value
    if not 0 < taken < n:
        return None  # train_test_split raises: the size of this run is not known
    provenance = f"{sized.provenance}; {n:,} in all, {taken:,} held out for evaluation by {held.describe()}"
    return Field("dataset_size", n - taken, sized.span, provenance=provenance)


def _json_file(path: Path) -> object:
    try:
        import json

        return json.loads(read_limited(path))
    except (OSError, ValueError):
        return None


def _apply_split(text: str, splits: dict[str, int]) -> int | None:
    from loralint.datasets.splits import parse_split, part_size

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


def run_sizer(settings: Any, online: bool = False, cached: bool = False) -> Sizer:
    """The Sizer of one run, which the engine hands each site that names its data sets (size_sites). With
    `online`, Hub data sets that neither the datasets cache nor the index knows are looked up on the Hub
    (online_notes(sizer.asked) says which the Hub did not give). `cached`: keep the counts of local files
    in the settings root's cache (loralint.cache.CountCache)."""
    root = getattr(settings, "root", None)
    counts = None
    if cached and root is not None:
        from loralint.cache import CountCache

        counts = CountCache(root)
    return Sizer(root, getattr(settings, "max_data_file_size", DEFAULT_MAX_DATA_FILE_SIZE), online, counts)


def dropout_in_play(site: ConfigSite) -> float | None:
    """The lora_dropout LORA104 can flag (checks/hyperparams.py): known and strictly between 0 and 1. Without
    one the rule stays quiet whatever the size, and `check` does not size the data set (engine._FileStages)."""
    dropout, known = effective(site, "lora_dropout")
    if not known or isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        return None
    return dropout if 0 < dropout < 1 else None


def size_sites(sizer: Sizer, sites: list[ConfigSite], fs_paths: dict[str, str]) -> None:
    """Give each site that names its data sets a `hints.dataset_size` with its provenance."""
    for site in sites:
        if site.hints.datasets or site.hints.held_out is not None:
            sizer.size_site(site, Path(fs_paths.get(site.path, site.path)))


def online_notes(asked: list[str]) -> list[str]:
    """`--online: <why>; data sets not sized: 'a', 'b'` when the Hub could not be reached (the engine
    folds it into the models' line), and one line per data set the Hub answered no for."""
    from loralint import hub

    down = hub.unreachable()
    failed = [(name, hub.failure(f"dataset:{name}")) for name in asked]
    lost = [name for name, why in failed if why is not None and why == down]
    notes = [f"--online: {down}; data sets not sized: {', '.join(map(repr, lost))}"] if lost else []
    notes += [f"--online: data set {name!r} was not sized: {why}" for name, why in failed
              if why is not None and name not in lost]
    return notes
