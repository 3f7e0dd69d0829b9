"""What a new user ran into: notebook positions outside `check`'s text, suppressions judged in files
that were not analysed, gradient checkpointing in `explain` and LORA404, the README's LORA001 fix,
`--watch` rerunning on its own cache, and `--diff` silent about unsafe fixes."""

from __future__ import annotations

import json

from helpers import REPO, run_cli

from loralint.watch import watch


def notebook(*cells: list[str]) -> str:
    """An nbformat 4 notebook: a markdown cell, then these code cells."""
    doc = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Fine-tune\n"]}] + [
            {"cell_type": "code", "metadata": {}, "source": source, "execution_count": None, "outputs": []}
            for source in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(doc, indent=1) + "\n"


# The configuration on line 4 of cell 3 (line 6 of the cells joined): a typo with a safe fix.
NOTEBOOK = notebook(
    ["from peft import LoraConfig\n", "x = 1\n"],
    ["import os\n", "\n", "\n",
     'c = LoraConfig(r=16, lora_aplha=32, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'],
)


def test_explain_names_the_notebook_cell_as_check_does(tmp_path):
    (tmp_path / "finetune.ipynb").write_text(NOTEBOOK)
    check = run_cli(["check", "--no-cache", "finetune.ipynb"], cwd=tmp_path).stdout
    assert "finetune.ipynb:cell 3:4:22: LORA001" in check
    text = run_cli(["explain", "--no-cache", "finetune.ipynb"], cwd=tmp_path).stdout
    assert text.startswith("finetune.ipynb:cell 3:4  peft.LoraConfig")
    [entry] = json.loads(run_cli(["explain", "--no-cache", "--output-format", "json", "finetune.ipynb"], cwd=tmp_path).stdout)["configs"]
    assert (entry["cell"], entry["line"]) == (3, 4)


def test_verify_names_the_notebook_cell_as_check_does(tmp_path):
    (tmp_path / "finetune.ipynb").write_text(NOTEBOOK)
    text = run_cli(["verify", "--no-cache", "finetune.ipynb"], cwd=tmp_path).stdout
    assert "finetune.ipynb:cell 3:4:5  peft.LoraConfig" in text
    assert "finetune.ipynb:cell 3:4:5: LORA254" in text  # no base model: not verified, said at the cell
    report = json.loads(run_cli(["verify", "--no-cache", "--output-format", "json", "finetune.ipynb"], cwd=tmp_path).stdout)
    [config] = report["configs"]
    assert (config["cell"], config["line"], config["column"]) == (3, 4, 5)
    assert [(d["cell"], d["line"]) for d in config["diagnostics"]] == [(3, 4)]


def test_json_fix_edits_in_a_notebook_count_lines_inside_the_cell(tmp_path):
    (tmp_path / "finetune.ipynb").write_text(NOTEBOOK)
    (tmp_path / "train.py").write_text("from peft import LoraConfig\nc = LoraConfig(r=16, lora_aplha=32)\n")
    report = run_cli(["check", "--no-cache", "--output-format", "json", "."], cwd=tmp_path).json
    by_path = {d["path"]: d for d in report["diagnostics"] if d["code"] == "LORA001"}
    nb = by_path["finetune.ipynb"]
    [edit] = nb["fix"]["edits"]
    assert (nb["cell"], nb["line"]) == (3, 4)
    assert (edit["cell"], edit["line"], edit["column"], edit["end_line"], edit["content"]) == (3, 4, 22, 4, "lora_alpha")
    [plain] = by_path["train.py"]["fix"]["edits"]
    assert "cell" not in plain and plain["line"] == 2  # other files keep the contract's keys


def test_no_unused_suppression_in_a_file_that_could_not_be_parsed(tmp_path):
    suppressed = 'from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=32)  # loralint: ignore[LORA101]\n'
    (tmp_path / "broken.py").write_text(suppressed + "def (\n")
    (tmp_path / "fine.py").write_text(suppressed)
    report = run_cli(["check", "--no-cache", "--output-format", "json", "."], cwd=tmp_path).json
    found = sorted((d["path"], d["code"]) for d in report["diagnostics"])
    # the parsed file's suppression is judged unused; the unparsed file's is not judged at all
    assert found == [("broken.py", "LORA901"), ("fine.py", "LORA903")]


# A 3B model the knowledge base knows, with a batch and a sequence length for the activation estimate.
TRAINING = """\
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, TrainingArguments, Trainer
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
{before}
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
args = TrainingArguments(output_dir="out", per_device_train_batch_size=8, max_length=2048)
trainer = Trainer(model=model, args=args)
"""

SFT = """\
from peft import LoraConfig
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
args = SFTConfig(output_dir="out", per_device_train_batch_size=8, max_length=2048{extra})
trainer = SFTTrainer(model=model, peft_config=config, args=args)
"""


