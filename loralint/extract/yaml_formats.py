"""YAML trainer formats (axolotl, LLaMA-Factory, torchtune, TRL, Unsloth CLI). Placeholder."""

from __future__ import annotations

from loralint.sites import ConfigSite


def extract_yaml(path: str, text: str) -> list[ConfigSite]:
    return []
