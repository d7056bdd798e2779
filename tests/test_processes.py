"""The real `scone simulate` in subprocesses, stopped by signals: no worker outlives it,
an interrupted run leaves no half-written file (or the next run removes it), and two
runs never write one folder."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest
from astropy.io import fits

from scone_assets.atomic import remove_stale_temps
from scone_assets.workers import WATCH_SECONDS

CMD = [sys.executable, "-m", "scone_assets.cli", "simulate"]
BIG = ["--n", "20000", "--per-file", "500", "--jobs", "2", "--seed", "1"]  # minutes: always stopped
SMALL = ["--n", "1200", "--per-file", "200", "--jobs", "2", "--seed", "1"]  # a few seconds whole
STOPPED = "scone simulate: {}; finished work is kept, temporary files removed"


@contextmanager
def running(out: Path, args: list[str]) -> Iterator[subprocess.Popen]:
    """The command in its own process group (as a terminal job), killed whole if a test fails."""
    proc = subprocess.Popen([*CMD, "--out", str(out), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield proc
    finally:
        with suppress(ProcessLookupError):  # the group holds only this run's processes
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            proc.communicate(timeout=30)


def temps(out: Path) -> list[Path]:
    return sorted(out.glob(".*.tmp"))


def pairs_done(out: Path) -> int:
    return sum(h.with_name(h.name.replace("_HEAD", "_PHOT")).exists() for h in out.glob("*_HEAD.FITS"))


def until(what, timeout: float, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended early ({proc.returncode}): {err[-2000:]}")
        found = what()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s")


def workers_busy(proc: subprocess.Popen, out: Path, min_pairs: int = 0) -> list[psutil.Process]:
    """All the run's descendants, once its 2 workers exist and have written (part of) a file."""

    def ready():
        try:
            kids = psutil.Process(proc.pid).children(recursive=True)
            workers = [k for k in kids if "resource_tracker" not in " ".join(k.cmdline())]
        except psutil.Error:
            return None
        written = list(out.glob("*.FITS")) + temps(out) if out.exists() else []
        return kids if len(workers) == 2 and written and pairs_done(out) >= min_pairs else None

    return until(ready, 90, proc)


