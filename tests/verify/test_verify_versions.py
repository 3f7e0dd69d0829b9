"""Verify says, once a run, when the installed transformers or peft are not the versions the shipped
knowledge base was generated with, so that a count PEFT contradicts (LORA253) is explained."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import peft
import pytest
import transformers
from helpers import REPO, run_cli

from loralint.knowledge.models import knowledge_versions

pytestmark = pytest.mark.verify

SOURCE = "LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM')"


def test_the_note_appears_exactly_when_the_installed_versions_differ(tiny_model, script):
    # The test extra pins the knowledge base's versions: there, no note.
    recorded = knowledge_versions()
    differ = [lib for lib, mod in (("transformers", transformers), ("peft", peft))
              if mod.__version__.split("+")[0] != recorded[lib]]
    path = script(tiny_model("llama"), SOURCE)
    run = run_cli(["verify", "--output-format", "json", "--no-cache", path.name], cwd=path.parent)
    assert run.exit_code == 0, run.stdout
    notes = [n for n in run.json["notes"] if "knowledge base was generated with" in n]
    assert len(notes) == len(run.stderr.split("knowledge base was generated with")) - 1 == (1 if differ else 0)
    for lib in differ:
        assert f"{lib} {recorded[lib]}" in notes[0]
    assert "LORA253" not in run.codes()


def _knowledge_recorded_as(root, transformers_version: str):
    """A copy of loralint whose knowledge base says it was generated with another transformers,
    where that version gave LlamaForCausalLM's lm_head a bias (the counts then differ, as they do
    when a release changes a model)."""
    shutil.copytree(REPO / "loralint", root / "loralint", ignore=shutil.ignore_patterns("__pycache__", "arch"))
    data = root / "loralint" / "knowledge" / "data"
    (data / "arch").mkdir()
    for source in (REPO / "loralint" / "knowledge" / "data" / "arch").iterdir():
        if source.name != "llama.json":
            (data / "arch" / source.name).symlink_to(source)
    arch = json.loads((REPO / "loralint" / "knowledge" / "data" / "arch" / "llama.json").read_text())
    (lm_head,) = [m for m in arch["classes"]["LlamaForCausalLM"]["modules"] if m.get("n") == "lm_head"]
    lm_head["p"].append(["bias", ["vocab_size"]])
    (data / "arch" / "llama.json").write_text(json.dumps(arch))
    index = json.loads((data / "index.json").read_text())
    index["versions"]["transformers"] = transformers_version
    (data / "index.json").write_text(json.dumps(index))
    (root / "rules").symlink_to(REPO / "rules")


def test_a_knowledge_base_of_another_transformers_is_said_once_and_explains_the_mismatch(tiny_model, script, tmp_path):
    _knowledge_recorded_as(tmp_path / "other", "4.99.0")
    model = tiny_model("llama")
    path = script(model, SOURCE)
    script(model, SOURCE.replace("r=4", "r=8"), name="second.py")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "other"), "HF_HUB_OFFLINE": "1"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run([sys.executable, "-m", "loralint", "verify", "--output-format", "json", "--no-cache", "."],
                          cwd=path.parent, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    note = (f"the installed transformers {transformers.__version__} is not the version loralint's knowledge base "
            "was generated with (transformers 4.99.0)")
    assert proc.stderr.count(note) == 1, proc.stderr  # once a run, not once a configuration
    assert len([n for n in report["notes"] if n.startswith(note)]) == 1
    mismatches = [d for d in report["diagnostics"] if d["code"] == "LORA253"]
    assert len(mismatches) == 2  # both configurations: the vocabulary-sized bias PEFT does not count
    for d in mismatches:
        assert "the knowledge base describes transformers 4.99.0" in d["message"]
        assert f"transformers {transformers.__version__} is installed" in d["message"]
        assert "this is a bug in loralint" not in d["message"]
