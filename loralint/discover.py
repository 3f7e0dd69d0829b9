"""discover: the files a run checks.

Walks the given paths (not following directory symlinks, so a symlink loop cannot trap it),
honours .gitignore files, the settings' exclude/include globs, and skips virtual environments,
VCS and build directories. Files named explicitly on the command line are always checked (as ruff
does), unless `force_exclude` asks to apply the excludes to them too.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from loralint.extract import file_format
from loralint.globs import Glob, GlobError, compile_glob
from loralint.safe_read import InputRefused, read_text_limited

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


@dataclass(slots=True, repr=False, eq=False)
class SourceFile:
    """A file to check: where it is, how it is reported, and its format."""

    path: str  # filesystem path, as str(Path) writes it (Path objects for a tree's thousand files cost a warm run)
    display: str  # as reported: relative where the input was relative
    fmt: str
    explicit: bool = False


@dataclass(slots=True, repr=False, eq=False)
class Discovery:
    """What discovery found: the files, the explicit paths that do not exist, and notes on what it skipped."""

    files: list[SourceFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # skipped explicit paths, unreadable directories
    # The display prefix of each folder walked whole ("" for "."): a file under one that is not among `files`
    # is gone or excluded, so the stat index forgets it (loralint/stat_index.py).
    walked: list[str] = field(default_factory=list)


def glob_to_regex(pattern: str) -> Glob:
    """A gitignore-style glob, compiled to run in linear time (see loralint.globs). Raises GlobError."""
    return compile_glob(pattern)


# A .gitignore is read from the checked tree: past this many patterns the rest are not used.
MAX_GITIGNORE_PATTERNS = 10_000


class GitIgnore:
    """The rules of one .gitignore file, relative to its directory."""

    def __init__(
        self, base: Path, lines: list[str], notes: list[str] | None = None, source: str = ".gitignore"
    ) -> None:
        self.base = os.path.abspath(base)
        self.prefix = self.base if self.base.endswith(os.sep) else self.base + os.sep
        self.rules: list[tuple[Glob, bool, bool]] = []  # (glob, negated, dir_only)
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            if len(self.rules) >= MAX_GITIGNORE_PATTERNS:
                if notes is not None:
                    notes.append(
                        f"{source}: more than {MAX_GITIGNORE_PATTERNS} patterns; the rest are not used"
                    )
                break
            negated = line.startswith("!")
            if negated:
                line = line[1:]
            line = line.removeprefix("\\")
            dir_only = line.endswith("/")
            try:
                self.rules.append((compile_glob(line), negated, dir_only))
            except GlobError as exc:
                if notes is not None:
                    notes.append(f"{source}:{number}: pattern {_shown(line)} is invalid ({exc}); ignored")

        # Without a negated rule the verdict is whether any rule matches: then the whole-segment and
        # `*.ext` rules are looked up at once (for files, and the extra ones for directories).
        self._any = not any(negated for _, negated, _ in self.rules)
        self._names: tuple[set[str], set[str]] = (set(), set())
        suffixes: tuple[list[str], list[str]] = ([], [])
        self._others: tuple[list[Glob], list[Glob]] = ([], [])
        for glob, _, dir_only in self.rules:
            kind = 1 if dir_only else 0
            if glob.shape == "segment":
                self._names[kind].add(glob.text)
            elif glob.shape == "suffix":
                suffixes[kind].append(glob.text)
            else:
                self._others[kind].append(glob)
        self._suffixes = (tuple(suffixes[0]), tuple(suffixes[1]))

    def folder(self, rel_dir: str) -> tuple[str, bool, bool]:
        """What `verdict_in` needs for the names in the folder `rel_dir` ("" for this file's own, else ending
        in '/'): it, and whether a segment of it hits a whole-segment or `*.ext` rule (files', directories')."""
        if not self._any or not rel_dir:
            return rel_dir, False, False
        segments = rel_dir[:-1].split("/")
        hits = [any(seg in names or (suffixes and seg.endswith(suffixes)) for seg in segments)
                for names, suffixes in zip(self._names, self._suffixes)]
        return rel_dir, hits[0], hits[0] or hits[1]

    def verdict_in(self, folder: tuple[str, bool, bool], name: str, is_dir: bool) -> bool | None:
        """`verdict(rel_dir + name, is_dir)`, the folder's segments tested once (`folder(rel_dir)`) for all its names."""
        rel_dir, files_hit, dirs_hit = folder
        if not self._any:
            return self.verdict(rel_dir + name, is_dir)
        if dirs_hit if is_dir else files_hit:
            return True
        rel = rel_dir + name
        for kind in ((0, 1) if is_dir else (0,)):
            names, suffixes = self._names[kind], self._suffixes[kind]
            if name in names or (suffixes and name.endswith(suffixes)) or any(glob.match(rel) for glob in self._others[kind]):
                return True
        return None

    def verdict(self, rel: str, is_dir: bool) -> bool | None:
        """True ignored, False re-included, None no opinion. Last matching rule wins."""
        if self._any:
            segments = rel.split("/")
            for kind in ((0, 1) if is_dir else (0,)):  # dir-only rules: files below are pruned with their directory
                names, suffixes = self._names[kind], self._suffixes[kind]
                if any(seg in names or (suffixes and seg.endswith(suffixes)) for seg in segments) \
                        or any(glob.match(rel) for glob in self._others[kind]):
                    return True
            return None
        result = None
        for glob, negated, dir_only in self.rules:
            # Files below an ignored directory are never reached: the walk prunes the directory.
            if dir_only and not is_dir:
                continue
            if glob.match(rel):
                result = not negated
        return result


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 60 else pattern[:57] + "...")


