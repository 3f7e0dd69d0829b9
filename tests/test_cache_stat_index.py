"""The stat index (loralint/stat_index.py): a warm run reads no unchanged file, and any change to a file
(its bytes, its size, its inode, a time) makes the run read it again and report what it now holds."""

from __future__ import annotations

import os

import pytest
from helpers import run_cli

CFG = 'from peft import LoraConfig\nc = LoraConfig(r={r}, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'
PAST = 1_600_000_000 * 10**9  # an mtime long before the run: outside the racy window


@pytest.fixture
def reads(monkeypatch):
    """The display paths of the files a run reads (the engine's real reader, counted)."""
    from loralint import engine

    seen: list[str] = []
    real = engine.read_limited
    monkeypatch.setattr(engine, "read_limited", lambda path, *a: seen.append(os.path.basename(path)) or real(path, *a))
    return seen


@pytest.fixture
def no_racy_window(monkeypatch):
    """Files written by the test a moment ago count as old enough to be indexed (their ctime is now)."""
    monkeypatch.setattr("loralint.stat_index.RACY_NS", 0)


def _r(tmp_path, *args: str) -> list[int]:
    report = run_cli(["check", "--output-format", "json", *args, "."], cwd=tmp_path).json
    return sorted(c["fields"]["r"] for c in report["configs"])


def _old(path) -> None:
    os.utime(path, ns=(PAST, PAST))


def test_a_warm_run_reads_no_unchanged_file(write, tmp_path, reads, no_racy_window):
    _old(write("t.py", CFG.format(r=16)))
    _old(write("plain.py", "x = 1\n"))  # refused by the prefilter: remembered as such
    assert _r(tmp_path) == [16]
    assert sorted(reads) == ["plain.py", "t.py"]
    reads.clear()
    assert _r(tmp_path) == [16]
    assert reads == []


def test_an_edited_file_of_the_same_size_is_read_again(write, tmp_path, reads, no_racy_window):
    path = write("t.py", CFG.format(r=16))
    _old(path)
    assert _r(tmp_path) == [16]
    path.write_text(CFG.format(r=64))
    _old(path)  # the same size, the mtime put back as it was: the ctime still tells
    reads.clear()
    assert _r(tmp_path) == [64]
    assert reads == ["t.py"]
    path.write_text(CFG.format(r=32))  # the same size, a new mtime
    assert _r(tmp_path) == [32]


def test_a_new_file_is_seen(write, tmp_path, no_racy_window):
    _old(write("a.py", CFG.format(r=16)))
    assert _r(tmp_path) == [16]
    _old(write("b.py", CFG.format(r=8)))
    assert _r(tmp_path) == [8, 16]


def test_a_file_replaced_by_another_with_the_same_mtime_is_read_again(write, tmp_path, no_racy_window):
    path = write("t.py", CFG.format(r=16))
    _old(path)
    assert _r(tmp_path) == [16]
    other = write("elsewhere/t.py", CFG.format(r=128))  # another size, another inode, the same mtime
    _old(other)
    os.replace(other, path)
    assert _r(tmp_path) == [128]
    _old(write("elsewhere/t.py", CFG.format(r=256)))  # the same size as the file it replaces
    os.replace(tmp_path / "elsewhere" / "t.py", path)
    assert _r(tmp_path) == [256]


def test_a_prefiltered_file_that_gains_a_config_is_read_again(write, tmp_path, no_racy_window):
    path = write("t.py", "x = 1\n")
    _old(path)
    assert _r(tmp_path) == []
    path.write_text(CFG.format(r=16))
    _old(path)
    assert _r(tmp_path) == [16]


def test_a_file_changed_just_now_is_read_on_every_run(write, tmp_path, reads):
    # Its mtime is within the racy window of the run that read it: the same stat later proves nothing
    # (a filesystem with coarse timestamps could stamp a second edit with the same times).
    write("t.py", CFG.format(r=16))
    assert _r(tmp_path) == [16]
    reads.clear()
    assert _r(tmp_path) == [16]
    assert reads == ["t.py"]


def test_the_cache_off_reads_every_file(write, tmp_path, reads, no_racy_window):
    _old(write("t.py", CFG.format(r=16)))
    _old(write("plain.py", "x = 1\n"))
    assert _r(tmp_path) == [16]
    entries = sorted(p.relative_to(tmp_path) for p in (tmp_path / ".loralint_cache").rglob("*"))
    reads.clear()
    assert _r(tmp_path, "--no-cache") == [16]
    assert sorted(reads) == ["plain.py", "t.py"]
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / ".loralint_cache").rglob("*")) == entries


def test_a_corrupt_index_is_a_miss(write, tmp_path, reads, no_racy_window):
    _old(write("t.py", CFG.format(r=16)))
    assert _r(tmp_path) == [16]
    for entry in (tmp_path / ".loralint_cache").rglob("*"):
        if entry.is_file() and len(entry.name) == 40:  # every entry, the index among them: one byte flipped
            data = bytearray(entry.read_bytes())
            data[-2] ^= 1
            entry.write_bytes(bytes(data))
    reads.clear()
    assert _r(tmp_path) == [16]
    assert reads == ["t.py"]


def _cache_mentions(tmp_path, name: str) -> bool:
    return any(name.encode() in p.read_bytes() for p in (tmp_path / ".loralint_cache").rglob("*") if p.is_file())


def test_the_index_forgets_a_deleted_file_and_keeps_what_a_partial_run_did_not_walk(write, tmp_path, reads, no_racy_window):
    # A file the prefilter refuses is known to the cache only through the index: its record is the one to go.
    for name in ("gone.py", "sub/kept.py", "top.py"):
        _old(write(name, "x = 1\n"))
    _old(write("t.py", CFG.format(r=16)))
    assert _r(tmp_path) == [16]
    assert _cache_mentions(tmp_path, "gone.py")
    (tmp_path / "gone.py").unlink()
    reads.clear()
    assert _r(tmp_path) == [16]
    assert reads == [] and not _cache_mentions(tmp_path, "gone.py")
    # A run on sub/ alone keeps the records of the files outside it: the next whole run reads nothing.
    assert run_cli(["check", "sub"], cwd=tmp_path).exit_code == 0
    assert _r(tmp_path) == [16]
    assert reads == []
