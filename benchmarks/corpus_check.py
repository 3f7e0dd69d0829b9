#!/usr/bin/env python
"""Extraction over a corpus of real configurations described by a MANIFEST.tsv (the shared corpus of
third-party files, ../shared/corpus, when present; tests/test_corpus.py runs the same checks on the
project's own small corpus under tests/fixtures/corpus).

Checks: no file gives an internal error (LORA904), the byte prefilter lets every configuration through,
r / lora_alpha / lora_dropout match what a person read off each file, and how many files of each format
yield a configuration.

    python benchmarks/corpus_check.py [CORPUS]        # default ../shared/corpus; exit 1 on a mismatch
"""

from __future__ import annotations

import collections
import csv
import re
import sys
from pathlib import Path

from loralint.extract import extract_source, file_format, is_candidate
from loralint.sites import FileResult

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

# MANIFEST.tsv `format` -> the origin loralint gives the file; custom schemas are nobody's format.
ORIGIN_OF_FORMAT = {
    "axolotl": "axolotl",
    "llamafactory": "llamafactory",
    "torchtune": "torchtune",
    "trl": "trl",
    "unsloth": "unsloth",
    "peft": "adapter_config",
}
_DEFAULT = re.compile(r"^\(default (?:[^=)]*=)?\s*([-+0-9.eE]+)\)$")  # "(default 0.0)", "(default 2*rank=16)"


def origin_of(format_column: str) -> str | None:
    return ORIGIN_OF_FORMAT.get(format_column.split("-")[0].split("(")[0])


def number(text: str) -> int | float | None:
    """A number from a manifest cell: written (`16`) or the format's default (`(default 2*rank=16)`)."""
    text = text.strip()
    match = _DEFAULT.match(text)
    if match:
        text = match.group(1)
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None


def extract_corpus(corpus: Path) -> dict[str, FileResult]:
    """Every corpus file, extracted without the byte prefilter (so the prefilter is checked too)."""
    out = {}
    for path in sorted(corpus.rglob("*")):
        fmt = file_format(path)
        if path.is_file() and fmt is not None:
            rel = path.relative_to(corpus).as_posix()
            out[rel] = extract_source(rel, path.read_bytes(), fmt)
    return out


def read_manifest(corpus: Path) -> list[dict[str, str]]:
    with open(corpus / "MANIFEST.tsv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def internal_errors(extracted: dict[str, FileResult]) -> dict[str, list[str]]:
    found = {path: [d.message for d in r.diagnostics if d.code == "LORA904"] for path, r in extracted.items()}
    return {p: m for p, m in found.items() if m}


def prefilter_drops(corpus: Path, extracted: dict[str, FileResult]) -> list[str]:
    return [path for path, result in extracted.items()
            if result.sites and not is_candidate((corpus / path).read_bytes(), file_format(path))]


def manifest_mismatches(extracted: dict[str, FileResult], manifest: list[dict[str, str]]) -> tuple[list, int]:
    """(mismatches, number of values compared)."""
    checked = 0
    mismatches = []
    for row in manifest:
        origin = origin_of(row["format"])
        values = {name: number(row[column])
                  for name, column in (("r", "r"), ("lora_alpha", "alpha"), ("lora_dropout", "dropout"))}
        if origin is None or all(v is None for v in values.values()):
            continue  # a project's own schema, or nothing numeric to compare
        result = extracted[row["local_file"]]
        if not result.sites:
            # Configs that only load an adapter trained elsewhere (LLaMA-Factory inference, merge and
            # export files) list nothing but defaults: they hold no configuration to check.
            if any(not row[c].strip().startswith("(") and number(row[c]) is not None for c in ("r", "alpha", "dropout")):
                mismatches.append((row["local_file"], "no configuration found"))
            continue
        site = result.sites[0]
        if site.origin != origin:
            mismatches.append((row["local_file"], f"origin {site.origin} != {origin}"))
        for name, expected in values.items():
            if expected is None:
                continue
            checked += 1
            got = site.value(name)  # set in the file, else the format's default
            if got != expected or isinstance(got, bool):
                mismatches.append((row["local_file"], f"{name}: {got!r} != {expected!r}"))
    return mismatches, checked


def coverage(extracted: dict[str, FileResult], manifest: list[dict[str, str]]) -> dict[str, tuple[int, int]]:
    """Per format: (files with a LoRA configuration, files)."""
    files: collections.Counter = collections.Counter()
    with_site: collections.Counter = collections.Counter()
    for row in manifest:
        fmt = origin_of(row["format"]) or "custom"
        files[fmt] += 1
        with_site[fmt] += bool(extracted[row["local_file"]].sites)
    return {fmt: (with_site[fmt], files[fmt]) for fmt in sorted(files)}


def main(argv: list[str]) -> int:
    corpus = Path(argv[0]) if argv else DEFAULT_CORPUS
    if not (corpus / "MANIFEST.tsv").is_file():
        print(f"{corpus}: no MANIFEST.tsv", file=sys.stderr)
        return 2
    extracted = extract_corpus(corpus)
    manifest = read_manifest(corpus)
    errors = internal_errors(extracted)
    drops = prefilter_drops(corpus, extracted)
    mismatches, checked = manifest_mismatches(extracted, manifest)
    print(f"{len(extracted)} files, {checked} values compared")
    for fmt, (n, total) in coverage(extracted, manifest).items():
        print(f"  {fmt:15} {n:3} / {total} with a LoRA configuration")
    for path, messages in errors.items():
        print(f"LORA904 {path}: {messages}")
    for path in drops:
        print(f"prefilter dropped {path}")
    for path, what in mismatches:
        print(f"mismatch {path}: {what}")
    return 1 if errors or drops or mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
