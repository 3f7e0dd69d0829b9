"""The shared corpus of real configurations (../shared/corpus, described by its MANIFEST.tsv):
extraction never crashes, and r / lora_alpha / lora_dropout match what a person read off each file."""

from __future__ import annotations

import collections
import csv
import re

import pytest
from helpers import SHARED

from loralint.extract import extract_source, file_format, is_candidate
from loralint.sites import FileResult

CORPUS = SHARED / "corpus"
pytestmark = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").is_file(), reason="../shared/corpus is not checked out here"
)

# MANIFEST.tsv `format` → the origin loralint gives the file; custom schemas are nobody's format.
ORIGIN_OF_FORMAT = {
    "axolotl": "axolotl",
    "llamafactory": "llamafactory",
    "torchtune": "torchtune",
    "trl": "trl",
    "unsloth": "unsloth",
    "peft": "adapter_config",
}


def origin_of(format_column: str) -> str | None:
    return ORIGIN_OF_FORMAT.get(format_column.split("-")[0].split("(")[0])


_DEFAULT = re.compile(r"^\(default (?:[^=)]*=)?\s*([-+0-9.eE]+)\)$")  # "(default 0.0)", "(default 2*rank=16)"


def number(text: str) -> int | float | None:
    """A number from a manifest cell: written (`16`) or the format's default (`(default 2*rank=16)`)."""
    text = text.strip()
    match = _DEFAULT.match(text)
    if match:
        text = match.group(1)
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


@pytest.fixture(scope="module")
def extracted() -> dict[str, FileResult]:
    """Every corpus file, extracted without the byte prefilter (so the prefilter is checked too)."""
    out = {}
    for path in sorted(CORPUS.rglob("*")):
        fmt = file_format(path)
        if path.is_file() and fmt is not None:
            rel = path.relative_to(CORPUS).as_posix()
            out[rel] = extract_source(rel, path.read_bytes(), fmt)
    return out


@pytest.fixture(scope="module")
def manifest() -> list[dict[str, str]]:
    with open(CORPUS / "MANIFEST.tsv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_every_corpus_file_is_read_without_an_internal_error(extracted):
    assert len(extracted) >= 170
    internal = {
        path: [d.message for d in r.diagnostics if d.code == "LORA904"] for path, r in extracted.items()
    }
    assert {p: m for p, m in internal.items() if m} == {}


def test_the_prefilter_lets_every_configuration_through(extracted):
    dropped = [
        path
        for path, result in extracted.items()
        if result.sites and not is_candidate((CORPUS / path).read_bytes(), file_format(path))
    ]
    assert dropped == []


def test_manifest_values_match_the_extracted_configuration(extracted, manifest):
    checked = 0
    mismatches = []
    for row in manifest:
        origin = origin_of(row["format"])
        values = {
            name: number(row[column])
            for name, column in (("r", "r"), ("lora_alpha", "alpha"), ("lora_dropout", "dropout"))
        }
        if origin is None or all(v is None for v in values.values()):
            continue  # a project's own schema, or nothing numeric to compare
        result = extracted[row["local_file"]]
        if not result.sites:
            # Configs that only load an adapter trained elsewhere (LLaMA-Factory inference, merge and
            # export files) list nothing but defaults: they hold no configuration to check.
            if any(
                not row[c].strip().startswith("(") and number(row[c]) is not None
                for c in ("r", "alpha", "dropout")
            ):
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
    assert mismatches == []
    assert checked >= 450


def test_coverage_per_format(extracted, manifest):
    """How many corpus files yield a configuration, per format (printed with -s)."""
    files = collections.Counter()
    with_site = collections.Counter()
    for row in manifest:
        fmt = origin_of(row["format"]) or "custom"
        files[fmt] += 1
        if extracted[row["local_file"]].sites:
            with_site[fmt] += 1
    print("\ncorpus files with a LoRA configuration, per format:")
    for fmt in sorted(files):
        print(f"  {fmt:15} {with_site[fmt]:3} / {files[fmt]}")
    # Files without one: LLaMA-Factory inference/merge/export configs (they load an adapter trained
    # elsewhere), a LeRobot file named adapter_config.json, a Git-LFS pointer, custom schemas.
    assert with_site["axolotl"] == files["axolotl"]
    assert with_site["torchtune"] == files["torchtune"]
    assert with_site["trl"] == files["trl"]
    assert with_site["unsloth"] == files["unsloth"]
    assert with_site["llamafactory"] >= files["llamafactory"] - 4
    assert with_site["adapter_config"] >= files["adapter_config"] - 2
    assert with_site["custom"] == 0
