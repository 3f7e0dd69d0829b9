"""`--fix` never edits the wrong text and never harms the files it writes.

Every fix kind is run through `loralint check --fix` on a minimal file and the result compared
byte for byte: a rename of a keyword, of a dict key (`{...}`, `**{...}`, `**dict(...)`), of a
YAML or JSON key; a value replaced (scalar, list, in a call, in a dict, in YAML, in JSON); an
argument appended. Then the writing: read-only files and directories, modes, owners, hard and
symbolic links, and line endings.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import run_cli

from loralint import fixes
from loralint.sites import Diagnostic, Fix, Span, TextEdit

IMPORT = "from peft import LoraConfig\n"
GPT2 = (
    "from peft import LoraConfig, get_peft_model\n"
    "from transformers import AutoModelForCausalLM\n"
    'model = AutoModelForCausalLM.from_pretrained("gpt2")\n'
)
LLAMA = GPT2.replace('"gpt2"', '"meta-llama/Llama-3.2-1B"')
ADAPTER = '{\n  "peft_type": "LORA",\n  "r": 8,\n%s\n}\n'

# (name, file name, text before, extra arguments, text after)
FIX_KINDS = [
    ("rename keyword", "t.py", IMPORT + "c = LoraConfig(r=8, lora_alpah=16)\n", [],
     IMPORT + "c = LoraConfig(r=8, lora_alpha=16)\n"),
    ("rename key of **{...}", "t.py", IMPORT + 'c = LoraConfig(r=8, **{"lora_alpah": 16})\n', [],
     IMPORT + 'c = LoraConfig(r=8, **{"lora_alpha": 16})\n'),
    ("rename key of a dict literal passed by name", "t.py",
     IMPORT + "kw = {'lora_alpah': 16, 'r': 8}\nc = LoraConfig(**kw)\n", [],
     IMPORT + "kw = {'lora_alpha': 16, 'r': 8}\nc = LoraConfig(**kw)\n"),
    ("rename keyword of **dict(...)", "t.py", IMPORT + "c = LoraConfig(r=8, **dict(lora_alpah=16))\n", [],
     IMPORT + "c = LoraConfig(r=8, **dict(lora_alpha=16))\n"),
    ("rename a prefixed, triple-quoted key", "t.py", IMPORT + 'c = LoraConfig(r=8, **{r"""lora_alpah""": 16})\n', [],
     IMPORT + 'c = LoraConfig(r=8, **{r"""lora_alpha""": 16})\n'),
    ("replace a value in a call", "t.py", IMPORT + 'c = LoraConfig(r=8, lora_alpha=16, bias="None")\n', [],
     IMPORT + 'c = LoraConfig(r=8, lora_alpha=16, bias="none")\n'),
    ("replace values inside **{...}", "t.py",
     IMPORT + 'c = LoraConfig(r=8, lora_alpha=16, **{"bias": "None", "task_type": "causal_lm"})\n', [],
     IMPORT + 'c = LoraConfig(r=8, lora_alpha=16, **{"bias": "none", "task_type": "CAUSAL_LM"})\n'),
    ("replace a string by a list", "t.py",
     # the modules_to_save fix changes what trains: unsafe (README, "Fixing problems")
     IMPORT + 'c = LoraConfig(r=8, lora_alpha=16, target_modules="q_proj,v_proj", modules_to_save="lm_head")\n',
     ["--unsafe-fixes"],
     IMPORT + 'c = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"])\n'),
    ("replace values, unsafe", "t.py",
     IMPORT + 'c = LoraConfig(r=8, lora_alpha=16, bias="all", target_modules="all_linear", init_lora_weights="gausian")\n',
     ["--unsafe-fixes"],
     IMPORT + 'c = LoraConfig(r=8, lora_alpha=16, bias="none", target_modules="all-linear", init_lora_weights="gaussian")\n'),
    ("append an argument, unsafe", "t.py", IMPORT + 'c = LoraConfig(r=32, target_modules=["q_proj"])\n',
     ["--unsafe-fixes"], IMPORT + 'c = LoraConfig(r=32, target_modules=["q_proj"], lora_alpha=32)\n'),
    ("append two arguments at one place (two passes)", "t.py",
     GPT2 + 'cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["c_attn"])\nmodel = get_peft_model(model, cfg)\n', [],
     GPT2 + 'cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["c_attn"], fan_in_fan_out=True, task_type="CAUSAL_LM")\n'
     "model = get_peft_model(model, cfg)\n"),
    ("replace values the model decides", "t.py",
     LLAMA + 'cfg = LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM", target_modules=["q_proj"],'
     ' fan_in_fan_out=True, layers_to_transform=[0], layers_pattern="layer")\nmodel = get_peft_model(model, cfg)\n',
     ["--unsafe-fixes"],
     LLAMA + 'cfg = LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM", target_modules=["q_proj"],'
     ' fan_in_fan_out=False, layers_to_transform=[0], layers_pattern="layers")\nmodel = get_peft_model(model, cfg)\n'),
    ("rename YAML keys, plain and quoted; a YAML value to a list", "ax.yml",
     'adapter: lora\nlora_r: 16\nlora_alpha: 32\n"lora_fan_in_fanout": false\nlora_target_modules: q_proj\n', [],
     'adapter: lora\nlora_r: 16\nlora_alpha: 32\n"lora_fan_in_fan_out": false\nlora_target_modules: [q_proj]\n'),
    ("rename a plain YAML key", "ax.yml", "adapter: lora\nlora_r: 16\nlora_alpha: 32\nlora_fan_in_fanout: false\n", [],
     "adapter: lora\nlora_r: 16\nlora_alpha: 32\nlora_fan_in_fan_out: false\n"),
    ("replace a YAML scalar, unsafe", "ax.yml", "adapter: lora\nlora_r: 16\nlora_alpha: 4\n", ["--unsafe-fixes"],
     "adapter: lora\nlora_r: 16\nlora_alpha: 16\n"),
    ("rename a JSON key", "adapter_config.json", ADAPTER % '  "lora_alpah": 16', [], ADAPTER % '  "lora_alpha": 16'),
    ("replace JSON values", "adapter_config.json",
     ADAPTER % '  "lora_alpha": 16,\n  "bias": "None",\n  "target_modules": "q_proj"', [],
     ADAPTER % '  "lora_alpha": 16,\n  "bias": "none",\n  "target_modules": ["q_proj"]'),
]


@pytest.mark.parametrize(("name", "file", "before", "extra", "after"), FIX_KINDS, ids=[k[0] for k in FIX_KINDS])
def test_every_fix_kind_edits_exactly_its_span(tmp_path, name, file, before, extra, after):
    path = tmp_path / file
    path.write_bytes(before.encode())
    result = run_cli(["check", "--no-cache", "--fix", *extra, file], cwd=tmp_path)
    assert path.read_bytes().decode() == after, result.stderr
    assert "Fixed " in result.stderr and "error:" not in result.stderr
    # and the fixes themselves are gone from what is reported
    assert "[*]" not in result.stdout


def test_a_dict_key_finding_and_its_fix_point_at_the_key(tmp_path):
    (tmp_path / "t.py").write_text(IMPORT + 'c = LoraConfig(r=8, **{"lora_alpah": 16})\n')
    out = json.loads(run_cli(["check", "--no-cache", "--output-format", "json", "t.py"], cwd=tmp_path).stdout)
    (diag,) = [d for d in out["diagnostics"] if d["code"] == "LORA001"]
    start = len('c = LoraConfig(r=8, **{"') + 1
    assert (diag["line"], diag["column"], diag["end_column"]) == (2, start, start + len("lora_alpah"))
    (edit,) = diag["fix"]["edits"]
    assert edit["content"] == "lora_alpha"
    assert (edit["line"], edit["column"], edit["end_column"]) == (2, start, start + len("lora_alpah"))


@pytest.mark.parametrize("key", ['"lora" "_alpah"', '"lora\\x5falpah"', "'lora\\u005falpah'"])
def test_a_key_whose_text_is_not_its_name_is_reported_but_not_fixed(tmp_path, key):
    path = tmp_path / "t.py"
    text = IMPORT + f"c = LoraConfig(r=8, **{{{key}: 16}})\n"
    path.write_text(text)
    result = run_cli(["check", "--no-cache", "--fix", "t.py"], cwd=tmp_path)
    assert path.read_text() == text
    assert "lora_alpah is not an argument of LoraConfig" in result.stdout and "[*]" not in result.stdout
    assert result.exit_code == 1


def test_an_edit_whose_span_holds_other_text_is_refused_and_reported():
    # A rename that lands on the value (the old defect) must not be applied or counted.
    text = IMPORT + 'c = LoraConfig(r=8, **{"lora_alpah": 16})\n'
    col = text.splitlines()[1].index("16") + 1
    span = Span("t.py", 2, col, 2, col + 2)
    diag = Diagnostic("LORA001", "unknown-argument", "error", "lora_alpah is not an argument", span,
                      Fix("Rename lora_alpah to lora_alpha", [TextEdit(span, "lora_alpha", expected="lora_alpah")]))
    new, count, left, problems = fixes.fix_text("t.py", text, [diag])
    assert (new, count, left) == (text, 0, [diag])
    expected = (f"t.py:2:{col}: LORA001 fix (Rename lora_alpah to lora_alpha) refused: its span 2:{col}"
                " holds '16', not 'lora_alpah'; not applied")
    assert problems == [expected]


@pytest.mark.parametrize("newline", ["\r", "\r\n"], ids=["CR", "CRLF"])
def test_fixes_land_in_place_with_cr_and_crlf_line_endings(tmp_path, newline):
    lines = ["from peft import LoraConfig", "", "# comment", "c = LoraConfig(", "    r=8,", "    lora_alpah=16,",
             '    bias="all",', '    **{"lora_dropuot": 0.1},', ")", ""]
    path = tmp_path / "t.py"
    path.write_bytes(newline.join(lines).encode())
    result = run_cli(["check", "--no-cache", "--output-format", "json", "t.py"], cwd=tmp_path)
    found = {(d["code"], d["line"], d["column"]) for d in json.loads(result.stdout)["diagnostics"]}
    assert found == {("LORA001", 6, 5), ("LORA106", 7, 10), ("LORA001", 8, 9)}
    run_cli(["check", "--no-cache", "--fix", "--unsafe-fixes", "t.py"], cwd=tmp_path)
    fixed = list(lines)
    fixed[5], fixed[6], fixed[7] = "    lora_alpha=16,", '    bias="none",', '    **{"lora_dropout": 0.1},'
    assert path.read_bytes() == newline.join(fixed).encode()


# --- writing ----------------------------------------------------------------------------------

BROKEN = IMPORT + 'c = LoraConfig(r=8, **{"lora_alpah": 16})\n'
FIXED = IMPORT + 'c = LoraConfig(r=8, **{"lora_alpha": 16})\n'


def test_a_read_only_file_is_left_byte_identical_and_the_others_are_fixed(tmp_path):
    locked, other = tmp_path / "locked.py", tmp_path / "other.py"
    locked.write_text(BROKEN)
    other.write_text(BROKEN)
    locked.chmod(0o444)
    # --fail-level error: the refused fix alone must still make the run fail
    result = run_cli(["check", "--no-cache", "--fix", "--fail-level", "error", "."], cwd=tmp_path)
    assert locked.read_text() == BROKEN and stat.S_IMODE(locked.stat().st_mode) == 0o444
    assert other.read_text() == FIXED
    assert "loralint: error: locked.py: not fixed: it is read-only (mode 0444)" in result.stderr
    assert "Fixed 1 problem." in result.stderr
    assert "locked.py:2:25: LORA001" in result.stdout and "other.py" not in result.stdout
    assert result.exit_code == 1


def test_a_refused_fix_below_the_fail_level_still_fails_the_run(tmp_path):
    path = tmp_path / "t.py"
    text = GPT2 + 'cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["c_proj"], fan_in_fan_out=True)\n'
    text += "model = get_peft_model(model, cfg)\n"
    path.write_text(text)
    path.chmod(0o400)
    result = run_cli(["check", "--no-cache", "--fix", "--fail-level", "error", "t.py"], cwd=tmp_path)
    assert "LORA107" in result.stdout and "error]" not in result.stdout  # warnings only
    assert "t.py: not fixed: it is read-only (mode 0400)" in result.stderr
    assert result.exit_code == 1 and path.read_text() == text


def test_mode_owner_and_inode_are_kept(tmp_path):
    path = tmp_path / "t.py"
    path.write_text(BROKEN)
    path.chmod(0o640)
    owner = (path.stat().st_uid, path.stat().st_gid)
    if os.geteuid() == 0:
        owner = (1234, 4321)  # someone else's file, fixed by root: it stays theirs
        os.chown(path, *owner)
    run_cli(["check", "--no-cache", "--fix", "t.py"], cwd=tmp_path)
    st = path.stat()
    assert path.read_text() == FIXED
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == owner
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.py"]  # no temporary file left


def test_both_names_of_a_hard_link_see_the_fix(tmp_path):
    (tmp_path / "a").mkdir()
    first, second = tmp_path / "a" / "train.py", tmp_path / "train.py"
    first.write_text(BROKEN)
    os.link(first, second)
    result = run_cli(["check", "--no-cache", "--fix", "."], cwd=tmp_path)
    assert first.read_text() == FIXED and second.read_text() == FIXED
    assert first.stat().st_ino == second.stat().st_ino and first.stat().st_nlink == 2
    assert "error" not in result.stderr  # not "changed since it was read" for the second name
    assert result.exit_code == 0 and "All checks passed" in result.stdout


def test_a_read_only_directory_is_one_file_error_and_the_run_goes_on(tmp_path, bounded):
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "a.py").write_text(BROKEN)
    (rw / "b.py").write_text(BROKEN)
    ro.chmod(0o555)
    try:
        run = bounded(["check", "--no-cache", "--fix", "."], tmp_path)
    finally:
        ro.chmod(0o755)
    assert not run.traceback and run.exit_code == 1
    assert (ro / "a.py").read_text() == BROKEN and sorted(p.name for p in ro.iterdir()) == ["a.py"]
    assert (rw / "b.py").read_text() == FIXED
    assert "loralint: error: ro/a.py: not fixed: its directory is read-only (mode 0555)" in run.stderr
    assert "Fixed 1 problem." in run.stderr
    assert "ro/a.py:2:25: LORA001" in run.stdout and "rw/b.py" not in run.stdout


def test_symbolic_links_are_followed_only_inside_the_project(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "pyproject.toml").write_text("[tool.loralint]\n")
    (elsewhere / "victim.py").write_text(BROKEN)
    (project / "real.py").write_text(BROKEN)
    (project / "out.py").symlink_to(elsewhere / "victim.py")
    (project / "in.py").symlink_to("real.py")
    result = run_cli(["check", "--no-cache", "--fix", "out.py", "in.py"], cwd=project)
    assert (elsewhere / "victim.py").read_text() == BROKEN
    assert "out.py: not fixed: it is reached through a symbolic link to" in result.stderr
    assert (project / "in.py").is_symlink() and (project / "real.py").read_text() == FIXED
    assert result.exit_code == 1


@pytest.fixture
def shared_dir():
    """A directory another user can enter (pytest's own tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="loralint-fix-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to act as another user",
)
def test_an_unprivileged_user_cannot_be_made_to_write_what_they_may_not(shared_dir):
    nobody = 65534
    theirs, open_dir, closed_dir = shared_dir / "theirs", shared_dir / "open", shared_dir / "closed"
    for d, mode in ((theirs, 0o777), (open_dir, 0o777), (closed_dir, 0o755)):
        d.mkdir()
        d.chmod(mode)
    not_mine = theirs / "not_mine.py"  # root's file, 0644: nobody may not write it
    writable = open_dir / "writable.py"  # root's file, 0666 in a shared directory: fixed, stays root's
    stuck = closed_dir / "stuck.py"  # nobody's file in root's directory: no temporary file there
    for path, mode in ((not_mine, 0o644), (writable, 0o666), (stuck, 0o644)):
        path.write_text(BROKEN)
        path.chmod(mode)
    os.chown(stuck, nobody, nobody)
    inode = writable.stat().st_ino
    as_nobody = ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups"]
    proc = subprocess.run(
        [*as_nobody, sys.executable, "-c", "from loralint.cli import main; main()", "check", "--no-cache", "--fix", "."],
        cwd=shared_dir, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "HOME": str(shared_dir), "HF_HUB_OFFLINE": "1"},
    )
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
    assert not_mine.read_text() == BROKEN and stuck.read_text() == BROKEN
    assert writable.read_text() == FIXED
    st = writable.stat()
    assert (st.st_ino, st.st_uid, stat.S_IMODE(st.st_mode)) == (inode, 0, 0o666)
    assert "theirs/not_mine.py: not fixed: permission denied: you cannot write it" in proc.stderr
    assert "closed/stuck.py: not fixed: permission denied: you cannot create the temporary file" in proc.stderr


def test_a_saved_adapter_keeps_its_trained_scaling(tmp_path):
    # A trained adapter (r=64, lora_alpha=16) saved with its checkpoints: advice for the next run, no
    # fix, because use_rslora=True or another alpha would change what the saved weights do (8x here).
    saved = '{\n  "peft_type": "LORA",\n  "r": 64,\n  "lora_alpha": 16,\n  "inference_mode": true,\n' \
            '  "target_modules": ["q_proj", "v_proj"],\n  "task_type": "CAUSAL_LM"\n}\n'
    for folder in ("out", "out/checkpoint-500"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "adapter_config.json").write_text(saved)
    run = run_cli(["check", "--no-cache", "--fix", "--unsafe-fixes", "."], cwd=tmp_path)
    assert "LORA102" in run.stdout, run.stdout
    for folder in ("out", "out/checkpoint-500"):
        assert (tmp_path / folder / "adapter_config.json").read_text() == saved