def _read_gitignore(directory: Path, notes: list[str]) -> GitIgnore | None:
    path = directory / ".gitignore"
    try:
        text = read_text_limited(path)
    except InputRefused as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            notes.append(f"{path}: {exc}; not used")
        return None
    return GitIgnore(directory, text.splitlines(), notes, str(path))


class Matcher:
    """Settings-level include/exclude globs, relative to the settings root. An invalid glob is a
    note (in `notes`) and matches nothing."""

    def __init__(self, root: Path, exclude: list[str], include: list[str]) -> None:
        self.root = root
        self.notes: list[str] = []
        self.exclude = self._compile(exclude, "exclude")
        self.include = self._compile(include, "include")
        self._include_given = bool(include)

    def _compile(self, patterns: list[str], setting: str) -> list[Glob]:
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(compile_glob(pattern))
            except GlobError as exc:
                self.notes.append(f"{setting} pattern {_shown(pattern)} is invalid ({exc}); ignored")
        return compiled

    def rel(self, path: Path) -> str | None:
        try:
            # realpath, not Path.resolve: a symbolic-link loop must not raise here.
            return Path(os.path.realpath(path)).relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return None

    def excluded(self, path: Path) -> bool:
        if not self.exclude:
            return False  # no realpath (a system call a path component) for nothing to match
        rel = self.rel(path)
        candidates = [rel] if rel else []
        candidates.append(path.as_posix())
        return any(r.match(c) for r in self.exclude for c in candidates)

    def keeps(self, path: str) -> bool:
        """Neither excluded nor left out by include; a Path made only when there are globs to match."""
        if not self.exclude and not self._include_given:
            return True
        return not self.excluded(Path(path)) and self.included(Path(path))

    def included(self, path: Path) -> bool:
        if not self._include_given:
            return True
        rel = self.rel(path) or path.as_posix()
        return any(r.match(rel) for r in self.include)