def still_running(procs: list[psutil.Process], timeout: float = 5.0) -> list[int]:
    """PIDs still running after `timeout` (a zombie awaiting its reaper has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p.pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def listing(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in out.iterdir()}


@pytest.mark.parametrize("sig, code, word", [(signal.SIGKILL, -signal.SIGKILL, None),
                                             (signal.SIGTERM, 143, "terminated"),
                                             (signal.SIGINT, 130, "interrupted")])
def test_no_worker_outlives_a_stopped_run(tmp_path, sig, code, word):
    out = tmp_path / "SIG"
    with running(out, BIG) as proc:
        kids = workers_busy(proc, out)
        assert len(kids) >= 2 and proc.pid not in {k.pid for k in kids}
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C: a terminal signals the whole group
        else:
            os.kill(proc.pid, sig)
        assert still_running(kids) == []
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    before = listing(out)
    time.sleep(0.6)  # longer than a worker's watch on its parent
    assert listing(out) == before  # nobody writes any more
    assert pairs_done(out) < 40
    if word is not None:
        assert err.splitlines() == [STOPPED.format(word)]
        assert temps(out) == []


def test_rerun_after_kill_removes_stale_temps_and_counts_every_file(tmp_path):
    out = tmp_path / "RERUN"
    with running(out, SMALL) as proc:
        kids = workers_busy(proc, out, min_pairs=1)
        os.kill(proc.pid, signal.SIGKILL)
        assert still_running(kids) == []
    kept = pairs_done(out)
    assert 1 <= kept < 6
    (out / ".RERUN-0006_HEAD.FITS.k1lled_x.tmp").write_bytes(b"SIMPLE  =   half a file")
    stale = temps(out)  # the planted one, and any a killed worker left

    res = subprocess.run([*CMD, "--out", str(out), *SMALL], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"removed {len(stale)} stale temporary file(s) in {out}" in res.stderr
    assert temps(out) == [] and pairs_done(out) == 6
    assert f"wrote 1200 light curves in 6 file(s) to {out} ({kept} file(s) already written, kept)" in res.stdout
    truth: Counter[str] = Counter()
    for head in out.glob("*_HEAD.FITS"):
        truth.update(str(t).strip() for t in fits.getdata(head, 1)["SIM_TYPE_NAME"])
    printed = {k: int(v) for k, v in re.findall(r"^  (\S+): (\d+)$", res.stdout, re.M)}
    readme = (out / "RERUN.README").read_text()
    stats = {k: int(v) for k, v in re.findall(r"^ {4}NLC_WRITE_(\S+): (\d+)$", readme, re.M)}
    assert printed == stats == dict(truth) and sum(truth.values()) == 1200


def test_second_run_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "BUSY"
    with running(out, BIG) as first:

        def holds_lock():
            try:
                return json.loads((out / ".scone.lock").read_text() or "{}").get("pid") == first.pid
            except (OSError, ValueError):
                return False

        until(holds_lock, 90, first)
        second = subprocess.run([*CMD, "--out", str(out), *BIG], capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2, second.stderr
        assert (f"error: simulation folder {out} is in use by pid {first.pid} on "
                f"{socket.gethostname()}") in second.stderr
        assert "simulate --out" in second.stderr  # the holder's command
        assert first.poll() is None  # the first run goes on
        os.kill(first.pid, signal.SIGTERM)
        _, err = first.communicate(timeout=30)
    assert first.returncode == 143, err


def test_remove_stale_temps_takes_only_dead_writers_temporaries(tmp_path):
    killed = ("import os, sys\nfrom scone_assets.atomic import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n"
              "    open(tmp, 'w').write('half')\n    os._exit(9)\n")
    for name in ("A.FITS", "B.README"):
        res = subprocess.run([sys.executable, "-c", killed, str(tmp_path / name)])
        assert res.returncode == 9
    left = temps(tmp_path)
    assert [re.sub(r"\.[a-z0-9_]{8}\.tmp$", "", p.name) for p in left] == [".A.FITS", ".B.README"]
    keep = [".scone.lock", ".scone_sim.json", "notes.tmp", ".notes.tmp", "A.FITS"]
    for name in keep:
        (tmp_path / name).write_text("mine")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".C.FITS.abcdefgh.tmp").write_text("not this folder")
    old = time.time() - 120
    os.utime(left[0], (old, old))

    assert remove_stale_temps(tmp_path, older_than=60) == [left[0]]
    assert remove_stale_temps(tmp_path) == [left[1]]
    assert remove_stale_temps(tmp_path) == [] and remove_stale_temps(tmp_path / "none") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, "sub"])
    assert (tmp_path / "sub" / ".C.FITS.abcdefgh.tmp").exists()


def test_interrupted_simulate_removes_its_workers_temps_quietly(tmp_path, monkeypatch, caplog):
    """What a Ctrl-C leaves of the killed workers' writes is removed, without a log line
    beside the command's one; the folder's lock is free afterwards."""
    import scone_assets.simulate.run as run
    from scone_assets.locking import folder_lock

    out = tmp_path / "INT"

    def killed_mid_write(tasks, jobs, bar):
        assert len(tasks) == 2
        (out / ".INT-0001_HEAD.FITS.abcd_123.tmp").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "_run", killed_mid_write)
    with caplog.at_level("INFO", logger="scone_assets"), pytest.raises(KeyboardInterrupt):
        run.simulate(out, 20, per_file=10, jobs=2, progress=False)
    assert temps(out) == [] and caplog.records == []
    with folder_lock(out, what="simulation folder"):
        pass


def test_a_killed_pool_leaves_no_executor_thread_for_the_exit_hook():
    """After `close(kill=True)` (Ctrl-C, SIGTERM) the executor's manager thread has ended and
    closed its wake-up pipe: Python 3.11's exit hook writes to that pipe without a lock, and
    racing its close printed a TypeError traceback after a Ctrl-C on a loaded machine."""
    import concurrent.futures.process as cfp

    from scone_assets.workers import WorkerPool

    pool = WorkerPool(2)
    busy = pool.submit(time.sleep, 60)
    workers = pool.pids()
    manager = pool.ex._executor_manager_thread
    assert len(workers) == 2 and manager is not None and manager.is_alive()
    wakeup = cfp._threads_wakeups[manager]
    t0 = time.time()
    pool.close(kill=True)
    assert time.time() - t0 < 10  # the sleeping task was not waited for
    assert not manager.is_alive() and wakeup._closed
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in workers)
    assert busy.done()


def test_a_worker_stuck_holding_the_gil_dies_with_its_parent(tmp_path):
    """A worker in a C call that holds the GIL cannot run its watch thread: the kernel ends
    it when its parent dies (PR_SET_PDEATHSIG). The call here is libc's sleep through
    ctypes.PyDLL, which keeps the GIL."""
    marker = tmp_path / "inside"
    stuck = f"open({str(marker)!r}, 'w').close(); import ctypes; ctypes.PyDLL(None).sleep(120)"
    script = ("import time\nfrom scone_assets.workers import WorkerPool\npool = WorkerPool(2)\n"
              f"pool.submit(exec, {stuck!r})\nprint(*pool.pids(), flush=True)\ntime.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        workers = [psutil.Process(int(p)) for p in parent.stdout.readline().split()]
        assert workers
        until(marker.exists, 60)
        time.sleep(WATCH_SECONDS * 3)  # inside the call by now: from here its watch thread cannot run
        assert still_running(workers, timeout=0) == [w.pid for w in workers]
        parent.kill()
        parent.wait(timeout=30)
        assert still_running(workers, timeout=5) == []
    finally:
        with suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        parent.stdout.close()
        for w in workers if "workers" in locals() else []:
            with suppress(psutil.NoSuchProcess):
                w.kill()
