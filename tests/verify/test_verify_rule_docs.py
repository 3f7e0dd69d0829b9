"""The documentation of the --verify rules is executable too: each Example, run with --verify
against a small model of the same architecture, triggers its rule; each Use instead does not.
(tests/test_rule_docs.py skips rules marked `verify: true`: they need the libraries.)"""

from __future__ import annotations

import re

import pytest
from conftest import FIXTURES
from helpers import run_cli

from loralint.ruleset import builtin_rules, rules_dir

pytestmark = pytest.mark.verify

_BLOCK = re.compile(r"^## (Example|Use instead)\n+```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
_MODEL_ID = re.compile(r'from_pretrained\("([^"]+)"')

# The architecture each example's model id stands for (tiny configs, see conftest.TINY).
_ARCH = {"meta-llama/Llama-3.2-3B": "llama", "openai-community/gpt2": "gpt2"}


def _verify_rules():
    import yaml

    out = []
    for path in sorted(rules_dir().glob("LORA25*.md")):
        meta = yaml.safe_load(path.read_text().split("---")[1])
        if meta.get("verify"):
            out.append(builtin_rules()[meta["code"]])
    return out


VERIFY_RULES = _verify_rules()


def test_verify_rules_are_engine_rules_with_full_docs():
    assert {r.code for r in VERIFY_RULES} == {f"LORA25{i}" for i in range(7)}
    for rule in VERIFY_RULES:
        assert rule.check == "engine"
        for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## How to fix"):
            assert heading in rule.docs, f"{rule.code} lacks {heading}"


def _run_block(body: str, tmp_path, tiny_model, code: str):
    path = tmp_path / "example.py"
    path.write_text(body, encoding="utf-8")
    args = []
    match = _MODEL_ID.search(body)
    if code == "LORA255" and match and "custom" in match.group(1):
        args = ["--model", str(FIXTURES / "verify-remote-code")]
    elif match and match.group(1) in _ARCH:
        args = ["--model", str(tiny_model(_ARCH[match.group(1)]))]
    elif match and match.group(1).startswith("./"):  # a local folder: it exists next to the script
        tiny_model("llama", folder=match.group(1)[2:])
    return run_cli(["check", "--verify", "--output-format", "json", "--no-cache", "--fail-level", "info", *args,
                    path.name], cwd=tmp_path)


@pytest.mark.parametrize("rule", [r for r in VERIFY_RULES if r.code != "LORA253"], ids=lambda r: r.code)
def test_example_triggers_and_use_instead_does_not(rule, tmp_path, tiny_model, monkeypatch):
    monkeypatch.delenv("LORALINT_REMOTE_CODE_MARKER", raising=False)
    blocks = {title: body for title, lang, body in _BLOCK.findall(rule.docs) if lang == "python"}
    bad = _run_block(blocks["Example"], tmp_path, tiny_model, rule.code)
    assert rule.code in bad.codes(), bad.stdout
    good = _run_block(blocks["Use instead"], tmp_path, tiny_model, rule.code)
    assert rule.code not in good.codes(), good.stdout
    serious = [d for d in good.json["diagnostics"] if d["code"].startswith("LORA25") and d["severity"] != "info"]
    assert serious == []
