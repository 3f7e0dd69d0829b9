"""The worker processes that parse files beside the main one (loralint/workers.py): every file comes back
once, whoever parses it, even when a worker dies, and stopping early leaves no process behind."""

from __future__ import annotations

import os
import time

import pytest

from loralint import workers

pytestmark = pytest.mark.skipif(not workers.FORKS, reason="workers are forked; without os.fork files are parsed in one process")


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_every_item_comes_back_once_with_its_own_result():
    parent = os.getpid()
    items = [f"file{i}" * (200 - i) for i in range(200)]  # largest first, as the engine sorts them

    def extract(item: str) -> tuple[str, int]:
        return item.upper(), os.getpid()

    pool = workers.Workers(items, [len(item) for item in items], 2, extract)
    got = list(pool)
    pool.close()
    assert sorted(index for index, _ in got) == list(range(len(items)))
    assert all(result == items[index].upper() for index, (result, _) in got)
    by_index = {index: pid for index, (_, pid) in got}
    # The first files handed out went to the workers; this process took the smallest while none was ready.
    assert by_index[0] != parent and by_index[1] != parent
    assert _no_children_left()


def test_the_files_of_a_worker_that_dies_are_parsed_here():
    parent = os.getpid()
    items = ["dies"] + [f"file{i}" for i in range(30)]

    def extract(item: str) -> tuple[str, int]:
        if item == "dies" and os.getpid() != parent:
            os._exit(3)  # killed mid-file: out of memory, a signal
        return item, os.getpid()

    pool = workers.Workers(items, [1] * len(items), 1, extract)
    got = dict(pool)
    pool.close()
    assert sorted(got) == list(range(len(items)))
    assert got[0] == ("dies", parent)
    assert [result for _, (result, _) in sorted(got.items())] == items
    assert _no_children_left()


def test_stopping_early_does_not_wait_for_the_workers_files():
    parent = os.getpid()
    items = ["big", "big too", "small"]

    def extract(item: str) -> str:
        if os.getpid() != parent:
            time.sleep(60)  # a file that takes long: the caller stops before it is done
        return item

    started = time.monotonic()
    pool = workers.Workers(items, [10**6, 10**6, 10], 1, extract)
    assert next(iter(pool)) == (2, "small")  # the worker holds the other two; this process took the smallest
    pool.close()  # as a usage error half-way through a run does
    assert time.monotonic() - started < 30
    assert _no_children_left()


def test_without_os_fork_every_item_is_extracted_here(monkeypatch):
    monkeypatch.setattr(workers, "FORKS", False)
    parent = os.getpid()
    pool = workers.Workers(["a", "b", "c"], [3, 2, 1], 2, lambda item: (item.upper(), os.getpid()))
    assert sorted(pool) == [(0, ("A", parent)), (1, ("B", parent)), (2, ("C", parent))]
    assert _no_children_left()
