"""`loralint check --output-format github`: workflow commands that GitHub turns into annotations."""

from __future__ import annotations

import pytest
from helpers import run_cli, run_subprocess
from helpers_reports import BAD, EXPECTED, git_init, have_git, make_project

from loralint.report.github import annotation, escape_data, escape_property
from loralint.sites import Diagnostic, Fix, Span, TextEdit


def github(cwd, *args: str):
    return run_cli(["check", "--output-format", "github", "--no-cache", *args], cwd=cwd)


def test_each_finding_is_one_workflow_command_of_its_severity(tmp_path):
    make_project(tmp_path, {"train.py": BAD})
    run = run_subprocess(["check", "--output-format", "github", "--no-cache", "train.py"], cwd=tmp_path)
    assert run.exit_code == 1
    lines = run.stdout.splitlines()
    messages = {
        d["code"]: d for d in run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).json["diagnostics"]
    }
    names = {"LORA001": "unknown-argument", "LORA101": "alpha-scaling", "LORA106": "bias-trained"}
    command = {"error": "error", "warning": "warning", "info": "notice"}
    assert len(lines) == len(EXPECTED) + 1
    for line, (code, severity, start, end) in zip(lines, EXPECTED):
        prefix = (f"::{command[severity]} file=train.py,line=3,col={start},endLine=3,endColumn={end},"
                  f"title={code} ({names[code]})::")
        assert line.startswith(prefix), line
        message = messages[code]["message"]
        if messages[code]["fix"]:
            fix = messages[code]["fix"]
            unsafe = " (unsafe)" if fix["applicability"] == "unsafe" else ""
            message += f"\nfix{unsafe}: {fix['description']}"
        assert line[len(prefix):] == escape_data(message)
    assert [line.split(" ", 1)[0] for line in lines[:-1]] == ["::warning", "::notice", "::error"]
    # The summary is for the log, not a command.
    assert not lines[-1].startswith("::")
    assert lines[-1] == "loralint: 3 problems in 1 file (1 error, 1 warning, 1 info; 1 file checked)"


def test_a_clean_run_prints_only_the_summary(tmp_path):
    make_project(tmp_path, {"train.py": "x = 1\n"})
    run = github(tmp_path, "train.py")
    assert run.exit_code == 0
    assert run.stdout.splitlines() == ["loralint: All checks passed! (1 file checked, 0 LoRA configurations found)"]


def test_escaping_follows_the_actions_toolkit():
    assert escape_data("50% of 1,000: a\r\nb\nc") == "50%25 of 1,000: a%0D%0Ab%0Ac"
    assert escape_property("dir:a,b/50%\n.py") == "dir%3Aa%2Cb/50%25%0A.py"


def test_annotation_escapes_message_and_properties_exactly():
    diag = Diagnostic(
        "LORA101", "alpha-scaling", "warning",
        "scaling 50% too low: r=64,\nalpha=16",
        Span("odd:dir,x/train.py", 7, 5, 7, 9),
    )
    # A line break inside a message is text from the checked file: shown escaped, as in the text output.
    assert annotation(diag, "odd:dir,x/train.py") == (
        "::warning file=odd%3Adir%2Cx/train.py,line=7,col=5,endLine=7,endColumn=9,title=LORA101 (alpha-scaling)"
        "::scaling 50%25 too low: r=64,\\nalpha=16"
    )


def test_info_is_a_notice_and_a_fix_is_a_second_line():
    fix = Fix("Set bias='none'", [TextEdit(Span("t.py", 1, 1, 1, 6), '"none"')], "unsafe")
    diag = Diagnostic("LORA106", "bias-trained", "info", "bias='all' trains every bias", Span("t.py", 1, 1, 1, 6), fix)
    assert annotation(diag, "t.py") == (
        "::notice file=t.py,line=1,col=1,endLine=1,endColumn=6,title=LORA106 (bias-trained)"
        "::bias='all' trains every bias%0Afix (unsafe): Set bias='none'"
    )
    error = Diagnostic("LORA001", "unknown-argument", "error", "x", Span("t.py", 2, 3, 2, 4))
    assert annotation(error, "t.py").startswith("::error file=t.py,line=2,col=3,")


def test_a_multi_line_finding_has_no_columns():
    # The runner drops annotations whose col/endColumn belong to different lines.
    diag = Diagnostic("LORA402", "config-reused", "info", "applied again", Span("t.py", 3, 10, 6, 2))
    assert annotation(diag, "t.py") == "::notice file=t.py,line=3,endLine=6,title=LORA402 (config-reused)::applied again"


@pytest.mark.skipif(not have_git(), reason="git is not installed")
def test_paths_are_relative_to_the_repository_root(tmp_path):
    make_project(tmp_path, {"configs/train.py": BAD})
    git_init(tmp_path)
    run = github(tmp_path / "configs", "train.py")
    commands = run.stdout.splitlines()[:-1]
    assert len(commands) == len(EXPECTED)
    assert all(line.split(" ", 1)[1].startswith("file=configs/train.py,line=3,") for line in commands)
