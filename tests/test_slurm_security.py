"""Nothing a run's tags or inputs carry becomes a command on the cluster.

Through the real launcher and `dagster job launch`, with an `sbatch` stand-in that only
keeps the script it is given: hostile tag values are refused before submission, a tag the
allow-list forbids refuses the run, and what is allowed through (other tags, the run's
config, file names full of shell metacharacters) stays inert when the captured script is
run by bash, first with the Dagster entry point stubbed, then for real.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from scone_assets.launchers.sbatch import TAG_OPTIONS, SbatchValueError, check_tags
from scone_assets.launchers.slurm import SlurmRunLauncher
from scone_assets.simulate.run import simulate

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKERS = ("pwned", "pwned2", "pwned3", "pwned4")
HOSTILE = ["debug\ntouch pwned", "debug; touch pwned", "$(touch pwned)", "`touch pwned`", "debug' ; touch 'pwned",
           'debug" ; touch "pwned', "a" * 5000, "d\u00e9bug", "1\r\n#SBATCH --uid=0", "--wrap=touch"]
VALID = {"slurm/partition": "gpu,debug", "slurm/time": "1-12:00:00", "slurm/mem": "16G", "slurm/cpus_per_task": "8",
         "slurm/gpus": "a100:2"}


@pytest.mark.parametrize("tag", sorted(TAG_OPTIONS))
def test_every_overridable_tag_refuses_hostile_values(tag):
    for value in HOSTILE:
        with pytest.raises(SbatchValueError, match=f"run tag {tag}") as err:
            check_tags({tag: value}, list(TAG_OPTIONS))
        assert "characters long" in str(err.value) or "not valid for sbatch" in str(err.value) \
            or "control or non-ASCII" in str(err.value)
    assert check_tags({tag: VALID[tag]}, list(TAG_OPTIONS)) == {TAG_OPTIONS[tag]: VALID[tag]}


def test_allow_list_and_operator_values():
    with pytest.raises(SbatchValueError, match="slurm/partition may not override .*allowed_tag_overrides: slurm/mem"):
        check_tags({"slurm/partition": "debug"}, ["slurm/mem"])
    with pytest.raises(SbatchValueError, match="set by the launcher"):
        check_tags({"slurm/job_id": "1"}, list(TAG_OPTIONS))
    with pytest.raises(SbatchValueError, match="not a Slurm option"):
        check_tags({"slurm/uid": "0"}, list(TAG_OPTIONS))
    with pytest.raises(SbatchValueError, match="partition: 'cpu\\\\ntouch x' contains a line break"):
        SlurmRunLauncher(partition="cpu\ntouch x")
    with pytest.raises(SbatchValueError, match="unknown tag"):
        SlurmRunLauncher(allowed_tag_overrides=["slurm/account"])
    # the operator's own values stay free-form
    assert SlurmRunLauncher(partition="any thing", extra_sbatch_args=["--comment=a b"]).sbatch_options({}) == [
        "--partition=any thing", "--comment=a b"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    root = tmp_path_factory.mktemp("security")
    sims = root / "sims" / "we;ird $(touch pwned) `touch pwned2` 'q\" x"
    simulate(sims, 20, survey="des", seed=21, per_file=20, mix="SNIa=0.5,SNII=0.5", jobs=1, progress=False)
    (root / "train.yml").write_text(f"input_path: {json.dumps(str(sims))}\nnum_mjd_bins: 30\n")
    stand_in = root / "bin"
    stand_in.mkdir()
    (stand_in / "sbatch").write_text('#!/bin/bash\n# keeps the script; never runs it\n'
                                     'cp "${@: -1}" "$SBATCH_KEPT/$(basename "${@: -1}")"\necho 4242\n')
    (stand_in / "sbatch").chmod(0o755)
    kept = root / "kept"
    kept.mkdir()
    home = root / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"""
run_coordinator:  # no queue: `dagster job launch` hands the run to the launcher at once
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
run_launcher:
  module: scone_assets.launchers.slurm
  class: SlurmRunLauncher
  config:
    partition: debug
    log_dir: {root / 'slurm_logs'}
    env_setup: ["export SCONE_JOBS=1"]
    allowed_tag_overrides: [slurm/partition, slurm/mem, slurm/cpus_per_task, slurm/gpus]