def _memory_note(tmp_path, source: str) -> str:
    (tmp_path / "train.py").write_text(source)
    run = run_cli(["explain", "--no-cache", "--output-format", "json", "train.py"], cwd=tmp_path)
    [entry] = json.loads(run.stdout)["configs"]
    [note] = [n for n in entry["fit"]["notes"] if "gradient checkpointing as configured" in n]
    return note


def test_explain_counts_checkpointing_turned_on_outside_the_training_arguments(tmp_path):
    assert _memory_note(tmp_path, TRAINING.format(before="")).startswith("without gradient checkpointing")
    for before, why in (
        ("model = prepare_model_for_kbit_training(model)", "prepare_model_for_kbit_training"),
        ("model.gradient_checkpointing_enable()", "gradient_checkpointing_enable()"),
    ):
        note = _memory_note(tmp_path, TRAINING.format(before=before))
        assert note.startswith("with gradient checkpointing") and why in note and "line 4" in note
    off = "model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)"
    assert _memory_note(tmp_path, TRAINING.format(before=off)).startswith("without gradient checkpointing")


def test_explain_counts_sftconfig_default_checkpointing_as_on(tmp_path):
    note = _memory_note(tmp_path, SFT.format(extra=""))
    assert note.startswith("with gradient checkpointing") and "SFTConfig's default" in note
    assert _memory_note(tmp_path, SFT.format(extra=", gradient_checkpointing=False")).startswith("without")


QLORA = """\
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainingArguments
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B", quantization_config=BitsAndBytesConfig(load_in_4bit=True))
{before}
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
trainer = Trainer(model=model, args=TrainingArguments(output_dir="out"))
"""


def _lora404(tmp_path, before: str) -> str:
    (tmp_path / "train.py").write_text(QLORA.format(before=before))
    report = run_cli(["check", "--no-cache", "--select", "LORA404", "--output-format", "json", "train.py"], cwd=tmp_path).json
    [d] = report["diagnostics"]
    return d["message"]


def test_lora404_message_says_what_is_true_when_checkpointing_is_on(tmp_path):
    off = _lora404(tmp_path, "")
    assert "nothing here turns gradient checkpointing on" in off and "layer norms stay in 16-bit" in off
    on = _lora404(tmp_path, "model.gradient_checkpointing_enable()")
    assert "gradient checkpointing is on (gradient_checkpointing_enable(), line 4)" in on
    assert "nothing here turns gradient checkpointing on" not in on and "no gradient checkpointing" not in on
    assert "layer norms stay in 16-bit" in on and "prepare_model_for_kbit_training(model)" in on


def test_lora001_fix_is_offered_as_the_readme_says(tmp_path):
    (tmp_path / "train.py").write_text(
        'from peft import LoraConfig\nc = LoraConfig(r=16, lora_aplha=32, bais="none", task_type="CAUSAL_LM")\n')
    report = run_cli(["check", "--no-cache", "--select", "LORA001", "--output-format", "json", "train.py"], cwd=tmp_path).json
    fixes = {d["message"].split()[0]: d["fix"] for d in report["diagnostics"]}
    assert fixes["lora_aplha"]["applicability"] == "safe" and fixes["bais"] is None
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`bais` only gets \"did you mean bias?\"" in readme and "with one close match (LORA001)" not in readme


def test_watch_is_not_restarted_by_its_own_cache_folder(tmp_path):
    (tmp_path / "train.py").write_text("x = 1\n")
    runs: list[int] = []
    polls = iter(range(10))

    def sleep(_seconds: float) -> None:
        poll = next(polls)
        if poll == 0:
            (tmp_path / ".loralint_cache").mkdir()  # what the first run writes
        elif poll == 3:
            (tmp_path / "other.py").write_text("y = 2\n")  # a real change: a new file
        elif poll == 6:
            raise KeyboardInterrupt

    assert watch(lambda: runs.append(1), lambda: [str(tmp_path), str(tmp_path / "train.py")], sleep=sleep) == 0
    assert len(runs) == 2  # the first run, and the one the new file starts


def test_diff_with_only_unsafe_fixes_says_so_on_stderr(tmp_path):
    source = 'from peft import LoraConfig\nc = LoraConfig(r=64, lora_alpha=1, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'
    (tmp_path / "train.py").write_text(source)
    run = run_cli(["check", "--no-cache", "--diff", "train.py"], cwd=tmp_path)
    assert run.exit_code == 0 and run.stdout == ""
    assert "1 more fixable with `--fix --unsafe-fixes`." in run.stderr
    unsafe = run_cli(["check", "--no-cache", "--diff", "--unsafe-fixes", "train.py"], cwd=tmp_path)
    assert unsafe.exit_code == 1 and "+c = LoraConfig(r=64, lora_alpha=64" in unsafe.stdout
    assert "more fixable" not in unsafe.stderr
    assert (tmp_path / "train.py").read_text() == source  # --diff writes nothing
