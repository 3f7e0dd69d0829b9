"""A small project with known findings, shared by the SARIF, GitHub, LSP and pre-commit tests.

The settings pin which rules run and at what severity, so these tests check the formatters (one
error, one warning, one info finding on one line) whatever other rules come and go.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

BAD = 'from peft import LoraConfig\n\nconfig = LoraConfig(r=16, lora_alpha=96, bias="all", lora_aplha=3)\n'
BAD_LINE = BAD.splitlines()[2]
CLEAN = 'from peft import LoraConfig\n\nconfig = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")\n'

SETTINGS = textwrap.dedent(
    """
    [tool.loralint]
    select = ["LORA001", "LORA101", "LORA106", "LORA402", "LORA9"]

    [tool.loralint.severity]
    LORA001 = "error"
    LORA101 = "warning"
    LORA106 = "info"
    """
).lstrip()


def column(line: str, needle: str) -> int:
    """The 1-based column where `needle` starts on `line`."""
    index = line.index(needle)
    return index + 1


# (code, severity, first column, end column exclusive) of the findings on BAD's line 3
EXPECTED = [
    ("LORA101", "warning", column(BAD_LINE, "96"), column(BAD_LINE, "96") + 2),
    ("LORA106", "info", column(BAD_LINE, '"all"'), column(BAD_LINE, '"all"') + 5),
    ("LORA001", "error", column(BAD_LINE, "lora_aplha"), column(BAD_LINE, "lora_aplha") + 10),
]


def make_project(root: Path, files: dict[str, str], settings: str = SETTINGS) -> Path:
    """Write `files` (relative path → text) and a pyproject.toml with `settings` under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(settings, encoding="utf-8")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def git_env(home: Path) -> dict[str, str]:
    """An environment where git ignores the user's configuration and has an identity."""
    env = dict(os.environ)
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="loralint tests",
        GIT_AUTHOR_EMAIL="tests@loralint.invalid",
        GIT_COMMITTER_NAME="loralint tests",
        GIT_COMMITTER_EMAIL="tests@loralint.invalid",
        HOME=str(home),
    )
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(name, None)
    return env


def git(root: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=root, env=env or git_env(root), capture_output=True, text=True, check=check, timeout=120
    )


def git_init(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")


def have_git() -> bool:
    return shutil.which("git") is not None
