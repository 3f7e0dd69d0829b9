"""A content-hash cache of extraction results, as ruff keeps one: an unchanged file is never
parsed twice. Entries are keyed by the file's bytes, its reported path and loralint's code, so any
change to either misses the cache. A second kind of entry holds a file's checked diagnostics, keyed
also by the settings, the rules in force and the resolved models (CheckCache), so an
unchanged tree is not checked twice either. A cache that cannot be used safely is simply not used.

The cache lives in the checked tree (`<settings root>/.loralint_cache/`), which a stranger's
repository controls, so it trusts nothing it finds there:
- every path component is opened relative to its parent's descriptor with O_NOFOLLOW: nothing is
  read, written or deleted through a symbolic link, and nothing outside the cache directory is
  reached; a cache directory that is a link, not ours, or world-writable turns the cache off;
- entries are JSON (loralint.cache_format), never pickle, and carry a MAC: a keyed blake2b with a
  per-user key kept outside the tree (`$XDG_CACHE_HOME/loralint/key`, else `~/.cache/loralint/key`),
  so a planted, corrupt, truncated or foreign entry is a miss, never code and never a wrong result;
- loralint marks the directories it creates (CACHEDIR.TAG, and a token derived from the same key in
  each version directory) and prunes only real directories that carry its token.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys
import weakref
from functools import lru_cache
from pathlib import Path

# hashlib.blake2b is _blake2's, and hmac.compare_digest _operator's function under another name (OpenSSL's
# copy of it): importing hashlib or hmac loads OpenSSL (_hashlib), 3 ms of every start-up, for nothing here.
try:
    from _blake2 import blake2b
except ImportError:  # a Python built without its own blake2
    from hashlib import blake2b
try:
    from _operator import _compare_digest as compare_digest
except ImportError:
    from hmac import compare_digest  # what secrets.compare_digest is; secrets and shutil cost a start-up 4 ms

from loralint import __version__
from loralint.sites import Diagnostic, FileResult

_FORMAT = 5  # bump when the entry format changes (2: JSON + MAC instead of pickle; 3: shared frozensets;
#                4: a span's path written once for the spans after it; 5: a field's spans bare, "F")
_DIRNAME = ".loralint_cache"
_MARKER = ".loralint-cache-dir"
_HEADER = f"loralint-cache {_FORMAT}\n".encode()
_MAC_HEX = 64
MAX_ENTRY_BYTES = 16 * 1024 * 1024  # larger results are recomputed, not cached
_KEY_BYTES = 32
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by loralint.\n"
    b"# For information about cache directory tags see https://bford.info/cachedir/\n"
)
# Descriptor-relative calls are what make the walk immune to links; without them, no cache.
_SUPPORTED = bool(_NOFOLLOW and _DIRECTORY) and os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd \
    and os.rename in os.supports_dir_fd and os.unlink in os.supports_dir_fd


@lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """Changes whenever loralint's code or data changes (an edited checkout, not only a new version).
    Once a process: the extraction and check caches of one run share it."""
    package = str(Path(__file__).parent)
    parts: list[str] = []
    # Every module and data file of the package: extraction reads many modules (suppressions, limits, the
    # program model), and cached checks also depend on the knowledge base's JSON. Some 690 files: scandir's
    # entries (their stat, without a path built and joined for each) cost half of what os.walk's did, and
    # the text hashed is the same ("folder/name:size:mtime;" each, folders in os.walk's top-down order).
    _fingerprint_folder(package, ".", parts)
    return blake2b("".join(parts).encode(), digest_size=6).hexdigest()


def _fingerprint_folder(folder: str, relative: str, parts: list[str]) -> None:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return
    subfolders = []
    for entry in entries:
        try:
            is_folder = entry.is_dir()
        except OSError:
            is_folder = False
        if is_folder:
            if entry.name != "__pycache__" and not entry.is_symlink():  # os.walk does not follow links
                subfolders.append(entry)
        elif entry.name.endswith((".py", ".json")):
            try:
                info = entry.stat()
            except OSError:
                continue
            parts.append(f"{relative}/{entry.name}:{info.st_size}:{info.st_mtime_ns};")
    for entry in subfolders:
        _fingerprint_folder(entry.path, entry.name if relative == "." else f"{relative}/{entry.name}", parts)


def user_cache_dir() -> Path | None:
    """`$XDG_CACHE_HOME/loralint` (an absolute one, as the spec says), else `~/.cache/loralint`."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "loralint"
    try:
        return Path.home() / ".cache" / "loralint"
    except (RuntimeError, KeyError, OSError):  # no home directory
        return None


