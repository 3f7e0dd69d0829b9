"""The knowledge generator's self-check re-expands every observed build with the loader's own expansion;
a build past the loader's MAX_MODULES bound (NLLB-MoE built with hundreds of experts a layer) is one the
loader never counts for a user (LORA906 instead), so it must not mark the class inexact (verify group:
the generator imports torch)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.verify

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("generate_knowledge", ROOT / "scripts" / "generate_knowledge.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


RECORDS = {"modules": [{"n": "layers.{i}.fc", "c": "Linear", "k": "linear", "in": 4, "out": 4,
                        "p": [["weight", [4, 4]]]}], "lists": {"layers": "n"}}


def build(generator, n: int):
    return generator.BuildObs(env={"n": n}, changed={"n"}, role="single", modules=[], aliases=[], lists={},
                              output_layer=None, input_embeddings=None, seq_cls_head=None, total=0)


def test_a_build_past_the_loaders_bound_is_skipped(generator):
    from loralint.knowledge.models import MAX_MODULES

    assert generator.self_check(RECORDS, [build(generator, MAX_MODULES + 1)]) == []


def test_a_build_the_records_do_not_reproduce_is_still_reported(generator):
    [problem] = generator.self_check(RECORDS, [build(generator, 2)])  # two modules expanded, none observed
    assert "extra ['layers.0.fc', 'layers.1.fc']" in problem
