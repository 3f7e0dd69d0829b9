"""Rewrite the rule table in README.md from rules/*.md (a test checks it is up to date).

    python scripts/update_readme_rules.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loralint.ruleset import builtin_rules  # noqa: E402

START, END = "<!-- rules-table:start -->", "<!-- rules-table:end -->"


def table() -> str:
    rows = ["| code | name | severity | fix | what it flags |", "| --- | --- | --- | --- | --- |"]
    for rule in builtin_rules().values():
        fix = {"safe": "yes", "unsafe": "unsafe", "none": ""}[rule.fix]
        severity = rule.severity + (" (--verify)" if rule.verify else "")
        summary = rule.summary.replace("|", "\\|")
        rows.append(f"| {rule.code} | {rule.name} | {severity} | {fix} | {summary} |")
    return "\n".join(rows)


def render(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    path = ROOT / "README.md"
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
