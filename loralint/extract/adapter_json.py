"""adapter_config.json and JSON trainer configs. Placeholder."""

from __future__ import annotations

from loralint.sites import ConfigSite


def extract_json(path: str, text: str) -> list[ConfigSite]:
    return []
