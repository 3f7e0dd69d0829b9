"""`loralint check --fix / --unsafe-fixes / --diff` as a user meets them, and the fixer's guarantees."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from helpers import REPO, run_cli, run_subprocess

from loralint import fixes
from loralint.engine import Options, run
from loralint.settings import Settings
from loralint.sites import Diagnostic, Fix, Span, TextEdit

FORMATS = REPO / "tests" / "fixtures" / "formats"

# Odd spacing and comments everywhere: only the fixed spans may change.
SCRIPT = """\
# training script   (trailing spaces stay)   
from peft import LoraConfig  # the adapter

config = LoraConfig(
    r=16,   # rank
    lora_aplha=32,  # typo: PEFT raises TypeError
    bias="all",
    target_modules=[ "q_proj",
                     "v_proj" ],
    task_type="CAUSAL_LM",
)
"""
SAFE_FIXED = SCRIPT.replace("lora_aplha=32", "lora_alpha=32")
ALL_FIXED = SAFE_FIXED.replace('bias="all"', 'bias="none"')


def check(*args: str, cwd: Path, input: str | bytes | None = None):
    return run_cli(["check", "--no-cache", *args], cwd=cwd, input=input)


def test_fix_applies_safe_fixes_and_keeps_everything_else_byte_for_byte(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    result = check("--fix", "train.py", cwd=tmp_path)
    assert path.read_text() == SAFE_FIXED
    assert "Fixed 1 problem." in result.stderr
    # What is left decides the exit code: the unsafe LORA106 is still there (a warning).
    assert result.exit_code == 1
    assert "LORA106" in result.stdout and "LORA001" not in result.stdout
    assert "1 more fixable with `--fix --unsafe-fixes`" in result.stdout


def test_unsafe_fixes_only_with_unsafe_fixes(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    result = check("--fix", "--unsafe-fixes", "train.py", cwd=tmp_path)
    assert path.read_text() == ALL_FIXED
    assert "Fixed 2 problems." in result.stderr
    assert result.exit_code == 0 and "All checks passed!" in result.stdout


def test_fixes_chain_across_passes(tmp_path):
    # The typo hides lora_alpha, so LORA101 sees PEFT's default (8) and would append
    # `lora_alpha=64`: together with the rename that repeats a keyword (a SyntaxError). The rename
    # (safe, an error) goes first; after a re-check LORA101 rewrites the now-visible value instead.
    path = tmp_path / "train.py"
    path.write_text('from peft import LoraConfig\nc = LoraConfig(r=32, lora_aplha=2, task_type="CAUSAL_LM",'
                    ' target_modules=["q_proj"])\n')
    before = check("--output-format", "json", "train.py", cwd=tmp_path).codes()
    assert "LORA001" in before and "LORA101" in before
    result = check("--fix", "--unsafe-fixes", "train.py", cwd=tmp_path)
    assert path.read_text() == (
        'from peft import LoraConfig\nc = LoraConfig(r=32, lora_alpha=32, task_type="CAUSAL_LM", target_modules=["q_proj"])\n'
    )
    assert "Fixed 2 problems." in result.stderr
    assert "error" not in result.stderr


def test_diff_prints_a_unified_diff_and_writes_nothing(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    result = check("--diff", "train.py", cwd=tmp_path)
    assert path.read_text() == SCRIPT
    assert result.exit_code == 1  # there was something to fix
    assert result.stdout == (
        "--- a/train.py\n"
        "+++ b/train.py\n"
        "@@ -3,7 +3,7 @@\n"
        " \n"
        " config = LoraConfig(\n"
        "     r=16,   # rank\n"
        "-    lora_aplha=32,  # typo: PEFT raises TypeError\n"
        "+    lora_alpha=32,  # typo: PEFT raises TypeError\n"
        '     bias="all",\n'
        '     target_modules=[ "q_proj",\n'
        '                      "v_proj" ],\n'
    )
    unsafe = check("--diff", "--unsafe-fixes", "train.py", cwd=tmp_path)
    assert '\n-    bias="all",\n' in unsafe.stdout and '\n+    bias="none",\n' in unsafe.stdout
    assert path.read_text() == SCRIPT
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "train.py").write_text(ALL_FIXED)
    nothing = check("--diff", "train.py", cwd=clean)
    assert nothing.stdout == "" and nothing.exit_code == 0


def test_fix_keeps_the_file_mode(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    path.chmod(0o754)
    check("--fix", "train.py", cwd=tmp_path)
    assert path.read_text() == SAFE_FIXED
    assert stat.S_IMODE(path.stat().st_mode) == 0o754
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]  # no temporary file left behind


def test_fix_follows_a_symlink_and_keeps_it(tmp_path):
    real = tmp_path / "real.py"
    real.write_text(SCRIPT)
    link = tmp_path / "train.py"
    link.symlink_to(real)
    check("--fix", "train.py", cwd=tmp_path)
    assert link.is_symlink() and real.read_text() == SAFE_FIXED


def test_fixes_are_in_json_output(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    report = check("--output-format", "json", "train.py", cwd=tmp_path).json
    fixes_by_code = {d["code"]: d["fix"] for d in report["diagnostics"]}
    assert fixes_by_code["LORA001"] == {
        "description": "Rename lora_aplha to lora_alpha",
        "applicability": "safe",
        "edits": [{"line": 6, "column": 5, "end_line": 6, "end_column": 15, "content": "lora_alpha"}],
    }
    assert fixes_by_code["LORA106"]["applicability"] == "unsafe"
    assert fixes_by_code["LORA106"]["edits"][0]["content"] == '"none"'


def test_json_after_fix_reports_what_is_left(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    result = check("--fix", "--output-format", "json", "train.py", cwd=tmp_path)
    assert result.codes() == ["LORA106"] and result.exit_code == 1
    diag = result.json["diagnostics"][0]
    assert (diag["line"], diag["column"]) == (7, 10)


def test_stdin_fix_prints_the_fixed_source(tmp_path):
    result = check("--fix", "--stdin-filename", "train.py", cwd=tmp_path, input=SCRIPT)
    assert result.stdout == SAFE_FIXED
    assert not (tmp_path / "train.py").exists()


def test_bom_crlf_and_coding_line_are_kept(tmp_path):
    crlf = SCRIPT.replace("\n", "\r\n")
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + crlf.encode())
    latin = tmp_path / "latin.py"
    latin_text = "# -*- coding: latin-1 -*-\n# r\xe9glages de l'adaptateur\n" + SCRIPT
    latin.write_bytes(latin_text.encode("latin-1"))
    result = check("--fix", "bom.py", "latin.py", cwd=tmp_path)
    assert "Fixed 2 problems." in result.stderr
    assert bom.read_bytes() == b"\xef\xbb\xbf" + SAFE_FIXED.replace("\n", "\r\n").encode()
    assert latin.read_bytes() == latin_text.replace("lora_aplha", "lora_alpha").encode("latin-1")


def test_yaml_and_json_fixes_keep_comments_and_still_load(tmp_path):
    axolotl = tmp_path / "axolotl.yml"
    original = (FORMATS / "axolotl_mistakes.yml").read_text()
    axolotl.write_text(original)
    adapter = tmp_path / "adapter_config.json"
    adapter_text = (
        '{\n  "peft_type": "LORA",\n  "r": 16,\n  "lora_alpha": 32,\n  "bias": "all",\n'
        '  "target_modules": ["q_proj", "v_proj"],\n  "task_type": "CAUSAL_LM"\n}\n'
    )
    adapter.write_text(adapter_text)

    check("--fix", "axolotl.yml", "adapter_config.json", cwd=tmp_path)
    assert axolotl.read_text() == original.replace("lora_fan_in_fanout:", "lora_fan_in_fan_out:")
    assert adapter.read_text() == adapter_text  # bias is an unsafe fix

    check("--fix", "--unsafe-fixes", "axolotl.yml", "adapter_config.json", cwd=tmp_path)
    fixed = axolotl.read_text()
    assert fixed.startswith("# QLoRA on Mistral-7B; hyper-parameters copied")  # comments survive
    # r=64 with lora_alpha=16 is the QLoRA recipe: advice (LORA102), with no fix that rewrites alpha
    assert "lora_alpha: 16\n" in fixed and "lora_dropout: 0.0\n" in fixed
    assert yaml.safe_load(fixed)["lora_fan_in_fan_out"] is False
    # A saved adapter trained its biases with bias="all": "none" would drop them at load time, so the
    # finding (LORA106) advises the next run and the file is left as it is.
    assert adapter.read_text() == adapter_text
    assert json.loads(adapter.read_text())["bias"] == "all"


# --- the fixer's guarantees, driven through its API with crafted fixes --------------------------


def _result_for(tmp_path: Path, text: str, name: str = "train.py"):
    path = tmp_path / name
    path.write_text(text)
    os.chdir(tmp_path)
    settings = Settings(root=tmp_path)
    return path, settings, run([name], settings, Options(no_cache=True))


@pytest.fixture
def in_tmp(tmp_path):
    old = os.getcwd()
    yield tmp_path
    os.chdir(old)


def _crafted(path: str, line: int, column: int, end_column: int, new_text: str, code: str = "LORA999") -> Diagnostic:
    span = Span(path, line, column, line, end_column)
    return Diagnostic(code, "crafted", "warning", "crafted", span, Fix("crafted", [TextEdit(span, new_text)]))


def test_a_fix_that_breaks_parsing_is_never_written(in_tmp, capsys):
    path, settings, result = _result_for(in_tmp, SCRIPT)
    breaking = _crafted("train.py", 6, 16, 18, "32)")  # `lora_aplha=32)),`: a syntax error
    result.diagnostics = [breaking]
    outcome = fixes.apply_fixes(result, settings=settings, options=Options(no_cache=True))
    assert path.read_text() == SCRIPT
    assert outcome.count == 0 and outcome.written == []
    err = capsys.readouterr().err
    assert "train.py:6:16: LORA999 fix (crafted) would leave the file invalid" in err and "not applied" in err
    assert breaking in outcome.remaining.diagnostics


def test_a_fix_that_breaks_yaml_is_never_written(in_tmp, capsys):
    text = (FORMATS / "axolotl_mistakes.yml").read_text()
    path, settings, result = _result_for(in_tmp, text, "axolotl.yml")
    line = text.splitlines().index("lora_alpha: 16") + 1
    result.diagnostics = [_crafted("axolotl.yml", line, 13, 15, "[16")]  # an unclosed flow sequence
    outcome = fixes.apply_fixes(result, settings=settings, options=Options(no_cache=True))
    assert path.read_text() == text and outcome.count == 0
    assert "would leave the file invalid" in capsys.readouterr().err


def test_a_breaking_fix_does_not_block_the_good_ones(in_tmp, capsys):
    path, settings, result = _result_for(in_tmp, SCRIPT)
    result.diagnostics.append(_crafted("train.py", 5, 7, 9, "16 +"))  # `r=16 +,`
    outcome = fixes.apply_fixes(result, settings=settings, options=Options(no_cache=True))
    assert path.read_text() == SAFE_FIXED
    assert outcome.count == 1
    assert "LORA999 fix (crafted) would leave the file invalid" in capsys.readouterr().err


def test_overlapping_fixes_apply_one_and_leave_the_other_reported():
    text = "from peft import LoraConfig\nc = LoraConfig(lora_aplha=32)\n"
    first = _crafted("t.py", 2, 16, 26, "lora_alpha", "LORA001")
    overlapping = _crafted("t.py", 2, 16, 29, "lora_alpha=16", "LORA101")
    elsewhere = _crafted("t.py", 2, 5, 15, "LoraConfig", "LORA998")  # touches, does not overlap
    new, count, left, problems = fixes.fix_text("t.py", text, [overlapping, first, elsewhere], unsafe=True)
    assert new == text.replace("lora_aplha", "lora_alpha")
    assert count == 2 and left == [overlapping] and problems == []


def test_a_file_changed_since_it_was_read_is_not_overwritten(in_tmp, capsys, monkeypatch):
    path, settings, result = _result_for(in_tmp, SCRIPT)
    real_validate = fixes.validate

    def edit_meanwhile(*args):  # someone saves the file while loralint is fixing it
        path.write_text(SCRIPT + "# edited in the editor\n")
        return real_validate(*args)

    monkeypatch.setattr(fixes, "validate", edit_meanwhile)
    outcome = fixes.apply_fixes(result, settings=settings, options=Options(no_cache=True))
    assert path.read_text() == SCRIPT + "# edited in the editor\n"
    assert outcome.written == []
    assert "train.py: not fixed: it changed since it was read" in capsys.readouterr().err
    assert {d.code for d in outcome.remaining.diagnostics} == {"LORA001", "LORA106"}


def test_edits_use_code_point_columns_and_keep_newlines():
    text = 'x = "🦙"; c = LoraConfig(lora_aplha=1)\r\nnext\r\n'
    start = text.index("lora_aplha") + 1
    diag = _crafted("t.py", 1, start, start + 10, "lora_alpha")
    new, count, _, _ = fixes.fix_text("t.py", text, [diag])
    assert new == text.replace("lora_aplha", "lora_alpha") and count == 1
    multi = _crafted("t.py", 2, 1, 5, "first\nsecond")
    new, _, _, _ = fixes.fix_text("t.py", text, [multi], fmt="yaml")
    assert new.endswith("first\r\nsecond\r\n")  # a fix's line breaks follow the file's


def test_positions_outside_the_text_are_left_alone():
    diag = _crafted("t.py", 1, 40, 45, "x")
    new, count, left, _ = fixes.fix_text("t.py", "a = 1\n", [diag])
    assert (new, count, left) == ("a = 1\n", 0, [diag])


def test_fix_through_the_console_script(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    result = run_subprocess(["check", "--no-cache", "--fix", "--unsafe-fixes", "train.py"], cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "train.py").read_text() == ALL_FIXED
