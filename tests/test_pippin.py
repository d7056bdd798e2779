"""The root run.py as Pippin drives it, on a real one-node Slurm started here (slurm_cluster.py).

Each task is made the way pippin/classifiers/scone.py makes it: a PIP_ file written from
the user's BASE file by the rules of `prepare_scone_input_lines`, then `python run.py
--config_path PIP_x.yml` with shell=True and a Python that has only PyYAML (no project
environment), then polling `squeue -h -o '%.j'` for the job name and done.txt for SUCCESS,
then predictions.csv read as Pippin's aggregator reads it.

1. train then predict (with the train task's trained_model) succeed; predictions hold the
   input's SNIDs under PROB_<task>; SCONE_SUMMARY.LOG says what was done;
2. a bad input path ends with done.txt saying FAILURE and the library's reason (through
   an sbatch template with SCONE's placeholders);
3. scancel while the job runs, and Slurm's time-limit warning, leave FAILURE with the stage;
4. --nosubmit runs the job in the foreground; a job whose Python dies without a word
   still gets a done.txt from the job script; a foreground job whose shell is killed ends;
5. bad job names are refused before anything is submitted; sbatch failing or missing is
   reported in done.txt; file names full of shell syntax stay inert;
6. the stage job alone: a failed heatmap unit fails the job with counts, a stop swallowed by
   library code is raised again, no reason says SUCCESS.
Skips with the reason when Slurm is not installed, except under CI, where it fails.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from astropy.io import fits
from slurm_cluster import running_cluster

from scone_assets.simulate.run import simulate

REPO = Path(__file__).resolve().parents[1]
RUN_PY = REPO / "run.py"
PREFIX = "PIPTEST"

# pippin/classifiers/scone.py
KEYLIST_SCONE_INPUT = ["init_env_train", "init_env_heatmaps", "prescale_heatmaps", "nevt_select_heatmaps",
                       "batch_size", "categorical", "class_balanced", "num_epochs", "num_mjd_bins",
                       "num_wavelength_bins", "mode", "trained_model", "prob_column_name"]

BASE = """# SCONE config, as a Pippin user writes it (BASE: in the CLASSIFICATION block)
output_path: /will/be/replaced/by/pippin
input_data_paths:
  - /will/be/replaced/too
mode: train
num_epochs: 400
num_wavelength_bins: 32
num_mjd_bins: 180
batch_size: 32
prescale_heatmaps: 1
seed: 5
sbatch_job_name: replaced_by_pippin
sbatch_mem: 1
"""

TEMPLATE = """#!/bin/bash
#SBATCH --job-name=REPLACE_NAME
#SBATCH --output=REPLACE_LOGFILE
#SBATCH --time=REPLACE_WALLTIME
#SBATCH --mem=REPLACE_MEM
#SBATCH --cpus-per-task=REPLACE_CPUS_PER_TASK
echo "from the operator's template"

