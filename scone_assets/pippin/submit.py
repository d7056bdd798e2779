"""What the root `run.py` does when Pippin calls it: read the SCONE config, write
`<output_path>/job.slurm` and submit it as ONE Slurm job, then return at once.

Standard library and PyYAML only (Pippin calls run.py with its own Python); the job
itself runs `python -m scone_assets.pippin.job` in the project's environment.

Pippin's contract (pippin/classifiers/scone.py): the job's name contains
`sbatch_job_name` while it is queued or running; `<output_path>/done.txt` appears at the
end and holds SUCCESS or not. So every outcome writes done.txt: a config refused here, an
sbatch that fails, and (in the job) every failure, a cancel and a time-out.

What reaches the job script from the config is checked here (issue 12):
- values on `#SBATCH` lines and SCONE's `REPLACE_*` placeholders follow Slurm's grammar
  (the rules of `scone_assets.launchers.sbatch`); the job name is letters, digits and
  `_ . -`; the log path is one printable word without blanks or quotes;
- paths in the script body are quoted with `shlex.quote`;
- no config value carries a line break into the script, except the two that are shell by
  SCONE's own meaning: `init_env_train` (a shell line, e.g. `source activate env`, run
  before the job) and the operator's sbatch template file (`sbatch_template_train`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scone_assets.atomic import atomic_write_text
from scone_assets.launchers.sbatch import RULES, printable
from scone_assets.workers import die_with_parent
from scone_assets.yaml_file import read_mapping

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DONE_FILE = "done.txt"  # SCONE's SBATCH_DONE_FILE_BASE
JOB_FILE = "job.slurm"  # SCONE's SBATCH_SCONE_FILE
LOG_FILE = "output.log"  # SCONE's SBATCH_SCONE_LOG
MODES = ("train", "predict")
WALLTIME = {"train": "20:00:00", "predict": "4:00:00"}  # SCONE's SBATCH_WALLTIME_DICT
DEFAULT_MEM_GB = 32  # SCONE's SBATCH_MEM
MEM_ENV = "SCONE_SBATCH_MEM"  # the site's override of sbatch_mem (e.g. a small test node)
WARN_SECONDS = 120  # Slurm's warning signal this long before the time limit
JOB_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")
SUBDIR = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
PLACEHOLDERS = ("REPLACE_NAME", "REPLACE_MEM", "REPLACE_LOGFILE", "REPLACE_JOB", "REPLACE_WALLTIME",
                "REPLACE_CPUS_PER_TASK")
SBATCH_TIMEOUT = 300

HELP = f"""SCONE config keys read by run.py (see README.md, "Using it from Pippin"):

mode:                  train or predict (default train)
output_path:           every output goes here (required; '.' = the current folder)
trained_model:         predict mode: the model folder (e.g. <train output_path>/trained_model)
sbatch_job_name:       the Slurm job name (default scone_<mode>); letters, digits, _ . -
                       (--sbatch_job_name overrides it)
sbatch_template_train: an sbatch template with SCONE's placeholders {", ".join(PLACEHOLDERS)}
                       (sbatch_template_default is used when it is absent); without one,
                       run.py writes its own #SBATCH lines
sbatch_mem:            GB (default {DEFAULT_MEM_GB}) or a Slurm size such as 2000M; ${MEM_ENV} overrides it
sbatch_walltime:       Slurm time limit (default {WALLTIME["train"]} train, {WALLTIME["predict"]} predict)
sbatch_ncore_heatmaps: CPUs of the job; heatmaps use them all (default 1)
init_env_train:        shell line(s) run before the job (e.g. source activate env); without it
                       the job uses {PROJECT_ROOT / ".venv" / "bin" / "python"}
init_env_heatmaps:     used when init_env_train is absent (heatmaps run in the same job)

