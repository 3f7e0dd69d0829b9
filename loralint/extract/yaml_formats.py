"""YAML trainer configurations: axolotl, LLaMA-Factory (v0 and v1), torchtune, TRL, Unsloth CLI/Studio.

Every document of the stream is read with a safe loader (libyaml when available) and mapped by
`loralint.extract.formats`, which is shared with the JSON extractor. A broken file raises
SourceSyntaxError with the position libyaml reports (LORA901).
"""

from __future__ import annotations

from loralint.extract.formats import extract_documents
from loralint.extract.yaml_positions import compose_yaml
from loralint.sites import ConfigSite


def extract_yaml(path: str, text: str, reads: list[tuple[str, str | None]] | None = None) -> list[ConfigSite]:
    """`reads`: receives the other files read (a DeepSpeed JSON the config names)."""
    return extract_documents(path, "yaml", text, compose_yaml(text), reads)
