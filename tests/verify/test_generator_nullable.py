"""The knowledge generator models optional integer fields that real checkpoints set to null.

DeepSeek-V2-Lite's config.json has ``q_lora_rank: null``: transformers then builds one ``q_proj``
instead of ``q_a_proj``/``q_a_layernorm``/``q_b_proj``. The generator must build that case too, so the
per-type file it writes names the right modules for such a config (verify group: needs torch).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.verify

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deepseek_v2_doc(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("kb")
    # a generous per-type limit: the generator's own time limit must not decide this test on a busy machine
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_knowledge.py"), "--types", "deepseek_v2", "--jobs", "1",
         "--timeout", "3000", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "arch" / "deepseek_v2.json").read_text())


def test_null_q_lora_rank_is_generated_and_self_checked(deepseek_v2_doc):
    doc = deepseek_v2_doc
    assert doc["nullable"] == ["q_lora_rank"]
    # exact = the self-check (the loader's own expansion) reproduced every build, the None ones included
    assert doc["exact"], doc.get("partial_reasons")
    records = {r["n"]: r for r in doc["classes"]["DeepseekV2Model"]["modules"]}
    assert records["layers.{i}.self_attn.q_proj"]["w"] == "q_lora_rank == None"
    assert records["layers.{i}.self_attn.q_a_proj"]["w"] == "q_lora_rank != None"
    assert records["layers.{i}.self_attn.q_b_proj"]["w"] == "q_lora_rank != None"

