"""Split sizes of a Hub data set: the local datasets cache first (the dataset_info.json that
`datasets` writes next to each prepared data set holds every split's num_examples), then loralint's
shipped index (knowledge/datasets.json), and only with --online the data set's card on the Hub
(loralint.hub.dataset_card: the `dataset_info` that push_to_hub writes into the README)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from loralint.lazy_re import lazy
from loralint.safe_read import read_limited

_HUB_ID = lazy(r"^[\w.\-]+(/[\w.\-]+)?$")  # `imdb` too: the Hub redirects it to its owner's repo

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


def hub_split_sizes(repo_id: str, config: str | None, online: bool = False) -> tuple[dict[str, int], str] | None:
    """{split: num_examples} and where they come from, or None when not known."""
    found = _from_cache(repo_id, config) or _from_index(repo_id, config)
    if found is None and online and _HUB_ID.match(repo_id) and ".." not in repo_id:
        from loralint import hub

        card = hub.dataset_card(repo_id)
        sizes = card_split_sizes(card, config) if card is not None else None
        if sizes is not None:
            return sizes, "the data set's card on the Hugging Face Hub (--online)"
    return found


def card_split_sizes(card: dict, config: str | None) -> dict[str, int] | None:
    """The split sizes a card's `dataset_info` gives for the configuration load_dataset would load:
    the one named, else the one the card's `configs` marks `default: true`, else the only one
    (datasets/load.py raises when several exist and none is chosen)."""
    infos = card.get("dataset_info")
    entries = infos if isinstance(infos, list) else [infos]
    by_config: dict[str, dict[str, int]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        name = entry.get("config_name", "default")
        splits = entry.get("splits")
        items = splits if isinstance(splits, list) else []
        sizes = {s["name"]: s["num_examples"] for s in items
                 if isinstance(s, dict) and isinstance(s.get("name"), str) and type(s.get("num_examples")) is int
                 and s["num_examples"] >= 0}
        if isinstance(name, str) and sizes and len(sizes) == len(items):
            by_config[name] = sizes
    wanted = config
    if wanted is None:
        configs = [c for c in card.get("configs") or [] if isinstance(c, dict)] if isinstance(card.get("configs"), list) else []
        defaults = [c.get("config_name") for c in configs if c.get("default") is True]
        if len(defaults) == 1:
            wanted = defaults[0]
        elif len(configs) <= 1 and len(by_config) == 1:
            wanted = next(iter(by_config))
            if configs and configs[0].get("config_name") != wanted:
                return None
    return by_config.get(wanted) if isinstance(wanted, str) else None


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
