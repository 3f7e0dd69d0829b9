"""The stat index: what a warm run needs to know about an unchanged file without reading it.

One signed entry of the extraction cache (loralint.cache: JSON with a MAC, never pickle, a planted or
foreign entry is a miss) per settings root, working directory and max-file-size, mapping each file's
display path to the filesystem path and format it was read as, its (size, mtime_ns, inode, ctime_ns),
and what reading it gave: its content key (ExtractionCache.key) or None when the prefilter refused it.
A file whose stat is the recorded one is neither read, prefiltered nor hashed (as ruff's cache trusts
mtimes); anything else (no record, any field different, a stat that fails) is read as before. The
content key then finds the file's cached result as before. A run that walks a folder whole forgets the
records under it of the files it did not find (deleted, renamed, excluded since); a run on part of a tree
keeps the others'. loralint's code is in the cache directory's
name, so an edited loralint starts from an empty index.

Racy files (git's "racy clean" problem): a file written again within the timestamp granularity of the
read that recorded it could keep its size and times. So the stat is taken before the file is read (a
change during the read then shows as a different stat next time), and a file whose mtime or ctime is
less than RACY_NS before the run began is not recorded at all: it is read again until it is older.
RACY_NS is 2 s, the coarsest granularity in common use (FAT; ext4/XFS/APFS stamp with a coarse clock
tick, HFS+ with whole seconds), so the choice costs nothing but re-reading files edited just now.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterable

from loralint.cache import ExtractionCache, blake2b  # blake2b without OpenSSL (see loralint/cache.py)

RACY_NS = 2_000_000_000
Stat = tuple[int, int, int, int]  # size, mtime_ns, inode, ctime_ns


def file_stat(path: str | os.PathLike[str]) -> Stat | None:
    """The stat the index compares, for a regular file (through links, as the file is read); None otherwise."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return (info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)


class StatIndex:
    """The index of one run: `known` answers from the last run's records, `record` notes this run's reads,
    `save` writes the records back (only when one changed)."""

    def __init__(self, cache: ExtractionCache, max_file_size: int) -> None:
        self._cache = cache
        # The working directory too: relative display and file paths name other files from elsewhere.
        facts = json.dumps([str(cache.root), os.getcwd(), max_file_size]).encode()  # ensure_ascii: any path encodes
        self._key = blake2b(facts, digest_size=20, person=b"loralint-stat").hexdigest()
        self._since = time.time_ns() - RACY_NS  # before any file of this run is stat'ed or read
        self._records = self._load()
        self._changed = False
        self._seen: set[str] = set()  # the display paths this run asked about

    def _load(self) -> dict[str, list]:
        payload = self._cache.read(self._key)
        if payload is None:
            return {}
        try:
            value = json.loads(payload)
        except ValueError:
            return {}
        return value if type(value) is dict else {}

    def known(self, display: str, path: str, fmt: str, facts: Stat | None) -> tuple[str | None] | None:
        """(content key or None for a file the prefilter refused) when the file is as recorded; else None."""
        self._seen.add(display)
        record = self._records.get(display)
        if facts is None or type(record) is not list or len(record) != 7:
            return None
        if record[0] != path or record[1] != fmt or tuple(record[2:6]) != facts:
            return None
        key = record[6]
        return (key,) if key is None or type(key) is str else None

    def record(self, display: str, path: str, fmt: str, facts: Stat | None, key: str | None) -> None:
        """Note what reading `display` gave; `facts` is its stat taken before the read."""
        if facts is None or facts[1] >= self._since or facts[3] >= self._since:
            if self._records.pop(display, None) is not None:  # racy (or not a regular file): read next time
                self._changed = True
            return
        entry = [path, fmt, *facts, key]
        if self._records.get(display) != entry:
            self._records[display] = entry
            self._changed = True

    def save(self, walked: Iterable[str] = ()) -> None:
        """Write the records back. `walked`: the display prefixes of the folders this run walked whole
        (discover.Discovery.walked); a record under one whose file this run did not see is dropped."""
        for prefix in walked:
            gone = [display for display in self._records if display not in self._seen and _under(display, prefix)]
            for display in gone:
                del self._records[display]
            self._changed = self._changed or bool(gone)
        if self._changed:
            self._cache.write(self._key, json.dumps(self._records, separators=(",", ":")).encode())
            self._changed = False


def _under(display: str, prefix: str) -> bool:
    # "" is the working directory walked: not a file named from above it or by an absolute path.
    return display.startswith(prefix) if prefix else not display.startswith(("/", "../"))
