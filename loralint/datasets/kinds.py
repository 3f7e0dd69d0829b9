"""Which counter a data file gets, from its suffix or the datasets builder named: apart from
loralint.datasets.count (the counters), which only a file counted afresh needs; a warm run's counts are stored."""

from __future__ import annotations

import os

SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
            ".arrow": "arrow"}
# datasets' packaged builders: load_dataset("json", data_files=...) and friends
BUILDERS = {"json": "json", "csv": "csv", "parquet": "parquet", "arrow": "arrow", "text": "text"}


def kind_of(path: str, builder: str | None = None) -> str | None:
    """The counter for a file: from the builder named (`load_dataset("json", ...)`), else its suffix."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in SUFFIXES:
        kind = SUFFIXES[suffix]
        return "jsonl" if kind == "json" and builder == "jsonl" else kind
    return BUILDERS.get(builder or "")
