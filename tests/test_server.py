"""`loralint server` as an editor meets it: the real server process, driven over stdio by pytest-lsp."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp", reason="pytest-lsp is in loralint[test]")

from lsp_client import change_doc, client_fixture, open_doc, published, server_config
from lsprotocol import types
from pytest_lsp import LanguageClient

BAD = """# training script
from peft import LoraConfig  # the adapter

config = LoraConfig(
    r=16,   # rank
    lora_aplha=32,
    bias="all",
    target_modules=["q_proj", "v_proj"],
    task_type="CAUSAL_LM",
)
"""
CLEAN = BAD.replace("lora_aplha", "lora_alpha").replace('"all"', '"none"')
AXOLOTL = """# axolotl
base_model: mistralai/Mistral-7B-v0.1
adapter: lora
lora_r: 16
lora_alpha: 4
lora_target_modules:
  - q_proj
  - v_proj
lora_fan_in_fanout: false
"""


SERVER = server_config([sys.executable, "-m", "loralint", "server"])
client = client_fixture(SERVER)
nvim_client = client_fixture(SERVER, "neovim")  # Neovim prefers UTF-8 positions; the server must still answer in UTF-16


def apply_text_edits(text: str, edits) -> str:
    """Apply LSP TextEdits (UTF-16 positions) to `text`, as an editor does."""
    lines = text.splitlines(keepends=True)

    def offset(pos: types.Position) -> int:
        before = sum(len(line) for line in lines[: pos.line])
        line = lines[pos.line] if pos.line < len(lines) else ""
        units = 0
        for i, ch in enumerate(line):
            if units >= pos.character:
                return before + i
            units += 2 if ord(ch) > 0xFFFF else 1
        return before + len(line.rstrip("\r\n"))

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        a, b = offset(edit.range.start), offset(edit.range.end)
        text = text[:a] + edit.new_text + text[b:]
    return text


async def code_actions(client: LanguageClient, uri: str, diag: types.Diagnostic, only=None):
    return await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=diag.range,
        context=types.CodeActionContext(diagnostics=[diag], only=only)))


def by_code(params: types.PublishDiagnosticsParams) -> dict[str, types.Diagnostic]:
    return {d.code: d for d in params.diagnostics}


@pytest.mark.asyncio
async def test_diagnostics_come_from_the_editor_text_and_clear_on_change_and_close(client, tmp_path):
    path = tmp_path / "train.py"
    path.write_text(CLEAN)  # the file on disk is clean: the server must check the editor's text
    uri = open_doc(client, path, BAD)
    params = await published(client, uri, 1)
    found = by_code(params)
    assert set(found) == {"LORA001", "LORA106"}
    unknown = found["LORA001"]
    assert (unknown.range.start.line, unknown.range.start.character) == (5, 4)
    assert (unknown.range.end.line, unknown.range.end.character) == (5, 14)
    assert unknown.severity == types.DiagnosticSeverity.Error and unknown.source == "loralint"
    assert "lora_alpha" in unknown.message
    bias = found["LORA106"]
    assert (bias.range.start.line, bias.range.start.character, bias.range.end.character) == (6, 9, 14)
    assert bias.severity == types.DiagnosticSeverity.Warning

    change_doc(client, uri, 2, CLEAN)
    cleared = await published(client, uri, 2)
    assert list(cleared.diagnostics) == []

    change_doc(client, uri, 3, BAD)
    assert set(by_code(await published(client, uri, 3))) == {"LORA001", "LORA106"}
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    assert set(by_code(await published(client, uri, 3))) == {"LORA001", "LORA106"}  # saving checks again
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    closed = await published(client, uri)
    assert list(closed.diagnostics) == []


@pytest.mark.asyncio
async def test_quick_fix_and_suppress_actions_edit_the_text(client, tmp_path):
    uri = open_doc(client, tmp_path / "train.py", BAD)
    found = by_code(await published(client, uri, 1))

    actions = await code_actions(client, uri, found["LORA001"])
    titles = [a.title for a in actions]
    assert "Rename lora_aplha to lora_alpha (LORA001)" in titles
    assert "Suppress LORA001 on this line" in titles
    fix = next(a for a in actions if a.title.startswith("Rename"))
    assert fix.kind == types.CodeActionKind.QuickFix and fix.is_preferred
    fixed = apply_text_edits(BAD, fix.edit.changes[uri])
    assert fixed == BAD.replace("lora_aplha", "lora_alpha")

    suppress = next(a for a in actions if a.title.startswith("Suppress"))
    suppressed = apply_text_edits(BAD, suppress.edit.changes[uri])
    assert "    lora_aplha=32,  # loralint: ignore[LORA001]\n" in suppressed
    assert suppressed.replace("  # loralint: ignore[LORA001]", "") == BAD

    # The suppression works: after the edit, LORA001 is gone and LORA106 stays.
    change_doc(client, uri, 2, suppressed)
    assert set(by_code(await published(client, uri, 2))) == {"LORA106"}

    # A second code on a line that already has an ignore comment joins it.
    current = suppressed.replace('bias="all",', 'bias="all",  # loralint: ignore[LORA004]')
    change_doc(client, uri, 3, current)
    bias = by_code(await published(client, uri, 3))["LORA106"]
    actions = await code_actions(client, uri, bias)
    suppress = next(a for a in actions if a.title == "Suppress LORA106 on this line")
    [edit] = suppress.edit.changes[uri]
    assert '    bias="all",  # loralint: ignore[LORA004, LORA106]\n' in apply_text_edits(current, [edit])
    unsafe = next(a for a in actions if a.title.startswith("Set bias"))
    assert unsafe.title == "Set bias='none' (LORA106, unsafe)" and not unsafe.is_preferred


@pytest.mark.asyncio
async def test_fix_all_source_action_applies_every_safe_fix(client, tmp_path):
    uri = open_doc(client, tmp_path / "axolotl.yml", AXOLOTL, language="yaml")
    found = by_code(await published(client, uri, 1))
    assert {"LORA001", "LORA101"} <= set(found)  # a safe rename and an unsafe alpha change
    actions = await code_actions(client, uri, found["LORA001"], only=[types.CodeActionKind.SourceFixAll])
    [fix_all] = actions
    assert fix_all.kind == "source.fixAll.loralint"
    fixed = apply_text_edits(AXOLOTL, fix_all.edit.changes[uri])
    assert fixed == AXOLOTL.replace("lora_fan_in_fanout", "lora_fan_in_fan_out")  # alpha untouched


@pytest.mark.asyncio
async def test_positions_are_utf16_even_when_the_client_prefers_utf8(nvim_client, tmp_path):
    client = nvim_client
    assert client.init_result.capabilities.position_encoding == types.PositionEncodingKind.Utf16
    text = 'from peft import LoraConfig\nc = LoraConfig(target_modules=["🦙"], lora_aplha=32, r=8)\n'
    uri = open_doc(client, tmp_path / "emoji.py", text)
    diag = by_code(await published(client, uri, 1))["LORA001"]
    # `lora_aplha` starts at code point 37; the llama before it takes two UTF-16 units.
    assert (diag.range.start.line, diag.range.start.character, diag.range.end.character) == (1, 38, 48)
    [fix] = [a for a in await code_actions(client, uri, diag) if a.title.startswith("Rename")]
    assert apply_text_edits(text, fix.edit.changes[uri]) == text.replace("lora_aplha", "lora_alpha")


@pytest.mark.asyncio
async def test_workspace_settings_apply(client, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.loralint]\nignore = ["LORA106"]\n')
    (tmp_path / "pkg").mkdir()
    uri = open_doc(client, tmp_path / "pkg" / "train.py", BAD)
    assert set(by_code(await published(client, uri, 1))) == {"LORA001"}


@pytest.mark.asyncio
async def test_changes_are_debounced(client, tmp_path):
    uri = open_doc(client, tmp_path / "train.py", CLEAN)
    await published(client, uri, 1)
    # Typing: three changes in quick succession. The first is checked at once (the server is idle) and the
    # others arrive while that check runs: a long text makes it run long enough for that on a busy machine.
    long = BAD + "".join(f"def step_{i}(x):\n    return x + {i}\n" for i in range(6000))
    for version in (2, 3, 4):
        change_doc(client, uri, version, long if version != 4 else BAD.replace("bias=", "bias ="))
    params = await published(client, uri, 4)  # checked once typing paused
    assert set(by_code(params)) == {"LORA001", "LORA106"}
    assert [p.version for p in client.published if p.uri == uri] == []  # versions 2 and 3 never published


def test_loralint_cli_does_not_import_pygls():
    code = "import sys, loralint.cli; print('pygls' in sys.modules, 'lsprotocol' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_server_without_pygls_says_how_to_install_it():
    code = "import sys; sys.modules['pygls'] = None; from loralint.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "server"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "loralint: error: the language server needs pygls: pip install 'loralint[lsp]'"
    ]
