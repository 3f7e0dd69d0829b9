"""Terminal injection: text from the checked tree never reaches the terminal raw.

File names, values, keys and model names carry ESC sequences (OSC 0 retitles the terminal, OSC 52
writes the clipboard, CSI 2J clears the screen), CR, newlines and bidi overrides (Trojan Source).
Text and github output, `explain`, `modules`, `verify`, `rule` and error messages show them escaped
(`\\x1b`, `\\n`, `\\u202e`); JSON keeps the exact strings. Some runs go through a pseudo-terminal, where
click would not strip anything and the tool's own colours are on.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tty
from pathlib import Path

import pytest
from helpers import REPO, run_cli, run_subprocess

OSC_TITLE = "\x1b]0;pwned\x07"
OSC_CLIPBOARD = "\x1b]52;c;ZXZpbA==\x07"
CLEAR = "\x1b[2J"
RLO = "\u202e"
HOSTILE = OSC_TITLE + OSC_CLIPBOARD + CLEAR + RLO
SHOWN = r"\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\u202e"  # HOSTILE as loralint prints it

# What must never be printed raw: C0 but TAB and LF (the line breaks of the output), DEL, C1, the line
# and paragraph separators and the bidi controls.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
SGR = re.compile(r"\x1b\[[0-9;]*m")  # the tool's own colours

FORGED = "x.py:1:1: LORA999 [error] forged"
NEWLINE_NAME = f"a\n{FORGED}.py"
LLAMA = REPO / "tests" / "fixtures" / "models" / "tiny-llama"


def assert_clean(text: str) -> None:
    found = RAW.search(text)
    assert found is None, f"raw {found.group()!r} printed at {found.start()}: {text[max(found.start() - 40, 0):found.end() + 40]!r}"


def hostile_tree(root: Path) -> Path:
    """Files whose names, values and keys carry control characters; each has a finding."""
    root.mkdir(exist_ok=True)
    # Raw ESC, BEL and U+202E inside string literals (legal Python), and \r\n through escapes.
    (root / "values.py").write_text(
        "from peft import LoraConfig\n"
        f'LoraConfig(r=8, lora_alpha=16, target_modules=["q{HOSTILE}proj"], bias="x{HOSTILE}")\n'
        f'LoraConfig(r=8, lora_alpha=16, **{{"lora_alpah{HOSTILE}": 16}})\n'
        'LoraConfig(r=8, lora_alpha=16, bias="y\\r\\nz")\n',
        encoding="utf-8",
    )
    (root / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"],
        f"lora_alpah\r{HOSTILE}": 1, "base_model_name_or_path": "org/m" + HOSTILE,
    }), encoding="utf-8")
    (root / NEWLINE_NAME).write_text("from peft import LoraConfig\nLoraConfig(r=8, lora_alpah=16)\n", encoding="utf-8")
    (root / f"t{OSC_TITLE}.py").write_text("from peft import LoraConfig\nLoraConfig(r=8, lora_alpah=16)\n", encoding="utf-8")
    return root


def model_folder(root: Path) -> Path:
    """tiny-llama's config.json in a folder whose name carries control characters."""
    folder = root / f"m{HOSTILE}"
    folder.mkdir(parents=True)
    shutil.copy(LLAMA / "config.json", folder / "config.json")
    return folder


