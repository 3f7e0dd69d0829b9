"""`loralint check --output-format lsp` and the Diagnostic → LSP conversion the server reuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import run_cli, run_subprocess
from helpers_reports import BAD, CLEAN, EXPECTED, make_project

from loralint.report.lsp import to_lsp_diagnostic, utf16_column
from loralint.sites import Diagnostic, Fix, Span, TextEdit

SEVERITY = {"error": 1, "warning": 2, "info": 3}


def lsp(cwd: Path, *args: str) -> list[dict]:
    run = run_cli(["check", "--output-format", "lsp", "--no-cache", *args], cwd=cwd)
    assert run.exit_code in (0, 1), run.stderr
    return json.loads(run.stdout)


def uri(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri()


def test_one_publish_params_per_file_with_0_based_positions(tmp_path):
    make_project(tmp_path, {"train.py": BAD, "clean.py": CLEAN})
    run = run_subprocess(["check", "--output-format", "lsp", "--no-cache", "train.py", "clean.py"], cwd=tmp_path)
    assert run.exit_code == 1
    entries = json.loads(run.stdout)
    assert [e["uri"] for e in entries] == [uri(tmp_path / "clean.py"), uri(tmp_path / "train.py")]
    assert entries[0]["diagnostics"] == []  # a clean file clears stale diagnostics in the editor
    diags = entries[1]["diagnostics"]
    assert [(d["code"], d["severity"]) for d in diags] == [(code, SEVERITY[sev]) for code, sev, _, _ in EXPECTED]
    for d, (code, _, start, end) in zip(diags, EXPECTED):
        # BAD's line 3, columns 1-based and end-exclusive → LSP line 2, 0-based characters.
        assert d["range"] == {"start": {"line": 2, "character": start - 1}, "end": {"line": 2, "character": end - 1}}
        assert d["source"] == "loralint"
        assert d["codeDescription"]["href"].endswith(f"/rules/{code}-{d['data']['name']}.md")
        assert d["message"]


def test_the_fix_travels_in_data_as_a_workspace_edit(tmp_path):
    make_project(tmp_path, {"train.py": BAD})
    [entry] = lsp(tmp_path, "train.py")
    report = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).json
    fixes = {d["code"]: d["fix"] for d in report["diagnostics"]}
    for diag in entry["diagnostics"]:
        fix = fixes[diag["code"]]
        if fix is None:
            assert "fix" not in diag["data"]
            continue
        data = diag["data"]["fix"]
        assert (data["title"], data["applicability"]) == (fix["description"], fix["applicability"])
        assert data["edit"]["changes"] == {
            uri(tmp_path / "train.py"): [
                {"range": {"start": {"line": e["line"] - 1, "character": e["column"] - 1},
                           "end": {"line": e["end_line"] - 1, "character": e["end_column"] - 1}},
                 "newText": e["content"]}
                for e in fix["edits"]
            ]
        }
    assert any("fix" in d["data"] for d in entry["diagnostics"])


def test_characters_count_utf16_code_units_after_non_ascii_text(tmp_path):
    line = 'config = LoraConfig(r=64, lora_alpha=16, task_type="CAUSAL_LM", modules_to_save=["é😀"], lora_aplha=3)'
    make_project(tmp_path, {"train.py": f"from peft import LoraConfig\n\n{line}\n"})
    [entry] = lsp(tmp_path, "train.py")
    [diag] = [d for d in entry["diagnostics"] if d["code"] == "LORA001"]
    index = line.index("lora_aplha")  # code points before the argument
    utf16 = len(line[:index].encode("utf-16-le")) // 2
    assert utf16 == index + 1  # 😀 is two UTF-16 units; é is one
    assert diag["range"] == {"start": {"line": 2, "character": utf16}, "end": {"line": 2, "character": utf16 + 10}}


def test_utf16_column():
    assert utf16_column("abc", 1) == 0
    assert utf16_column("abc", 4) == 3
    assert utf16_column("é😀x", 3) == 3  # é (1) + 😀 (2)
    assert utf16_column("é😀x", 4) == 4
    assert utf16_column("ab", 6) == 5  # past the end: one unit a column
    assert utf16_column(None, 7) == 6


def test_to_lsp_diagnostic_for_the_server():
    lines = ['x = "😀"; y = LoraConfig(lora_aplha=3)\n', "\n"]
    col = lines[0].index("lora_aplha") + 1
    fix = Fix("Rename to lora_alpha", [TextEdit(Span("t.py", 1, col, 1, col + 10), "lora_alpha")])
    diag = Diagnostic(
        "LORA001", "unknown-argument", "error", "lora_aplha is not an argument",
        Span("t.py", 1, col, 1, col + 10), fix, related=[(Span("t.py", 1, 14, 1, 39), "the config")],
    )
    out = to_lsp_diagnostic(diag, lines=lines, uri_for=lambda path: f"file:///w/{path}")
    start = col - 1 + 1  # one astral character before the argument
    assert out["range"] == {"start": {"line": 0, "character": start}, "end": {"line": 0, "character": start + 10}}
    assert (out["severity"], out["code"], out["source"]) == (1, "LORA001", "loralint")
    assert out["codeDescription"] == {"href": "https://github.com/loralint/loralint/blob/main/rules/LORA001-unknown-argument.md"}
    assert out["data"]["fix"]["edit"]["changes"]["file:///w/t.py"][0]["range"] == out["range"]
    assert out["relatedInformation"] == [{
        "location": {"uri": "file:///w/t.py",
                     "range": {"start": {"line": 0, "character": 14}, "end": {"line": 0, "character": 39}}},
        "message": "the config",
    }]
    # Given only the text of the line, the same range comes out.
    assert to_lsp_diagnostic(diag, lines[0].rstrip("\n"))["range"] == out["range"]
    # info → 3, warning → 2; an unused suppression is marked Unnecessary (faded).
    note = Diagnostic("LORA903", "unused-suppression", "info", "unused", Span("t.py", 2, 1, 2, 2))
    assert to_lsp_diagnostic(note, "")["severity"] == 3
    assert to_lsp_diagnostic(note, "")["tags"] == [1]
    warning = Diagnostic("LORA101", "alpha-scaling", "warning", "w", Span("t.py", 2, 1, 2, 2))
    assert to_lsp_diagnostic(warning, "")["severity"] == 2
