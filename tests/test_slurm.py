"""The Slurm run launcher against a real one-node Slurm started here (see slurm_cluster.py).

1. a run terminated through Dagster ends CANCELED and its job is gone;
2. a job killed from outside (scancel) is caught by run monitoring: FAILED, Slurm state in the message.
Launches, backfills and a partition sbatch refuses run on Postgres, as on a cluster
(test_slurm_postgres.py).
Skips with the reason when Slurm is not installed, except under CI, where it fails.
"""

import os
import subprocess
import time

import dagster as dg
import pytest
from conftest import wait_for_runs
from slurm_cluster import dagster_platform, launch, running_cluster

from scone_assets.simulate.run import simulate


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory)


@pytest.fixture(scope="module")
def platform(cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm_platform")
    simulate(root / "sims" / "SL", 60, survey="des", seed=12, per_file=20, mix="SNIa=0.5,SNII=0.5", jobs=1,
             progress=False)
    simulate(root / "sims" / "LONG", 400, survey="lsst", seed=13, per_file=400, jobs=1, progress=False)
    (root / "train.yml").write_text(f"input_data_paths: [{root / 'sims' / 'SL'}, {root / 'sims' / 'LONG'}]\n")
    home = root / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"""
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
run_launcher:
  module: scone_assets.launchers.slurm
  class: SlurmRunLauncher
  config:
    partition: debug
    time_limit: "00:20:00"
    cpus_per_task: 1
    log_dir: {root / 'slurm_logs'}
    env_setup: ["export SCONE_JOBS=1"]
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  cancel_timeout_seconds: 120
  poll_interval_seconds: 5
""")
    env = os.environ | cluster.env | {"DAGSTER_HOME": str(home), "SCONE_TRAIN_CONFIG": str(root / "train.yml"),
                                      "SCONE_OUTPUT_ROOT": str(root / "out")}
    env.pop("SCONE_PREDICT_CONFIG", None)
    with dagster_platform(cluster, home, env, root / "train.yml") as instance:
        yield root, env, instance


def _started(instance, n):
    return wait_for_runs(instance, n, lambda rs: rs[0].status == dg.DagsterRunStatus.STARTED, timeout=300)[0]


def test_terminate_and_external_kill(platform):
    root, env, instance = platform
    before = len(instance.get_runs())
    slow = {"resources": {"scone": {"config": {"train_config_path": env["SCONE_TRAIN_CONFIG"], "jobs": 1,
                                               "output_root": env["SCONE_OUTPUT_ROOT"], "gp_backend": "george"}}}}
    launch(env, "LONG-0001", config=slow)
    run = _started(instance, before + 1)
    job_id = run.tags["slurm/job_id"]
    # 3. terminate through Dagster
    assert instance.run_coordinator.cancel_run(run.run_id)
    [run] = wait_for_runs(instance, before + 1, lambda rs: rs[0].is_finished)[:1]
    assert run.status == dg.DagsterRunStatus.CANCELED
    deadline = time.time() + 90  # Slurm lists the job as COMPLETING for KillWait seconds
    while time.time() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", job_id], env=env, capture_output=True, text=True)
        if out.stdout.strip() == "":
            break
        time.sleep(2)
    assert out.stdout.strip() == "", f"Slurm job {job_id} still queued: {out.stdout}"

    # 4. killed from outside: run monitoring marks it FAILED with the Slurm state
    launch(env, "LONG-0001", config=slow)
    run = _started(instance, before + 2)
    job_id = run.tags["slurm/job_id"]
    subprocess.run(["scancel", "--signal=KILL", "--batch", job_id], env=env, check=True)
    [run] = wait_for_runs(instance, before + 2, lambda rs: rs[0].is_finished, timeout=300)[:1]
    assert run.status == dg.DagsterRunStatus.FAILURE
    failure = [e.message for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"]
    assert any("Slurm job" in m and ("CANCELLED" in m or "FAILED" in m) for m in failure), failure


def test_job_script_from_configuration_header_and_tags(tmp_path):
    """No cluster needed: what the launcher writes for sbatch."""
    from scone_assets.launchers.slurm import SlurmRunLauncher

    header = tmp_path / "header.txt"
    header.write_text("#SBATCH --constraint=cpu\n#SBATCH --nodes=1\necho not an sbatch line\n")
    launcher = SlurmRunLauncher.from_config_value(None, {
        "partition": "regular", "time_limit": "01:00:00", "mem": "8G", "cpus_per_task": 4, "gpus": None,
        "account": "m1234", "qos": None, "log_dir": str(tmp_path), "env_setup": ["module load python"],
        "extra_sbatch_args": ["--exclusive"], "sbatch_header_path": str(header)})
    script = launcher.job_script("abcdef123456", tmp_path / "a.json", tmp_path / "a.log",
                                 ["/venv/bin/python", "-m", "dagster"], {"slurm/gpus": "a100:1", "slurm/mem": "32G"})
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash" and "#SBATCH --job-name=dagster-abcdef12" in lines
    assert "#SBATCH --constraint=cpu" in lines and "#SBATCH --nodes=1" in lines and "echo not an sbatch line" not in lines
    for opt in ("--partition=regular", "--time=01:00:00", "--mem=32G", "--cpus-per-task=4", "--gpus=a100:1",
                "--account=m1234", "--exclusive"):
        assert f"#SBATCH {opt}" in lines, opt
    assert "module load python" in lines
    assert lines[-1] == f'exec /venv/bin/python -m dagster api execute_run "$(cat {tmp_path / "a.json"})"'
    assert set(SlurmRunLauncher.config_type()) >= {"partition", "time_limit", "mem", "cpus_per_task", "gpus",
                                                   "account", "qos", "log_dir", "env_setup", "extra_sbatch_args",
                                                   "sbatch_header_path"}