def _read_small_file(name: str | Path, dir_fd: int | None, limit: int) -> bytes | None:
    """The bytes of a regular file of ours (not a link, FIFO or device) of at most `limit` bytes."""
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size > limit:
            return None
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _write_new(name: str, data: bytes, dir_fd: int, mode: int = 0o644) -> None:
    """Create `name` in `dir_fd` (never through a link, never over an existing file) holding `data`."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _user_key() -> bytes | None:
    """The per-user MAC key, created on first use (mode 0600). None: no safe place for one."""
    directory = user_cache_dir()
    if directory is None:
        return None
    path = directory / "key"
    data = _read_small_file(path, None, _KEY_BYTES)
    if data is None:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            dir_fd = os.open(directory, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        except OSError:
            return None
        tmp = f".key.{os.getpid()}.{os.urandom(4).hex()}"
        try:
            _write_new(tmp, os.urandom(_KEY_BYTES), dir_fd, 0o600)  # as secrets.token_bytes
            try:
                os.link(tmp, "key", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except FileExistsError:
                pass  # another loralint made it first: use theirs
            finally:
                os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            return None
        finally:
            os.close(dir_fd)
        data = _read_small_file(path, None, _KEY_BYTES)
    if data is None or len(data) != _KEY_BYTES:
        return None
    try:
        if os.stat(path, follow_symlinks=False).st_mode & 0o077:
            return None  # others can read it: entries signed with it prove nothing
    except OSError:
        return None
    return data


def _open_dir(name: str, parent_fd: int) -> int | None:
    """A descriptor on the real directory `name` in `parent_fd` if it is ours and not world-writable."""
    try:
        fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return None
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or info.st_mode & stat.S_IWOTH:
        os.close(fd)
        return None
    return fd


class ExtractionCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"{__version__}-{_FORMAT}-{_code_fingerprint()}"
        self.directory = root / _DIRNAME / self.name
        self.enabled = _SUPPORTED
        self._key: bytes | None = None
        self._fds: dict[str, int] = {}  # "top", "version": descriptors of the cache's own directories
        self._finalizer = weakref.finalize(self, _close_all, self._fds)

    # -- the directories ------------------------------------------------------------------------

    def _token(self) -> bytes:
        assert self._key is not None
        return b"loralint cache directory\n" + blake2b(b"marker", key=self._key).hexdigest().encode() + b"\n"

    def _open(self, create: bool) -> bool:
        """Open (and with `create`, make) the cache directories; False when the cache cannot be used."""
        if not self.enabled:
            return False
        if "version" in self._fds:
            return True  # both directories exist and are ours: nothing left to create
        if create and not self._load_key():
            return False  # the version directory's marker is made from the key
        try:
            root_fd = os.open(self.root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        except OSError:
            self.enabled = False
            return False
        try:
            top = self._fds.get("top")
            if top is None:
                top = self._enter(root_fd, _DIRNAME, create, self._mark_top)
                if top is None:
                    return False
                self._fds["top"] = top
            version = self._fds.get("version")
            if version is None:
                version = self._enter(top, self.name, create, self._mark_version)
                if version is None:
                    return False
                self._fds["version"] = version
            return self._load_key()  # no key, no way to verify an entry
        finally:
            os.close(root_fd)

    def _load_key(self) -> bool:
        if self._key is None:
            self._key = _user_key()
            if self._key is None:
                self.enabled = False
        return self._key is not None

    def _enter(self, parent_fd: int, name: str, create: bool, mark) -> int | None:
        made = False
        if create:
            try:
                os.mkdir(name, 0o755, dir_fd=parent_fd)
                made = True
            except FileExistsError:
                pass
            except OSError:
                self.enabled = False  # read-only checkout, full disk: run without the cache
                return None
        fd = _open_dir(name, parent_fd)
        if fd is None:
            if create or not self._missing(name, parent_fd):
                self.enabled = False  # a link, a file, someone else's directory: not ours to use
            return None
        if made:
            try:
                mark(fd, parent_fd)
            except OSError:
                os.close(fd)
                self.enabled = False
                return None
        return fd

    @staticmethod
    def _missing(name: str, parent_fd: int) -> bool:
        try:
            os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return False

    def _mark_top(self, fd: int, parent_fd: int) -> None:
        _write_new("CACHEDIR.TAG", _CACHEDIR_TAG, fd)
        _write_new(".gitignore", b"# created by loralint\n*\n", fd)

    def _mark_version(self, fd: int, parent_fd: int) -> None:
        _write_new(_MARKER, self._token(), fd)
        self._prune_stale(parent_fd)

    def _prune_stale(self, top_fd: int) -> None:
        """Entries written by another loralint version can never be read again. Only directories
        that carry our token go; rmtree is given the parent's descriptor, so a link swapped in
        for the cache directory cannot redirect it, and it refuses a link as the tree itself."""
        import shutil

        if not shutil.rmtree.avoids_symlink_attacks:
            return
        try:
            with os.scandir(top_fd) as entries:
                names = [e.name for e in entries if e.name != self.name and e.is_dir(follow_symlinks=False)]
        except OSError:
            return
        token = self._token()
        for name in names:
            fd = _open_dir(name, top_fd)
            if fd is None:
                continue
            try:
                if _read_small_file(_MARKER, fd, len(token)) != token:
                    continue
            finally:
                os.close(fd)
            try:
                if sys.version_info >= (3, 11):
                    shutil.rmtree(name, dir_fd=top_fd)
            except OSError:
                pass

    # -- entries --------------------------------------------------------------------------------

    def key(self, display: str, fmt: str, data: bytes) -> str:
        digest = blake2b(data, digest_size=20)
        digest.update(f"\0{fmt}\0{display}".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    @staticmethod
    def check_key(content_key: str, context: bytes) -> str:
        """The key of a file's checked diagnostics: its extraction key (bytes, path, format) and `context`,
        everything else the checks saw (settings, rules, resolved models, sized data sets). A separate
        person of the hash: never equal to an extraction key."""
        digest = blake2b(context, digest_size=20, person=b"loralint-check")
        digest.update(content_key.encode("ascii"))
        return digest.hexdigest()

    def _mac(self, key: str, payload: bytes) -> bytes:
        assert self._key is not None
        mac = blake2b(_HEADER, key=self._key, digest_size=_MAC_HEX // 2)
        mac.update(key.encode("ascii") + b"\0")
        mac.update(payload)
        return mac.hexdigest().encode("ascii")

    def get(self, key: str) -> FileResult | None:
        """The cached result, or None for anything else: missing, corrupt, foreign, too big, planted."""
        payload = self.read(key)
        if payload is None:
            return None
        from loralint.cache_format import loads

        try:
            return loads(payload)
        except Exception:  # noqa: BLE001 - a verified entry this code cannot read: recompute, never fail
            return None

    def read(self, key: str) -> bytes | None:
        """An entry's payload once its MAC is verified; None for anything else."""
        if not self._open(create=False):
            return None
        try:
            sub = os.open(key[:2], os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=self._fds["version"])
        except OSError:
            return None
        try:
            data = _read_small_file(key, sub, MAX_ENTRY_BYTES)
        finally:
            os.close(sub)
        if data is None or not data.startswith(_HEADER):
            return None
        start = len(_HEADER)
        mac, newline, payload = data[start:start + _MAC_HEX], data[start + _MAC_HEX:start + _MAC_HEX + 1], data[start + _MAC_HEX + 1:]
        if newline != b"\n" or not compare_digest(mac, self._mac(key, payload)):
            return None
        return payload

    def put(self, key: str, result: FileResult) -> None:
        if not self.enabled:
            return
        from loralint.cache_format import dumps

        try:
            payload = dumps(result)
        except (ValueError, TypeError, RecursionError):
            return  # a value the format does not hold: this file is simply not cached
        self.write(key, payload)

    def write(self, key: str, payload: bytes) -> None:
        """Store `payload` under `key`, with its MAC; nothing when the cache cannot be used."""
        if not self.enabled:
            return
        if len(payload) + len(_HEADER) + _MAC_HEX + 1 > MAX_ENTRY_BYTES or not self._open(create=True):
            return
        version = self._fds["version"]
        try:
            try:
                os.mkdir(key[:2], 0o755, dir_fd=version)
            except FileExistsError:
                pass
            sub = os.open(key[:2], os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=version)
        except OSError:
            return  # something planted in the way of this one entry
        tmp = f".{key}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            _write_new(tmp, _HEADER + self._mac(key, payload) + b"\n" + payload, sub)
            os.replace(tmp, key, src_dir_fd=sub, dst_dir_fd=sub)  # replaces a planted link, never follows it
        except OSError:
            try:
                os.unlink(tmp, dir_fd=sub)
            except OSError:
                pass
            self.enabled = False  # full disk, quota: run without the cache
        finally:
            os.close(sub)

    def close(self) -> None:
        self._finalizer()


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


