"""Atomic file writes: a crash leaves a hidden temporary file, never a truncated
file under the real name."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode())


# mkstemp's names: the prefix, 8 characters of [a-z0-9_], the suffix
_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def remove_stale_temps(folder: str | os.PathLike[str], older_than: float | None = None) -> list[Path]:
    """Remove the `.<name>.<random>.tmp` files that killed writers leave in `folder` (not its
    subfolders); with `older_than` (seconds), only those untouched for that long. Call it
    while holding the folder's lock, so that no live writer's temporary is removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cutoff = None if older_than is None else time.time() - older_than
    removed = []
    for p in sorted(folder.iterdir()):
        if not _TEMP.match(p.name) or p.is_symlink() or not p.is_file():
            continue
        try:
            if cutoff is not None and p.stat().st_mtime > cutoff:
                continue
            p.unlink()
        except FileNotFoundError:  # its writer finished or removed it meanwhile
            continue
        removed.append(p)
    return removed