Everything else is the `scone` config: inputs (input_data_paths, ...), heatmap and
training keys, prob_column_name, output_predict_file; `scone inspect --config_path X`
shows what a config reads.
"""


class SubmitError(Exception):
    """A config or environment that cannot become a job; the message names the key, file
    or value."""


@dataclass
class Plan:
    """One job, every value checked."""

    config_path: Path
    workdir: Path
    output_path: Path
    mode: str
    job_name: str
    time_limit: str
    mem: str | None
    cpus: str
    template: Path | None = None
    init_env: str | None = None
    heatmaps_subdir: str | None = None
    python: str = ""

    @property
    def done_file(self) -> Path:
        return self.output_path / DONE_FILE

    @property
    def job_file(self) -> Path:
        return self.output_path / JOB_FILE

    @property
    def log_file(self) -> Path:
        return self.output_path / LOG_FILE


def _expand(value: str) -> str:
    return os.path.expanduser(os.path.expandvars(value))


def read_config(path: Path) -> dict:
    return read_mapping(path, SubmitError)


def output_path_of(config: dict, source: Path, workdir: Path) -> Path:
    value = config.get("output_path")
    if not isinstance(value, str) or not value.strip():
        raise SubmitError(f"config {source}: output_path is required (a folder for every output; "
                          f"got {value!r})")
    return (workdir / _expand(value.strip())).resolve()


def _one_line(key: str, value: object, source: Path) -> str:
    text = str(value).strip()
    if not printable(text):
        raise SubmitError(f"config {source}: {key}: {text!r} has a line break, a control or a non-ASCII "
                          "character")
    return text


def _grammar(key: str, option: str, value: object, source: str) -> str:
    text = str(value).strip()
    pattern, rule = RULES[option]
    if not printable(text) or not pattern.fullmatch(text):
        raise SubmitError(f"{source}: {key}: {text!r} is not valid for sbatch (expected {rule})")
    return text


def check_job_name(value: object, where: str) -> str:
    text = "" if value is None else str(value)
    if not JOB_NAME.fullmatch(text):
        raise SubmitError(f"{where}: sbatch_job_name {text!r} is not a job name this run.py submits: "
                          "1 to 200 letters, digits, '_', '.' or '-' (Pippin's names look like "
                          "<stage>__<task>)")
    return text


def mem_value(value: object, where: str) -> str:
    """SCONE's sbatch_mem is GB; a Slurm size ("2000M", "20G", "20GB") is taken as written."""
    if isinstance(value, bool):
        raise SubmitError(f"{where}: sbatch_mem: {value!r} is not a memory size")
    if isinstance(value, (int, float)):  # a tuple: run.py may meet a Python older than 3.10
        if value < 0:
            raise SubmitError(f"{where}: sbatch_mem: {value!r} is negative")
        return f"{int(value)}G" if float(value).is_integer() else f"{round(value * 1024)}M"
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return mem_value(float(text), where)
    text = re.sub(r"(?i)([KMGT])B$", r"\1", text)
    return _grammar("sbatch_mem", "mem", text, where)


def _path_word(path: Path, what: str) -> str:
    """A path on an `#SBATCH` line: sbatch splits those lines on blanks and reads no quotes."""
    text = str(path)
    if not printable(text) or any(ch in text for ch in " \"'\\%"):
        raise SubmitError(f"{what} {text!r} cannot be written on an #SBATCH line (blanks, quotes, '%' or "
                          "control characters): choose an output_path without them")
    return text


def plan_job(config_path: str, *, workdir: Path, job_name: str | None = None,
             heatmaps_subdir: str | None = None, env: dict | None = None) -> tuple[Plan, dict]:
    """The job for `config_path`, or SubmitError. Reads only what the submission needs: the
    job validates the rest of the config with the library and reports through done.txt."""
    env = os.environ if env is None else env
    source = (workdir / _expand(config_path)).resolve()
    config = read_config(source)
    output = output_path_of(config, source, workdir)
    where = f"config {source}"
    mode = config.get("mode", "train")
    if mode not in MODES:
        raise SubmitError(f"{where}: mode: {mode!r} must be train or predict")
    if mode == "predict" and not config.get("trained_model"):
        raise SubmitError(f"{where}: mode: predict needs trained_model (a model folder, e.g. the train "
                          "task's <output_path>/trained_model)")
    if job_name is not None:
        name = check_job_name(job_name, "--sbatch_job_name")
    elif config.get("sbatch_job_name") is not None:
        name = check_job_name(config["sbatch_job_name"], where)
    else:
        name = f"scone_{mode}"
    walltime = config.get("sbatch_walltime")
    time_limit = WALLTIME[mode] if walltime in (None, "") else _grammar(
        "sbatch_walltime", "time_limit", walltime, where)
    if env.get(MEM_ENV):
        mem = mem_value(env[MEM_ENV], f"environment variable {MEM_ENV}")
    elif config.get("sbatch_mem") not in (None, ""):
        mem = mem_value(config["sbatch_mem"], where)
    else:
        mem = f"{DEFAULT_MEM_GB}G"
    ncore = config.get("sbatch_ncore_heatmaps")
    cpus = "1" if ncore in (None, "") else _grammar("sbatch_ncore_heatmaps", "cpus_per_task", ncore, where)
    template = None
    for key in ("sbatch_template_train", "sbatch_template_default"):
        if config.get(key):
            template = (workdir / _expand(_one_line(key, config[key], source))).resolve()
            if not template.is_file():
                raise SubmitError(f"{where}: {key}: template file {template} does not exist")
            break
    init_env = None
    for key in ("init_env_train", "init_env_heatmaps"):
        if config.get(key):
            if not isinstance(config[key], str):
                raise SubmitError(f"{where}: {key}: expected shell text (e.g. 'source activate env'), "
                                  f"got {config[key]!r}")
            init_env = config[key].strip()
            break
    if heatmaps_subdir is not None and (not SUBDIR.fullmatch(heatmaps_subdir)
                                        or ".." in heatmaps_subdir.split("/")):
        raise SubmitError(f"--heatmaps_subdir {heatmaps_subdir!r}: expected a folder name under "
                          "output_path (letters, digits, '_', '.', '-', '/')")
    _path_word(output / LOG_FILE, "log file")
    if init_env:
        python = "python"
    else:
        venv = PROJECT_ROOT / ".venv" / "bin" / "python"
        if not os.access(venv, os.X_OK):
            raise SubmitError(f"{venv} does not exist: create the project's environment (make venv) or set "
                              "init_env_train to the shell line that activates one")
        python = str(venv)
    plan = Plan(source, workdir, output, mode, name, time_limit, mem, cpus, template, init_env,
                heatmaps_subdir, python)
    return plan, config


