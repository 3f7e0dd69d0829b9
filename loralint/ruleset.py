"""Rules are data: one Markdown file a rule in `rules/`, front matter + documentation.

The front matter names the check (code in `loralint/checks/`) and its parameters; the body is
what `loralint rule CODE` prints and what SARIF carries as help. Users add rules of the same form
in their settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n?(.*)\Z", re.S)
_CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*[0-9]+$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_SEVERITIES = ("error", "warning", "info")
_FIXES = ("none", "safe", "unsafe")


class RuleError(Exception):
    pass


@dataclass(slots=True)
class Rule:
    code: str
    name: str
    severity: str
    check: str
    params: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    fix: str = "none"
    docs: str = ""
    source: str = ""  # the file it came from
    message: str | None = None  # custom rules may template their message
    builtin: bool = True
    verify: bool = False  # reported only by --verify (the real PEFT), never by the static checks

    @property
    def url(self) -> str:
        """Where the documentation lives; user-defined rules have none."""
        if not self.builtin:
            return ""
        return f"https://github.com/loralint/loralint/blob/main/rules/{self.code}-{self.name}.md"


def rules_dir() -> Path:
    """rules/ inside the installed package, or at the repository root in a source checkout."""
    packaged = Path(__file__).parent / "rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "rules"


def _loader():
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_rule_file(path: Path) -> Rule:
    text = path.read_text(encoding="utf-8")
    match = _FRONT_MATTER.match(text)
    if not match:
        raise RuleError(f"{path.name}: no front matter")
    try:
        meta = yaml.load(match.group(1), Loader=_loader()) or {}
    except yaml.YAMLError as exc:
        raise RuleError(f"{path.name}: invalid front matter: {exc}") from exc
    return rule_from_mapping(meta, docs=match.group(2).strip(), source=str(path))


def rule_from_mapping(meta: dict[str, Any], docs: str = "", source: str = "", builtin: bool = True) -> Rule:
    missing = [k for k in ("code", "name", "severity", "check") if k not in meta]
    if missing:
        raise RuleError(f"{source or meta.get('code', 'rule')}: missing {', '.join(missing)}")
    code, name = str(meta["code"]), str(meta["name"])
    if not _CODE_RE.match(code) or not _NAME_RE.match(name):
        raise RuleError(f"{source}: bad code or name ({code!r}, {name!r})")
    if meta["severity"] not in _SEVERITIES:
        raise RuleError(f"{source}: severity must be one of {', '.join(_SEVERITIES)}")
    fix = str(meta.get("fix", "none"))
    if fix not in _FIXES:
        raise RuleError(f"{source}: fix must be one of {', '.join(_FIXES)}")
    return Rule(
        code=code,
        name=name,
        severity=str(meta["severity"]),
        check=str(meta["check"]),
        params=dict(meta.get("params") or {}),
        summary=str(meta.get("summary", "")),
        fix=fix,
        docs=docs,
        source=source,
        message=meta.get("message"),
        builtin=builtin,
        verify=bool(meta.get("verify", False)),
    )


@lru_cache(maxsize=1)
def builtin_rules() -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for path in sorted(rules_dir().glob("*.md")):
        rule = parse_rule_file(path)
        if not path.name.startswith(f"{rule.code}-{rule.name}"):
            raise RuleError(f"{path.name}: file name must be {rule.code}-{rule.name}.md")
        if rule.code in rules:
            raise RuleError(f"{path.name}: duplicate code {rule.code}")
        rules[rule.code] = rule
    return rules


def find_rule(code_or_name: str, rules: dict[str, Rule] | None = None) -> Rule | None:
    rules = rules if rules is not None else builtin_rules()
    key = code_or_name.strip()
    if key.upper() in rules:
        return rules[key.upper()]
    for rule in rules.values():
        if rule.name == key.lower():
            return rule
    return None


def code_matches(code: str, selector: str) -> bool:
    """ruff-style selection: `ALL`, a full code, or a prefix such as `LORA1`."""
    return selector == "ALL" or code.startswith(selector)