class CheckCache:
    """A file's checked diagnostics (after suppressions and per-file ignores), keyed by its extraction key and
    by everything else the checks read: the rules in force (severities, parameters, messages, selection), the
    dataset-size settings, and per site its resolved model (where it came from and its config.json; the module
    inventory and counts follow from those and loralint's code, which names the cache directory) and the size
    of its data set found after extraction. A site whose facts cannot be fingerprinted leaves its file
    uncached."""

    def __init__(self, settings, rules: dict, active: set[str], options) -> None:
        self._store = ExtractionCache(settings.root)
        rule_facts = [[r.code, r.name, r.severity, r.check, r.params, r.message, r.verify]
                      for _, r in sorted(rules.items())]
        source = settings.source.name if settings.source else None
        self._run = json.dumps([sorted(active), rule_facts, options.dataset_size, settings.dataset_size, source],
                               sort_keys=True, default=repr).encode()
        self._configs: dict[int, str] = {}  # id(config dict) → digest: resolutions of one model share it

    def key(self, result: FileResult, content_key: str | None, per_file: list) -> str | None:
        from loralint.cache_format import FormatError, fingerprint

        if content_key is None or not self._store.enabled or any(d.code == "LORA904" for d in result.diagnostics):
            return None  # an internal error while resolving is reported afresh, never replaced by an entry
        parts = [self._run, json.dumps(per_file, default=repr).encode()]
        try:
            # A loaded adapter's adapter_config.json is in the content key (dependencies.fold).
            for site in [*result.sites, *result.loaded]:
                # The site as extracted is in the content key; after extraction, loralint.datasets sets
                # hints.dataset_size (a local data file's size) and resolve sets the model.
                parts.append(fingerprint(site.hints.dataset_size))
                # loralint.launches sets these from an accelerate config after extraction
                training = site.hints.training
                if training is not None:
                    parts.append(fingerprint((training.deepspeed, training.ddp_signal, site.hints.fsdp)))
                parts.append(self._model(site.model).encode())
        except (FormatError, TypeError, ValueError, RecursionError):
            return None
        return self._store.check_key(content_key, b"\0".join(parts))

    def _model(self, resolution) -> str:
        if resolution is None:
            return "null"
        facts = []
        for item in dataclasses.fields(resolution):
            value = getattr(resolution, item.name)
            if item.name in ("info", "advice", "note", "limits"):
                # Computed from the rest, the site and loralint's code, by the analysis a cache hit skips
                # (SiteResolver's second step): the key must be the same before and after it.
                continue
            if item.name == "config" and value is not None:
                digest = self._configs.get(id(value))
                if digest is None:
                    text = json.dumps(value, sort_keys=True, default=repr)
                    digest = self._configs[id(value)] = blake2b(text.encode(), digest_size=16).hexdigest()
                value = digest
            facts.append(value)
        return json.dumps(facts, default=repr)

    def get(self, key: str) -> list[Diagnostic] | None:
        result = self._store.get(key)
        return None if result is None or result.sites else result.diagnostics

    def put(self, key: str, diagnostics: list[Diagnostic]) -> None:
        self._store.put(key, FileResult(path="", diagnostics=list(diagnostics)))


