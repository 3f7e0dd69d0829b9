"""JSON: PEFT's adapter_config.json (origin "adapter_config") and JSON versions of the trainer formats.

The stdlib decoder decides validity and builds the values; positions are recorded only for files
whose top level looks like a configuration we extract, so a large JSON file that merely passed the
byte prefilter (a tokenizer.json has an `"r":` key) costs one C-speed `json.loads`.
"""

from __future__ import annotations

from loralint.extract.formats import extract_documents, format_keys
from loralint.extract.yaml_positions import compose_json, parse_json
from loralint.sites import ConfigSite


def extract_json(path: str, text: str, reads: list[tuple[str, str | None]] | None = None) -> list[ConfigSite]:
    """`reads`: receives the other files read (a DeepSpeed JSON a trainer config names)."""
    if not format_keys(parse_json(text)):
        return []
    return extract_documents(path, "json", text, [compose_json(text)], reads)
