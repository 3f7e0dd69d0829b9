"""Files besides the checked one that its extraction read: a loaded adapter's saved adapter_config.json
(extract/loaded.py). A result that read one is cached with each path tried and what was found there (a
digest of its bytes, or None: missing or unreadable), and served from the cache only while every one of
them still reads the same (engine.iter_extracted). Reads are bounded like the extraction's own.
"""

from __future__ import annotations

import json
import os

try:
    from _blake2 import blake2b  # hashlib's own, without loading OpenSSL (see loralint/cache.py)
except ImportError:
    from hashlib import blake2b

MAX_DEPENDENCY_BYTES = 1 << 20  # an adapter_config.json is a few KB

Dependency = tuple[str, str | None]  # (absolute path, digest of its bytes or None when it could not be read)


def read_dependency(path: str, found: list[Dependency]) -> bytes:
    """The bytes of `path` (at most MAX_DEPENDENCY_BYTES), recorded in `found` whether read or not.
    Raises OSError (InputRefused) or ValueError like safe_read.read_limited."""
    from loralint.safe_read import read_limited

    where = os.path.abspath(path)  # a relative path is the working directory's: the cache may be shared
    try:
        data = read_limited(path, MAX_DEPENDENCY_BYTES)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        found.append((where, None))
        raise
    found.append((where, _digest(data)))
    return data


def _digest(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


def unchanged(dependencies: list[Dependency]) -> bool:
    """Every recorded file reads as it did (a missing one still missing)."""
    from loralint.safe_read import read_limited

    for path, digest in dependencies:
        try:
            now: str | None = _digest(read_limited(path, MAX_DEPENDENCY_BYTES))
        except (OSError, ValueError):
            now = None
        if now != digest:
            return False
    return True


def fold(content_key: str, dependencies: list[Dependency]) -> str:
    """A content key that also names the files read besides the checked one (the check cache's key)."""
    if not dependencies:
        return content_key
    digest = blake2b(json.dumps(dependencies).encode(), digest_size=20, person=b"loralint-deps")
    digest.update(content_key.encode("ascii"))
    return digest.hexdigest()