REPLACE_JOB
"""


def prepare_scone_input_lines(base_file: Path, output_dir: Path, mode: str, sim_dirs: list[Path],
                              job_base_name: str, options: dict, fitres_files: list[Path] = ()) -> list[str]:
    """Pippin's SconeClassifier.prepare_scone_input_lines, rule for rule; `fitres_files`: the
    LCFIT outputs Pippin lists under OPTIONAL_MASK_FIT (those whose folder is a sim's VERSION)."""
    options_local = dict(options)
    options_local["MODE"] = mode
    if mode == "predict":
        options_local.setdefault("PROB_COLUMN_NAME", f"PROB_{output_dir.name}")
    config_lines, key_replace, flag_remove_line = [], {}, False
    for line_in in base_file.read_text().split("\n"):
        line_out = line_in
        words = line_in.split()
        if not words:
            flag_remove_line = False
        else:
            if words[0] == "output_path:":
                line_out = line_in.replace(words[1], str(output_dir))
            if flag_remove_line and words[0] != "-":
                flag_remove_line = False
            if words[0] in ("input_data_paths:", "snid_select_files:", "sbatch_job_name:"):
                flag_remove_line = True
            for key in KEYLIST_SCONE_INPUT:
                if words[0] == key + ":" and key.upper() in options_local:
                    key_replace[key.upper()] = True
                    line_out = line_in.replace(words[1], str(options_local[key.upper()]))
            if mode == "predict" and "prescale" in words[0]:
                line_out = f"# WARNING: {words[0]} removed for {mode} mode."
        if not flag_remove_line:
            config_lines.append(line_out)
    config_lines += ["", "# ======================================= ", "# keys added by pippin\n ",
                     f"sbatch_job_name: {job_base_name}\n", "input_data_paths:"]
    config_lines += [f"  - {os.path.realpath(d)}" for d in sim_dirs]
    for key_pippin, val in options_local.items():
        if key_pippin not in key_replace and key_pippin.lower() in KEYLIST_SCONE_INPUT:
            config_lines += ["", f"{key_pippin.lower()}:  {val}"]
    versions = {os.path.basename(os.path.realpath(d)) for d in sim_dirs}
    fitres = [f for f in fitres_files if f.parent.name in versions]
    if fitres:
        config_lines += ["", "# Train on events passing LCFIT", "snid_select_files:"]
        config_lines += [f"  - {f}" for f in fitres]
    return config_lines


class PippinTask:
    """One SCONE classification task as Pippin runs it: output dir <prefix>/3_CLAS/<name>."""

    def __init__(self, root: Path, name: str, base: Path, mode: str, sim_dirs: list[Path], options: dict,
                 fitres_files: list[Path] = ()):
        self.output_dir = root / "PIPPIN_OUTPUT" / PREFIX / "3_CLAS" / name
        self.job_base_name = f"{self.output_dir.parents[1].name}__{self.output_dir.name}"
        self.base, self.mode, self.sim_dirs, self.options = base, mode, sim_dirs, options
        self.fitres_files = list(fitres_files)
        self.seen_in_squeue = 0

    @property
    def done_file(self) -> Path:
        return self.output_dir / "done.txt"

    def classify(self, env: dict, extra: str = "", check: bool = True) -> subprocess.CompletedProcess:
        if self.output_dir.exists():
            shutil.rmtree(self.output_dir)
        self.output_dir.mkdir(parents=True)
        self.config = self.output_dir / f"PIP_{self.base.name}"
        lines = prepare_scone_input_lines(self.base, self.output_dir, self.mode, self.sim_dirs,
                                          self.job_base_name, self.options, self.fitres_files)
        self.config.write_text("".join(f"{line}\n" for line in lines))
        cmd = f"{shlex.quote(sys.executable)} -S {RUN_PY} --config_path {self.config} {extra}"
        res = subprocess.run([cmd], shell=True, env=env, cwd=self.output_dir.parents[2], capture_output=True,
                             text=True, timeout=600)  # Pippin ignores the code; the tests look
        if check:
            assert res.returncode == 0, res.stdout + res.stderr
        return res

    def wait(self, env: dict, timeout: float = 300) -> bool:
        """Pippin's _check_completion + check_for_job: done.txt decides; without it the job
        must be in squeue, and 10 empty polls are a failure."""
        deadline, empty = time.time() + timeout, 0
        while time.time() < deadline:
            if self.done_file.exists():
                return "SUCCESS" in self.done_file.read_text().upper()
            names = squeue_names(env)
            if any(self.job_base_name in n for n in names):
                self.seen_in_squeue += 1
                empty = 0
            else:
                empty += 1
                assert empty < 10, f"no Slurm job matching {self.job_base_name} and no done.txt:\n{self.log()}"
            time.sleep(1)
        raise AssertionError(f"{self.job_base_name} did not finish in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        path = self.output_dir / "output.log"
        return path.read_text()[-3000:] if path.exists() else "(no output.log)"

    def predictions(self) -> pd.DataFrame:
        """Pippin's aggregator: the first column and the PROB_ columns."""
        df = pd.read_csv(self.output_dir / "predictions.csv", comment="#")
        return df.drop(columns=[c for i, c in enumerate(df.columns) if i != 0 and "PROB_" not in c])

    def summary(self) -> dict:
        return yaml.safe_load((self.output_dir / "SCONE_SUMMARY.LOG").read_text())


def squeue_names(env: dict) -> list[str]:
    res = subprocess.run(["squeue", "-h", "-o", "%.j"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [ln.strip() for ln in res.stdout.splitlines()]


def snids_of(folder: Path) -> set[str]:
    out: set[str] = set()
    for head in sorted(folder.glob("*_HEAD.FITS*")):
        with fits.open(head) as hdul:
            out |= {str(s).strip() for s in hdul[1].data["SNID"]}
    return out


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory)


@pytest.fixture(scope="module")
def site(cluster, tmp_path_factory):
    """Simulations, the BASE file, and the environment of a plain Python with PyYAML only."""
    import yaml as _yaml

    root = tmp_path_factory.mktemp("pippin")
    sims = root / "sims"
    simulate(sims / "PIPSIM_TRAIN", 60, survey="des", seed=21, per_file=30, mix="SNIa=0.5,SNII=0.5", jobs=1,
             progress=False)
    simulate(sims / "PIPSIM_DATA", 40, survey="des", seed=22, per_file=40, mix="SNIa=0.5,SNII=0.5", jobs=1,
             progress=False)
    simulate(sims / "PIPSIM_BIG", 400, survey="des", seed=23, per_file=400, jobs=1, progress=False)
    base = root / "SCONE_BASE.yml"
    base.write_text(BASE)
    yaml_only = root / "yaml_only"
    yaml_only.mkdir()
    (yaml_only / "yaml").symlink_to(Path(_yaml.__file__).parent)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(root)), "PYTHONPATH": str(yaml_only),
           "USER": os.environ.get("USER", "root"), **cluster.env}
    plain = [sys.executable, "-S", "-c"]
    assert subprocess.run([*plain, "import yaml"], env=env, capture_output=True).returncode == 0
    no_tf = subprocess.run([*plain, "import tensorflow"], env=env, capture_output=True, text=True)
    assert no_tf.returncode != 0 and "No module named 'tensorflow'" in no_tf.stderr
    return root, sims, base, env


@pytest.fixture(scope="module")
def trained(site):
    root, sims, base, env = site
    task = PippinTask(root, "SCONE_TRAIN_PIPSIM", base, "train", [sims / "PIPSIM_TRAIN"], {"NUM_EPOCHS": 2})
    res = task.classify(env)
    assert res.stdout.startswith("Submitted batch job ") and res.stdout.split()[3].isdigit(), res.stdout
    assert task.wait(env), f"{task.done_file.read_text()}\n{task.log()}"
    return task


def test_train(trained, site):
    _, sims, _, _ = site
    out = trained.output_dir
    assert trained.seen_in_squeue > 0  # Pippin found the job by its name while it ran
    script = (out / "job.slurm").read_text()
    assert f"#SBATCH --job-name={trained.job_base_name}" in script and "#SBATCH --mem=1G" in script
    assert "#SBATCH --time=20:00:00" in script and "#SBATCH --signal=B:USR1@120" in script
    assert (out / "trained_model" / "model.keras").is_file() and (out / "heatmaps").is_dir()
    assert "SUCCESS" in (out / "output.log").read_text()
    pred = trained.predictions()
    assert list(pred.columns) == ["SNID", "PROB_SCONE"]
    assert set(pred.SNID.astype(str)) == snids_of(sims / "PIPSIM_TRAIN")
    s = trained.summary()
    assert s["PROGRAM_CLASS"] == "scone_train" and s["STATUS"] == "SUCCESS"
    assert s["N_LC_EXPECT"] == 60 and s["N_LC_WRITTEN"] == 60 and s["PRESCALE_HEATMAPS"] == [1, 1]
    assert [next(iter(a)) for a in s["ACCURACY"]] == ["training", "validation", "test"]
    assert s["INPUT_DATA_DIRS"] == [str(sims / "PIPSIM_TRAIN")] and s["CPU_SUM"] > 0


def test_predict_with_trained_model(trained, site):
    root, sims, base, env = site
    task = PippinTask(root, "SCONE_PREDICT_PIPSIM", base, "predict", [sims / "PIPSIM_DATA"],
                      {"TRAINED_MODEL": trained.output_dir / "trained_model"})
    task.classify(env)
    assert task.wait(env), f"{task.done_file.read_text()}\n{task.log()}"
    pip = task.config.read_text()
    assert "# WARNING: prescale_heatmaps: removed for predict mode." in pip
    pred = task.predictions()
    assert list(pred.columns) == ["SNID", "PROB_SCONE_PREDICT_PIPSIM"]
    assert set(pred.SNID.astype(str)) == snids_of(sims / "PIPSIM_DATA") and len(pred) == 40
    assert pred.PROB_SCONE_PREDICT_PIPSIM.between(0, 1).all()
    s = task.summary()
    assert s["PROGRAM_CLASS"] == "scone_predict" and s["STATUS"] == "SUCCESS" and "ACCURACY" not in s
    assert "#SBATCH --time=4:00:00" in (task.output_dir / "job.slurm").read_text()


def test_train_on_events_passing_lcfit(site):
    """Pippin's OPTIONAL_MASK_FIT: a FITRES file (SNANA's VARNAMES/SN rows, VERSION_PHOTOMETRY
    naming the simulation) in snid_select_files; the task trains on exactly its SNIDs."""
    root, sims, base, env = site
    snids = sorted(snids_of(sims / "PIPSIM_TRAIN"), key=int)
    passing = snids[::2]  # 30 of the 60 "pass the fit"
    fit_dir = root / "PIPPIN_OUTPUT" / PREFIX / "2_LCFIT" / "FIT_PIPSIM" / "output" / "PIPSIM_TRAIN"
    fit_dir.mkdir(parents=True)
    fitres = fit_dir / "FITOPT000.FITRES.gz"
    import gzip

    rows = "".join(f"SN: {s} 10 0.3 0.01\n" for s in passing)
    with gzip.open(fitres, "wt") as fh:
        fh.write(f"# VERSION_PHOTOMETRY: PIPSIM_TRAIN\n# FITOPT: DEFAULT\nVARNAMES: CID TYPE zHD zHDERR\n{rows}")
    other = root / "PIPPIN_OUTPUT" / PREFIX / "2_LCFIT" / "FIT_PIPSIM" / "output" / "OTHER_SIM"
    other.mkdir(parents=True)
    (other / "FITOPT000.FITRES").write_text("# VERSION_PHOTOMETRY: OTHER_SIM\nVARNAMES: CID\nSN: 1\n")
    task = PippinTask(root, "SCONE_TRAIN_LCFIT", base, "train", [sims / "PIPSIM_TRAIN"], {"NUM_EPOCHS": 1},
                      fitres_files=[fitres, other / "FITOPT000.FITRES"])
    task.classify(env)
    assert task.wait(env), f"{task.done_file.read_text()}\n{task.log()}"
    pip = task.config.read_text()
    assert f"snid_select_files:\n  - {fitres}\n" in pip and "OTHER_SIM" not in pip  # Pippin's own filter
    assert set(task.predictions().SNID.astype(str)) == set(passing)
    s = task.summary()
    assert s["N_LC_WRITTEN"] == 30 and s["N_LC_SKIPPED"] == {"not in snid_select_files": 30}
    assert s["SNID_SELECT_FILES"] == [str(fitres)]


def test_bad_input_path_fails_with_the_reason(site):
    root, sims, base, env = site
    (root / "SBATCH_scone.TEMPLATE").write_text(TEMPLATE)
    tbase = root / "SCONE_BASE_TEMPLATE.yml"
    tbase.write_text(BASE + f"sbatch_template_train: {root / 'SBATCH_scone.TEMPLATE'}\n")
    missing = sims / "NO_SUCH_SIM"
    task = PippinTask(root, "SCONE_TRAIN_MISSING", tbase, "train", [missing], {"NUM_EPOCHS": 2})
    task.classify(env)
    assert task.wait(env, timeout=180) is False
    text = task.done_file.read_text()
    assert text.startswith("FAILURE: ") and str(missing) in text and "SUCCESS" not in text.upper(), text
    script = (task.output_dir / "job.slurm").read_text()
    assert f"#SBATCH --job-name={task.job_base_name}" in script and "REPLACE_" not in script
    assert "#SBATCH --mem=1G" in script and "from the operator's template" in task.log()
    assert task.summary()["STATUS"] == "FAILURE"


def _running_big(site, name: str) -> tuple[PippinTask, str]:
    root, sims, base, env = site
    task = PippinTask(root, name, base, "train", [sims / "PIPSIM_BIG"], {"NUM_EPOCHS": 2})
    job_id = task.classify(env).stdout.split()[3]
    wait_for(lambda: "heatmaps in " in task.log(), 120, f"{name} to reach its heatmaps stage")
    return task, job_id


def _gone(env: dict, task: PippinTask) -> bool:
    """The job left squeue and none of its processes is left on the node."""
    if any(task.job_base_name in n for n in squeue_names(env)):
        return False
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return str(task.config) not in ps


def test_scancel_leaves_failure(site):
    env = site[3]
    task, _ = _running_big(site, "SCONE_TRAIN_CANCEL")
    subprocess.run(["scancel", "-n", task.job_base_name], env=env, check=True, timeout=60)
    assert task.wait(env, timeout=120) is False
    text = task.done_file.read_text()
    assert text.startswith("FAILURE: cancelled or terminated during heatmaps"), text
    wait_for(lambda: _gone(env, task), 60, "the cancelled job to leave squeue")


def test_time_limit_warning_leaves_failure(site):
    """What --signal=B:USR1@120 does before the time limit: USR1 to the batch shell only."""
    env = site[3]
    task, job_id = _running_big(site, "SCONE_TRAIN_TIMEOUT")
    subprocess.run(["scancel", "--batch", "--signal=USR1", job_id], env=env, check=True, timeout=60)
    assert task.wait(env, timeout=120) is False
    assert task.done_file.read_text().startswith("FAILURE: time limit reached during heatmaps")
    wait_for(lambda: _gone(env, task), 60, "the stopped job to leave squeue")
    assert task.summary()["STATUS"] == "FAILURE"


def test_nosubmit_runs_in_the_foreground(trained, site):
    root, sims, base, env = site
    task = PippinTask(root, "SCONE_PREDICT_NOSUBMIT", base, "predict", [sims / "PIPSIM_TRAIN"],
                      {"TRAINED_MODEL": trained.output_dir / "trained_model"})
    res = task.classify(env, extra="--nosubmit --heatmaps_subdir hm/predict")
    assert "SUCCESS" in task.done_file.read_text() and (task.output_dir / "job.slurm").is_file()
    assert (task.output_dir / "hm" / "predict" / "full").is_dir() and not (task.output_dir / "heatmaps").exists()
    assert "Submitted batch job" not in res.stdout and "exit code 0" in res.stdout
    assert set(task.predictions().SNID.astype(str)) == snids_of(sims / "PIPSIM_TRAIN")
    assert "SUCCESS" in (task.output_dir / "output.log").read_text()


def test_job_dying_without_a_word_still_writes_done(site):
    """SIGKILL or out of memory: the job script writes done.txt for the Python that could not."""
    root, sims, base, env = site
    kbase = root / "SCONE_BASE_KILLED.yml"
    kbase.write_text(BASE + "init_env_train: \"python() { kill -KILL $BASHPID; }\"\n")
    task = PippinTask(root, "SCONE_TRAIN_KILLED", kbase, "train", [sims / "PIPSIM_TRAIN"], {})
    res = task.classify(env, extra="-n", check=False)
    assert res.returncode == 137, res.stdout + res.stderr
    assert task.done_file.read_text() == "FAILURE: job exited with code 137 without a result (see output.log)\n"


@pytest.mark.parametrize("name", ["x;touch pwned", "x\ntouch pwned", "$(touch pwned)", "x y", "`id`", ""])
def test_bad_job_names_are_refused_before_submission(site, name, tmp_path):
    root, sims, base, env = site
    out = tmp_path / "out"
    cfg = tmp_path / "PIP_bad.yml"
    cfg.write_text(yaml.safe_dump({"output_path": str(out), "input_data_paths": [str(sims / "PIPSIM_TRAIN")],
                                   "sbatch_job_name": name, "sbatch_mem": 1}))
    before = squeue_names(env)
    res = subprocess.run([sys.executable, "-S", str(RUN_PY), "--config_path", str(cfg)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "sbatch_job_name" in res.stderr, res.stderr
    text = (out / "done.txt").read_text()
    assert text.startswith("FAILURE: ") and "sbatch_job_name" in text
    assert not (out / "job.slurm").exists() and not (tmp_path / "pwned").exists()
    assert set(squeue_names(env)) <= set(before)
    cfg.write_text(yaml.safe_dump({"output_path": str(out), "input_data_paths": [str(sims / "PIPSIM_TRAIN")]}))
    res = subprocess.run([sys.executable, "-S", str(RUN_PY), "--config_path", str(cfg), "--sbatch_job_name", name],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--sbatch_job_name" in res.stderr and not (tmp_path / "pwned").exists()


def test_sbatch_failing_or_missing_is_reported(site, tmp_path):
    root, sims, base, env = site
    out = tmp_path / "out"
    cfg = tmp_path / "PIP_x.yml"
    cfg.write_text(yaml.safe_dump({"output_path": str(out), "input_data_paths": [str(sims / "PIPSIM_TRAIN")],
                                   "sbatch_mem": 10_000_000}))
    (out).mkdir()
    (out / "done.txt").write_text("SUCCESS\n")  # stale, from an earlier run
    run = [sys.executable, "-S", str(RUN_PY), "--config_path", str(cfg)]
    res = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    text = (out / "done.txt").read_text()
    assert res.returncode == 2 and text.startswith("FAILURE: sbatch failed (exit code 1)"), text
    assert text.strip() in res.stderr
    res = subprocess.run(run, env=env | {"PATH": "/nonexistent", "SCONE_SBATCH_MEM": "1"}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    text = (out / "done.txt").read_text()
    assert res.returncode == 2 and text.startswith("FAILURE: sbatch is not installed"), text
    assert "#SBATCH --mem=1G" in (out / "job.slurm").read_text()  # the site's override won


def test_failed_heatmap_unit_fails_the_job_with_counts(site, tmp_path):
    """The stage job alone, as job.slurm runs it: one unreadable unit of two is a FAILURE
    (Pippin sees no partial result), the model step is not run, the reason counts."""
    root, sims, base, env = site
    bad = tmp_path / "PIPSIM_HALF"
    shutil.copytree(sims / "PIPSIM_TRAIN", bad)
    (bad / "PIPSIM_TRAIN-0002_PHOT.FITS").write_bytes(b"not a FITS file")
    out = tmp_path / "out"
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(yaml.safe_dump({"output_path": str(out), "input_data_paths": [str(bad)], "num_epochs": 1}))
    res = subprocess.run([sys.executable, "-m", "scone_assets.pippin.job", "--config_path", str(cfg),
                          "--output_path", str(out)], capture_output=True, text=True, timeout=300)
    text = (out / "done.txt").read_text()
    assert res.returncode == 1 and text.startswith("FAILURE: heatmaps: 1 of 2 unit(s) failed, 30 heatmaps made; "
                                                   "the train step was not run: "), text + res.stderr
    assert not (out / "trained_model").exists()
    s = yaml.safe_load((out / "SCONE_SUMMARY.LOG").read_text())
    assert s["STATUS"] == "FAILURE" and s["N_UNIT_EXPECT"] == 2 and s["N_UNIT_DONE"] == 1 and s["N_LC_WRITTEN"] == 30


def test_reasons_never_say_success():
    from scone_assets.pippin.job import clean_reason

    reason = clean_reason("step 1 SUCCESS\nstep 2 Successful")
    assert "SUCCESS" not in reason.upper() and "\n" not in reason and reason.startswith("step 1 ")


def test_a_swallowed_stop_is_raised_again(site, tmp_path, monkeypatch):
    """Library code under a bare `except:` can swallow the exception a signal raises: the
    job stops at the next stage boundary anyway, and done.txt keeps the signal's reason."""
    import signal

    from scone_assets.pippin import job

    sims = site[1]
    out = tmp_path / "out"
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(yaml.safe_dump({"output_path": str(out), "input_data_paths": [str(sims / "PIPSIM_TRAIN")]}))
    calls = []

    def swallowing_heatmaps(config, summary):
        job.STATE.stage = "heatmaps"
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(1)
        except BaseException:  # noqa: B036 - what such library code does
            calls.append("swallowed")

    monkeypatch.setattr(job, "STATE", job._State())
    monkeypatch.setattr(job, "_watchdog", lambda state: None)  # it would end pytest's process
    monkeypatch.setattr(job, "heatmaps_stage", swallowing_heatmaps)
    monkeypatch.setattr(job, "train_stage", lambda *a: calls.append("trained"))
    old = signal.signal(signal.SIGUSR1, job._on_signal)
    try:
        code = job.run(str(cfg), str(out), None)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert calls == ["swallowed"] and code == 143
    assert (out / "done.txt").read_text().startswith("FAILURE: time limit reached during heatmaps")
    assert yaml.safe_load((out / "SCONE_SUMMARY.LOG").read_text())["STATUS"] == "FAILURE"


def test_hostile_file_names_stay_inert(site, tmp_path):
    """Folder and config names full of shell syntax reach the job script quoted (here with
    --nosubmit and a relative config path, resolved against the current folder)."""
    env = site[3]
    weird = tmp_path / "a;touch pwned1;$(touch pwned2)`touch pwned3`"
    weird.mkdir()
    out = tmp_path / "out;$(touch${IFS}pwned4)`touch${IFS}pwned6`"  # one word: it is on #SBATCH lines
    cfg = weird / "PIP_$(touch pwned5).yml"
    cfg.write_text(yaml.safe_dump({"output_path": str(out), "input_data_paths": [str(tmp_path / "NO_SIM")]}))
    res = subprocess.run([sys.executable, "-S", str(RUN_PY), "--config_path", cfg.name, "-n"], cwd=weird, env=env,
                         capture_output=True, text=True, timeout=300)
    text = (out / "done.txt").read_text()
    assert res.returncode == 2 and text.startswith("FAILURE: ") and str(tmp_path / "NO_SIM") in text, text
    assert list(tmp_path.rglob("pwned*")) == [] and not (REPO / "pwned1").exists()


def test_help_and_usage(site):
    env = site[3]
    res = subprocess.run([sys.executable, "-S", str(RUN_PY), "-H"], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "sbatch_template_train" in res.stdout and "init_env_train" in res.stdout
    res = subprocess.run([sys.executable, "-S", str(RUN_PY)], env=env, capture_output=True, text=True)
    assert res.returncode == 2 and "--config_path is required" in res.stderr
    res = subprocess.run([sys.executable, "-S", str(RUN_PY), "--config_path", "/no/such.yml"], env=env,
                         capture_output=True, text=True)
    assert res.returncode == 2 and "config file /no/such.yml does not exist" in res.stderr


def test_foreground_job_ends_with_its_shell(site):
    """--nosubmit, and the job script's shell killed outright: its Python is told (SIGTERM on
    the parent's death), writes done.txt and ends; nothing is left running."""
    root, sims, base, env = site
    task = PippinTask(root, "SCONE_TRAIN_SHELL_KILLED", base, "train", [sims / "PIPSIM_BIG"], {"NUM_EPOCHS": 2})
    task.output_dir.mkdir(parents=True)
    task.config = task.output_dir / "PIP_x.yml"
    task.config.write_text("\n".join(prepare_scone_input_lines(base, task.output_dir, "train", [sims / "PIPSIM_BIG"],
                                                               task.job_base_name, {})) + "\n")
    proc = subprocess.Popen([sys.executable, "-S", str(RUN_PY), "--config_path", str(task.config), "-n"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "heatmaps in " in task.log(), 120, "the heatmaps stage")
        shell = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True)
        [pid] = shell.stdout.split()
        os.kill(int(pid), 9)
        assert proc.wait(timeout=60) == 128 + 9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wait_for(task.done_file.exists, 30, "done.txt")
    assert task.done_file.read_text().startswith("FAILURE: cancelled or terminated during heatmaps (SIGTERM)")
    wait_for(lambda: _gone(env, task), 30, "the job's processes to end")


def test_a_second_signal_during_the_first_changes_nothing(site, tmp_path, monkeypatch):
    """scancel reaches the Python twice (from Slurm and forwarded by the job script): the
    second SIGTERM, arriving while the first one writes done.txt, must not cut that short."""
    import signal

    from scone_assets.pippin import job

    sims = site[1]
    out = tmp_path / "out"
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(yaml.safe_dump({"output_path": str(out), "input_data_paths": [str(sims / "PIPSIM_TRAIN")]}))
    real_write, sent = job.atomic_write_text, []

    def write_during_a_second_signal(path, text):
        if not sent:
            sent.append(path)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
        real_write(path, text)

    def heatmaps(config, summary):
        job.STATE.stage = "heatmaps"
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)

    monkeypatch.setattr(job, "STATE", job._State())
    monkeypatch.setattr(job, "_watchdog", lambda state: None)
    monkeypatch.setattr(job, "atomic_write_text", write_during_a_second_signal)
    monkeypatch.setattr(job, "heatmaps_stage", heatmaps)
    old = signal.signal(signal.SIGTERM, job._on_signal)
    try:
        code = job.run(str(cfg), str(out), None)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert code == 143 and sent == [out / "done.txt"]
    assert (out / "done.txt").read_text() == "FAILURE: cancelled or terminated during heatmaps (SIGTERM)\n"
