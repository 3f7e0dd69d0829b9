"""The pre-commit hooks, driven through the real `pre-commit` program and real `git commit`s.

`test_commit_*` run offline: a `repo: local` configuration built from this repository's
`.pre-commit-hooks.yaml` (same entry, file types, serial mode and stages), with `language: system`
so the hook runs the `loralint` installed next to this Python instead of building a virtualenv.
`pre-commit try-repo` (and any `language: python` hook) pip-installs the hook repository with its
dependencies (libcst, pydantic, ...) and so needs a package index; that end-to-end install runs in
`test_hook_installs_from_the_repository` when LORALINT_TEST_PRECOMMIT_INSTALL=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO
from helpers_reports import BAD, CLEAN, SETTINGS, git, git_env, have_git

MANIFEST = REPO / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.skipif(not have_git(), reason="git is not installed"),
    pytest.mark.skipif(
        subprocess.run([sys.executable, "-c", "import pre_commit"], capture_output=True, check=False).returncode != 0,
        reason="pre-commit is not installed (pip install 'loralint[test]')",
    ),
]


def manifest() -> dict[str, dict]:
    return {hook["id"]: hook for hook in yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))}


def env_for(root: Path) -> dict[str, str]:
    """git without the user's configuration, pre-commit's cache beside `root`, this loralint first on PATH."""
    env = git_env(root)
    env["PRE_COMMIT_HOME"] = str(root.parent / f"{root.name}-pre-commit-home")
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])  # the loralint under test
    env.pop("LORALINT_OUTPUT_FORMAT", None)
    return env


def pre_commit(root: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args], cwd=root, env=env or env_for(root),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_manifest_is_valid_and_declares_both_hooks(tmp_path):
    result = pre_commit(tmp_path, "validate-manifest", str(MANIFEST))
    assert result.returncode == 0, result.stdout + result.stderr
    hooks = manifest()
    assert hooks["loralint"]["entry"] == "loralint check --force-exclude"
    assert hooks["loralint"]["language"] == "python"
    assert hooks["loralint"]["types_or"] == ["python", "yaml", "json", "jupyter"]
    assert hooks["loralint"]["require_serial"] is True
    assert hooks["loralint-verify"]["entry"] == "loralint check --verify --force-exclude"
    assert hooks["loralint-verify"]["language"] == "system"
    assert hooks["loralint-verify"]["stages"] == ["manual"]
    assert hooks["loralint-verify"]["types_or"] == ["python", "yaml", "json", "jupyter"]


def test_installing_the_hook_does_not_pull_torch():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    heavy = {"torch", "transformers", "peft", "accelerate", "bitsandbytes"}
    names = {Requirement(dep).name.lower() for dep in project["dependencies"]}
    assert not names & heavy, f"`pip install loralint` (what the hook installs) would pull {sorted(names & heavy)}"


@pytest.fixture
def consumer(tmp_path):
    """A git repository whose .pre-commit-config.yaml runs this repository's hooks locally."""
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    hooks = []
    for hook in manifest().values():
        local = {k: v for k, v in hook.items() if k not in ("description", "minimum_pre_commit_version")}
        local["language"] = "system"
        hooks.append(local)
    (root / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]}, sort_keys=False), encoding="utf-8"
    )
    (root / "pyproject.toml").write_text(SETTINGS.replace("[tool.loralint]\n", '[tool.loralint]\nexclude = ["legacy/*"]\n'),
                                         encoding="utf-8")
    installed = pre_commit(root, "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return root


def commit(root: Path, *files: str) -> subprocess.CompletedProcess:
    git(root, "add", *files)
    return git(root, "commit", "-m", "change", env=env_for(root), check=False)


def commits(root: Path) -> int:
    result = git(root, "rev-list", "--count", "HEAD", check=False)
    return int(result.stdout.strip()) if result.returncode == 0 else 0


def test_commit_with_a_clean_config_passes(consumer):
    (consumer / "train.py").write_text(CLEAN, encoding="utf-8")
    (consumer / "notes.txt").write_text("LoraConfig(r=64, lora_aplha=3)\n", encoding="utf-8")  # not a python/yaml/json file
    result = commit(consumer, ".")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "loralint" in output and "Passed" in output
    assert "verify with PEFT" not in output  # the manual stage does not run on commit
    assert commits(consumer) == 1


def test_commit_with_a_bad_config_fails_and_prints_the_finding(consumer):
    first = commit(consumer, "pyproject.toml", ".pre-commit-config.yaml")
    assert first.returncode == 0, first.stdout + first.stderr
    (consumer / "train.py").write_text(BAD, encoding="utf-8")
    (consumer / "legacy").mkdir()
    (consumer / "legacy" / "old.py").write_text(BAD, encoding="utf-8")  # excluded in the settings
    result = commit(consumer, ".")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Failed" in output
    assert "train.py:3:54: LORA001 [error] lora_aplha" in output
    assert "train.py:3:38: LORA101 [warning]" in output
    # pre-commit names legacy/old.py explicitly; --force-exclude still honours the settings' exclude.
    assert "legacy/old.py" not in output
    assert commits(consumer) == 1  # the commit did not happen

    (consumer / "train.py").write_text(CLEAN, encoding="utf-8")
    shutil.rmtree(consumer / "legacy")
    fixed = commit(consumer, "-A", ".")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert commits(consumer) == 2


def test_the_verify_hook_runs_only_on_request(consumer):
    (consumer / "train.py").write_text(CLEAN, encoding="utf-8")
    git(consumer, "add", ".")
    (consumer / "notes.txt").write_text("nothing to lint\n", encoding="utf-8")
    listed = pre_commit(consumer, "run", "--hook-stage", "manual", "loralint-verify", "--files", "notes.txt")
    # No Python/YAML/JSON file given: the hook is selected for the manual stage but has nothing to check.
    assert "verify with PEFT" in listed.stdout and "Skipped" in listed.stdout, listed.stdout + listed.stderr
    # A file the settings exclude stays excluded when pre-commit names it (--force-exclude).
    (consumer / "legacy").mkdir()
    (consumer / "legacy" / "old.py").write_text(BAD, encoding="utf-8")
    git(consumer, "add", ".")
    excluded = pre_commit(consumer, "run", "--hook-stage", "manual", "loralint-verify", "--files", "legacy/old.py")
    assert excluded.returncode == 0 and "LORA001" not in excluded.stdout, excluded.stdout + excluded.stderr


# --- the real `language: python` install (needs a package index) ------------------------------

def _hook_repository(dest: Path) -> str:
    """This checkout's package files as a committed git repository; returns the commit."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".loralint_cache")
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("loralint", "rules"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "hooks")
    return git(dest, "rev-parse", "HEAD").stdout.strip()


@pytest.mark.skipif(
    os.environ.get("LORALINT_TEST_PRECOMMIT_INSTALL") != "1",
    reason="pip-installs the hook from the repository (needs a package index); set LORALINT_TEST_PRECOMMIT_INSTALL=1",
)
def test_hook_installs_from_the_repository(tmp_path):
    rev = _hook_repository(tmp_path / "hooks")
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": str(tmp_path / "hooks"), "rev": rev, "hooks": [{"id": "loralint"}]}]}),
        encoding="utf-8",
    )
    (root / "pyproject.toml").write_text(SETTINGS, encoding="utf-8")
    (root / "train.py").write_text(BAD, encoding="utf-8")
    git(root, "add", ".")
    env = env_for(root)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != BIN)  # no system loralint
    result = pre_commit(root, "run", "--files", "train.py", env=env, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "train.py:3:54: LORA001 [error]" in output
    [env_dir] = list(Path(env["PRE_COMMIT_HOME"]).glob("repo*/py_env-*"))
    installed = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                               capture_output=True, text=True, timeout=120, check=False).stdout.lower()
    assert "loralint==" in installed
    assert "torch==" not in installed and "transformers==" not in installed and "peft==" not in installed
