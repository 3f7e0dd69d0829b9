"""Bad input gets a clear diagnostic and the run goes on; no traceback ever reaches the user."""

from __future__ import annotations

import os

import pytest

from helpers import run_cli, run_subprocess

GOOD_BAD = 'from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'


def diagnostics(tmp_path, *args):
    run = run_cli(["check", "--output-format", "json", "--no-cache", *args, "."], cwd=tmp_path)
    return run, [(d["path"], d["code"], d["line"], d["message"]) for d in run.json["diagnostics"]]


def test_syntax_error_is_lora901_with_position_and_other_files_are_checked(write, tmp_path):
    write("broken.py", "from peft import LoraConfig\nc = LoraConfig(r=8,\nx = = 2\n")
    write("ok.py", GOOD_BAD)
    run, found = diagnostics(tmp_path)
    assert run.exit_code == 1
    broken = [f for f in found if f[0] == "broken.py"]
    # Python's own parser names the bracket that is never closed, where it opens
    assert len(broken) == 1 and broken[0][1] == "LORA901" and broken[0][2] == 2
    assert broken[0][3] == "cannot parse: invalid Python syntax ('(' was never closed); not checked"
    assert ("ok.py", "LORA101") in [(f[0], f[1]) for f in found]


@pytest.mark.parametrize(("source", "position"), [
    ("from peft import LoraConfig\nc = LoraConfig(r=8,\n  def f(): pass\n", (2, 15)),  # where the '(' opens
    ("from peft import LoraConfig\nc = LoraConfig(r=8)\nx = )\n", (3, 5)),
    # characters, not UTF-8 bytes (LoraConfig read, not only imported: a file that only imports it is not parsed)
    ("from peft import LoraConfig  # caf\u00e9\nx = LoraConfig\nx = '\u00e9\u00e9' +)\n", (3, 11)),
])
def test_syntax_error_positions_count_from_one(write, tmp_path, source, position):
    write("broken.py", source)
    run = run_cli(["check", "--output-format", "json", "--no-cache", "broken.py"], cwd=tmp_path)
    [d] = run.json["diagnostics"]
    assert (d["code"], d["line"], d["column"]) == ("LORA901", *position)


def test_a_syntax_error_in_a_file_that_only_imports_the_names_is_left_to_other_linters(write, tmp_path):
    # Like a file that names LoraConfig only in a comment, one that only imports it (or names it in an
    # annotation) holds nothing loralint checks: it is not parsed, so its syntax error is ruff's to report.
    write("types.py", "from peft import LoraConfig\n\ndef f(config: LoraConfig) -> None:\n    x = = 2\n")
    write("ok.py", GOOD_BAD)
    run, found = diagnostics(tmp_path)
    assert [(f[0], f[1]) for f in found] == [("ok.py", "LORA101")]
    assert run.json["files_checked"] == 2


def test_binary_and_non_utf8_files(write, tmp_path):
    write("blob.py", b"LoraConfig\x00\x01\x02")
    write("latin.py", "# comment caf\xe9\nfrom peft import LoraConfig\nc = LoraConfig(r=0)\n".encode("latin-1"))
    write("declared.py", "# -*- coding: latin-1 -*-\n# caf\xe9\nfrom peft import LoraConfig\nc = LoraConfig(r=0)\n".encode("latin-1"))
    write("ok.py", GOOD_BAD)
    _, found = diagnostics(tmp_path)
    by_file = {}
    for path, code, line, message in found:
        by_file.setdefault(path, []).append((code, message))
    assert by_file["blob.py"] == [("LORA902", "binary file (contains NUL bytes); not checked")]
    assert by_file["latin.py"][0][0] == "LORA902" and "not valid UTF-8" in by_file["latin.py"][0][1]
    # PEP 263: a declared encoding is honoured and the file is checked normally
    assert [c for c, _ in by_file["declared.py"]] == ["LORA002"]
    assert "ok.py" in by_file


