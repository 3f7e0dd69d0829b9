"""Split sizes of a Hub data set, without the network: the local datasets cache first (the
dataset_info.json that `datasets` writes next to each prepared data set holds every split's
num_examples), then loralint's shipped index (knowledge/datasets.json)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from loralint.safe_read import read_limited

_INDEX = Path(__file__).resolve().parent.parent / "knowledge" / "datasets.json"
_MAX_INFO_FILES = 32


def datasets_cache() -> Path:
    """datasets' cache folder: HF_DATASETS_CACHE, else $HF_HOME/datasets, else ~/.cache/huggingface/datasets
    (datasets/config.py)."""
    explicit = os.environ.get("HF_DATASETS_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "datasets"


def hub_split_sizes(repo_id: str, config: str | None) -> tuple[dict[str, int], str] | None:
    """{split: num_examples} and where they come from, or None when not known."""
    found = _from_cache(repo_id, config)
    if found is not None:
        return found
    return _from_index(repo_id, config)


def _from_cache(repo_id: str, config: str | None) -> tuple[dict[str, int], str] | None:
    """`<cache>/<owner>___<name>/<config>/<version>/<hash>/dataset_info.json` (datasets >= 2.14
    names the folder after the repo id with "/" as "___"). Several versions must agree."""
    if "/" not in repo_id or ".." in repo_id:
        return None
    folder = datasets_cache() / repo_id.replace("/", "___")
    try:
        if not folder.is_dir():
            return None
        configs = [folder / config] if config else [p for p in folder.iterdir() if p.is_dir()]
        if len(configs) != 1:
            return None  # several configurations and none named: which one is loaded is not known
        infos = sorted(configs[0].glob("*/*/dataset_info.json"))[:_MAX_INFO_FILES]
    except OSError:
        return None
    seen: dict[str, int] | None = None
    for info in infos:
        try:
            data = json.loads(read_limited(info))
        except (OSError, ValueError):
            continue
        splits = data.get("splits") if isinstance(data, dict) else None
        if not isinstance(splits, dict):
            continue
        sizes = {
            name: entry["num_examples"]
            for name, entry in splits.items()
            if isinstance(entry, dict) and isinstance(entry.get("num_examples"), int)
        }
        if seen is not None and sizes != seen:
            return None  # versions disagree
        seen = sizes
    if not seen:
        return None
    return seen, "the local datasets cache's dataset_info.json"


@lru_cache(maxsize=1)
def _index() -> dict:
    try:
        return json.loads(_INDEX.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _from_index(repo_id: str, config: str | None) -> tuple[dict[str, int], str] | None:
    entry = _index().get(repo_id)
    if not isinstance(entry, dict) or repo_id.startswith("_"):
        return None
    wanted = entry.get("config")
    if config is not None and config != wanted and not (wanted is None and config == "default"):
        return None
    if wanted is not None and config is None:
        return None  # the data set needs a configuration name; load_dataset would fail without one
    return dict(entry["splits"]), f"loralint's index of Hub data sets ({entry.get('source', 'Hub')})"
