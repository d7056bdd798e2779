"""The command lines users run: register partitions, materialize one, backfill many through the
run queue (QueuedRunCoordinator + the real dagster-daemon), against a temporary DAGSTER_HOME."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from conftest import dagster_home_env, wait_for_runs

from scone_assets.simulate.run import simulate

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def home(tmp_path):
    simulate(tmp_path / "sims" / "CLI", 45, survey="des", seed=6, per_file=15, mix="SNIa=0.5,SNII=0.5",
             jobs=1, progress=False)
    (tmp_path / "train.yml").write_text(f"input_path: {tmp_path / 'sims' / 'CLI'}\n")
    dh, env = dagster_home_env(tmp_path, tmp_path / "train.yml")
    return tmp_path, dh, env


def sh(args, env, timeout=300):
    res = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{args}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def test_register_materialize_and_backfill_through_the_queue(home):
    tmp, dh, env = home
    res = sh([str(BIN / "scone"), "register", "--config_path", str(tmp / "train.yml")], env)
    assert "training_sims: 3 partitions (3 new)" in res.stdout
    keys = [f"CLI-000{i}" for i in (1, 2, 3)]
    sh([str(BIN / "dagster"), "asset", "materialize", "-m", "scone_assets.definitions", "--select", "training_heatmaps",
        "--partition", keys[0]], env)
    assert (tmp / "out" / "heatmaps" / "full" / "CLI-0001" / "heatmaps.tfrecord").is_file()

    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # --all: every registered partition, through the queue (a list of partitions: test_slurm_postgres.py)
        sh([str(BIN / "dagster"), "job", "backfill", "-j", "training_heatmaps_job", "--all", "all", "--noprompt",
            "-w", "workspace.yaml", "-l", "scone_assets"], env)
        os.environ["DAGSTER_HOME"] = str(dh)
        instance = dg.DagsterInstance.get()
        runs = wait_for_runs(instance, 3, lambda rs: all(r.is_finished for r in rs))
        assert sorted(r.tags.get("dagster/partition") for r in runs) == keys
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 3
        assert {r.job_name for r in runs} == {"training_heatmaps_job"}
        for unit in keys[1:]:
            assert (tmp / "out" / "heatmaps" / "full" / unit / "index.parquet").is_file()
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        os.environ.pop("DAGSTER_HOME", None)
