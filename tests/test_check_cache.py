"""The cache also holds checked diagnostics: a warm run reports what a cold run reports, and anything the
checks read besides the file itself (settings, the base model's config.json) makes it check again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, run_cli

SCRIPT = """\
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("./tiny")
config = LoraConfig(r=8, lora_alpha=1, target_modules=["q_proj", "v_proj"], layers_to_transform=[2],
                    task_type="CAUSAL_LM")
model = get_peft_model(model, config)
"""


def _tree(tmp_path: Path) -> None:
    shutil.copytree(REPO / "tests" / "fixtures" / "models" / "tiny-llama", tmp_path / "tiny")
    (tmp_path / "train.py").write_text(SCRIPT)


def _check(tmp_path: Path, *args: str) -> dict:
    return run_cli(["check", "--output-format", "json", *args, "."], cwd=tmp_path).json


def _findings(report: dict) -> list[tuple[str, str, int]]:
    return [(d["code"], d["severity"], d["line"]) for d in report["diagnostics"]]


def test_a_warm_run_reports_exactly_what_a_cold_run_reports(tmp_path):
    _tree(tmp_path)
    cold = _check(tmp_path, "--no-cache")
    assert cold["configs"][0]["trainable_params"]  # the model resolved: its findings and counts are in play
    first = _check(tmp_path)
    assert (tmp_path / ".loralint_cache").is_dir()
    warm = _check(tmp_path)
    assert first == cold and warm == cold


def test_changed_settings_are_applied_to_an_unchanged_file(tmp_path):
    _tree(tmp_path)
    before = _findings(_check(tmp_path))
    assert ("LORA101", "warning", 5) in before
    (tmp_path / "pyproject.toml").write_text('[tool.loralint.severity]\nLORA101 = "error"\n')
    after = _findings(_check(tmp_path))
    assert ("LORA101", "error", 5) in after and ("LORA101", "warning", 5) not in after
    (tmp_path / "pyproject.toml").write_text('[tool.loralint]\nignore = ["LORA101"]\n')
    assert not [f for f in _findings(_check(tmp_path)) if f[0] == "LORA101"]


def test_a_changed_model_config_is_checked_again(tmp_path):
    _tree(tmp_path)
    assert not [f for f in _findings(_check(tmp_path)) if f[0] == "LORA206"]  # layer 2 of 3 exists
    config = tmp_path / "tiny" / "config.json"
    data = json.loads(config.read_text())
    data["num_hidden_layers"] = 2
    config.write_text(json.dumps(data))
    report = _check(tmp_path)
    assert report == _check(tmp_path, "--no-cache")
    assert [f for f in _findings(report) if f[0] == "LORA206"]  # the script did not change; the model did


RESUMED = """\
from peft import PeftModel
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

base = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")
model = PeftModel.from_pretrained(base, "out/checkpoint-500", is_trainable=True)
trainer = Trainer(model=model, args=TrainingArguments(output_dir="out", learning_rate=2e-6), train_dataset=None)
trainer.train()
"""


def _save_adapter(tmp_path: Path, alpha: int) -> None:
    folder = tmp_path / "out" / "checkpoint-500"
    folder.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "r": 8, "lora_alpha": alpha, "target_modules": ["q_proj", "v_proj"],
              "task_type": "CAUSAL_LM", "base_model_name_or_path": "Qwen/Qwen2.5-0.5B"}
    (folder / "adapter_config.json").write_text(json.dumps(config))


def _entries(tmp_path: Path) -> dict[str, tuple[int, int]]:
    """The cache's entry files (in its two-character folders) with their inode and time: a rewrite shows."""
    found = {}
    for entry in (tmp_path / ".loralint_cache").glob("*/??/*"):
        info = entry.stat()
        found[entry.relative_to(tmp_path).as_posix()] = (info.st_ino, info.st_mtime_ns)
    return found


def _lora406(report: dict) -> list[str]:
    return [d["message"] for d in report["diagnostics"] if d["code"] == "LORA406"]


def test_a_script_that_trains_a_saved_adapter_again_is_cached_with_its_adapter_config(tmp_path):
    (tmp_path / "train.py").write_text(RESUMED)
    _save_adapter(tmp_path, alpha=512)  # scaling 64: a learning rate of 2e-6 is not too low
    cold = _check(tmp_path, "--no-cache")
    assert _lora406(cold) == []
    assert _check(tmp_path) == cold
    stored = _entries(tmp_path)
    assert len(stored) == 4  # extraction and checked findings, of train.py and of adapter_config.json
    assert _check(tmp_path) == cold
    assert _entries(tmp_path) == stored  # served from the cache: nothing rewritten

    _save_adapter(tmp_path, alpha=16)  # scaling 2: now 2e-6 is too low, with train.py unchanged
    warm = _check(tmp_path)
    assert warm == _check(tmp_path, "--no-cache")
    [message] = _lora406(warm)
    assert "out/checkpoint-500/adapter_config.json" in message

    (tmp_path / "out" / "checkpoint-500" / "adapter_config.json").unlink()  # gone: the rank is not known
    warm = _check(tmp_path)
    assert warm == _check(tmp_path, "--no-cache")
    [message] = _lora406(warm)
    assert "the loaded adapter's rank and lora_alpha are not known" in message


