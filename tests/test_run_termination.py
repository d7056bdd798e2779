"""A run terminated through Dagster on the local launcher (the queue and the real
dagster-daemon, as `make ui` runs it) stops its heatmap workers: steps run in the run
worker (the in-process executor), and the heatmaps step's own worker processes must not
outlive it, nor leave a half-written unit under its real name."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import dagster as dg
import psutil
from conftest import dagster_home_env, wait_for_runs

from scone_assets.heatmaps import store
from scone_assets.simulate.run import simulate

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run_processes(home: Path) -> dict[str, list[psutil.Process]]:
    """This instance's run worker and the heatmap workers it spawned, found by the
    DAGSTER_HOME in their environment. Both are multiprocessing's spawned processes: the
    local launcher's code server spawns the run worker, which spawns the workers."""
    spawned = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if ("multiprocessing.spawn" in " ".join(proc.info["cmdline"] or [])
                    and proc.environ().get("DAGSTER_HOME") == str(home)):
                spawned[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    run = [p for p in spawned.values() if p.ppid() not in spawned]
    return {"run": run, "workers": [p for p in spawned.values() if p.ppid() in {r.pid for r in run}]}


def _waits(pid: int) -> list[str]:
    """Each thread's kernel wait channel (`pipe_write`, `futex_wait_queue`, ...)."""
    waits = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        try:
            waits.append((task / "wchan").read_text() or "running")
        except OSError:
            continue
    return waits


def test_terminated_run_leaves_no_heatmap_worker(tmp_path):
    simulate(tmp_path / "sims" / "T", 400, survey="lsst", seed=21, per_file=400, jobs=1, progress=False)
    (tmp_path / "train.yml").write_text(f"input_path: {tmp_path / 'sims' / 'T'}\n")
    home, env = dagster_home_env(tmp_path, tmp_path / "train.yml")
    subprocess.run([str(BIN / "scone"), "register", "--config_path", str(tmp_path / "train.yml")], cwd=REPO,
                   env=env, check=True, capture_output=True, timeout=120)
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        # two heatmap workers on george, slow enough (about 15 light curves/s each) to be stopped mid-way
        slow = {"resources": {"scone": {"config": {"train_config_path": env["SCONE_TRAIN_CONFIG"], "jobs": 2,
                                                   "output_root": env["SCONE_OUTPUT_ROOT"],
                                                   "gp_backend": "george"}}}}
        subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-l", "scone_assets", "-j",
                        "training_heatmaps_job", "--tags", json.dumps({"dagster/partition": "T-0001"}),
                        "--config-json", json.dumps(slow)], cwd=REPO, env=env, check=True, capture_output=True,
                       timeout=300)
        instance = dg.DagsterInstance.get()

        def heatmaps_started() -> bool:
            runs = instance.get_runs()
            return bool(runs) and "training_heatmaps" in [e.step_key for e in instance.all_logs(
                runs[0].run_id, of_type=dg.DagsterEventType.STEP_START)]

        deadline = time.time() + 240  # the catalog step has workers of its own: wait for the heatmaps'
        while time.time() < deadline and not (heatmaps_started() and len(_run_processes(home)["workers"]) == 2):
            time.sleep(0.5)
        procs = _run_processes(home)
        assert len(procs["run"]) == 1 and len(procs["workers"]) == 2, procs
        family = procs["run"] + procs["run"][0].children(recursive=True)  # workers, resource tracker
        assert set(procs["workers"]) <= set(family)
        tracker = [p for p in family if "resource_tracker" in " ".join(p.cmdline())]
        [run] = instance.get_runs()

        assert instance.run_coordinator.cancel_run(run.run_id)
        [run] = wait_for_runs(instance, 1, lambda rs: rs[0].is_finished, timeout=120)
        assert run.status == dg.DagsterRunStatus.CANCELED
        # the step's workers end with the step (multiprocessing's resource tracker, with the run process)
        gone, alive = psutil.wait_procs([p for p in family if p not in procs["run"] + tracker], timeout=30)
        assert not alive, [(p.pid, p.ppid(), p.status(), p.cmdline()) for p in alive]
        # Dagster's run process has been seen (in two of seven full suites, never alone)
        # still alive 30 s after reporting the run canceled, its workers gone; why is not known.
        # It holds nothing of ours: said, with where its threads wait, and ended here.
        gone, lingering = psutil.wait_procs(procs["run"], timeout=30)
        for proc in lingering:
            assert [c for c in proc.children() if c not in tracker] == [], proc.children()
            warnings.warn(f"Dagster's run process {proc.pid} is still alive 30 s after its run was "
                          f"canceled; its threads wait in {_waits(proc.pid)}", stacklevel=1)
            proc.kill()
        assert _run_processes(home)["workers"] == []
        # the unit was being written beside its place: nothing under the real name
        heatmaps = tmp_path / "out" / "heatmaps"
        assert (heatmaps / store.MANIFEST).is_file() and store.finished_units(heatmaps) == []
        assert "training_heatmaps" not in [e.step_key for e in instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)]
    finally:
        os.environ.pop("DAGSTER_HOME", None)
        os.killpg(daemon.pid, signal.SIGTERM)  # the daemon and its code server
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=30)
