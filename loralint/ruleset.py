"""Rules are data: one Markdown file a rule in `rules/`, front matter + documentation.

The front matter names the check (code in `loralint/checks/`) and its parameters; the body is
what `loralint rule CODE` prints and what SARIF carries as help. Users add rules of the same form
in their settings.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# yaml is imported only for front matter the plain reader below does not take: a check of Python files
# then never pays for it (about 20 ms of a 0.1 s start-up).

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n?(.*)\Z", re.S)
_CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*[0-9]+$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_SEVERITIES = ("error", "warning", "info")
_FIXES = ("none", "safe", "unsafe")


class RuleError(Exception):
    pass


@dataclass(slots=True, repr=False, eq=False)
class Rule:
    """One rule: its front matter (or a custom rule's settings) and its documentation."""

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


def parse_rule_file(path: Path) -> Rule:
    return _parse_rule(_read_text(os.fspath(path)), path.name, str(path))


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _read_text(path: str) -> str:
    """Path.read_text(encoding="utf-8"): bytes decoded strictly, then its universal newlines. Read with
    os.read, without a file object: 78 files a run, in half the time of open(path, "rb")."""
    fd = os.open(path, _READ_FLAGS)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _parse_rule(text: str, name: str, source: str) -> Rule:
    """The rule in `text`, the file `name` (for messages) at `source`."""
    match = _FRONT_MATTER.match(text)
    if not match:
        raise RuleError(f"{name}: no front matter")
    meta = plain_front_matter(match.group(1))
    if meta is None:
        import yaml

        try:
            meta = yaml.load(match.group(1), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except yaml.YAMLError as exc:
            raise RuleError(f"{name}: invalid front matter: {exc}") from exc
    return rule_from_mapping(meta, docs=match.group(2).strip(), source=source)


# The plain subset of YAML the shipped rule files use: `key: scalar` lines, and `key:` followed by
# two-space-indented `key: scalar` lines (params). Scalars: decimal ints, floats with a dot, true/false,
# [flow, lists], "quoted" strings without escapes, and plain strings that no YAML 1.1 resolver
# (PyYAML's: bool, int, float, null, timestamp) would turn into anything else. Anything outside it
# returns None and the file goes to yaml; tests/test_startup.py checks both agree on every rule file.
_LINE = re.compile(r"([a-z_][a-z0-9_]*):(?: (.*))?\Z")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?\Z")
_STRING_START = re.compile(r"[A-Za-z]|[0-9][^ ]* ")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_FLOW_CHARS = set("[]{},&*!|>'\"%@`#")


def plain_front_matter(text: str) -> dict[str, Any] | None:
    """The front matter as yaml.safe_load reads it, or None when it is not in the plain subset."""
    meta: dict[str, Any] = {}
    block: dict[str, Any] | None = None
    for line in text.split("\n"):
        nested = line.startswith("  ")
        if nested and block is None or line.startswith("   ") or line.startswith(" ") and not nested:
            return None
        match = _LINE.match(line[2:] if nested else line)
        if match is None:
            return None
        key, raw = match.group(1), match.group(2)
        target = block if nested else meta
        assert target is not None
        if key in target:
            return None  # yaml would keep the last; a duplicate is worth its full reading
        if raw is None or not raw.strip():
            if nested or raw:
                return None
            block = target[key] = {}
            continue
        block = None if not nested else block
        value = _scalar(raw) if not raw.startswith("[") else _flow_list(raw)
        if value is _NOT_PLAIN:
            return None
        target[key] = value
    if any(value == {} for value in meta.values()):
        return None  # `params:` with nothing under it is null in YAML
    return meta


_NOT_PLAIN = object()


def _scalar(raw: str) -> Any:
    if raw != raw.strip():
        return _NOT_PLAIN
    if raw[:1].isascii() and raw[:1].isalpha():
        # Most values (codes, names, summaries): no number, quote or timestamp begins with a letter.
        if raw in ("true", "false"):
            return raw == "true"
        if raw.lower() in _YAML_WORDS or ": " in raw or " #" in raw or raw.endswith(":"):
            return _NOT_PLAIN
        return raw
    if _INT.match(raw):
        return int(raw)
    if _FLOAT.match(raw):
        return float(raw)
    if raw in ("true", "false"):
        return raw == "true"
    if raw.startswith('"'):
        inner = raw[1:-1]
        return inner if len(raw) > 1 and raw.endswith('"') and '"' not in inner and "\\" not in inner else _NOT_PLAIN
    if (not _STRING_START.match(raw) or raw.lower() in _YAML_WORDS or _TIMESTAMP.match(raw) or ": " in raw
            or " #" in raw or raw.endswith(":") or _FLOW_CHARS & set(raw[:1])):
        return _NOT_PLAIN
    return raw


def _flow_list(raw: str) -> Any:
    if not raw.endswith("]") or "[" in raw[1:] or "]" in raw[:-1]:
        return _NOT_PLAIN
    items = [_scalar(item.strip()) for item in raw[1:-1].split(",")]
    if any(item is _NOT_PLAIN or not isinstance(item, (int, float)) for item in items):
        return _NOT_PLAIN  # numbers only: a string in a flow list has its own quoting rules
    return items


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
    directory = str(rules_dir())
    try:  # sorted(rules_dir().glob("*.md")), in names: one folder, so the same order
        with os.scandir(directory) as entries:
            names = sorted(entry.name for entry in entries if entry.name.endswith(".md"))
    except OSError:
        names = []  # as glob: no folder, no rules
    for name in names:
        source = os.path.join(directory, name)
        rule = _parse_rule(_read_text(source), name, source)
        if not name.startswith(f"{rule.code}-{rule.name}"):
            raise RuleError(f"{name}: file name must be {rule.code}-{rule.name}.md")
        if rule.code in rules:
            raise RuleError(f"{name}: duplicate code {rule.code}")
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
