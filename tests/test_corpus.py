"""Extraction over a corpus described by a MANIFEST.tsv: the project's own small corpus
(tests/fixtures/corpus, one file per behaviour: values written, format defaults, an adapter-only file,
a custom schema). benchmarks/corpus_check.py runs the same checks over the shared corpus of real
third-party files when it is there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import corpus_check

CORPUS = ROOT / "tests" / "fixtures" / "corpus"


@pytest.fixture(scope="module")
def extracted():
    return corpus_check.extract_corpus(CORPUS)


@pytest.fixture(scope="module")
def manifest():
    return corpus_check.read_manifest(CORPUS)


def test_every_corpus_file_is_read_without_an_internal_error(extracted):
    assert len(extracted) == 7
    assert corpus_check.internal_errors(extracted) == {}


def test_the_prefilter_lets_every_configuration_through(extracted):
    assert corpus_check.prefilter_drops(CORPUS, extracted) == []


def test_manifest_values_match_the_extracted_configuration(extracted, manifest):
    mismatches, checked = corpus_check.manifest_mismatches(extracted, manifest)
    assert mismatches == []
    assert checked == 15  # 5 configurations x (r, lora_alpha, lora_dropout)


def test_format_defaults_fill_what_the_file_leaves_out(extracted):
    assert extracted["axolotl/no_dropout.yml"].sites[0].value("lora_dropout") == 0.0
    assert extracted["llamafactory/sft_default_alpha.yaml"].sites[0].value("lora_alpha") == 16


def test_coverage_per_format(extracted, manifest):
    assert corpus_check.coverage(extracted, manifest) == {
        "adapter_config": (1, 1),
        "axolotl": (2, 2),
        "custom": (0, 1),  # a project's own schema is nobody's format
        "llamafactory": (1, 2),  # the inference file loads an adapter trained elsewhere
        "torchtune": (1, 1),
    }


def test_the_benchmark_script_reports_a_mismatch(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "axolotl").mkdir(parents=True)
    (corpus / "axolotl" / "lora.yml").write_text((CORPUS / "axolotl" / "lora.yml").read_text())
    (corpus / "MANIFEST.tsv").write_text("local_file\tformat\tr\talpha\tdropout\n"
                                         "axolotl/lora.yml\taxolotl-yaml\t32\t32\t0.05\n")
    assert corpus_check.main([str(corpus)]) == 1
    assert corpus_check.main([str(tmp_path / "missing")]) == 2