class CountCache:
    """The records counted in a local data file (loralint.datasets), keyed by the file's resolved path,
    size and modification time, the way it is counted and the byte bound: a warm run does not stream an
    unchanged data set again. A file that was refused or could not be read is not kept."""

    def __init__(self, root: Path) -> None:
        self._store = ExtractionCache(root)

    @staticmethod
    def key(path: str, size: int, mtime_ns: int, kind: str, limit: int) -> str:
        facts = json.dumps([path, size, mtime_ns, kind, limit]).encode()  # ensure_ascii: any path encodes
        return blake2b(facts, digest_size=20, person=b"loralint-count").hexdigest()

    def get(self, key: str) -> tuple[bool, tuple[int, str] | None]:
        """(found, value): value is (records, how), or None for a file known not to be countable."""
        payload = self._store.read(key)
        if payload is None:
            return False, None
        try:
            value = json.loads(payload)
        except ValueError:
            return False, None
        if value is None:
            return True, None
        if (isinstance(value, list) and len(value) == 2 and type(value[0]) is int and value[0] >= 0
                and isinstance(value[1], str)):
            return True, (value[0], value[1])
        return False, None

    def put(self, key: str, value: tuple[int, str] | None) -> None:
        self._store.write(key, json.dumps(None if value is None else list(value)).encode())