def job_body(plan: Plan) -> str:
    """SCONE's REPLACE_JOB: run the stage job, forward Slurm's signals to it, and write
    done.txt when it died without writing one (SIGKILL, out of memory, no Python)."""
    q = shlex.quote
    cmd = [plan.python, "-m", "scone_assets.pippin.job", "--config_path", str(plan.config_path),
           "--output_path", str(plan.output_path)]
    if plan.heatmaps_subdir:
        cmd += ["--heatmaps_subdir", plan.heatmaps_subdir]
    # the comment shows the paths as Python literals: a line break in one stays escaped
    lines = [f"# written by {str(PROJECT_ROOT / 'run.py')!a} from {str(plan.config_path)!a}",
             "set +e  # a template's set -e must not skip the last lines",
             f"done_file={q(str(plan.done_file))}",
             "no_result() {  # done.txt for a job that ends without one",
             "    if ! grep -qs . \"$done_file\"; then",
             "        printf 'FAILURE: %s\\n' \"$1\" > \"$done_file.tmp\" && mv -f \"$done_file.tmp\" \"$done_file\"",
             "    fi",
             "}",
             f"cd {q(str(plan.workdir))} || {{ no_result {q(f'cannot enter {plan.workdir} (where run.py ran)')}; "
             "exit 1; }"]
    if plan.init_env:
        lines += ["# init_env_train from the config (shell, as in SCONE)", plan.init_env,
                  f"export PYTHONPATH={q(str(PROJECT_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}"]
    else:
        lines += ["unset PYTHONHOME", f"export PYTHONPATH={q(str(PROJECT_ROOT))}", "export PYTHONNOUSERSITE=1"]
    lines += [
        "export PYTHONUNBUFFERED=1",
        f"{' '.join(q(c) for c in cmd)} &",
        "child=$!",
        "# Slurm's warning (--signal=B:USR1) reaches this shell only; scancel reaches both",
        "trap 'kill -USR1 \"$child\" 2>/dev/null' USR1",
        "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT HUP",
        "while :; do",
        "    wait \"$child\"",
        "    rc=$?",
        "    kill -0 \"$child\" 2>/dev/null || break",
        "done",
        f"no_result \"job exited with code $rc without a result (see {LOG_FILE})\"",
        "exit \"$rc\"",
    ]
    return "\n".join(lines)


def _sbatch_lines(plan: Plan) -> list[str]:
    log = _path_word(plan.log_file, "log file")
    lines = [f"#SBATCH --job-name={plan.job_name}", f"#SBATCH --output={log}", f"#SBATCH --error={log}",
             f"#SBATCH --time={plan.time_limit}", f"#SBATCH --cpus-per-task={plan.cpus}"]
    if plan.mem is not None:
        lines.append(f"#SBATCH --mem={plan.mem}")
    return lines


def job_script(plan: Plan) -> str:
    signal_line = f"#SBATCH --signal=B:USR1@{WARN_SECONDS}"
    body = job_body(plan)
    if plan.template is None:
        return "\n".join(["#!/bin/bash", *_sbatch_lines(plan), signal_line, "", body, ""])
    values = {"REPLACE_NAME": plan.job_name, "REPLACE_MEM": plan.mem or "0",
              "REPLACE_LOGFILE": _path_word(plan.log_file, "log file"), "REPLACE_JOB": body,
              "REPLACE_WALLTIME": plan.time_limit, "REPLACE_CPUS_PER_TASK": plan.cpus}
    try:
        text = plan.template.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SubmitError(f"sbatch template {plan.template} cannot be read: {exc}") from None
    if "REPLACE_JOB" not in text:
        raise SubmitError(f"sbatch template {plan.template} has no REPLACE_JOB line: the job would do nothing")
    out = []
    for line in text.splitlines():
        for key in PLACEHOLDERS:
            line = line.replace(key, values[key])
        out.append(line.rstrip())
    # the job's own lines go right after the interpreter line, where sbatch still reads
    # #SBATCH; a later one in the template wins, except the name (also given to sbatch)
    head = out.pop(0) if out and out[0].startswith("#!") else "#!/bin/bash"
    return "\n".join([head, f"#SBATCH --job-name={plan.job_name}", signal_line, *out, ""])


