"""Reading input safely: regular files only, size limits, decoding, line endings, discovery.

Every input is built on the fly. Anything that could block or allocate without bound (a FIFO, a
link to /dev/zero, a huge file, stdin, a pathological glob) runs the real CLI in a subprocess under
an address-space limit (`bounded`); a hang fails by the harness's timeout, never by a timing
assertion.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symbolic links (POSIX)")

BAD = 'from peft import LoraConfig\ncfg = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj"])\n'
ADAPTER = '{\n  "peft_type": "LORA",\n  "r": 8,\n  "lora_alpha": 64,\n  "target_modules": ["q_proj"]\n}\n'
YAML = (
    "base_model: meta-llama/Llama-3.2-1B\nadapter: lora\nlora_r: 8\nlora_alpha: 64\n"
    "lora_target_modules:\n  - q_proj\n"
)


def found(run) -> dict[str, list[tuple[str, str]]]:
    """path → [(code, message)] from a JSON report."""
    by_path: dict[str, list[tuple[str, str]]] = {}
    for d in json.loads(run.stdout)["diagnostics"]:
        by_path.setdefault(d["path"], []).append((d["code"], d["message"]))
    return by_path


def check(bounded, cwd, *args):
    run = bounded(["check", "--no-cache", "--output-format", "json", *args], cwd)
    assert not run.traceback, run.stderr
    assert "LORA904" not in run.stdout
    return run


def check_here(cwd, *args):
    """In-process (faster), for inputs that cannot block or allocate: a regression fails, it cannot hang."""
    return run_cli(["check", "--no-cache", "--output-format", "json", *args], cwd=cwd)


# --- special files: never opened, never waited on ------------------------------------------------


def test_fifo_and_dev_zero_links_in_the_tree_are_skipped_and_the_rest_is_checked(bounded, tmp_path):
    (tmp_path / "ok.py").write_text(BAD)
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "x.py").symlink_to("/dev/zero")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "config.yaml").symlink_to("/dev/zero")
    run = check(bounded, tmp_path, ".")
    assert run.exit_code == 1
    got = found(run)
    assert got["pipe.py"] == [("LORA905", "not a regular file (FIFO); not checked")]
    # Two links to the same device are one input, reported under one of its names.
    device = got.get("x.py") or got.get("sub/config.yaml")
    assert device == [("LORA905", "not a regular file (character device); not checked")]
    assert "LORA101" in [c for c, _ in got["ok.py"]]
    assert run.peak_rss_mb < 400


def test_fifo_named_on_the_command_line_does_not_block(bounded, tmp_path):
    (tmp_path / "ok.py").write_text(BAD)
    os.mkfifo(tmp_path / "pipe.py")
    os.mkfifo(tmp_path / "pipe.yaml")
    run = check(bounded, tmp_path, "pipe.py", "pipe.yaml", "ok.py")
    got = found(run)
    assert got["pipe.py"] == got["pipe.yaml"] == [("LORA905", "not a regular file (FIFO); not checked")]
    assert "LORA101" in [c for c, _ in got["ok.py"]]
    # The text output shows no source line for it (reading one would block).
    text = bounded(["check", "--no-cache", "pipe.py", "ok.py"], tmp_path)
    assert (
        text.exit_code == 1
        and "pipe.py:1:1: LORA905 [warning] not a regular file (FIFO); not checked" in text.stdout
    )


def test_fifo_as_gitignore_is_a_note_and_the_walk_goes_on(bounded, tmp_path):
    (tmp_path / ".git").mkdir()
    os.mkfifo(tmp_path / ".gitignore")
    (tmp_path / "ok.py").write_text(BAD)
    run = check(bounded, tmp_path, ".")
    assert run.exit_code == 1 and list(found(run)) == ["ok.py"]
    assert ".gitignore: not a regular file (FIFO); not used" in run.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_model_folder_whose_config_json_is_not_a_regular_file(bounded, tmp_path, kind):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    if kind == "fifo":
        os.mkfifo(folder / "config.json")
        reason = "not a regular file (FIFO)"
    else:
        (folder / "config.json").symlink_to("/dev/zero")
        reason = "not a regular file (character device)"
    (tmp_path / "ok.py").write_text(BAD)
    # --model DIR: the user's own argument, so a usage error that says why.
    run = bounded(["check", "--no-cache", "--model", "ckpt", "ok.py"], tmp_path)
    assert run.exit_code == 2 and not run.traceback
    assert f"config.json: {reason}; the model stays unresolved" in run.stderr
    # The same folder named by a script in the tree: a note, and the file's findings stand.
    (tmp_path / "train.py").write_text(
        "from transformers import AutoModelForCausalLM\nfrom peft import LoraConfig, get_peft_model\n"
        'model = AutoModelForCausalLM.from_pretrained("./ckpt")\n'
        'cfg = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'
        "model = get_peft_model(model, cfg)\n"
    )
    run = check(bounded, tmp_path, "train.py")
    assert run.exit_code == 1 and "LORA101" in [c for c, _ in found(run)["train.py"]]
    assert f"ckpt/config.json: {reason}; not used" in run.stderr
    modules = bounded(["modules", "ckpt"], tmp_path)
    assert modules.exit_code == 2 and reason in modules.stderr and not modules.traceback


# --- size limits ------------------------------------------------------------------------------


def test_a_20_mb_source_file_is_skipped_unread(bounded, tmp_path):
    # A real candidate (the prefilter would pass it and libcst would spend minutes and gigabytes on it).
    with open(tmp_path / "huge.py", "wb") as handle:
        handle.write(BAD.encode())
        line = b"x = [" + b"1, " * 30 + b"]\n"
        handle.write(line * (20_000_000 // len(line) + 1))
    (tmp_path / "ok.py").write_text(BAD)
    run = check(bounded, tmp_path, ".")
    got = found(run)
    assert got["huge.py"] == [("LORA905", "larger than max-file-size (10 MB): 20 MB; not checked")]
    assert "LORA101" in [c for c, _ in got["ok.py"]]
    assert run.peak_rss_mb < 400  # parsed, it would take gigabytes (over the address-space limit)


def test_a_large_json_data_file_in_a_walked_folder_is_no_finding(tmp_path, monkeypatch):
    # alpaca_data.json (22 MB) beside the scripts: a data set, not a configuration; LORA905 on it made
    # `loralint check .` exit 1 on a clean LoRA repository. Named on the command line, it is still reported.
    (tmp_path / ".loralint.toml").write_text('max-file-size = "1 KB"\n')
    (tmp_path / "alpaca_data.json").write_text(json.dumps([{"instruction": "q", "output": "a"}] * 100))
    (tmp_path / "big.yaml").write_text("# padding\n" * 200)
    (tmp_path / "ok.py").write_text(BAD)
    got = found(check_here(tmp_path, "."))
    assert "alpaca_data.json" not in got
    assert got["big.yaml"] == [("LORA905", "larger than max-file-size (1 KB): 2 KB; not checked")]
    reported = [("LORA905", "larger than max-file-size (1 KB): 3.7 KB; not checked")]
    assert found(check_here(tmp_path, "alpaca_data.json"))["alpaca_data.json"] == reported
    # pre-commit names every staged file, with --force-exclude: committing the data set passes the hook
    hook = check_here(tmp_path, "--force-exclude", "alpaca_data.json", "ok.py")
    assert "alpaca_data.json" not in found(hook) and "ok.py" in found(hook)
    # warm: the stat index of a run over the folder must not make the named file a silent skip
    monkeypatch.setattr("loralint.stat_index.RACY_NS", 0)  # files written a moment ago are indexed
    cached = ["check", "--output-format", "json"]
    assert "alpaca_data.json" not in found(run_cli([*cached, "."], cwd=tmp_path))
    assert found(run_cli([*cached, "alpaca_data.json"], cwd=tmp_path))["alpaca_data.json"] == reported


def test_max_file_size_setting_is_honoured(tmp_path):
    (tmp_path / ".loralint.toml").write_text('max-file-size = "1 KB"\n')
    (tmp_path / "big.py").write_text(BAD + "# padding\n" * 200)
    (tmp_path / "ok.py").write_text(BAD)
    got = found(check_here(tmp_path, "."))
    assert got["big.py"] == [("LORA905", "larger than max-file-size (1 KB): 2.1 KB; not checked")]
    assert "LORA101" in [c for c, _ in got["ok.py"]]
    (tmp_path / ".loralint.toml").write_text("max-file-size = 100000\n")
    assert "LORA101" in [c for c, _ in found(check_here(tmp_path, "."))["big.py"]]
    (tmp_path / ".loralint.toml").write_text('max-file-size = "lots"\n')
    run = run_cli(["check", "--no-cache", "."], cwd=tmp_path)
    assert run.exit_code == 2 and "max-file-size" in run.stderr


def test_stdin_is_bounded_too(bounded, tmp_path):
    data = BAD.encode() + b"#" * 11_000_000
    run = bounded(
        ["check", "--no-cache", "--output-format", "json", "--stdin-filename", "train.py"],
        tmp_path,
        input=data,
    )
    assert run.exit_code == 1 and not run.traceback
    [diag] = json.loads(run.stdout)["diagnostics"]
    assert diag["code"] == "LORA905" and diag["message"].startswith("larger than max-file-size (10 MB)")


# --- symbolic links ---------------------------------------------------------------------------


def test_symlink_loop_in_the_tree_and_on_the_command_line(tmp_path):
    (tmp_path / "a.py").symlink_to("b.py")
    (tmp_path / "b.py").symlink_to("a.py")
    (tmp_path / "ok.py").write_text(BAD)
    loop = [("LORA905", "symbolic link loop; not checked")]
    got = found(check_here(tmp_path, "."))
    assert got["a.py"] == got["b.py"] == loop and "LORA101" in [c for c, _ in got["ok.py"]]
    run = check_here(tmp_path, "a.py", "ok.py")
    assert run.exit_code == 1 and found(run)["a.py"] == loop
    # A loop on the way to a named file: reported for that path, not "no such file" (exit 2).
    (tmp_path / "d").symlink_to("d")
    run = check_here(tmp_path, "d/x.py", "ok.py")
    assert run.exit_code == 1 and found(run)["d/x.py"] == loop


# --- decoding ---------------------------------------------------------------------------------


def test_source_encodings_python_cannot_use_are_lora902_and_the_rest_is_checked(write, tmp_path):
    write("unknown.py", b"# coding: klingon\n" + BAD.encode())
    write("base64.py", b"# -*- coding: base64 -*-\n" + BAD.encode())
    write("rot13.py", b"# coding: rot13\n" + BAD.encode())
    write("puny.py", b"# coding: punycode\n" + BAD.encode() + b"a" * 50_000)  # quadratic decoder: refused
    write("undefined.py", b"# coding: undefined\n" + BAD.encode())
    write("utf16.py", BAD.encode("utf-16"))
    write("ok.py", BAD)
    run = run_cli(["check", "--no-cache", "--output-format", "json", "."], cwd=tmp_path)
    got = found(run)
    assert got["unknown.py"] == [
        ("LORA902", "cannot decode: unknown encoding 'klingon' declared on the coding line; not checked")
    ]
    assert got["base64.py"] == [
        (
            "LORA902",
            "cannot decode: the coding line declares 'base64', which is not a text encoding; not checked",
        )
    ]
    assert got["rot13.py"][0][0] == "LORA902" and "not a text encoding" in got["rot13.py"][0][1]
    assert got["puny.py"][0][0] == "LORA902" and "'punycode'" in got["puny.py"][0][1]
    assert got["undefined.py"][0][0] == "LORA902" and "undefined" in got["undefined.py"][0][1]
    assert (
        got["utf16.py"][0][0] == "LORA902"
        and "UTF-16 source (byte-order mark): Python cannot run it" in got["utf16.py"][0][1]
    )
    assert "LORA101" in [c for c, _ in got["ok.py"]]
    assert "LORA904" not in run.stdout


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: t.encode(),
        lambda t: b"\xef\xbb\xbf" + t.encode(),
        lambda t: t.encode("utf-16"),
        lambda t: b"\xfe\xff" + t.encode("utf-16-be"),
        lambda t: t.encode("utf-16-le"),  # no BOM: RFC 8259's NUL pattern
        lambda t: t.encode("utf-32"),
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "utf16be-bom", "utf16le-no-bom", "utf32"],
)
def test_adapter_config_and_yaml_with_a_bom_or_in_utf16_are_checked(write, tmp_path, encode):
    write("adapter/adapter_config.json", encode(ADAPTER))
    write("axolotl.yaml", encode(YAML))
    run = run_cli(
        ["check", "--no-cache", "--output-format", "json", "--select", "LORA101", "."], cwd=tmp_path
    )
    got = [(d["path"], d["code"], d["line"], d["column"]) for d in run.json["diagnostics"]]
    assert got == [("adapter/adapter_config.json", "LORA101", 4, 17), ("axolotl.yaml", "LORA101", 4, 13)]


# --- line endings -----------------------------------------------------------------------------

ENDINGS = {"lf": "\n", "cr": "\r", "crlf": "\r\n"}
PY_WITH_SUPPRESSION = (
    "from peft import LoraConfig\n"
    "\x0c\n"  # a form feed is not a line break in Python
    'a = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj"])  # loralint: ignore[LORA101]\n'
    'b = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj"],\n'
    "               lora_dropout=1.5)\n"
)


@pytest.mark.parametrize("output_format", ["json", "text", "sarif", "github", "lsp"])
def test_cr_only_and_crlf_files_report_the_same_positions_as_lf(tmp_path, output_format):
    outputs = {}
    for name, ending in ENDINGS.items():
        base = tmp_path / name
        (base / "adapter").mkdir(parents=True)
        for path, text in (
            ("train.py", PY_WITH_SUPPRESSION),
            ("axolotl.yaml", YAML),
            ("adapter/adapter_config.json", ADAPTER),
        ):
            (base / path).write_bytes(text.replace("\n", ending).encode())
        run = run_cli(["check", "--no-cache", "--output-format", output_format, "."], cwd=base)
        assert run.exit_code == 1
        outputs[name] = run.stdout.replace(f"/{name}/", "/DIR/")  # LSP's URIs are absolute
    if output_format == "sarif":  # a file's length and hash differ with its line endings; positions must not
        for name, text in outputs.items():
            doc = json.loads(text)
            outputs[name] = [
                (r["ruleId"], r["locations"][0]["physicalLocation"]["region"])
                for r in doc["runs"][0]["results"]
            ]
    assert outputs["cr"] == outputs["lf"]
    assert outputs["crlf"] == outputs["lf"]
    if output_format == "json":
        got = {
            (d["path"], d["code"], d["line"], d["column"]) for d in json.loads(outputs["lf"])["diagnostics"]
        }
        assert got == {
            ("train.py", "LORA101", 4, 32),  # line 3's is suppressed: the form feed did not shift it
            ("train.py", "LORA003", 5, 29),
            ("axolotl.yaml", "LORA101", 4, 13),
            ("axolotl.yaml", "LORA205", 6, 3),
            ("adapter/adapter_config.json", "LORA101", 4, 17),
        }
    if output_format == "text":  # the snippet is the line the finding is on
        assert '4 | b = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj"],' in outputs["cr"]


def test_invalid_json_position_counts_cr_only_lines(tmp_path):
    text = ADAPTER.replace('["q_proj"]\n', '["q_proj"],\n')  # a trailing comma on line 5
    for name, ending in ENDINGS.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_bytes(text.replace("\n", ending).encode())
    run = run_cli(["check", "--no-cache", "--output-format", "json", "."], cwd=tmp_path)
    got = {(d["code"], d["line"], d["column"]) for d in run.json["diagnostics"]}
    assert got == {("LORA901", 6, 1)}


# --- globs from the checked tree --------------------------------------------------------------


def test_pathological_and_invalid_gitignore_globs_finish_and_are_reported(bounded, tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("**a" * 40 + "**b\n" + "*a" * 40 + "*b\n" + "[z-a]\n")
    (tmp_path / ".loralint.toml").write_text('extend-exclude = ["' + "**a" * 40 + '**c", "[q-b].py"]\n')
    deep = tmp_path / ("a" * 200) / ("a" * 200)
    deep.mkdir(parents=True)
    (deep / ("a" * 200 + ".py")).write_text(BAD)  # no 'b', no 'c': every pattern must fail on it
    (tmp_path / ("a" * 50 + "b")).mkdir()
    (tmp_path / ("a" * 50 + "b") / "ignored.py").write_text(BAD)  # matched by the first pattern
    run = check(bounded, tmp_path, ".")
    assert run.exit_code == 1
    assert [p.rsplit("/", 1)[-1] for p in found(run)] == ["a" * 200 + ".py"]
    assert ".gitignore:3: pattern '[z-a]' is invalid (character range z-a is reversed); ignored" in run.stderr
    assert (
        "extend-exclude pattern '[q-b].py' is invalid" in run.stderr
        or "exclude pattern '[q-b].py' is invalid" in run.stderr
    )


def _reference(pattern: str) -> re.Pattern[str]:
    """The glob semantics loralint documents, as a plain (backtracking) regex: fine for tiny inputs."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out, i = [], 0
    while i < len(body):
        stars = len(body[i:]) - len(body[i:].lstrip("*"))
        if stars >= 2 and body.startswith("/", i + stars):  # `**/`: zero or more whole directories
            out.append("(?:.*/)?")
            i += stars + 1
        elif stars >= 2:  # `**`: anything, across directories
            out.append(".*")
            i += stars
        else:
            out.append({"*": "[^/]*", "?": "[^/]"}.get(body[i], re.escape(body[i])))
            i += 1
    return re.compile(f"^{'' if anchored else '(?:.*/)?'}{''.join(out)}(?:/.*)?$")


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.lists(st.sampled_from(["a", "b", "/", "*", "**", "**/", "?"]), min_size=1, max_size=7).map(
        "".join
    ),
    path=st.lists(st.text("ab", min_size=1, max_size=3), min_size=1, max_size=4).map("/".join),
)
def test_globs_match_exactly_what_the_documented_semantics_say(pattern, path):
    from loralint.globs import compile_glob

    assert bool(compile_glob(pattern).match(path)) == bool(_reference(pattern).match(path))


# --- messages ---------------------------------------------------------------------------------


def test_a_long_identifier_is_not_echoed_in_full_by_messages(write, tmp_path):
    name = "x" * 300
    write("long.py", f"from peft import LoraConfig\ncfg = LoraConfig(r=8, {name}=1)\n")
    run = run_cli(["check", "--no-cache", "long.py"], cwd=tmp_path)
    assert run.exit_code == 1
    assert run.stdout.count(name) == 1  # the source line; the message cuts it
    headline = run.stdout.splitlines()[0]
    assert headline.startswith("long.py:2:23: LORA001") and len(headline) < 300 and "\u2026" in headline
    data = run_cli(["check", "--no-cache", "--output-format", "json", "long.py"], cwd=tmp_path).json
    assert all(len(word) <= 80 for d in data["diagnostics"] for word in d["message"].split())