def test_utf8_bom_is_fine(write, tmp_path):
    write("bom.py", b"\xef\xbb\xbf" + GOOD_BAD.encode())
    _, found = diagnostics(tmp_path)
    assert [(f[1], f[2]) for f in found] == [("LORA101", 2)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions; see the broken-link test")
def test_permission_denied_is_lora902(write, tmp_path):
    path = write("secret.py", GOOD_BAD)
    path.chmod(0)
    try:
        _, found = diagnostics(tmp_path)
    finally:
        path.chmod(0o644)
    assert ("secret.py", "LORA902") in [(f[0], f[1]) for f in found]


def test_unreadable_file_found_by_the_walk_is_lora902(write, tmp_path):
    write("ok.py", GOOD_BAD)
    (tmp_path / "gone.py").symlink_to(tmp_path / "deleted-target.py")
    _, found = diagnostics(tmp_path)
    gone = [f for f in found if f[0] == "gone.py"]
    assert gone and gone[0][1] == "LORA902" and gone[0][3] == "cannot read: No such file or directory; not checked"
    assert any(f[0] == "ok.py" for f in found)


def test_directory_symlink_loop_does_not_hang_or_duplicate(write, tmp_path):
    write("pkg/train.py", GOOD_BAD)
    (tmp_path / "pkg" / "loop").symlink_to(tmp_path)
    (tmp_path / "pkg" / "self").symlink_to(tmp_path / "pkg")
    run, found = diagnostics(tmp_path)
    assert [f[0] for f in found] == ["pkg/train.py"]
    assert run.json["files_checked"] == 1


def test_an_internal_failure_in_one_rule_is_a_diagnostic_not_a_crash(write, tmp_path, monkeypatch):
    from loralint.checks import CHECKS, load_checks

    load_checks()

    def explode(site, ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(CHECKS, "bias_trained", explode)
    write("ok.py", GOOD_BAD)
    run, found = diagnostics(tmp_path)
    codes = [f[1] for f in found]
    assert "LORA904" in codes and "LORA101" in codes
    assert any("internal error in LORA106 (RuntimeError: boom)" in f[3] for f in found)


def test_no_traceback_on_hostile_files(write, tmp_path):
    write("deep.py", "from peft import LoraConfig\nc = LoraConfig(r=" + "(" * 400 + "1" + ")" * 400 + ")\n")
    write("huge_int.py", "from peft import LoraConfig\nc = LoraConfig(r=10**10**10, lora_alpha=1e400)\n")
    write("weird.py", "from peft import LoraConfig\nc = LoraConfig(**{**{}, 'r': 1}, *a, r=2)\nLoraConfig()\n")
    write("empty.py", "")
    write("only_word.yaml", "lora_r: [unclosed\n")
    run = run_subprocess(["check", "--no-cache", "."], cwd=tmp_path)
    assert "Traceback" not in run.stdout + run.stderr
    assert run.exit_code in (0, 1)


def test_explicit_file_of_an_unknown_type_is_skipped_with_a_note(write, tmp_path):
    write("notes.txt", "LoraConfig(r=0)")
    run = run_cli(["check", "--no-cache", "notes.txt"], cwd=tmp_path)
    assert run.exit_code == 0
    assert "notes.txt: not a Python, YAML or JSON file; skipped" in run.stderr


def test_a_model_not_found_half_way_through_a_run_with_workers_is_one_line(tmp_path):
    """The workers parse while the first files are resolved: a --model that cannot be found stops the run
    there, with one line and exit 2, never a traceback from stopping the workers."""
    for i in range(40):  # enough candidates for worker processes
        (tmp_path / f"train_{i}.py").write_text(
            "from peft import LoraConfig\n" + "".join(f"c{k} = LoraConfig(r={k + 1})\n" for k in range(30)))
    run = run_subprocess(["check", "--no-cache", "--jobs", "2", "--model", "nobody/no-such-model", "."], cwd=tmp_path)
    assert run.exit_code == 2
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("loralint: error: --model 'nobody/no-such-model': no config.json found")
