"""Every rule's documentation is executable: its bad example triggers the rule, its good example
triggers nothing at warning level or above (and never the rule itself)."""

from __future__ import annotations

import re

import pytest

from loralint.ruleset import builtin_rules, parse_rule_file, rules_dir

from helpers import run_cli

_BLOCK = re.compile(r"^## (Example|Use instead)\n+```(\w+)\n(.*?)^```", re.S | re.M)
_EXTENSIONS = {"python": "example.py", "yaml": "config.yaml", "json": "adapter_config.json"}


def _examples(rule):
    found = {}
    for title, lang, body in _BLOCK.findall(rule.docs):
        found[title] = (lang, body)
    return found


RULES = sorted(builtin_rules().values(), key=lambda r: r.code)
# Rules only the real PEFT reports (--verify) have their examples run in tests/verify/.
DOCUMENTED = [r for r in RULES if "Example" in _examples(r) and not r.verify]


def test_every_rule_file_has_the_documented_sections():
    for rule in RULES:
        for heading in ("## What it does", "## Why is this bad?", "## How to fix"):
            assert heading in rule.docs, f"{rule.code} lacks {heading}"
        assert rule.summary, f"{rule.code} has no summary"


def test_rules_without_examples_are_only_the_engine_ones():
    missing = {r.code for r in RULES if not r.verify} - {r.code for r in DOCUMENTED}
    assert missing == {"LORA902", "LORA904", "LORA905", "LORA906"}, missing


@pytest.mark.parametrize("rule", DOCUMENTED, ids=lambda r: r.code)
def test_bad_example_triggers_the_rule(rule, tmp_path):
    lang, body = _examples(rule)["Example"]
    (tmp_path / _EXTENSIONS[lang]).write_text(body, encoding="utf-8")
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--fail-level", "info", "."], cwd=tmp_path)
    assert rule.code in run.codes(), run.stdout
    assert run.exit_code == 1


@pytest.mark.parametrize("rule", [r for r in DOCUMENTED if "Use instead" in _examples(r)], ids=lambda r: r.code)
def test_good_example_is_clean(rule, tmp_path):
    lang, body = _examples(rule)["Use instead"]
    (tmp_path / _EXTENSIONS[lang]).write_text(body, encoding="utf-8")
    run = run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path)
    report = run.json
    assert rule.code not in run.codes(), run.stdout
    serious = [d for d in report["diagnostics"] if d["severity"] != "info"]
    assert serious == [], serious
    assert report["configs"], "the good example must still contain a configuration"


def test_rule_file_names_match_their_front_matter():
    for path in sorted(rules_dir().glob("*.md")):
        rule = parse_rule_file(path)
        assert path.name == f"{rule.code}-{rule.name}.md"