ZERO3 = """\
from peft import LoraConfig
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
args = SFTConfig(output_dir="out", deepspeed="ds_zero3.json")
trainer = SFTTrainer(model=model, args=args, train_dataset=None, peft_config=config)
trainer.train()
trainer.save_model()
"""


def _zero3(tmp_path: Path, gather: bool) -> None:
    (tmp_path / "ds_zero3.json").write_text(json.dumps(
        {"zero_optimization": {"stage": 3, "stage3_gather_16bit_weights_on_model_save": gather}}))


AXOLOTL_ZERO3 = """\
base_model: meta-llama/Llama-3.2-3B
adapter: lora
lora_r: 16
lora_alpha: 32
lora_target_linear: true
deepspeed: ds_zero3.json
"""


@pytest.mark.parametrize(("name", "text"), [("train.py", ZERO3), ("train.yaml", AXOLOTL_ZERO3)],
                         ids=["script", "axolotl-yaml"])
def test_editing_only_the_deepspeed_json_a_config_names_is_seen_by_a_warm_run(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    _zero3(tmp_path, gather=False)  # ZeRO-3 that saves no gathered weights: LORA410
    cold = _check(tmp_path, "--no-cache")
    assert "LORA410" in [code for code, _, _ in _findings(cold)]
    assert _check(tmp_path) == cold
    assert _check(tmp_path) == cold  # served from the cache
    _zero3(tmp_path, gather=True)  # the JSON alone changes; the script or YAML does not
    warm = _check(tmp_path)
    assert warm == _check(tmp_path, "--no-cache")
    assert "LORA410" not in [code for code, _, _ in _findings(warm)]


def test_an_edited_checkout_of_loralint_does_not_reuse_the_cache(tmp_path):
    # The cache's version directory is named after every module and data file of the package (their sizes
    # and times): an edit in place that keeps a file's size still starts a new cache; bytecode does not.
    arch = REPO / "loralint" / "knowledge" / "data" / "arch"
    kept = {p.name for p in sorted(arch.iterdir())[:2]}
    shutil.copytree(REPO / "loralint", tmp_path / "checkout" / "loralint", ignore=lambda folder, names: [
        n for n in names if n == "__pycache__" or (Path(folder) == arch and n not in kept)])
    shutil.copytree(REPO / "rules", tmp_path / "checkout" / "rules")
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text("from peft import LoraConfig\nconfig = LoraConfig(r=16, lora_alpha=4)\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "checkout"), "HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "user-cache"), "PYTHONDONTWRITEBYTECODE": "1"}

    def versions() -> set[str]:
        proc = subprocess.run([sys.executable, "-m", "loralint", "check", "--output-format", "json", "."], cwd=project,
                              env=env, capture_output=True, text=True, timeout=60, check=False)
        assert "LORA101" in proc.stdout, proc.stdout + proc.stderr
        return {p.name for p in (project / ".loralint_cache").iterdir() if p.is_dir()}

    def edit_in_place(path: Path) -> None:
        data = path.read_bytes()
        at = data.rindex(b"1")
        path.write_bytes(data[:at] + b"2" + data[at + 1:])  # same size
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))

    first = versions()
    assert len(first) == 1 and versions() == first
    (tmp_path / "checkout" / "loralint" / "__pycache__").mkdir()
    (tmp_path / "checkout" / "loralint" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"")
    assert versions() == first
    seen = first
    for edited in (tmp_path / "checkout" / "loralint" / "knowledge" / "data" / "arch" / min(kept),
                   tmp_path / "checkout" / "loralint" / "limits.py"):
        edit_in_place(edited)
        now = versions()
        assert len(now) == 1 and now != seen, edited.name  # a fresh version directory (the old one is pruned)
        seen = now


def test_a_file_without_a_configuration_reports_the_same_warm_and_cold(tmp_path):
    # A file the prefilter keeps but that builds no configuration has nothing to check (a warm run reads no
    # checked entry for it), unless it carries a suppression, which is still judged unused.
    (tmp_path / "imports.py").write_text("from peft import LoraConfig\n\nCONFIG_CLASS = LoraConfig\n")
    (tmp_path / "noqa.py").write_text("from peft import LoraConfig\n\nCONFIG_CLASS = LoraConfig  # noqa: LORA101\n")
    cold = _check(tmp_path, "--no-cache")
    assert _findings(cold) == [("LORA903", "warning", 3)] and cold["diagnostics"][0]["path"] == "noqa.py"
    assert _check(tmp_path) == cold and _check(tmp_path) == cold
