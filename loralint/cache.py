"""A content-hash cache of extraction results, as ruff keeps one: an unchanged file is never
parsed twice. Entries are keyed by the file's bytes, its reported path and loralint's version,
so any change to either misses the cache. A cache that cannot be written is simply not used."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from loralint import __version__
from loralint.sites import FileResult

_FORMAT = 1  # bump when the pickled data model changes


def _code_fingerprint() -> str:
    """Changes whenever the extraction code changes (an edited checkout, not only a new version)."""
    package = Path(__file__).parent
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted([package / "sites.py", package / "peft_fields.py", *(package / "extract").glob("*.py")]):
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


class ExtractionCache:
    def __init__(self, root: Path) -> None:
        self.directory = root / ".loralint_cache" / f"{__version__}-{_FORMAT}-{_code_fingerprint()}"
        self.enabled = True

    def _prune_stale(self) -> None:
        """Entries written by another loralint version can never be read again."""
        import shutil

        for sibling in self.directory.parent.iterdir():
            if sibling.is_dir() and sibling != self.directory:
                shutil.rmtree(sibling, ignore_errors=True)

    def key(self, display: str, fmt: str, data: bytes) -> str:
        digest = hashlib.blake2b(data, digest_size=20)
        digest.update(f"\0{fmt}\0{display}".encode())
        return digest.hexdigest()

    def get(self, key: str) -> FileResult | None:
        if not self.enabled:
            return None
        try:
            with open(self.directory / key[:2] / key, "rb") as handle:
                result = pickle.load(handle)
        except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError):
            return None
        return result if isinstance(result, FileResult) else None

    def put(self, key: str, result: FileResult) -> None:
        if not self.enabled:
            return
        target = self.directory / key[:2]
        try:
            if not self.directory.parent.exists():
                self.directory.parent.mkdir(parents=True)
                (self.directory.parent / ".gitignore").write_text("# created by loralint\n*\n")
            if not self.directory.exists():
                self._prune_stale()
            target.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target)
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, target / key)
        except OSError:
            self.enabled = False  # read-only checkout, full disk: run without the cache