def write_done(output: Path, text: str) -> None:
    atomic_write_text(output / DONE_FILE, text.rstrip("\n") + "\n")


def submit(plan: Plan) -> str:
    """sbatch --parsable: the job id, or SubmitError with sbatch's message."""
    cmd = ["sbatch", "--parsable", f"--job-name={plan.job_name}", str(plan.job_file)]
    try:
        res = subprocess.run(cmd, cwd=plan.workdir, capture_output=True, text=True, timeout=SBATCH_TIMEOUT)
    except FileNotFoundError:
        raise SubmitError("sbatch is not installed or not on PATH: cannot submit the job "
                          "(use --nosubmit to run it here)") from None
    except subprocess.TimeoutExpired:
        raise SubmitError(f"sbatch did not answer within {SBATCH_TIMEOUT} s (is slurmctld up?)") from None
    job_id = res.stdout.strip().split(";")[0]
    if res.returncode != 0 or not job_id.isdigit():
        msg = (res.stderr.strip() or res.stdout.strip() or "no message").replace("\n", " / ")
        raise SubmitError(f"sbatch failed (exit code {res.returncode}): {msg}")
    return job_id


def run_foreground(plan: Plan) -> int:
    """--nosubmit: the same job script, here and now, its output both here and in output.log."""
    proc = subprocess.Popen(["bash", str(plan.job_file)], cwd=plan.workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def forward(signum, frame):
        proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)}
    try:
        with open(plan.log_file, "ab") as log:
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):
                log.write(chunk)
                log.flush()
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        rc = proc.wait()
        return 128 - rc if rc < 0 else rc  # killed by a signal: the shell's convention
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if proc.poll() is None:
            proc.terminate()
            proc.wait()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run.py", description="Run SCONE (heatmaps, then train or predict) "
                                "as one Slurm job, as Pippin expects.")
    p.add_argument("--config_path", default=None, help="the SCONE config (YAML)")
    p.add_argument("--heatmaps_subdir", default=None, help="heatmaps in <output_path>/<subdir> "
                   "(default: heatmaps_path, else <output_path>/heatmaps)")
    p.add_argument("--sbatch_job_name", default=None, help="the Slurm job name (overrides the config)")
    p.add_argument("-n", "--nosubmit", action="store_true",
                   help="write job.slurm and run it here, in the foreground, without Slurm")
    p.add_argument("-H", "--HELP", action="store_true", help="print the config keys run.py reads")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.HELP:
        print(HELP)
        return 0
    if not args.config_path:
        print("run.py: error: --config_path is required", file=sys.stderr)
        return 2
    workdir = Path.cwd()
    output: Path | None = None
    try:
        source = (workdir / _expand(args.config_path)).resolve()
        output = output_path_of(read_config(source), source, workdir)
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            output = None
            raise SubmitError(f"cannot create output_path {exc.filename}: {exc.strerror}") from None
        (output / DONE_FILE).unlink(missing_ok=True)  # a stale result must not answer for this run
        plan, _ = plan_job(args.config_path, workdir=workdir, job_name=args.sbatch_job_name,
                           heatmaps_subdir=args.heatmaps_subdir)
        atomic_write_text(plan.job_file, job_script(plan))
        if args.nosubmit:
            print(f"wrote {plan.job_file}; running it here (--nosubmit), log also in {plan.log_file}",
                  flush=True)
            rc = run_foreground(plan)
            print(f"job ended with exit code {rc}: {plan.done_file}: "
                  f"{_read(plan.done_file) or '(missing)'}")
            return rc
        job_id = submit(plan)
    except SubmitError as exc:
        msg = f"FAILURE: {exc}"
        if output is not None:
            with contextlib.suppress(OSError):
                write_done(output, msg)
        print(f"run.py: {msg}", file=sys.stderr)
        return 2
    print(f"Submitted batch job {job_id}")
    print(f"  name {plan.job_name}, {plan.mode} mode; script {plan.job_file}; log {plan.log_file}; "
          f"result {plan.done_file}")
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
