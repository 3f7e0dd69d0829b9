"""The command line as a user meets it: output formats, exit codes, options."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO, run_cli, run_subprocess

BAD = """from peft import LoraConfig

config = LoraConfig(
    r=16,
    lora_alpha=4,
    target_modules=["q_proj", "v_proj"],
    task_type="CAUSAL_LM",
)
"""
# The QLoRA paper's recipe: advice (LORA102, info), not a failing warning.
QLORA = 'from peft import LoraConfig\nconfig = LoraConfig(r=64, lora_alpha=16, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'
CLEAN = 'from peft import LoraConfig\nconfig = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'


def test_text_output_is_ruff_style_with_a_caret_under_the_argument(write, tmp_path):
    write("train.py", BAD)
    run = run_cli(["check", "--no-cache", "train.py"], cwd=tmp_path)
    assert run.exit_code == 1
    lines = run.stdout.splitlines()
    assert lines[0] == (
        "train.py:5:16: LORA101 [warning] lora_alpha/r = 0.25 (alpha=4, r=16): updates are scaled down 4x"
        " (outside [0.5, 4]); use lora_alpha=16 for scaling 1 or 32 for 2"
    )
    assert lines[2] == "5 |     lora_alpha=4,"
    assert lines[3] == "  |                ^ LORA101"
    assert lines[-2].startswith("Found 1 problem in 1 file (1 warning; 1 file checked, 1 LoRA configuration)")
    assert "\x1b[" not in run.stdout  # not a terminal: no colour


def test_colour_only_when_forced_and_never_with_no_color(write, tmp_path):
    write("train.py", BAD)
    coloured = run_cli(["check", "--no-cache", "train.py"], cwd=tmp_path, env={"FORCE_COLOR": "1"})
    assert "\x1b[" in coloured.stdout
    plain = run_cli(["check", "--no-cache", "train.py"], cwd=tmp_path, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[" not in plain.stdout


def test_json_output_follows_the_contract(write, tmp_path):
    write("sub/train.py", BAD)
    run = run_cli(["check", "--no-cache", "--output-format", "json", "sub"], cwd=tmp_path)
    report = json.loads(run.stdout)
    assert set(report) == {"version", "files_checked", "diagnostics", "configs"}
    assert report["version"] == 1 and report["files_checked"] == 1
    first = next(d for d in report["diagnostics"] if d["code"] == "LORA101")
    assert set(first) == {"path", "line", "column", "end_line", "end_column", "code", "name", "severity", "message", "fix"}
    assert (first["path"], first["line"], first["column"], first["end_column"]) == ("sub/train.py", 5, 16, 17)
    assert first["code"] == "LORA101" and first["name"] == "alpha-scaling" and first["severity"] == "warning"
    assert first["fix"]["applicability"] == "unsafe"
    assert first["fix"]["edits"] == [{"line": 5, "column": 16, "end_line": 5, "end_column": 17, "content": "16"}]
    config = report["configs"][0]
    assert {k: config[k] for k in ("path", "line", "column", "origin", "base_model", "scaling")} == {
        "path": "sub/train.py", "line": 3, "column": 10, "origin": "peft.LoraConfig", "base_model": None, "scaling": 0.25,
    }
    assert config["fields"] == {"r": 16, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"}


def test_json_fields_are_null_when_not_statically_known(write, tmp_path):
    write("t.py", "from peft import LoraConfig\nc = LoraConfig(r=get_rank(), lora_alpha=16)\n")
    report = run_cli(["check", "--no-cache", "--output-format", "json", "t.py"], cwd=tmp_path).json
    assert report["configs"][0]["fields"] == {"r": None, "lora_alpha": 16}
    assert report["configs"][0]["scaling"] is None


def test_exit_codes(write, tmp_path):
    write("bad.py", BAD)
    write("clean.py", CLEAN)
    assert run_cli(["check", "--no-cache", "clean.py"], cwd=tmp_path).exit_code == 0
    assert run_cli(["check", "--no-cache", "bad.py"], cwd=tmp_path).exit_code == 1
    assert run_cli(["check", "--no-cache", "--exit-zero", "bad.py"], cwd=tmp_path).exit_code == 0
    assert run_cli(["check", "--no-cache", "--fail-level", "error", "bad.py"], cwd=tmp_path).exit_code == 0
    write("qlora.py", QLORA)  # advice only: an info does not fail the default level
    assert run_cli(["check", "--no-cache", "qlora.py"], cwd=tmp_path).exit_code == 0
    assert run_cli(["check", "--no-cache", "--fail-level", "info", "qlora.py"], cwd=tmp_path).exit_code == 1
    assert run_cli(["check", "--bogus-option"], cwd=tmp_path).exit_code == 2
    assert run_cli(["check", "--select", "LORA999"], cwd=tmp_path).exit_code == 2


@pytest.mark.parametrize("command", [["check", "--no-cache", "."], ["explain", "."]])
def test_an_interrupted_run_says_so_and_exits_130(write, tmp_path, monkeypatch, command):
    # Ctrl-C, or a CI runner cancelling the job, half-way through a run: not click's "Aborted!" and exit 1,
    # which reads as findings.
    write("bad.py", BAD)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("loralint.engine.discover_files", interrupted)
    run = run_cli(command, cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (130, "loralint: interrupted\n")


def test_clean_run_says_so(write, tmp_path):
    write("clean.py", CLEAN)
    run = run_cli(["check", "--no-cache", "."], cwd=tmp_path)
    assert run.exit_code == 0
    assert run.stdout.strip() == "All checks passed! (1 file checked, 1 LoRA configuration found)"


def test_statistics_quiet_and_no_source(write, tmp_path):
    write("bad.py", BAD)
    stats = run_cli(["check", "--no-cache", "--statistics", "bad.py"], cwd=tmp_path)
    assert stats.stdout.splitlines() == [  # ruff's layout: count, code, name (tab-separated)
        "1	LORA101	alpha-scaling [warning]",
        "1 more fixable with `--fix --unsafe-fixes`.",
    ]
    write("qlora.py", QLORA)
    stats = run_cli(["check", "--no-cache", "--statistics", "bad.py", "qlora.py"], cwd=tmp_path)
    assert stats.stdout.splitlines() == [
        "1	LORA101	alpha-scaling [warning]",
        "1	LORA102	rslora-for-high-rank [info]",
        "2 more fixable with `--fix --unsafe-fixes`.",
    ]
    quiet = run_cli(["check", "--no-cache", "-q", "bad.py", "qlora.py"], cwd=tmp_path)
    assert len(quiet.stdout.strip().splitlines()) == 2
    no_source = run_cli(["check", "--no-cache", "--no-show-source", "bad.py", "qlora.py"], cwd=tmp_path)
    assert "^" not in no_source.stdout and "Found 2 problems" in no_source.stdout


def test_stdin_filename(tmp_path):
    run = run_cli(["check", "--no-cache", "--output-format", "json", "--stdin-filename", "pipe.py"], cwd=tmp_path, input=BAD)
    assert [(d["path"], d["line"]) for d in run.json["diagnostics"]] == [("pipe.py", 5)]
    text = run_cli(["check", "--stdin-filename", "pipe.py"], cwd=tmp_path, input=BAD)
    assert "5 |     lora_alpha=4," in text.stdout


def test_rule_command(tmp_path):
    run = run_cli(["rule", "LORA101"], cwd=tmp_path)
    assert run.exit_code == 0
    assert run.stdout.startswith("alpha-scaling (LORA101)")
    assert "## Why is this bad?" in run.stdout and "## Example" in run.stdout
    by_name = run_cli(["rule", "alpha-scaling"], cwd=tmp_path)
    assert by_name.stdout == run.stdout
    listing = run_cli(["rule", "--all"], cwd=tmp_path).stdout.splitlines()
    assert any(line.startswith("LORA101  alpha-scaling") and "warning" in line for line in listing)
    assert run_cli(["rule", "LORA999"], cwd=tmp_path).exit_code == 2
    rules = json.loads(run_cli(["rule", "--all", "--output-format", "json"], cwd=tmp_path).stdout)
    assert {"code": "LORA001", "name": "unknown-argument", "severity": "error"}.items() <= rules[0].items()


def test_the_command_leaves_after_its_report_with_all_of_it_written(write, tmp_path):
    # The command (loralint.cli.run) skips the interpreter's teardown once `check` has reported: the whole
    # report still reaches a pipe, with the report's exit code, after a run with the process pool that wrote
    # the cache's entries, and after a run that read them.
    for i in range(60):  # enough Python candidates for the process pool, and a report longer than a pipe holds
        write(f"pkg/train_{i}.py", BAD)
    args = ["check", "--output-format", "json", "--jobs", "2", "."]
    env = {"XDG_CACHE_HOME": str(tmp_path / "user-cache")}
    cold = run_subprocess(args, cwd=tmp_path, env=env)
    assert cold.exit_code == 1, cold.stderr
    report = json.loads(cold.stdout)
    assert len(report["diagnostics"]) == 60 and len(cold.stdout) > 65_536
    assert cold.stdout == run_cli(["check", "--output-format", "json", "--jobs", "2", "--no-cache", "."], cwd=tmp_path).stdout
    entries = sorted(p.name for p in (tmp_path / ".loralint_cache").rglob("*") if p.is_file())
    assert len(entries) > 60, entries
    warm = run_subprocess(args, cwd=tmp_path, env=env)
    assert (warm.exit_code, warm.stdout) == (1, cold.stdout)
    clean = run_subprocess(["check", "--exit-zero", "-q", "."], cwd=tmp_path, env=env)
    assert clean.exit_code == 0 and clean.stdout.count("LORA101") == 60


def test_the_command_under_a_profiler_exits_normally_so_it_writes_its_profile(write, tmp_path):
    write("train.py", BAD)
    command = [sys.executable, "-m", "cProfile", "-o", "check.prof", "-m", "loralint", "check", "--no-cache", "train.py"]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert "LORA101" in proc.stdout, proc.stderr  # (cProfile exits 0 whatever the command's code)
    assert (tmp_path / "check.prof").stat().st_size > 0


def test_missing_path_is_a_usage_error_in_one_line_without_traceback(tmp_path):
    run = run_subprocess(["check", "does/not/exist.py"], cwd=tmp_path)
    assert run.exit_code == 2
    assert run.stderr.strip() == "loralint: error: does/not/exist.py: no such file or directory"
    assert "Traceback" not in run.stderr + run.stdout


def test_static_path_never_imports_torch_transformers_or_peft(write, tmp_path):
    write("bad.py", BAD)
    code = (
        "import sys\n"
        "from loralint.cli import main\n"
        "sys.argv = ['loralint', 'check', '--no-cache', 'bad.py']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stderr, proc.stderr
    assert "LORA101" in proc.stdout


def test_a_run_without_candidates_never_imports_libcst(write, tmp_path):
    write("other.py", "print('no lora here')\n")
    import subprocess

    code = (
        "import sys\nfrom loralint.cli import main\nsys.argv = ['loralint', 'check', '--no-cache', 'other.py']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint('LIBCST', 'libcst' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "LIBCST False" in proc.stderr, proc.stderr


def test_a_check_with_configurations_never_imports_libcst(write, tmp_path):
    # libcst is for fixes only: a plain check of a file full of configurations reads it with ast.
    write("train.py", "from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=4)\n")
    import subprocess

    code = (
        "import sys\nfrom loralint.cli import main\nsys.argv = ['loralint', 'check', '--no-cache', 'train.py']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint('LIBCST', 'libcst' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "LORA101" in proc.stdout, proc.stdout
    assert "LIBCST False" in proc.stderr, proc.stderr


def test_readme_commands_are_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```console\n")[1:3]]
    assert blocks[0] == "pip install . && loralint check examples/"
    assert blocks[1] in (REPO / ".ci" / "run").read_text()


def test_readme_sample_output_is_what_loralint_prints():
    readme = (REPO / "README.md").read_text()
    sample = readme.split("$ loralint check examples/sft_trainer.py\n", 1)[1].split("```", 1)[0]
    run = run_cli(["check", "--no-cache", "examples/sft_trainer.py"], cwd=REPO)
    shown = [line for line in sample.splitlines() if line != "..."]
    assert shown and all(line in run.stdout.splitlines() for line in shown), run.stdout


def test_readme_rule_table_is_up_to_date():
    import importlib.util

    spec = importlib.util.spec_from_file_location("update_readme_rules", REPO / "scripts" / "update_readme_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (REPO / "README.md").read_text()
    assert module.render(readme) == readme, "run python scripts/update_readme_rules.py"


@pytest.mark.parametrize(("args", "expected"), [(["rule", "--all"], 0), (["check", "examples"], 1)])
def test_a_reader_that_leaves_early_does_not_change_the_exit_code(args, expected):
    # `loralint rule --all | head -1`: the pipe is closed before loralint writes; the exit code is
    # still the command's own (0 for a listing, 1 for findings), never a traceback.
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "loralint", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == expected
    assert b"Traceback" not in err
