"""Extract many files at once: forked worker processes beside this one.

The workers are forked after every file is read, so each already holds the files' bytes and nothing is sent
to it but an index. This process hands the files out from the largest down, a couple ahead per worker, and
whenever no result is ready it takes the smallest left itself; each worker sends its results back pickled
through its own pipe. ProcessPoolExecutor, used before, fed its workers one file at a time from a thread of
this process, which waited for the GIL while this process ran the per-file stages: on axolotl's tree the
worker sat idle for two fifths of its time, and each file's bytes were pickled on the way out.

Where there is no os.fork (Windows) the files are extracted here, one after the other. A worker that dies
(killed, out of memory) is not waited for: this process extracts the files it had been given.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Files handed to a worker before it asks: it starts the next one while this process is busy elsewhere.
_AHEAD = 2
_INDEX = struct.Struct("<i")
_HEADER = struct.Struct("<iQ")  # index, length of the pickled result
# A result is written whole while this process may be busy: a pipe this large (Linux allows up to 1 MiB
# unprivileged) takes a big file's result without the worker waiting for it to be read.
_PIPE_SIZE = 1 << 20

FORKS = hasattr(os, "fork")


class _Worker:
    __slots__ = ("given", "pid", "results", "tasks")

    def __init__(self, pid: int, tasks: int, results: int) -> None:
        self.pid = pid
        self.tasks = tasks  # write end: indices for the worker
        self.results = results  # read end: its results
        self.given: deque[int] = deque()  # indices sent and not yet answered, in the order sent


def extract_in_workers(items: Sequence[Any], workers: int, extract: Callable[[Any], Any]) -> Iterator[tuple[int, Any]]:
    """Each of `items` (sorted largest first) extracted by `extract`, with its index, in the order they
    finish: by `workers` forked processes from the front, and by this process from the back whenever no
    result is ready. Closing the iterator early stops the workers."""
    if not FORKS or workers < 1:
        yield from enumerate(map(extract, items))
        return
    pool: list[_Worker] = []
    by_fd: dict[int, _Worker] = {}  # the workers still answering, by their results pipe
    poller = select.poll()
    front, back = 0, len(items) - 1  # items[front..back] are still to hand out
    mine: list[int] = []  # given to a worker that died: extracted here
    left = len(items)
    try:
        for _ in range(workers):
            pool.append(_fork(items, extract, pool))
        for worker in pool:
            by_fd[worker.results] = worker
            poller.register(worker.results, select.POLLIN)
            for _ in range(_AHEAD):
                if front <= back:
                    front = _give(worker, front, mine)
        while left:
            if mine:
                index = mine.pop()
                left -= 1
                yield index, extract(items[index])
                continue
            ready = poller.poll(0) if by_fd else []
            if not ready:
                if front <= back:
                    back -= 1
                    left -= 1
                    yield back + 1, extract(items[back + 1])
                    continue
                if not by_fd:
                    break  # not reached: with no worker left, every file is in `mine` or done
                ready = poller.poll()
            for fd, _ in ready:
                worker = by_fd[fd]
                answer = _receive(fd)
                if answer is None:  # the worker is gone: what it held is done here
                    del by_fd[fd]
                    poller.unregister(fd)
                    _close(worker, "results")
                    mine.extend(worker.given)
                    worker.given.clear()
                    continue
                index, result = answer
                worker.given.remove(index)
                if front <= back:
                    front = _give(worker, front, mine)
                elif not worker.given:
                    _close(worker, "tasks")  # nothing more for it: it exits
                left -= 1
                yield index, result
    finally:
        for worker in pool:
            _close(worker, "tasks")
            _close(worker, "results")
            if left:  # stopped early (an error in the caller's stages): do not wait for a file to finish
                try:
                    os.kill(worker.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.waitpid(worker.pid, 0)
            except ChildProcessError:
                pass


def _fork(items: Sequence[Any], extract: Callable[[Any], Any], others: list[_Worker]) -> _Worker:
    task_r, task_w = os.pipe()
    result_r, result_w = os.pipe()
    _widen(result_w)
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        status = 1
        try:
            for fd in (task_w, result_r, *(fd for other in others for fd in (other.tasks, other.results))):
                os.close(fd)
            _serve(items, extract, task_r, result_w)
            status = 0
        finally:
            # No teardown, no atexit handlers, no flush of the parent's buffers, no traceback (Ctrl-C, a
            # closed pipe): this process sees the pipe close and parses what the worker held.
            os._exit(status)
    os.close(task_r)
    os.close(result_w)
    return _Worker(pid, task_w, result_r)


def _serve(items: Sequence[Any], extract: Callable[[Any], Any], tasks: int, results: int) -> None:
    while True:
        data = _read(tasks, _INDEX.size)
        if data is None:
            return
        (index,) = _INDEX.unpack(data)
        payload = pickle.dumps(extract(items[index]), pickle.HIGHEST_PROTOCOL)
        _write(results, _HEADER.pack(index, len(payload)) + payload)


def _give(worker: _Worker, index: int, mine: list[int]) -> int:
    """Hand `index` to the worker (or, when it is gone, to this process); the next index to hand out."""
    if worker.tasks >= 0:
        try:
            os.write(worker.tasks, _INDEX.pack(index))
            worker.given.append(index)
            return index + 1
        except OSError:  # its end is closed: it died; its results pipe says so next
            _close(worker, "tasks")
    mine.append(index)
    return index + 1


def _receive(fd: int) -> tuple[int, Any] | None:
    header = _read(fd, _HEADER.size)
    if header is None:
        return None
    index, length = _HEADER.unpack(header)
    payload = _read(fd, length)
    if payload is None:
        return None
    return index, pickle.loads(payload)


def _read(fd: int, size: int) -> bytes | None:
    """Exactly `size` bytes, or None at the end of the pipe."""
    chunks = []
    while size:
        chunk = os.read(fd, min(size, _PIPE_SIZE))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # b"" for size 0


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _widen(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except (ImportError, AttributeError, OSError):  # not Linux, or above the system's pipe-max-size
        pass


def _close(worker: _Worker, which: str) -> None:
    fd = getattr(worker, which)
    if fd >= 0:
        setattr(worker, which, -1)
        try:
            os.close(fd)
        except OSError:
            pass