def on_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """`loralint ARGS` with stdout on a pseudo-terminal in raw mode (no CR added); what it printed."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("FORCE_COLOR", None)
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-c", "from loralint.cli import main; main()", *args],
                            cwd=cwd, stdout=slave, stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            assert ready, "loralint hung"
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        code = proc.wait(timeout=120)
    return code, out.decode("utf-8")


def test_text_output_escapes_names_values_and_source_lines(bounded, tmp_path):
    tree = hostile_tree(tmp_path / "tree")
    run = bounded(["check", "--no-cache", "."], cwd=tree)
    assert run.exit_code == 1 and not run.traceback
    assert_clean(run.stdout)
    assert_clean(run.stderr)
    lines = run.stdout.splitlines()
    # A newline in a file name stays inside its one finding line: nothing starts like a forged finding.
    assert not any(line.startswith(FORGED) for line in lines)
    assert any(line.startswith(f"a\\n{FORGED}.py:2:17: LORA001") for line in lines)
    assert any(line.startswith(r"t\x1b]0;pwned\x07.py:2:17: LORA001") for line in lines)
    # Keys and values quoted in messages, and the source lines under them, show the escapes.
    assert f"lora_alpah{SHOWN} is not an argument of LoraConfig;" in run.stdout
    assert rf"lora_alpah\r{SHOWN} is not an argument of LoraConfig (adapter_config.json)" in run.stdout
    assert f'2 | LoraConfig(r=8, lora_alpha=16, target_modules=["q{SHOWN}proj"], bias="x{SHOWN}")' in lines


def test_the_caret_stays_under_the_escaped_value(tmp_path):
    tree = hostile_tree(tmp_path / "tree")
    run = run_cli(["check", "--no-cache", "--select", "LORA004", "values.py"], cwd=tree)
    lines = run.stdout.splitlines()
    source = lines.index(f'2 | LoraConfig(r=8, lora_alpha=16, target_modules=["q{SHOWN}proj"], bias="x{SHOWN}")')
    caret = lines[source + 1]
    value = f'"x{SHOWN}"'
    start = lines[source].index(value)
    assert caret.index("^") == start
    assert caret[start:] == "^" * len(value) + " LORA004"


def test_on_a_terminal_only_the_tools_own_colours_are_raw(tmp_path):
    tree = hostile_tree(tmp_path / "tree")
    code, out = on_terminal(["check", "--no-cache", "."], tree)
    assert code == 1
    assert SGR.search(out)  # colour is on for a terminal
    assert_clean(SGR.sub("", out))
    assert f"lora_alpah{SHOWN}" in SGR.sub("", out)


def test_statistics_and_github_output_are_escaped(tmp_path):
    tree = hostile_tree(tmp_path / "tree")
    stats = run_cli(["check", "--no-cache", "--statistics", "."], cwd=tree)
    assert_clean(stats.stdout)
    *rows, footer = stats.stdout.splitlines()  # ruff's layout, then how many are fixable
    assert all(re.fullmatch(r"\d+\tLORA\d{3}\t(\[[* ]\] )?[a-z-]+ \[(error|warning|info)\]( \(\d+ fixable\))?", line)
               for line in rows)
    assert footer == "[*] 2 fixable with `loralint check --fix`."

    github = run_cli(["check", "--no-cache", "--output-format", "github", "."], cwd=tree)
    assert github.exit_code == 1
    assert_clean(github.stdout)
    lines = github.stdout.splitlines()
    # One workflow command per finding and the summary: the newline in a file name forged nothing.
    assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines[:-1])
    assert lines[-1].startswith("loralint: ")
    forged = next(line for line in lines if "forged" in line)
    assert forged.startswith(r"::error file=a\nx.py%3A1%3A1%3A LORA999 [error] forged.py,line=2,")
    assert f"::lora_alpah{SHOWN} is not an argument of LoraConfig;" in github.stdout


def test_json_keeps_the_exact_strings(tmp_path):
    tree = hostile_tree(tmp_path / "tree")
    data = run_cli(["check", "--no-cache", "--output-format", "json", "."], cwd=tree).json
    paths = {d["path"] for d in data["diagnostics"]}
    assert NEWLINE_NAME in paths and f"t{OSC_TITLE}.py" in paths
    messages = [d["message"] for d in data["diagnostics"]]
    assert any(m.startswith(f"lora_alpah{HOSTILE} is not an argument") for m in messages)


def test_diff_is_raw_in_a_pipe_and_escaped_on_a_terminal(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "train.py").write_text(
        f'from peft import LoraConfig\nx = "{HOSTILE}"\nLoraConfig(r=8, lora_alpah=16)\n', encoding="utf-8")
    piped = run_cli(["check", "--no-cache", "--diff", "train.py"], cwd=tree)
    assert f' x = "{HOSTILE}"' in piped.stdout.splitlines()  # exactly the source: a patch that applies
    source = (tree / "train.py").read_bytes()
    fixed = run_cli(["check", "--no-cache", "--fix", "--stdin-filename", "train.py"], cwd=tree, input=source)
    assert fixed.stdout == source.decode().replace("lora_alpah", "lora_alpha")  # what an editor reads back
    code, out = on_terminal(["check", "--no-cache", "--diff", "train.py"], tree)
    assert code == 1
    assert_clean(out)
    assert f' x = "{SHOWN}"' in out.splitlines()
    assert "+LoraConfig(r=8, lora_alpha=16)" in out.splitlines()


def test_explain_escapes_paths_values_and_the_model(tmp_path):
    tree = hostile_tree(tmp_path / "tree")
    folder = model_folder(tmp_path)
    run = run_cli(["explain", "--no-cache", "--model", str(folder), "values.py"], cwd=tree)
    assert run.exit_code == 0
    assert_clean(run.stdout)
    assert f"targets          ['q{SHOWN}proj']" in run.stdout
    assert f"m{SHOWN}" in run.stdout  # the model folder, in "base model"
    raw = run_cli(["explain", "--no-cache", "--model", str(folder), "--output-format", "json", "values.py"], cwd=tree)
    assert raw.json["configs"][0]["target_modules"] == [f"q{HOSTILE}proj"]


def test_modules_escapes_the_model_name(tmp_path):
    folder = model_folder(tmp_path)
    run = run_cli(["modules", f"./{folder.name}"], cwd=tmp_path)
    assert run.exit_code == 0
    assert_clean(run.stdout)
    assert run.stdout.startswith(f"./m{SHOWN}: llama")
    raw = run_cli(["modules", f"./{folder.name}", "--output-format", "json"], cwd=tmp_path)
    assert raw.json["model"] == f"./m{HOSTILE}"


@pytest.mark.parametrize(
    "setup, args",
    [
        (None, ["check", f"missing{HOSTILE}.py"]),
        (None, ["check", "--config", f"settings{HOSTILE}.toml", "."]),
        (None, ["rule", f"LORA{HOSTILE}"]),
        (None, ["modules", f"./nothing{HOSTILE}"]),
        ('[tool.loralint]\n"bad\\u001b]0;pwned\\u0007\\u202e\\n" = 1\n', ["check", "."]),
    ],
    ids=["missing-path", "missing-settings", "unknown-rule", "unknown-model", "settings-key"],
)
def test_error_messages_are_escaped(tmp_path, setup, args):
    if setup is not None:
        (tmp_path / "pyproject.toml").write_text(setup, encoding="utf-8")
    run = run_cli(args, cwd=tmp_path)
    assert run.exit_code == 2
    assert run.stderr.startswith("loralint: error: ") and run.stderr.count("\n") == 1
    assert_clean(run.stderr)
    # a settings key is shown as TOML writes it (so it can be found and pasted), other text as \x1b
    shown = r"\u001b]0;pwned\u0007" if setup is not None else r"\x1b]0;pwned\x07"
    assert shown in run.stderr


def test_stdin_filename_is_escaped(tmp_path):
    run = run_cli(["check", "--no-cache", "--stdin-filename", f"in{OSC_TITLE}\n.py"], cwd=tmp_path,
                  input="from peft import LoraConfig\nLoraConfig(r=8, lora_alpah=16)\n")
    assert run.exit_code == 1
    assert_clean(run.stdout)
    assert run.stdout.startswith(r"in\x1b]0;pwned\x07\n.py:2:17: LORA001")


@pytest.mark.verify
def test_verify_escapes_paths_models_and_module_names(tmp_path):
    folder = model_folder(tmp_path)
    (tmp_path / "train.py").write_text(
        "from peft import LoraConfig, get_peft_model\n"
        "from transformers import AutoModelForCausalLM\n"
        f'model = AutoModelForCausalLM.from_pretrained("./{folder.name}")\n'
        'get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"]))\n'
        f'other = AutoModelForCausalLM.from_pretrained("org/none{HOSTILE}")\n'
        'get_peft_model(other, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"]))\n',
        encoding="utf-8",
    )
    run = run_subprocess(["verify", "--no-cache", "train.py"], cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert "Traceback" not in run.stderr
    assert_clean(run.stdout)
    assert_clean(run.stderr)
    assert f"./m{SHOWN}: llama from m{SHOWN}/config.json" in run.stdout  # verified, through the odd folder
    assert f"org/none{SHOWN}" in run.stdout  # the unresolved one names its model escaped
