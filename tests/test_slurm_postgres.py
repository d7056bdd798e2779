"""The Slurm launcher on the instance a cluster runs: Postgres storage (a real PostgreSQL server
started here, see postgres_server.py), the queue, run monitoring and run retries of
dagster.slurm.yaml, and a one-node Slurm (slurm_cluster.py).

1. a run and a two-partition backfill become Slurm jobs and succeed; the backfill's runs take
   turns (one at a time per backfill here); each run is tagged with its job id and its log;
   runs, events and materializations are read back from Postgres;
2. a run whose job's processes are killed on the node is failed by run monitoring and retried
   as a new run (a new Slurm job) that succeeds;
3. a run whose asset fails on bad input is not retried, nor is one Slurm refuses;
4. a node failure ends the launcher's job NODE_FAIL (it is submitted --no-requeue) where Slurm
   would otherwise requeue it and start a second worker for the same run.
Skips with the reason when Slurm or PostgreSQL is not installed, except under CI, where it fails.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml
from conftest import wait_for_runs
from postgres_server import PostgresServer, missing_reason
from slurm_cluster import BIN, REPO, dagster_platform, launch, running_cluster, sh

from scone_assets.launchers.slurm import FAILED_STATES
from scone_assets.simulate.run import simulate

PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD")


@pytest.fixture(scope="module")
def postgres():
    reason = missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Postgres tests, but {reason}")
        pytest.skip(reason)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory)


def instance_yaml(pg: PostgresServer, root: Path) -> dict:
    """dagster.slurm.yaml as shipped, pointed at this Postgres, this cluster and folders here."""
    cfg = yaml.safe_load((REPO / "dagster.slurm.yaml").read_text())
    db = cfg["storage"]["postgres"]["postgres_db"]
    assert db["hostname"] == {"env": "DAGSTER_PG_HOST"} and db["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert db["scheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3
    db.update(port=pg.port, db_name=pg.db_name)
    assert cfg["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    [per_backfill] = [t for t in cfg["run_coordinator"]["config"]["tag_concurrency_limits"]
                      if t["key"] == "dagster/backfill"]
    assert per_backfill["value"] == {"applyLimitPerUniqueValue": True}
    per_backfill["limit"] = 1  # so the two-partition backfill shows the limit
    cfg["run_coordinator"]["config"]["max_concurrent_runs"] = 4
    cfg["run_launcher"]["config"] = {
        "partition": "debug", "time_limit": "00:20:00", "cpus_per_task": 1, "log_dir": str(root / "slurm_logs"),
        "env_setup": ["export SCONE_JOBS=1"],
        "allowed_tag_overrides": cfg["run_launcher"]["config"]["allowed_tag_overrides"] + ["slurm/partition"]}
    cfg["run_monitoring"].update(start_timeout_seconds=300, cancel_timeout_seconds=120, poll_interval_seconds=3)
    cfg["compute_logs"]["config"]["base_dir"] = str(root / "compute_logs")
    return cfg


@pytest.fixture(scope="module")
def platform(cluster, postgres, tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm_pg")
    simulate(root / "sims" / "SL", 60, survey="des", seed=12, per_file=20, mix="SNIa=0.5,SNII=0.5", jobs=1,
             progress=False)
    simulate(root / "sims" / "LONG", 250, survey="lsst", seed=13, per_file=250, jobs=1, progress=False)
    simulate(root / "sims" / "BAD", 20, survey="des", seed=14, per_file=20, jobs=1, progress=False)
    sims = ", ".join(str(root / "sims" / s) for s in ("SL", "LONG", "BAD"))
    (root / "train.yml").write_text(f"input_data_paths: [{sims}]\n")
    home = root / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml(postgres, root)))
    env = os.environ | cluster.env | {
        "DAGSTER_HOME": str(home), "SCONE_TRAIN_CONFIG": str(root / "train.yml"),
        "SCONE_OUTPUT_ROOT": str(root / "out"), "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_USER": postgres.username, "DAGSTER_PG_PASSWORD": postgres.password}
    env.pop("SCONE_PREDICT_CONFIG", None)
    with dagster_platform(cluster, home, env, root / "train.yml", process_env=PG_ENV,
                          daemon_log=root / "daemon.log") as instance:
        yield root, env, instance, postgres


def debug(instance, run) -> str:
    messages = "\n".join(e.message or "" for e in instance.all_logs(run.run_id))
    return f"{instance.run_launcher.get_run_worker_debug_info(run)}\n{messages[-3000:]}"


def launch_all(env, runs):
    """`dagster job launch` of (partition, tags) pairs at the same time; waits for the commands."""
    procs = [subprocess.Popen(
        [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-l", "scone_assets", "-j", "training_heatmaps_job",
         "--tags", json.dumps({"dagster/partition": key, **tags})],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for key, tags in runs]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]


def wait_until(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_runs_and_backfill_on_postgres(platform):
    root, env, instance, pg = platform
    keys = [f"SL-000{i}" for i in (1, 2, 3)]
    backfill = subprocess.Popen(
        [str(BIN / "dagster"), "job", "backfill", "-w", "workspace.yaml", "-l", "scone_assets", "-j",
         "training_heatmaps_job", "--partitions", ",".join(keys[1:]), "--noprompt"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    launch(env, keys[0])
    out, _ = backfill.communicate(timeout=300)
    assert backfill.returncode == 0, out[-3000:]
    runs = wait_for_runs(instance, 3, lambda rs: all(r.is_finished for r in rs), timeout=480)
    for run in runs:
        assert run.status == dg.DagsterRunStatus.SUCCESS, debug(instance, run)
    assert sorted(r.tags["dagster/partition"] for r in runs) == keys
    job_ids = [r.tags["slurm/job_id"] for r in runs]
    assert all(j.isdigit() for j in job_ids) and len(set(job_ids)) == 3

    # the job's log, on the run (tag) and in its log (an engine event with a path)
    for run in runs:
        log = root / "slurm_logs" / f"{run.run_id}.log"
        assert run.tags["slurm/log"] == str(log) and log.is_file()
        [submitted] = [e for e in instance.all_logs(run.run_id) if "Submitted Slurm job" in (e.message or "")]
        metadata = submitted.dagster_event.engine_event_data.metadata
        assert metadata["log"] == dg.MetadataValue.path(str(log))
        assert metadata["Slurm job id"].value == run.tags["slurm/job_id"]
        script = (root / "slurm_logs" / f"{run.run_id}.sbatch").read_text()
        assert "#SBATCH --no-requeue" in script.splitlines()
    shown = sh(["scontrol", "show", "job", job_ids[0]], env).stdout
    assert "Requeue=0" in shown and f"StdOut={root / 'slurm_logs'}" in shown

    # the backfill's two runs took turns: dagster/backfill is limited to 1 run per backfill here
    backfill_runs = [r for r in runs if r.tags.get("dagster/backfill")]
    assert len(backfill_runs) == 2 and len({r.tags["dagster/backfill"] for r in backfill_runs}) == 1
    records = sorted(instance.get_run_records(dg.RunsFilter(run_ids=[r.run_id for r in backfill_runs])),
                     key=lambda rec: rec.start_time)
    assert records[1].start_time >= records[0].end_time, [(r.start_time, r.end_time) for r in records]

    # read back from the Postgres-backed instance, and from Postgres itself
    assert instance.get_materialized_partitions(dg.AssetKey("training_heatmaps")) == set(keys)
    assert len(instance.fetch_materializations(dg.AssetKey("training_heatmaps"), limit=100).records) == 3
    [[n_runs]] = pg.execute("SELECT count(*) FROM runs")
    assert n_runs == len(instance.get_runs())
    [[n_success]] = pg.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS' AND run_id = ANY(%s)",
                               ([r.run_id for r in runs],))
    assert n_success == 3
    [[n_mat]] = pg.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                           "AND asset_key = %s", (dg.AssetKey("training_heatmaps").to_string(),))
    assert n_mat == 3
    assert not list((root / "home").rglob("*.db")), "SQLite files in DAGSTER_HOME: storage is not Postgres"


def _job_processes(job_id: str, home: str) -> list[psutil.Process]:
    """The job's processes on this node (the run worker and its heatmap workers), found by the
    SLURM_JOB_ID Slurm puts in their environment and this instance's DAGSTER_HOME (other test
    clusters on the machine number their jobs from 1 too); Slurm's own slurmstepd is left alone."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            penv = proc.environ()
            if (proc.info["name"] != "slurmstepd" and penv.get("SLURM_JOB_ID") == job_id
                    and penv.get("DAGSTER_HOME") == home):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _steps_started(instance, run_id: str) -> list[str]:
    return [e.step_key for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)]


