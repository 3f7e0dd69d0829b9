"""Start-up and warm runs: a check of a Python script loads only what it needs, and a warm run that skips
the model analysis for cached files reports exactly what a cold run reports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from helpers import REPO, run_cli

from loralint.ruleset import _FRONT_MATTER, plain_front_matter, rules_dir

SCRIPT = """\
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("./tiny")
config = LoraConfig(r=8, lora_alpha=1, target_modules=["q_proj", "v_proj"], layers_to_transform=[2],
                    task_type="CAUSAL_LM")
model = get_peft_model(model, config)
"""


def test_every_rule_file_reads_the_same_without_yaml():
    # The plain reader must agree with yaml wherever it answers (None hands the file to yaml).
    for path in sorted(rules_dir().glob("*.md")):
        front = _FRONT_MATTER.match(path.read_text(encoding="utf-8")).group(1)
        plain = plain_front_matter(front)
        if plain is not None:
            loaded = yaml.safe_load(front)
            assert plain == loaded and [type(v) for v in plain.values()] == [type(v) for v in loaded.values()], path.name


def test_plain_front_matter_leaves_what_yaml_reads_differently_to_yaml():
    for text in ("fix: yes", "max: 1:30", "max: 0x1F", "max: 1_000", "summary: a # comment", "summary: 'quoted'",
                 "summary: ~", "when: 2001-12-14 noon", "params:", "summary: a: b", "params:\n   deep: 1",
                 "summary: first\n  continued", "choices: [a, b]", "code: A\ncode: B", "fix: On", "fix: NULL",
                 "summary: ends:", "summary: True"):
        assert plain_front_matter(text) is None, text
    assert plain_front_matter("params:\n  min: 0.5\n  sft_range: [1.0e-5, 1.0e-3]\nsummary: 4-bit weights") == \
        {"params": {"min": 0.5, "sft_range": [1e-05, 0.001]}, "summary": "4-bit weights"}
    assert plain_front_matter("verify: true\nfix: false\nname: Off-by-one\nsummary: Yes-men, no way") == \
        {"verify": True, "fix": False, "name": "Off-by-one", "summary": "Yes-men, no way"}


# Not needed to check a script whose configuration names no model nor data set: the knowledge base and
# PEFT's targeting (only for a known model), the notebook reader (only for notebooks), the Hub's data set
# sizes and split arithmetic, the accelerate config reader (only once a launch is found), nor the readers
# of other formats and settings.
NOT_LOADED = ('yaml', 'tomllib', 'pydantic', 'libcst', 'loralint.knowledge.models', 'loralint.knowledge.targeting',
              'loralint.extract.notebook', 'loralint.datasets.hub', 'loralint.datasets.splits',
              'loralint.extract.accelerate')


def _check_in_a_fresh_process(tmp_path: Path, args: list[str], modules: tuple[str, ...]) -> tuple[str, list[str]]:
    """`loralint check ARGS` in a new interpreter: its output, and which of `modules` it imported."""
    code = (
        f"import sys\nfrom loralint.cli import main\nsys.argv = ['loralint', 'check', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"import json\nprint('LOADED', json.dumps(sorted(m for m in {modules!r} if m in sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "c"),
                               "HOME": str(tmp_path)})
    loaded = proc.stderr.rpartition("LOADED ")[2]
    assert loaded.startswith("["), proc.stdout + proc.stderr
    return proc.stdout, json.loads(loaded)


def test_a_python_check_loads_neither_yaml_nor_toml_nor_pydantic(tmp_path):
    (tmp_path / "train.py").write_text("from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=4)\n")
    # A project's pyproject.toml that does not name loralint is not parsed for settings.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.ruff]\nline-length = 100\n')
    out, loaded = _check_in_a_fresh_process(tmp_path, ["train.py"], NOT_LOADED)
    assert "LORA101" in out and loaded == []


# Not needed by a run whose files' findings all come from the cache: the checks (nor the custom rules' check
# of their names), the suppression reader and the extraction's bounds, the readers of data files (their counts
# are stored), the knowledge base's module expansion (the model id is still resolved, by knowledge.index), nor
# OpenSSL (the cache's blake2b and compare_digest are the interpreter's own), nor the YAML parser (an accelerate
# config's facts are cached too: test_launches).
NOT_LOADED_WARM = ('loralint.checks', 'loralint.checks.architecture', 'loralint.checks.hyperparams', 'loralint.safe_regex',
                   'loralint.suppressions', 'loralint.extract.bounds', 'loralint.datasets.count', 'csv', 'struct',
                   'loralint.knowledge.models', 'loralint.knowledge.expr', 'hashlib', 'hmac', '_hashlib',
                   'loralint.extract.python', 'loralint.program', 'yaml')


def test_a_warm_check_loads_no_check_and_no_openssl(tmp_path):
    (tmp_path / "data.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    (tmp_path / "train.py").write_text(
        "from datasets import load_dataset\nfrom peft import LoraConfig, get_peft_model\n"
        "from transformers import AutoModelForCausalLM\n\n"
        'model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-1B")\n'
        'data = load_dataset("json", data_files="data.jsonl", split="train")\n'
        'model = get_peft_model(model, LoraConfig(r=16, lora_alpha=4, lora_dropout=0.05, target_modules=["q_proj", "v_proj"]))\n')
    watched = (*NOT_LOADED_WARM, "loralint.datasets", "loralint.knowledge.index")
    cold, loaded = _check_in_a_fresh_process(tmp_path, ["train.py"], watched)
    assert "LORA101" in cold and {"loralint.checks", "loralint.datasets.count", "loralint.knowledge.models"} <= set(loaded)
    warm, loaded = _check_in_a_fresh_process(tmp_path, ["train.py"], watched)
    # The data set is sized again from the stored count, the model resolved again from the index.
    assert warm == cold and loaded == ["loralint.datasets", "loralint.knowledge.index"]


def test_check_counts_a_data_set_only_where_lora104_can_use_its_size(tmp_path):
    # LORA104 reads the size only for a lora_dropout strictly between 0 and 1: with PEFT's default (0.0) the file
    # is not counted, nor with --dataset-size; explain still shows each configuration's data set.
    (tmp_path / "data.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    script = ("from datasets import load_dataset\nfrom peft import LoraConfig\n"
              'data = load_dataset("json", data_files="data.jsonl", split="train")\n'
              "config = LoraConfig(r=16, lora_alpha=4{})\n")
    counter = ("loralint.datasets.count",)
    for dropout, args, counted in (("", [], []), (", lora_dropout=0.1", [], list(counter)),
                                   (", lora_dropout=0.1", ["--dataset-size", "500000"], [])):
        (tmp_path / "train.py").write_text(script.format(dropout))
        out, loaded = _check_in_a_fresh_process(tmp_path, ["--no-cache", *args, "train.py"], counter)
        assert "LORA101" in out and loaded == counted, (dropout, args, loaded)
    assert "LORA104" in out  # the size given beats the count
    (tmp_path / "train.py").write_text(script.format(""))
    explained = subprocess.run([sys.executable, "-m", "loralint", "explain", "--no-cache", "--output-format", "json", "train.py"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                               env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    assert json.loads(explained.stdout)["configs"][0]["dataset_size"] == 2, explained.stderr


def test_a_warm_check_of_a_notebook_loads_no_program_model(tmp_path):
    # The notebook is read again for its cells' lines (positions, snippets), not analysed again.
    cells = [{"cell_type": "code", "metadata": {}, "source": ["from peft import LoraConfig\n", "c = LoraConfig(r=16, lora_alpha=4)\n"],
              "outputs": [], "execution_count": None}]
    (tmp_path / "train.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    cold, loaded = _check_in_a_fresh_process(tmp_path, ["train.ipynb"], NOT_LOADED_WARM)
    assert "LORA101" in cold and "train.ipynb:cell 1:2" in cold and "loralint.program" in loaded
    warm, loaded = _check_in_a_fresh_process(tmp_path, ["train.ipynb"], NOT_LOADED_WARM)
    assert warm == cold and not {"loralint.program", "loralint.extract.python", "loralint.checks"} & set(loaded), loaded


def test_every_built_in_rule_names_a_check_that_exists():
    # A run checks the names only for custom rules (engine.all_rules); the shipped ones are held to it here.
    from loralint.checks import load_checks
    from loralint.ruleset import builtin_rules

    checks = load_checks()
    assert {rule.code: rule.check for rule in builtin_rules().values() if rule.check not in checks and rule.check != "engine"} == {}


def _tree(tmp_path: Path) -> None:
    shutil.copytree(REPO / "tests" / "fixtures" / "models" / "tiny-llama", tmp_path / "tiny")
    (tmp_path / "train.py").write_text(SCRIPT)


def test_a_warm_text_run_prints_what_a_cold_run_prints(tmp_path):
    _tree(tmp_path)
    cold = run_cli(["check", "--no-cache", "--no-show-source", "."], cwd=tmp_path)
    assert "LORA101" in cold.stdout and cold.exit_code == 1
    run_cli(["check", "."], cwd=tmp_path)  # fills the cache
    assert (tmp_path / ".loralint_cache").is_dir()
    warm = run_cli(["check", "--no-show-source", "."], cwd=tmp_path)
    assert (warm.stdout, warm.exit_code) == (cold.stdout, cold.exit_code)
    # JSON after a text run: the cached findings, and the model's counts computed all the same.
    report = run_cli(["check", "--output-format", "json", "."], cwd=tmp_path).json
    assert report == run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path).json
    assert report["configs"][0]["trainable_params"]


def test_a_warm_text_run_sees_a_changed_model_config(tmp_path):
    _tree(tmp_path)
    assert "LORA206" not in run_cli(["check", "."], cwd=tmp_path).stdout  # layer 2 of 3 exists
    config = tmp_path / "tiny" / "config.json"
    config.write_text(config.read_text().replace('"num_hidden_layers": 3', '"num_hidden_layers": 2'))
    assert '"num_hidden_layers": 2' in config.read_text()
    warm = run_cli(["check", "--no-show-source", "."], cwd=tmp_path)
    assert "LORA206" in warm.stdout
    assert warm.stdout == run_cli(["check", "--no-cache", "--no-show-source", "."], cwd=tmp_path).stdout