def discover(
    paths: list[str],
    matcher: Matcher,
    respect_gitignore: bool = True,
    force_exclude: bool = False,
) -> Discovery:
    found = Discovery()
    seen: set[str] = set()  # real paths: normal and absolute (realpath's, or a real folder's joined with a name)

    def add(source: SourceFile, real: str | None = None) -> None:
        # not Path.resolve: a symbolic-link loop raises there. `real`: the walk's own, one realpath a directory
        key = real if real is not None else os.path.realpath(source.path)
        if key not in seen:
            seen.add(key)
            found.files.append(source)

    found.notes.extend(matcher.notes)
    for given in paths:
        given_path = Path(given)
        try:
            is_dir = stat.S_ISDIR(os.stat(given_path).st_mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                # Named, so reported: with a checked extension the reader says LORA905 for it.
                _add_explicit(given, given_path, "symbolic link loop", matcher, force_exclude, found, add)
            elif os.path.islink(given_path):
                found.notes.append(f"{given}: broken symbolic link; skipped")
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                found.missing.append(given)
            else:  # permission denied on the way, ...: the reader reports it (LORA902) when the type is checked
                _add_explicit(given, given_path, f"cannot read ({exc.strerror})", matcher, force_exclude, found, add)
            continue
        if is_dir:
            _walk(given, given_path, matcher, respect_gitignore, found, add)
            found.walked.append(_display_prefix(given))
        else:
            # A regular file, or a FIFO, device or socket: never opened here; the reader refuses those.
            _add_explicit(
                given, given_path, "not a Python, YAML or JSON file", matcher, force_exclude, found, add
            )
    found.files.sort(key=lambda f: f.display)
    return found


def _add_explicit(
    given: str, path: Path, unknown: str, matcher: Matcher, force_exclude: bool, found: Discovery, add
) -> None:
    fmt = file_format(path)
    if fmt is None:
        found.notes.append(f"{given}: {unknown}; skipped")
    elif not (force_exclude and matcher.excluded(path)):
        add(SourceFile(str(path), given, fmt, explicit=True))


def _display_prefix(given: str) -> str:
    """What the display paths of the files found by walking the folder `given` begin with."""
    return given.rstrip("/") + "/" if given not in (".", "./") else ""


def _walk(given, root: Path, matcher: Matcher, respect_gitignore: bool, found: Discovery, add) -> None:
    inherited: list[GitIgnore] = []
    if respect_gitignore:
        # .gitignore files above the walked directory, up to the repository root, apply too.
        in_repository = False
        for parent in reversed(Path(os.path.abspath(root)).parents):
            in_repository = in_repository or (parent / ".git").exists()
            gi = _read_gitignore(parent, found.notes) if in_repository else None
            if gi:
                inherited.append(gi)

    def on_error(error: OSError) -> None:
        found.notes.append(f"{error.filename}: cannot list directory ({error.strerror}); skipped")

    # os.walk's order (top-down, depth first, here each folder's names sorted) with its directory entries
    # kept: whether a name is a link comes from the listing (no lstat a name), and a folder's real path is
    # its parent's and its name (folder links are never entered), one realpath in all instead of one a folder.
    given_dir = _display_prefix(given)
    # Each folder: as walked, real, absolute (what _ignored matches), relative to `root`, its .gitignores.
    stack: list[tuple[str, str, str, str, list[GitIgnore]]] = [
        (os.fspath(root), os.path.realpath(root), os.path.abspath(root), "", inherited)]
    while stack:
        dirpath, real_dir, abs_dir, rel_dir, active = stack.pop()
        listing = _scan(dirpath, on_error)
        if listing is None:
            continue
        dir_entries, file_entries = listing
        directory = Path(dirpath)
        # Only where the listing has one: no failed open in every folder.
        if respect_gitignore and any(e.name == ".gitignore" for e in (*file_entries, *dir_entries)):
            own = _read_gitignore(directory, found.notes)
            if own:
                active = [*active, own]
        folders = _folders(abs_dir, active)
        # os.path.join(folder, name) for each name: the folder's part once (a listed name never holds a '/').
        walked, real_base, abs_base = _joinable(dirpath), _joinable(real_dir), _joinable(abs_dir)
        # str(directory / name) without a Path a file: the folder as Path writes it ("." joins as nothing).
        shown = str(directory)
        path_base = "" if shown == "." else _joinable(shown)
        kept = []
        for entry in sorted(dir_entries, key=_name):
            name = entry.name
            if name in DEFAULT_EXCLUDED_DIRS or name.endswith(".egg-info"):
                continue
            if _ignored_in(folders, name, True) or (matcher.exclude and matcher.excluded(directory / name)):
                continue
            if _is_link(entry):
                continue  # never follow directory links: no loops, no escaping the tree
            # the absolute one is os.path.abspath of the child: a listed name is never . or ..
            kept.append((walked + name, real_base + name, abs_base + name, f"{rel_dir}{name}/", active))
        stack.extend(reversed(kept))
        for entry in sorted(file_entries, key=_name):
            name = entry.name
            fmt = file_format(name)
            if fmt is None or _ignored_in(folders, name, False):
                continue
            path = path_base + name
            if not matcher.keeps(path):
                continue
            real = os.path.realpath(path) if _is_link(entry) else real_base + name
            add(SourceFile(path, f"{given_dir}{rel_dir}{name}", fmt), real)


def _name(entry: os.DirEntry) -> str:
    return entry.name


def _is_link(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _scan(top: str, on_error) -> tuple[list[os.DirEntry], list[os.DirEntry]] | None:
    """A folder's entries, folders (links to folders included, as os.walk counts them) and the rest;
    None, after `on_error`, when it cannot be listed (as os.walk skips it)."""
    dirs: list[os.DirEntry] = []
    files: list[os.DirEntry] = []
    try:
        with os.scandir(top) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                (dirs if is_dir else files).append(entry)
    except OSError as error:
        on_error(error)
        return None
    return dirs, files


def _joinable(folder: str) -> str:
    """`folder` such that `folder + name` is os.path.join(folder, name) for a name without a separator."""
    return folder if folder.endswith(os.sep) or not folder else folder + os.sep


def _folders(abs_dir: str, active: list[GitIgnore]) -> list[tuple[GitIgnore, tuple[str, bool, bool]]]:
    """The .gitignore files in `active` that can have a say on the names in the folder `abs_dir` (absolute,
    normal), each with the folder relative to it (`GitIgnore.folder`): the work shared by all its names.
    A relative path that starts with ".." (os.path.relpath's way up) is none of a .gitignore's business."""
    found = []
    for gi in active:
        if abs_dir == gi.base:
            rel_dir = ""
        elif abs_dir.startswith(gi.prefix):
            rel_dir = abs_dir[len(gi.prefix):].replace(os.sep, "/") + "/"
            if rel_dir.startswith(".."):
                continue  # its names' relative paths all start with it
        else:
            continue  # not below this .gitignore's directory
        found.append((gi, gi.folder(rel_dir)))
    return found


def _ignored_in(folders: list[tuple[GitIgnore, tuple[str, bool, bool]]], name: str, is_dir: bool) -> bool:
    """Whether the .gitignore files of `folders` (`_folders`) ignore the name in that folder: the last one with a
    verdict decides."""
    verdict = None
    for gi, folder in folders:
        if not folder[0] and name.startswith(".."):
            continue  # its relative path starts with ".." (see _folders)
        v = gi.verdict_in(folder, name, is_dir)
        if v is not None:
            verdict = v
    return bool(verdict)
