"""One writer per folder: an advisory lock file that says who holds it.

`flock` is released by the kernel when the holder dies, whatever the signal,
so a crashed run never leaves a stale lock behind; the file's text (pid, host,
command, start time) only serves the message the second run prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".scone.lock"


class FolderBusy(RuntimeError):
    """Another run holds the folder's lock; the message names it."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another run"
    if not info:
        return "another run"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"pid {info.get('pid')} on {info.get('host')} since {started} ({info.get('command', '?')})"


@contextmanager
def lock_file(path: str | os.PathLike[str], *, what: str, shared: bool = False,
              wait: float = 0.0) -> Iterator[Path]:
    """Hold the lock `path` for the block: exclusive, or `shared` with other shared
    holders (concurrent Dagster partitions of one heatmaps folder). Waits up to `wait`
    seconds, then raises `FolderBusy` naming the holder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FolderBusy(f"{what} is in use by {_holder(path)}; wait for it to "
                                     "finish (or stop it) and run again") from None
                time.sleep(0.2)
        if not shared:  # shared holders leave the text alone: it names the exclusive one
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                    "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:200]}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            if not shared:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def folder_lock(folder: str | os.PathLike[str], *, what: str = "folder", shared: bool = False,
                wait: float = 0.0):
    """The lock of a whole folder (`<folder>/.scone.lock`)."""
    folder = Path(folder)
    return lock_file(folder / LOCK_FILE, what=f"{what} {folder}", shared=shared, wait=wait)
