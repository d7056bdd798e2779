"""Process pools whose workers never outlive the command that started them.

Each worker watches its parent: when the parent dies, whatever the signal
(SIGKILL included), the worker's parent pid changes and it exits at once, so
no orphan keeps hundreds of megabytes or goes on writing files. On Linux the kernel
also kills it then (PR_SET_PDEATHSIG), which works even while the worker's Python is
stuck in a call that holds the GIL. Both are in place before the worker imports its
initializer's (heavy) module: a worker stopped while importing still dies. Workers ignore
SIGINT: Ctrl-C reaches the parent, which stops them itself. They are started
with SIGINT and SIGTERM blocked, so neither a Ctrl-C sent to the whole process group
(as a terminal does) nor a SIGTERM to the parent while a worker is still starting can
make it print a traceback.
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, suppress

WATCH_SECONDS = 0.5
STOPS = {signal.SIGINT, signal.SIGTERM}  # what stops a command; held while a worker is spawned
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Have the kernel send this process `sig` when its parent dies (Linux; elsewhere
    nothing). Strictly, when the parent's thread that started it ends: every pool here
    is started and used by one thread."""
    if not sys.platform.startswith("linux"):
        return
    with suppress(OSError, AttributeError):  # no libc prctl: the watch thread still works
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


def _name(fn: Callable[[], None] | None) -> str | None:
    return None if fn is None else f"{fn.__module__}:{fn.__qualname__}"


def _start(parent: int, initializer: str | None) -> None:
    """A worker's first code. The initializer comes by name: as a function it would be
    imported while the worker unpickles its start-up data, before anything watches."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)  # blocked by _no_stops; a SIGTERM held ends us now
    die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died while this worker started
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()
    if initializer is not None:
        module, _, qualname = initializer.partition(":")
        fn = importlib.import_module(module)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        fn()


@contextmanager
def _no_stops() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the executor may spawn workers. The parent's
    handlers raise, and raised half-way through starting a worker they would leave it
    reading its start-up data from a closed pipe and printing the EOFError. Blocking
    them is not enough: another thread may take the signal, and Python still runs the
    handler in this one. So the handlers are deferred too (in the main thread, the only
    one that may set them) and a held signal is raised again afterwards. Workers inherit
    the mask and keep it until `_start`. (The executor has already started
    multiprocessing's resource tracker, which would unblock SIGINT when started.)"""
    held: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    old_handlers = {s: signal.signal(s, lambda n, _f: held.append(n)) for s in STOPS} if main else {}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        for s, handler in old_handlers.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        for s in dict.fromkeys(held):
            signal.raise_signal(s)


class WorkerPool:
    """`jobs` spawned processes (safe when TensorFlow is loaded in the parent), or the
    calling process itself when `jobs` is 1. `close()` stops the workers; after an
    interruption it kills them instead of waiting for their tasks."""

    def __init__(self, jobs: int, initializer: Callable[[], None] | None = None, *,
                 warm: bool = True):
        self.jobs = max(1, int(jobs))
        self.initializer = initializer
        self.ex: ProcessPoolExecutor | None = None
        self._initialized = False
        if self.jobs > 1:
            self.ex = ProcessPoolExecutor(self.jobs, mp_context=mp.get_context("spawn"),
                                          initializer=_start, initargs=(os.getpid(), _name(initializer)))
            if warm:  # start the workers now: they import and warm up while the parent reads
                try:
                    self.submit(int)
                except BaseException:  # Ctrl-C while starting: no `with` block will close us
                    self.close(kill=True)
                    raise

    def _local(self) -> None:
        if not self._initialized and self.initializer is not None:
            self.initializer()
        self._initialized = True

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        if self.ex is None:
            self._local()
            return map(fn, tasks)
        with _no_stops():  # Executor.map submits every task (and spawns workers) now
            return self.ex.map(fn, tasks)

    def submit(self, fn: Callable, *args) -> Future:
        if self.ex is None:
            self._local()
            fut: Future = Future()
            try:
                fut.set_result(fn(*args))
            except Exception as exc:  # noqa: BLE001 - delivered through the future, as a pool would
                fut.set_exception(exc)
            return fut
        with _no_stops():  # a submit may spawn a worker
            return self.ex.submit(fn, *args)

    def pids(self) -> list[int]:
        return sorted((self.ex._processes or {}).keys()) if self.ex is not None else []

    def close(self, *, kill: bool = False) -> None:
        if self.ex is None:
            return
        procs = list((self.ex._processes or {}).values())
        manager = self.ex._executor_manager_thread  # shutdown() forgets it
        if kill:
            for p in procs:
                if p.is_alive():
                    p.kill()
        self.ex.shutdown(wait=not kill, cancel_futures=True)
        for p in procs:
            p.join(timeout=5)
        # Let the executor's manager thread finish, closing its wake-up pipe, before the
        # interpreter exits: Python 3.11's exit hook writes to that pipe unlocked, and
        # racing the close it prints a TypeError traceback after a Ctrl-C (fixed in 3.12).
        if manager is not None:
            manager.join(timeout=10)
        self.ex = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # an exception (Ctrl-C, SIGTERM, a failed task) ends the workers now
        self.close(kill=exc_type is not None)
