"""A one-node Slurm cluster on this machine, for tests: munged, slurmctld and slurmd with a
generated slurm.conf (the node's real CPUs and memory, proctrack/linuxproc, task/none,
state and logs in a temporary folder), stopped afterwards by process id.

Also what the launcher tests share: `running_cluster` (a module fixture's body: skips with the
reason when Slurm is missing, fails under CI), `sh`, `launch` (a `dagster job launch`) and
`dagster_platform` (registers the partitions, runs `dagster-daemon run` in its own process
group and points this process at the instance)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class SlurmCluster:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}

    def start(self) -> SlurmCluster:
        r = self.root
        for d in ("state", "spool", "munge", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        key = r / "munge" / "munge.key"
        if Path("/etc/munge/munge.key").exists():
            shutil.copy("/etc/munge/munge.key", key)
        else:
            key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        sock = r / "munge" / "munge.socket"
        subprocess.run(["munged", "--force", f"--socket={sock}", f"--key-file={key}",
                        f"--pid-file={r / 'munge' / 'munged.pid'}", f"--log-file={r / 'log' / 'munged.log'}",
                        f"--seed-file={r / 'munge' / 'seed'}"], check=True, capture_output=True)
        host = socket.gethostname().split(".")[0]
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        ctld_port, d_port = _free_ports(2)
        self.conf.write_text(f"""ClusterName=scone-test
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
InactiveLimit=0
MinJobAge=600
KillWait=5
NodeName={host} CPUs={os.cpu_count()} RealMemory={max(1024, mem_mb - 1024)} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
""")
        env = os.environ | self.env
        subprocess.run(["slurmctld", "-f", str(self.conf)], check=True, env=env, capture_output=True)
        subprocess.run(["slurmd", "-f", str(self.conf)], check=True, env=env, capture_output=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip() in ("idle", "mixed", "allocated"):
                return self
            time.sleep(2)
        raise RuntimeError(f"Slurm did not come up: {(r / 'log' / 'slurmctld.log').read_text()[-2000:]}")

    def jobs(self) -> list[str]:
        """Ids of the jobs Slurm still lists (pending, running or completing)."""
        out = subprocess.run(["squeue", "-h", "-o", "%i"], env=os.environ | self.env, capture_output=True,
                             text=True, timeout=60)
        return out.stdout.split() if out.returncode == 0 else []

    def cancel_all(self, timeout: float = 90) -> None:
        """scancel every job and wait until Slurm lists none, so no job outlives the tests."""
        ids = self.jobs()
        if ids:
            subprocess.run(["scancel", *ids], env=os.environ | self.env, capture_output=True, timeout=60)
        deadline = time.time() + timeout
        while self.jobs() and time.time() < deadline:
            time.sleep(1)

    def _step_daemons(self) -> list[int]:
        """This cluster's slurmstepd processes (they daemonize, so they are found by the
        SLURM_CONF they inherit from slurmd): a job step still reporting its end when slurmd
        stops would otherwise linger after the tests."""
        mark = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if (proc / "comm").read_text().strip() != "slurmstepd":
                    continue
                if mark in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except (OSError, ValueError):
                continue
        return pids

    def stop(self) -> None:
        for pid_file in (self.root / "slurmd.pid", self.root / "slurmctld.pid", self.root / "munge" / "munged.pid"):
            try:
                pid = int(pid_file.read_text().strip())
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                    time.sleep(0.2)
                except OSError:
                    break
        for pid in self._step_daemons():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def running_cluster(tmp_path_factory) -> Iterator[SlurmCluster]:
    """The body of a module-scoped `cluster` fixture: a started cluster, its jobs cancelled and
    its daemons stopped afterwards."""
    import pytest

    missing = missing_binaries()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Slurm tests, but {', '.join(missing)} are missing (scripts/system_deps.sh)")
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing; make test installs it as root)")
    c = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    try:
        yield c
    finally:
        with contextlib.suppress(Exception):
            c.cancel_all()
        c.stop()


def sh(args, env, timeout: float = 300):
    res = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{args}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    return res


def launch(env, key, tags=None, config=None, job: str = "training_heatmaps_job"):
    args = [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-l", "scone_assets", "-j", job,
            "--tags", json.dumps({"dagster/partition": key, **(tags or {})})]
    if config:
        args += ["--config-json", json.dumps(config)]
    return sh(args, env)


@contextlib.contextmanager
def dagster_platform(cluster: SlurmCluster, home: Path, env: Mapping[str, str], train_config: Path,
                     process_env: tuple[str, ...] = (), daemon_log: Path | None = None):
    """Registers `train_config`'s partitions, starts `dagster-daemon run` (queue, run monitoring,
    run retries) in its own process group, and points this process at the instance in `home`
    (DAGSTER_HOME, SLURM_CONF and the `process_env` variables, restored afterwards); yields the
    instance. The daemon's group is stopped at the end."""
    import dagster as dg

    sh([str(BIN / "scone"), "register", "--config_path", str(train_config)], env)
    out = open(daemon_log, "w") if daemon_log else subprocess.DEVNULL  # noqa: SIM115
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    keys = ("DAGSTER_HOME", "SLURM_CONF", *process_env)
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys})
    instance = None
    try:
        instance = dg.DagsterInstance.get()
        yield instance
    finally:
        if instance is not None:
            instance.dispose()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # the daemon's code server, if it lingers
            os.killpg(daemon.pid, signal.SIGKILL)
        if daemon_log:
            out.close()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
