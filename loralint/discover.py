"""discover: the files a run checks.

Walks the given paths (not following directory symlinks, so a symlink loop cannot trap it),
honours .gitignore files, the settings' exclude/include globs, and skips virtual environments,
VCS and build directories. Files named explicitly on the command line are always checked (as ruff
does), unless `force_exclude` asks to apply the excludes to them too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from loralint.extract import file_format

DEFAULT_EXCLUDED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".loralint_cache",
        ".ipynb_checkpoints",
        "site-packages",
        "build",
        "dist",
        ".eggs",
        "wandb",
    }
)


@dataclass(slots=True)
class SourceFile:
    path: Path  # filesystem path
    display: str  # as reported: relative where the input was relative
    fmt: str
    explicit: bool = False


@dataclass(slots=True)
class Discovery:
    files: list[SourceFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # skipped explicit paths, unreadable directories


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """gitignore-style glob → regex over a '/'-separated relative path.

    `*` and `?` stay within a segment, `**` crosses segments, a pattern without '/' (other than a
    trailing one) matches at any depth, a leading '/' anchors it.
    """
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    prefix = "" if anchored else "(?:.*/)?"
    # A match on a directory covers everything below it.
    return re.compile(f"^{prefix}{''.join(out)}(?:/.*)?$")


class GitIgnore:
    """The rules of one .gitignore file, relative to its directory."""

    def __init__(self, base: Path, lines: list[str]) -> None:
        self.base = os.path.abspath(base)
        self.rules: list[tuple[re.Pattern[str], bool, bool]] = []  # (regex, negated, dir_only)
        for raw in lines:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:]
            if line.startswith("\\"):
                line = line[1:]
            dir_only = line.endswith("/")
            self.rules.append((glob_to_regex(line), negated, dir_only))

    def verdict(self, rel: str, is_dir: bool) -> bool | None:
        """True ignored, False re-included, None no opinion. Last matching rule wins."""
        result = None
        for regex, negated, dir_only in self.rules:
            # Files below an ignored directory are never reached: the walk prunes the directory.
            if dir_only and not is_dir:
                continue
            if regex.match(rel):
                result = not negated
        return result


def _read_gitignore(directory: Path) -> GitIgnore | None:
    path = directory / ".gitignore"
    try:
        return GitIgnore(directory, path.read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError:
        return None


class Matcher:
    """Settings-level include/exclude globs, relative to the settings root."""

    def __init__(self, root: Path, exclude: list[str], include: list[str]) -> None:
        self.root = root
        self.exclude = [glob_to_regex(p) for p in exclude]
        self.include = [glob_to_regex(p) for p in include]

    def rel(self, path: Path) -> str | None:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return None

    def excluded(self, path: Path) -> bool:
        rel = self.rel(path)
        candidates = [rel] if rel else []
        candidates.append(path.as_posix())
        return any(r.match(c) for r in self.exclude for c in candidates)

    def included(self, path: Path) -> bool:
        if not self.include:
            return True
        rel = self.rel(path) or path.as_posix()
        return any(r.match(rel) for r in self.include)


def _display(path: Path, given: str, given_path: Path) -> str:
    """Paths are reported as given on the command line: relative stays relative."""
    if path == given_path:
        return given
    rel = path.relative_to(given_path).as_posix()
    if given in (".", "./"):
        return rel
    return f"{given.rstrip('/')}/{rel}"


def discover(
    paths: list[str],
    matcher: Matcher,
    respect_gitignore: bool = True,
    force_exclude: bool = False,
) -> Discovery:
    found = Discovery()
    seen: set[Path] = set()

    def add(source: SourceFile) -> None:
        key = source.path.resolve()
        if key not in seen:
            seen.add(key)
            found.files.append(source)

    for given in paths:
        given_path = Path(given)
        if not given_path.exists() and not given_path.is_symlink():
            found.missing.append(given)
            continue
        if given_path.is_file() or (given_path.exists() and not given_path.is_dir()):
            fmt = file_format(given_path)
            if fmt is None:
                found.notes.append(f"{given}: not a Python, YAML or JSON file; skipped")
            elif force_exclude and matcher.excluded(given_path):
                continue
            else:
                add(SourceFile(given_path, given, fmt, explicit=True))
            continue
        if given_path.is_symlink() and not given_path.exists():
            found.notes.append(f"{given}: broken symbolic link; skipped")
            continue
        _walk(given, given_path, matcher, respect_gitignore, found, add)
    found.files.sort(key=lambda f: f.display)
    return found


def _walk(given, root: Path, matcher: Matcher, respect_gitignore: bool, found: Discovery, add) -> None:
    ignores: dict[Path, list[GitIgnore]] = {}
    if respect_gitignore:
        # .gitignore files above the walked directory, up to the repository root, apply too.
        inherited: list[GitIgnore] = []
        in_repository = False
        for parent in reversed(Path(os.path.abspath(root)).parents):
            in_repository = in_repository or (parent / ".git").exists()
            gi = _read_gitignore(parent) if in_repository else None
            if gi:
                inherited.append(gi)
        ignores[root] = inherited

    def on_error(error: OSError) -> None:
        found.notes.append(f"{error.filename}: cannot list directory ({error.strerror}); skipped")

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        directory = Path(dirpath)
        active = ignores.get(directory, [])
        if respect_gitignore:
            own = _read_gitignore(directory)
            if own:
                active = [*active, own]
        kept = []
        for name in sorted(dirnames):
            child = directory / name
            if name in DEFAULT_EXCLUDED_DIRS or name.endswith(".egg-info"):
                continue
            if _ignored(child, True, active) or matcher.excluded(child):
                continue
            if child.is_symlink():
                continue  # never follow directory links: no loops, no escaping the tree
            ignores[child] = active
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            fmt = file_format(name)
            if fmt is None:
                continue
            path = directory / name
            if _ignored(path, False, active) or matcher.excluded(path) or not matcher.included(path):
                continue
            add(SourceFile(path, _display(path, given, root), fmt))


def _ignored(path: Path, is_dir: bool, active: list[GitIgnore]) -> bool:
    verdict = None
    absolute = os.path.abspath(path)
    for gi in active:
        rel = os.path.relpath(absolute, gi.base)
        if rel.startswith(".."):
            continue
        v = gi.verdict(rel.replace(os.sep, "/"), is_dir)
        if v is not None:
            verdict = v
    return bool(verdict)
