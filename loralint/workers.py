"""Work through many files at once: forked worker processes beside this one.

The workers are forked with the list of files to do, so nothing is sent to them but indices: this process
hands the files out from the largest down, a few ahead (more when they are small) so that a worker seldom
waits for it, and whenever no result is ready it takes the smallest left itself; each worker sends its
results back pickled through its own pipe. ProcessPoolExecutor, used before, fed its workers one file at a
time from a thread of this process, which waited for the GIL while this process ran the per-file stages
(on axolotl's tree the worker sat idle for two fifths of its time), and pickled each file's bytes on the
way out.

Where there is no os.fork (Windows) the files are done here, one after the other. A worker that dies
(killed, out of memory) is not waited for: this process does the files it had been given.
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

# Files handed to a worker before it asks, so that it starts the next one while this process is busy
# elsewhere: at least four, and as many more small ones (up to 64) as make 256 KB. This process checks the
# sites of a large test file for ~20 ms at a time (peft's): with two queued, the worker sat idle for 40 ms of a
# 0.6 s run, with four for 14.
_AHEAD = 4
_AHEAD_BYTES = 256 * 1024
_AHEAD_MOST = 64
# Nor more than this part of what is left to hand out: at the end, what a worker holds, no one else can take.
_SHARE = 4
_INDEX = struct.Struct("<i")
_HEADER = struct.Struct("<iQ")  # index, length of the pickled result
# A result is written whole while this process may be busy: a pipe this large (Linux allows up to 1 MiB
# unprivileged) takes a big file's result without the worker waiting for it to be read.
_PIPE_SIZE = 1 << 20

FORKS = hasattr(os, "fork")


class _Worker:
    __slots__ = ("given", "pid", "queued", "results", "tasks")

    def __init__(self, pid: int, tasks: int, results: int) -> None:
        self.pid = pid
        self.tasks = tasks  # write end: indices for the worker
        self.results = results  # read end: its results
        self.given: deque[int] = deque()  # indices sent and not yet answered, in the order sent
        self.queued = 0  # their sizes


class Workers:
    """`extract` of each of `items` (sorted largest first; `sizes`: theirs, in bytes), by `workers` processes
    forked now, which take items from the front, and by this process, which takes them from the back
    whenever no result is ready. Iterate for (index, result) in the order they finish; close() stops the
    workers (without waiting for their files when some are left) and reaps them."""

    def __init__(self, items: Sequence[Any], sizes: Sequence[int], workers: int, extract: Callable[[Any], Any]) -> None:
        self.items, self.sizes, self.extract = items, sizes, extract
        self.pool: list[_Worker] = []
        self.by_fd: dict[int, _Worker] = {}  # the workers still answering, by their results pipe
        self.front, self.back = 0, len(items) - 1  # items[front..back] are still to hand out
        self.mine: list[int] = []  # given to a worker that died: extracted here
        self.left = len(items)
        self.unhanded = sum(sizes)  # the sizes of items[front..back]
        if not FORKS:
            return  # no worker: every item is taken from the back, here
        self.poller = select.poll()
        try:
            for _ in range(min(workers, len(items) - 1)):  # this process takes one at least
                self.pool.append(_fork(items, extract, self.pool))
            for worker in self.pool:
                self.by_fd[worker.results] = worker
                self.poller.register(worker.results, select.POLLIN)
                self._fill(worker)
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        items, extract = self.items, self.extract
        while self.left:
            if self.mine:
                index = self.mine.pop()
                self.left -= 1
                yield index, extract(items[index])
                continue
            ready = self.poller.poll(0) if self.by_fd else []
            if not ready:
                if self.front <= self.back:
                    index = self.back
                    self.back -= 1
                    self.unhanded -= self.sizes[index]
                    self.left -= 1
                    yield index, extract(items[index])
                    continue
                if not self.by_fd:
                    return  # not reached: with no worker left, every item is in `mine` or done
                ready = self.poller.poll()
            for fd, _ in ready:
                worker = self.by_fd[fd]
                answer = _receive(fd)
                if answer is None:  # the worker is gone: what it held is done here
                    del self.by_fd[fd]
                    self.poller.unregister(fd)
                    _close(worker, "results")
                    self.mine.extend(worker.given)
                    worker.given.clear()
                    continue
                index, result = answer
                worker.given.remove(index)
                worker.queued -= self.sizes[index]
                if self.front <= self.back:
                    self._fill(worker)
                elif not worker.given:
                    _close(worker, "tasks")  # nothing more for it: it exits
                self.left -= 1
                yield index, result

    def close(self) -> None:
        for worker in self.pool:
            _close(worker, "tasks")
            _close(worker, "results")
            if self.left:  # stopped early (an error in the caller's stages): do not wait for a file to finish
                try:
                    os.kill(worker.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.waitpid(worker.pid, 0)
            except ChildProcessError:
                pass
        self.pool = []

    def _fill(self, worker: _Worker) -> None:
        """Hand the worker items from the front until it holds enough (or, when it is gone, leave the next
        one to this process). The last item, the smallest, is always left to this process."""
        given, sizes = worker.given, self.sizes
        enough = min(_AHEAD_BYTES, self.unhanded // _SHARE)
        while self.front < self.back and (len(given) < _AHEAD or worker.queued < enough) and len(given) < _AHEAD_MOST:
            index = self.front
            self.front += 1
            self.unhanded -= sizes[index]
            if worker.tasks < 0:
                self.mine.append(index)
                return
            try:
                os.write(worker.tasks, _INDEX.pack(index))
            except OSError:  # its end is closed: it died; its results pipe says so next
                _close(worker, "tasks")
                self.mine.append(index)
                return
            given.append(index)
            worker.queued += sizes[index]


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
            # closed pipe): the main process sees the pipe close and parses what this worker held.
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
