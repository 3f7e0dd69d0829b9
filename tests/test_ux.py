"""What a ruff user expects (issue 13): each behaviour as the user meets it on the command line."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from helpers import REPO, run_cli, run_subprocess

ALPHA = "from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=4)\n"  # LORA101 (unsafe fix)


def check(tmp_path: Path, *args: str, input: str | None = None):
    return run_cli(["check", "--no-cache", *args], cwd=tmp_path, input=input)


def found(run) -> list[tuple[str, int, int]]:
    return [(d["code"], d["line"], d["column"]) for d in run.json["diagnostics"]]


# --- noqa ------------------------------------------------------------------------------------


def test_noqa_is_honoured_like_a_loralint_ignore(write, tmp_path):
    write("t.py", """
        from peft import LoraConfig
        a = LoraConfig(r=16, lora_alpha=4)  # noqa: LORA101
        b = LoraConfig(r=16, lora_alpha=4, bias="all")  # noqa
        c = LoraConfig(r=16, lora_alpha=4)  #NOQA:E501,LORA101
        d = LoraConfig(r=16, lora_alpha=4)  # noqa: E501
        """)
    # Only line 5 is left: E501 is another linter's code and suppresses nothing of loralint's.
    assert found(check(tmp_path, "--output-format", "json", "t.py")) == [("LORA101", 5, 33)]


def test_unused_noqa_codes_are_reported_but_a_bare_noqa_never_is(write, tmp_path):
    write("t.py", """
        from peft import LoraConfig
        a = LoraConfig(r=16, lora_alpha=32)  # noqa: LORA101
        b = LoraConfig(r=16, lora_alpha=32)  # noqa
        c = LoraConfig(r=16, lora_alpha=32)  # noqa: E501, LORA777
        """)
    run = check(tmp_path, "--output-format", "json", "t.py")
    assert [(d["code"], d["line"], d["message"]) for d in run.json["diagnostics"]] == [
        ("LORA903", 2, "unused suppression for LORA101 (no LORA101 finding on this line)"),
        ("LORA903", 4, "unused suppression for LORA777 (unknown rule code)"),
    ]


def test_noqa_in_a_string_is_text_not_a_suppression(write, tmp_path):
    write("t.py", '''
        from peft import LoraConfig
        """Example: c = LoraConfig(r=16, lora_alpha=4)  # noqa: LORA101"""
        note = "# noqa"; c = LoraConfig(r=16, lora_alpha=4)
        ''')
    assert found(check(tmp_path, "--output-format", "json", "t.py")) == [("LORA101", 3, 50)]


def test_noqa_in_yaml_comments(write, tmp_path):
    write("axolotl.yml", "adapter: lora\nlora_r: 16\nlora_alpha: 4  # noqa: LORA101\nnote: 'a # noqa'\n")
    assert check(tmp_path, "--output-format", "json", "axolotl.yml").json["diagnostics"] == []


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_the_readme_ruff_setting_keeps_ruff_from_removing_lora_codes(write, tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("```toml\n[tool.ruff.lint]\n", 1)[1].split("```", 1)[0]
    write("t.py", "x = 1  # noqa: LORA101\n")
    args = ["ruff", "check", "--no-cache", "--select", "RUF100,RUF102", "--output-format", "concise", "t.py"]
    without = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert "LORA101" in without.stdout  # ruff calls the code invalid...
    write("pyproject.toml", "[tool.ruff.lint]\n" + snippet)
    with_setting = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert with_setting.returncode == 0 and "LORA101" not in with_setting.stdout  # ...until told it is external


# --- stdin --fix -----------------------------------------------------------------------------


def test_stdin_fix_writes_the_fixed_source_to_stdout_and_what_is_left_to_stderr(tmp_path):
    source = 'from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=4, task_type="CAUSAL")\n'
    run = run_subprocess(["check", "--no-cache", "-", "--stdin-filename", "f.py", "--fix"], cwd=tmp_path,
                         input=source.encode())
    assert run.exit_code == 1
    assert run.stdout == source.replace('"CAUSAL"', '"CAUSAL_LM"')
    assert "Fixed 1 problem." in run.stderr
    assert "f.py:2:33: LORA101 [warning]" in run.stderr
    assert "Found 1 problem in 1 file" in run.stderr


def test_stdin_fix_of_everything_says_so_on_stderr(tmp_path):
    source = 'from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL")\n'
    run = run_subprocess(["check", "--no-cache", "-", "--stdin-filename", "f.py", "--fix"], cwd=tmp_path,
                         input=source.encode())
    assert run.exit_code == 0
    assert run.stdout.endswith('task_type="CAUSAL_LM")\n')
    assert run.stderr.splitlines() == ["Fixed 1 problem.", "All checks passed! (1 file checked, 1 LoRA configuration found)"]


# --- fix safety and layout ---------------------------------------------------------------------

UNSLOTH = """
from unsloth import FastLanguageModel
model, tokenizer = FastLanguageModel.from_pretrained(model_name="unsloth/Llama-3.2-3B-Instruct")
model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=16, lora_dropout=0.05)
"""


def test_unsloth_dropout_fix_changes_training_so_it_is_unsafe(write, tmp_path):
    path = write("t.py", UNSLOTH)
    [d] = check(tmp_path, "--output-format", "json", "--select", "LORA108", "t.py").json["diagnostics"]
    assert d["fix"]["applicability"] == "unsafe"
    assert check(tmp_path, "--fix", "--select", "LORA108", "t.py").exit_code == 0  # info: below the fail level
    assert "lora_dropout=0.05" in path.read_text()  # --fix leaves it alone
    check(tmp_path, "--fix", "--unsafe-fixes", "--select", "LORA108", "t.py")
    assert "lora_dropout=0)" in path.read_text()


def test_modules_to_save_string_fix_is_unsafe_and_target_parameters_string_fix_is_safe(write, tmp_path):
    write("t.py", 'from peft import LoraConfig\nc = LoraConfig(modules_to_save="lm_head", target_parameters="w")\n')
    fixes = {d["message"].split("=")[0]: d["fix"]["applicability"]
             for d in check(tmp_path, "--output-format", "json", "--select", "LORA010", "t.py").json["diagnostics"]}
    assert fixes == {"modules_to_save": "unsafe", "target_parameters must be a list of strings: LoraConfig raises TypeError": "safe"}


def test_the_readme_states_the_fix_safety_rule():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "> **A fix that changes training behaviour is unsafe.**" in readme
    assert "| LORA108 | unsloth-dropout | info | unsafe |" in readme


APPLIED = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
"""


@pytest.mark.parametrize(("config", "fixed"), [
    # One argument a line, trailing comma: a line of its own, same indentation, trailing comma kept.
    ("cfg = LoraConfig(\n    r=16,\n    lora_alpha=32,\n)\n",
     'cfg = LoraConfig(\n    r=16,\n    lora_alpha=32,\n    task_type="CAUSAL_LM",\n)\n'),
    # No trailing comma, a comment, a multi-line last argument: the comma goes after the argument.
    ("cfg = LoraConfig(\n    r=16,\n    target_modules=[\n        \"q_proj\",\n    ]  # attention\n)\n",
     'cfg = LoraConfig(\n    r=16,\n    target_modules=[\n        "q_proj",\n    ],  # attention\n    task_type="CAUSAL_LM"\n)\n'),
    # Arguments aligned under the first, the call closing on the last line.
    ("cfg = LoraConfig(r=16,\n                 lora_alpha=32)\n",
     'cfg = LoraConfig(r=16,\n                 lora_alpha=32,\n                 task_type="CAUSAL_LM")\n'),
    # Tabs stay tabs.
    ("if True:\n\tcfg = LoraConfig(\n\t\tr=16,\n\t)\n", 'if True:\n\tcfg = LoraConfig(\n\t\tr=16,\n\t\ttask_type="CAUSAL_LM",\n\t)\n'),
    # A one-line call stays one line.
    ("cfg = LoraConfig(r=16, lora_alpha=32)\n", 'cfg = LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM")\n'),
])
def test_an_inserted_keyword_gets_its_own_line_in_a_multi_line_call(write, tmp_path, config, fixed):
    path = write("t.py", "")
    path.write_text(APPLIED.lstrip() + config + "model = get_peft_model(model, cfg)\n", encoding="utf-8")
    run = check(tmp_path, "--fix", "--select", "LORA107", "t.py")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert path.read_text(encoding="utf-8") == APPLIED.lstrip() + fixed + "model = get_peft_model(model, cfg)\n"


# --- positions and carets ----------------------------------------------------------------------


def test_the_caret_stays_under_the_value_after_wide_characters(write, tmp_path):
    write("t.py", 'from peft import LoraConfig\nc = LoraConfig(target_modules="注意力,模块", r=16, lora_alpha=4)  # 😀\n'
                  'd = LoraConfig(target_modules=["😀"], r=16, lora_alpha=4)\n')
    lines = check(tmp_path, "--select", "LORA101,LORA209", "t.py").stdout.splitlines()
    source_2 = "2 | c = LoraConfig(target_modules=\"注意力,模块\", r=16, lora_alpha=4)  # 😀"
    assert lines[lines.index(source_2) + 1] == "  |                               " + "^" * 13 + " LORA209"
    caret = lines[lines.index(source_2, lines.index(source_2) + 1) + 1]
    assert caret == "  | " + " " * 62 + "^ LORA101"  # "注意力,模块" takes 11 cells, 5 more than its characters
    source_3 = '3 | d = LoraConfig(target_modules=["😀"], r=16, lora_alpha=4)'
    assert lines[lines.index(source_3) + 1] == "  | " + " " * 55 + "^ LORA101"  # the emoji takes 2 cells


LLAMA_MODULES_TO_SAVE = {
    "t.py": 'from peft import LoraConfig, get_peft_model\nfrom transformers import AutoModelForCausalLM\n'
            'model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")\n'
            'cfg = LoraConfig(target_modules=["q_proj"], modules_to_save=["lm_head", "nothing_here"], task_type="CAUSAL_LM")\n'
            'model = get_peft_model(model, cfg)\n',
    "axolotl.yml": "base_model: meta-llama/Llama-3.2-3B\nadapter: lora\nlora_target_modules: [q_proj]\n"
                   "lora_modules_to_save:\n  - lm_head\n  - nothing_here\n",
    "llamafactory.yaml": "model_name_or_path: meta-llama/Llama-3.2-3B\nfinetuning_type: lora\nlora_target: q_proj\n"
                         "additional_target: lm_head, nothing_here\n",
}


def test_modules_to_save_findings_point_at_their_entry(write, tmp_path):
    for name, text in LLAMA_MODULES_TO_SAVE.items():
        write(name, text)
    run = check(tmp_path, "--output-format", "json", "--select", "LORA213", ".")
    assert [(d["path"], d["line"], d["column"], d["end_column"]) for d in run.json["diagnostics"]] == [
        ("axolotl.yml", 5, 5, 12), ("axolotl.yml", 6, 5, 17),
        ("llamafactory.yaml", 4, 20, 27), ("llamafactory.yaml", 4, 29, 41),
        ("t.py", 4, 62, 71), ("t.py", 4, 73, 87),
    ]


# --- wording -----------------------------------------------------------------------------------


def test_a_clean_run_has_one_summary_phrase(write, tmp_path):
    write("clean.py", 'from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj"], task_type="CAUSAL_LM")\n')
    phrase = "All checks passed! (1 file checked, 1 LoRA configuration found)"
    assert check(tmp_path, "clean.py").stdout == phrase + "\n"
    assert check(tmp_path, "--statistics", "clean.py").stdout == phrase + "\n"
    assert check(tmp_path, "--output-format", "github", "clean.py").stdout == f"loralint: {phrase}\n"


def test_quiet_prints_nothing_when_there_is_nothing(write, tmp_path):
    write("clean.py", "x = 1\n")
    for extra in ([], ["--statistics"]):
        run = check(tmp_path, "-q", *extra, "clean.py")
        assert run.exit_code == 0 and run.stdout == ""


def test_explain_says_0_modules_matched_when_model_and_targets_are_known(tmp_path):
    out = run_cli(["explain", "--no-cache", str(REPO / "examples" / "gpt2_lora.py")], cwd=tmp_path).stdout
    assert "trainable        none: 0 modules matched" in out
    assert "unknown (base model or values not statically known)" not in out


@pytest.mark.parametrize(("name", "settings", "where"), [
    ("pyproject.toml", '[tool.loralint]\nignore = ["LORA1O2"]\n', "pyproject.toml: tool.loralint.ignore"),
    (".loralint.toml", 'extend-select = ["LORA9999"]\n', ".loralint.toml: extend-select"),
    (".loralint.toml", '[per-file-ignores]\n"a/**" = ["LORA10I"]\n', ".loralint.toml: per-file-ignores['a/**']"),
])
def test_an_unknown_rule_selector_in_settings_names_the_file_and_the_key(write, tmp_path, name, settings, where):
    write(name, settings)
    write("t.py", ALPHA)
    run = run_subprocess(["check", "--no-cache", "t.py"], cwd=tmp_path)
    assert run.exit_code == 2
    selector = re.search(r"\[\"(LORA\w+)\"\]", settings).group(1)
    assert run.stderr.strip() == (f"loralint: error: {where}: unknown rule selector {selector!r}"
                                  " (`loralint rule --all` lists the codes)")


def test_an_unknown_rule_selector_on_the_command_line_names_the_option(tmp_path):
    run = run_subprocess(["check", "--ignore", "LORA1O1", "."], cwd=tmp_path)
    assert run.exit_code == 2 and "--ignore: unknown rule selector 'LORA1O1'" in run.stderr


# --- CLI conventions ---------------------------------------------------------------------------


def test_output_file_gets_the_report_and_stdout_stays_empty(write, tmp_path):
    write("t.py", ALPHA)
    plain = check(tmp_path, "t.py")
    run = check(tmp_path, "--output-file", "reports/loralint.txt", "t.py")
    assert run.exit_code == plain.exit_code == 1
    assert run.stdout == ""
    assert (tmp_path / "reports" / "loralint.txt").read_text(encoding="utf-8") == plain.stdout
    as_json = run_cli(["check", "--no-cache", "--output-format", "json", "t.py"], cwd=tmp_path,
                      env={"LORALINT_OUTPUT_FILE": "out.json"})
    assert as_json.stdout == "" and json.loads((tmp_path / "out.json").read_text())["diagnostics"][0]["code"] == "LORA101"


def test_show_settings_says_where_each_value_came_from(write, tmp_path):
    write("pyproject.toml", '[tool.loralint]\nignore = ["LORA102"]\nfail-level = "error"\n')
    run = check(tmp_path, "--show-settings", "--select", "LORA1", "--extend-exclude", "legacy/**", "--fail-level", "info")
    assert run.exit_code == 0
    lines = run.stdout.splitlines()

    def row(key: str) -> str:
        return re.sub(r" {2,}#", "  #", next(line for line in lines if line.startswith(f"{key} = ")))

    assert lines[:2] == ["# Resolved settings for: .", "# Settings file: pyproject.toml"]
    assert row("select") == 'select = ["LORA1"]  # --select'
    assert row("ignore") == 'ignore = ["LORA102"]  # pyproject.toml: tool.loralint.ignore'
    assert row("fail-level") == 'fail-level = "info"  # --fail-level'
    assert row("extend-exclude") == 'extend-exclude = ["legacy/**"]  # --extend-exclude'
    assert row("respect-gitignore") == "respect-gitignore = true  # default"
    assert lines[-1].startswith("# Enabled rules (") and "LORA101" in lines[-1] and "LORA102" not in lines[-1]


def test_show_files_lists_what_would_be_checked_and_extend_exclude_removes_files(write, tmp_path):
    write("pyproject.toml", '[tool.loralint]\nexclude = ["old/**"]\n')
    for name in ("train.py", "cfg/axolotl.yml", "old/train.py", "legacy/train.py", "notes.txt"):
        write(name, ALPHA)
    assert check(tmp_path, "--show-files").stdout.splitlines() == ["cfg/axolotl.yml", "legacy/train.py", "train.py"]
    assert check(tmp_path, "--show-files", "--extend-exclude", "legacy,cfg/*.yml").stdout.splitlines() == ["train.py"]
    run = check(tmp_path, "--output-format", "json", "--extend-exclude", "legacy", ".")
    assert sorted({d["path"] for d in run.json["diagnostics"]}) == ["train.py"]


def test_statistics_show_fixable_counts(write, tmp_path):
    write("t.py", 'from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=4, task_type="CAUSAL")\n'
                  'd = LoraConfig(r=16, lora_alpha=4.0 * 1)\n')
    assert check(tmp_path, "--statistics", "t.py").stdout.splitlines() == [
        "2\tLORA101\t[ ] alpha-scaling [warning]",
        "1\tLORA005\t[*] invalid-task-type [error]",
        "[*] 1 fixable with `loralint check --fix`.",
        "1 more fixable with `--fix --unsafe-fixes`.",
    ]
    assert check(tmp_path, "--statistics", "--unsafe-fixes", "t.py").stdout.splitlines()[0] == \
        "2\tLORA101\t[*] alpha-scaling [warning] (1 fixable)"
    as_json = json.loads(check(tmp_path, "--statistics", "--output-format", "json", "t.py").stdout)
    assert as_json == [
        {"code": "LORA101", "name": "alpha-scaling", "severity": "warning", "count": 2, "fixable": False, "fixable_count": 0},
        {"code": "LORA005", "name": "invalid-task-type", "severity": "error", "count": 1, "fixable": True, "fixable_count": 1},
    ]


def _lines(stream, into: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        into.put(line.rstrip("\n"))


def _wait_for(lines: queue.Queue, prefix: str, seen: list[str]) -> None:
    """Read lines until one starts with `prefix` (a hang fails at the generous deadline)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith(prefix):
            return
    pytest.fail(f"no line starting with {prefix!r}; got {seen!r}")


def _watch_until_fixed(tmp_path, args: list[str], fix) -> list[str]:
    """`check --watch ARGS` in tmp_path: one problem, then `fix()`, then a clean run and Ctrl-C (exit 0); the lines seen."""
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from loralint.cli import main; main()", "check", "--watch", *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, "Found 1 problem", seen)
        fix()
        _wait_for(lines, "All checks passed!", seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return seen


def test_watch_checks_again_after_a_change_and_ctrl_c_exits_0(write, tmp_path):
    path = write("train.py", ALPHA)
    # fixed in the editor
    seen = _watch_until_fixed(tmp_path, ["--no-cache", "train.py"],
                              lambda: path.write_text(ALPHA.replace("lora_alpha=4", "lora_alpha=32"), encoding="utf-8"))
    assert "train.py:2:33: LORA101 [warning] lora_alpha/r = 0.25 (alpha=4, r=16): updates are scaled down 4x" \
           " (outside [0.5, 4]); use lora_alpha=16 for scaling 1 or 32 for 2" in seen


def test_watch_checks_again_when_a_counted_data_set_changes(write, tmp_path):
    # The finding depends on the data file (LORA104 counts it), which is no checked file: regenerating it with
    # fewer records must start a run as saving the config does.
    write("config.yml", "base_model: meta-llama/Llama-3.2-1B\nadapter: lora\nlora_r: 16\nlora_alpha: 32\n"
                        "lora_dropout: 0.05\nlora_target_linear: true\ndatasets:\n  - path: train.jsonl\n    type: alpaca\n")
    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n' * 150_000, encoding="utf-8")
    seen = _watch_until_fixed(tmp_path, ["--no-show-source", "."],
                              lambda: data.write_text('{"instruction": "q", "output": "a"}\n' * 1_000, encoding="utf-8"))
    assert any(line.startswith("config.yml:5:15: LORA104 [info] lora_dropout=0.05 with 150,000 training examples")
               for line in seen)


def test_watch_refuses_stdin(tmp_path):
    run = run_subprocess(["check", "--watch", "-", "--stdin-filename", "t.py"], cwd=tmp_path, input=ALPHA.encode())
    assert run.exit_code == 2 and "--watch checks files on disk" in run.stderr


# --- README ------------------------------------------------------------------------------------


def _readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_precommit_snippet_pins_a_commit_or_tag_that_exists_with_those_hooks():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    snippet = _readme().split("```yaml\n# .pre-commit-config.yaml\n", 1)[1].split("```", 1)[0]
    [repo] = yaml.safe_load(snippet)["repos"]
    assert repo["repo"] == "https://github.com/loralint/loralint"
    rev = str(repo["rev"])
    assert re.fullmatch(r"[0-9a-f]{40}", rev) or rev.startswith("v"), "pre-commit wants a full commit id or a tag"
    shown = subprocess.run(["git", "show", f"{rev}:.pre-commit-hooks.yaml"], cwd=REPO, capture_output=True, text=True,
                           check=False)
    assert shown.returncode == 0, f"rev {rev} does not exist in this repository: {shown.stderr}"
    hooks = {hook["id"] for hook in yaml.safe_load(shown.stdout)}
    assert {hook["id"] for hook in repo["hooks"]} <= hooks


def test_readme_precommit_snippet_is_a_valid_config(tmp_path):
    pytest.importorskip("pre_commit", reason="pre-commit is not installed (pip install '.[test]')")
    snippet = _readme().split("```yaml\n# .pre-commit-config.yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / ".pre-commit-config.yaml").write_text(snippet, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_install_lines_work_from_a_clone():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = set(project["optional-dependencies"])
    torch_pin = next(d for d in project["optional-dependencies"]["test"] if d.startswith("torch=="))
    readme = _readme()
    lines = re.findall(r"pip install ([^`\n]+)", readme)
    assert lines
    for line in lines:
        target = line.split("&&")[0].split()[0].strip("'\"")
        if target in (".", "-e"):
            continue
        if target.startswith(".["):
            assert set(target[2:-1].split(",")) <= extras, line
        elif target.startswith("torch"):
            assert target == torch_pin, f"{line}: the tests pin {torch_pin}"
        else:
            # No release on PyPI: a CI workflow installs from the git URL pre-commit pins.
            rev = re.search(r"rev: (\S+)", readme).group(1)
            assert target == "loralint" and line.strip().endswith(f"git+https://github.com/loralint/loralint@{rev}\""), line


def test_readme_sample_output_of_every_example_is_what_loralint_prints():
    sample = _readme().split("$ loralint check examples/ --no-show-source\n", 1)[1].split("```", 1)[0]
    run = run_cli(["check", "--no-cache", "--no-show-source", "examples/"], cwd=REPO)
    printed = run.stdout.splitlines()
    shown = [line for line in sample.splitlines() if line != "..."]
    assert all(line in printed for line in shown), run.stdout
    # Each example with findings (the QLoRA and notebook ones too, as they come) appears in the sample.
    with_findings = {line.split(":", 1)[0] for line in printed if line.startswith("examples/")}
    assert with_findings == {line.split(":", 1)[0] for line in shown if line.startswith("examples/")}