def test_killed_job_is_failed_by_monitoring_and_retried(platform):
    root, env, instance, pg = platform
    key = "LONG-0001"
    before = len(instance.get_runs())
    launch(env, key)
    [run] = wait_for_runs(instance, before + 1, lambda rs: True)[:1]
    # kill the job's processes on the node while the heatmaps step (250 light curves) runs, as a
    # node failure or the OOM killer would: nothing of the run worker gets to report anything
    wait_until(lambda: "training_heatmaps" in _steps_started(instance, run.run_id), 300, "the heatmaps step to start",
               every=0.5)
    job_id = instance.get_run_by_id(run.run_id).tags["slurm/job_id"]
    procs = wait_until(lambda: _job_processes(job_id, env["DAGSTER_HOME"]), 30, f"the processes of Slurm job {job_id}", every=0.5)
    assert any("execute_run" in " ".join(p.cmdline()) for p in procs), [p.cmdline() for p in procs]
    for proc in procs:
        proc.send_signal(signal.SIGKILL)

    failed = wait_until(lambda: (r := instance.get_run_by_id(run.run_id)).is_finished and r, 180,
                        "run monitoring to fail the run")
    assert failed.status == dg.DagsterRunStatus.FAILURE
    failure = " ".join(e.message or "" for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE))
    assert f"Slurm job {job_id} ended in state" in failure and "FAILED" in failure, failure
    assert "training_heatmaps" not in [e.step_key for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)]

    # Dagster's run retries start a new run, a new Slurm job, from the failed step on
    retry = wait_until(lambda: next(iter(instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": run.run_id}))),
                                    None), 120, "the retry run")
    retry = wait_until(lambda: (r := instance.get_run_by_id(retry.run_id)).is_finished and r, 300,
                       "the retry run to finish")
    assert retry.status == dg.DagsterRunStatus.SUCCESS, debug(instance, retry)
    assert retry.tags["dagster/root_run_id"] == run.run_id and retry.tags["dagster/retry_number"] == "1"
    assert retry.tags["dagster/partition"] == key
    assert retry.tags["slurm/job_id"].isdigit() and retry.tags["slurm/job_id"] != job_id
    assert retry.tags["slurm/log"] == str(root / "slurm_logs" / f"{retry.run_id}.log")
    parent = instance.get_run_by_id(run.run_id)
    assert parent.tags["dagster/will_retry"] == "true" and parent.tags["dagster/auto_retry_run_id"] == retry.run_id
    assert "training_heatmaps" in _steps_started(instance, retry.run_id)
    assert "training_files" not in _steps_started(instance, retry.run_id)  # it succeeded in the first run
    assert key in instance.get_materialized_partitions(dg.AssetKey("training_heatmaps"))
    [[n]] = pg.execute("SELECT count(*) FROM runs WHERE run_id = %s AND status = 'SUCCESS'", (retry.run_id,))
    assert n == 1


def test_asset_failure_and_refused_job_are_not_retried(platform):
    root, env, instance, pg = platform
    # a partition whose light curves cannot be read: the asset fails, and would fail again
    phot = root / "sims" / "BAD" / "BAD-0001_PHOT.FITS"
    phot.write_bytes(phot.read_bytes()[:5000])
    # and a partition Slurm refuses: failed at launch, and would be refused again
    launch_all(env, [("BAD-0001", {}), ("SL-0001", {"slurm/partition": "nonexistent"})])
    runs = wait_for_runs(instance, 2, lambda rs: all(r.is_finished for r in rs), timeout=300)
    # Dagster stores a failed run's status first and its dagster/will_retry tag in a second write
    # just after: read each run again once the tag is there, not in between
    def with_retry_tag(run_id: str):
        return wait_until(lambda: "dagster/will_retry" in (r := instance.get_run_by_id(run_id)).tags and r,
                          30, f"the will_retry tag on run {run_id[:8]}", every=0.2)

    bad, refused = (with_retry_tag(r.run_id) for r in sorted(runs, key=lambda r: r.tags["dagster/partition"]))
    assert bad.tags["dagster/partition"] == "BAD-0001" and refused.tags["dagster/partition"] == "SL-0001"

    assert bad.status == dg.DagsterRunStatus.FAILURE
    assert bad.tags["dagster/failure_reason"] == "STEP_FAILURE" and bad.tags["dagster/will_retry"] == "false"
    [failure] = instance.all_logs(bad.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    data = failure.dagster_event.step_failure_data
    assert failure.step_key == "training_files"
    assert "BAD-0001_PHOT.FITS" in data.user_failure_data.description, data
    wait_until(lambda: any("Not retrying run since it failed due to an asset or op failure" in (e.message or "")
                           for e in instance.all_logs(bad.run_id)), 90, "the daemon's decision not to retry")

    assert refused.status == dg.DagsterRunStatus.FAILURE
    text = " ".join(e.message or "" for e in instance.all_logs(refused.run_id))
    assert "sbatch failed" in text and "invalid partition" in text.lower() and "not retried" in text
    assert refused.tags["dagster/max_retries"] == "0" and refused.tags["dagster/will_retry"] == "false"
    for run in (bad, refused):  # the daemon has handled both failures by now (its message above)
        assert not instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": run.run_id}))


def test_job_script_never_requeues_unless_the_operator_says_so(tmp_path):
    """No cluster needed: --no-requeue comes first, an operator's --requeue after it wins."""
    from scone_assets.launchers.slurm import SlurmRunLauncher

    entry = ["/venv/bin/python", "-m", "dagster"]
    lines = SlurmRunLauncher(partition="cpu").job_script("abcdef123456", tmp_path / "a.json", tmp_path / "a.log",
                                                         entry, {}).splitlines()
    assert "#SBATCH --no-requeue" in lines and "#SBATCH --requeue" not in lines
    lines = SlurmRunLauncher(extra_sbatch_args=["--requeue"]).job_script(
        "abcdef123456", tmp_path / "a.json", tmp_path / "a.log", entry, {}).splitlines()
    assert lines.index("#SBATCH --no-requeue") < lines.index("#SBATCH --requeue")


def test_node_failure_ends_the_job_instead_of_requeueing_it(cluster, tmp_path, monkeypatch):
    """A node that goes down (scontrol ... State=DOWN, as slurmctld marks a dead node): the
    launcher's job script is ended NODE_FAIL, for run monitoring and run retries to handle, where
    the same script without --no-requeue is put back in the queue to start a second worker."""
    import socket

    from scone_assets.launchers.slurm import SlurmRunLauncher

    env = os.environ | cluster.env
    script = SlurmRunLauncher(partition="debug", time_limit="00:05:00", mem="100M", cpus_per_task=1).job_script(
        "abcdef123456", tmp_path / "a.json", tmp_path / "a.log", ["/bin/true"], {})
    body = script.rsplit("exec ", 1)[0] + "sleep 300\n"  # the job as launched, its worker a sleep
    (tmp_path / "launcher.sbatch").write_text(body)
    (tmp_path / "requeue.sbatch").write_text(body.replace("#SBATCH --no-requeue\n", "")
                                             .replace("a.log", "b.log"))
    ours = sh(["sbatch", "--parsable", str(tmp_path / "launcher.sbatch")], env).stdout.strip()
    other = sh(["sbatch", "--parsable", "--requeue", str(tmp_path / "requeue.sbatch")], env).stdout.strip()

    def state(job):
        return sh(["squeue", "-h", "-j", job, "-o", "%T"], env).stdout.strip() or "gone"

    def info(job):
        return sh(["scontrol", "show", "job", job], env).stdout

    node = socket.gethostname().split(".")[0]
    wait_until(lambda: state(ours) == "RUNNING" and state(other) == "RUNNING", 60,
               f"both jobs to run: {info(ours)}\n{info(other)}")
    sh(["scontrol", "update", f"NodeName={node}", "State=DOWN", "Reason=test_node_failure"], env)
    try:
        wait_until(lambda: "JobState=NODE_FAIL" in info(ours), 60, f"job {ours} to end NODE_FAIL")
        assert "Requeue=0" in info(ours) and "Restarts=0" in info(ours)
        wait_until(lambda: "Restarts=1" in info(other), 60, f"job {other} to be requeued")
        assert "JobState=NODE_FAIL" not in info(other)
        monkeypatch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])  # the launcher's commands ask this cluster
        assert SlurmRunLauncher().job_state(ours) == "NODE_FAIL" and "NODE_FAIL" in FAILED_STATES
    finally:  # back in service (ReturnToService=2 may have done it when slurmd registered again)
        subprocess.run(["scontrol", "update", f"NodeName={node}", "State=RESUME"], env=env, capture_output=True)
        cluster.cancel_all()
    wait_until(lambda: sh(["sinfo", "-h", "-o", "%T"], env).stdout.strip() in ("idle", "mixed"), 60,
               "the node to come back")