""")
    env = os.environ | {"DAGSTER_HOME": str(home), "SCONE_TRAIN_CONFIG": str(root / "train.yml"),
                        "SCONE_OUTPUT_ROOT": str(root / "out"), "SCONE_JOBS": "1", "SBATCH_KEPT": str(kept),
                        "PATH": f"{stand_in}:{os.environ['PATH']}"}
    env.pop("SCONE_PREDICT_CONFIG", None)
    res = subprocess.run([str(BIN / "scone"), "register", "--config_path", str(root / "train.yml")], env=env,
                         capture_output=True, text=True, cwd=root)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("training_sims: 1 partitions (1 new)")
    [key] = [ln.split()[0] for ln in res.stdout.splitlines() if ln.startswith("  ")]
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        yield root, env, key, kept, dg.DagsterInstance.get()
    finally:
        os.environ.pop("DAGSTER_HOME", None)


def launch(env, key, tags) -> None:
    res = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-l", "scone_assets",
                          "-j", "training_heatmaps_job", "--tags", json.dumps({"dagster/partition": key, **tags})],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]


def no_payload_ran(*folders: Path) -> None:
    for folder in folders:
        for marker in MARKERS:
            assert not (folder / marker).exists(), f"a payload ran: {folder / marker}"


def test_hostile_and_forbidden_tags_fail_the_run_and_submit_nothing(deployment):
    root, env, key, kept, instance = deployment
    for tags, expected in (({"slurm/partition": "debug\ntouch pwned"}, "control or non-ASCII character"),
                           ({"slurm/mem": "4G; touch pwned"}, "is not valid for sbatch --mem"),
                           ({"slurm/time": "01:00:00"}, "may not override the Slurm configuration here")):
        before = len(instance.get_runs())
        launch(env, key, tags)
        run = instance.get_runs()[0]
        assert len(instance.get_runs()) == before + 1 and run.status == dg.DagsterRunStatus.FAILURE
        message = " ".join(e.message or "" for e in instance.all_logs(run.run_id))
        assert f"refused to submit the run to Slurm: run tag {next(iter(tags))}" in message and expected in message
        assert not (root / "slurm_logs" / f"{run.run_id}.sbatch").exists()
    assert list(kept.iterdir()) == []  # sbatch was never called
    no_payload_ran(root, REPO)


def test_what_gets_through_is_inert_and_metacharacter_file_names_run(deployment, tmp_path):
    root, env, key, kept, instance = deployment
    payload = {"note": "$(touch pwned) `touch pwned2` ; touch pwned3\ntouch pwned4 'x\"", "slurm/mem": "2G"}
    launch(env, key, payload)
    run = instance.get_runs()[0]
    assert run.tags["slurm/job_id"] == "4242"
    script = kept / f"{run.run_id}.sbatch"
    text = script.read_text()
    assert "#SBATCH --mem=2G" in text and "#SBATCH --partition=debug" in text and "pwned" not in text

    # the entry point stubbed: it receives the serialized arguments as one untouched word
    stub = tmp_path / "entry"
    stub.write_text('#!/bin/bash\nprintf "%s" "$#" > "$STUB_OUT.argc"\nprintf "%s" "${@: -1}" > "$STUB_OUT"\n')
    stub.chmod(0o755)
    python = sys.executable
    assert f"exec {python} -m dagster" in text
    stubbed = tmp_path / "stubbed.sbatch"
    stubbed.write_text(text.replace(f"exec {python} -m dagster", f"exec {stub}"))
    out = tmp_path / "argv"
    res = subprocess.run(["bash", str(stubbed)], cwd=tmp_path, env=env | {"STUB_OUT": str(out)},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    args_file = root / "slurm_logs" / f"{run.run_id}.args.json"
    assert out.read_text() == args_file.read_text() and (tmp_path / "argv.argc").read_text() == "3"
    assert instance.get_run_by_id(run.run_id).tags["note"] == payload["note"]  # kept as data, not as script
    no_payload_ran(tmp_path, root, REPO)

    # for real: bash runs the captured script as a compute node would; heatmaps of the unit whose
    # file names are full of metacharacters are made, and nothing in them ran
    res = subprocess.run(["bash", str(script)], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (root / "slurm_logs" / f"{run.run_id}.log").read_text()[-3000:] \
        if (root / "slurm_logs" / f"{run.run_id}.log").exists() else res.stderr[-3000:]
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
    unit = key
    from scone_assets.heatmaps import store

    record = store.read_unit_record(store.unit_folder(root / "out" / "heatmaps", "full", unit))
    assert record is not None and record.written + sum(record.skipped.values()) == 20
    assert "we;ird $(touch pwned)" in record.fingerprint["files"][0]["path"]
    no_payload_ran(root, REPO, root / "sims", root / "out")
