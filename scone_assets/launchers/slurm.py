"""Every Dagster run becomes a Slurm job.

Configured in `dagster.yaml` under `run_launcher` (see `dagster.slurm.yaml`). For each
run the launcher writes a job script (SBATCH lines from the config, the user's header
file and per-run tags; then the environment set-up; then `exec dagster api
execute_run` with the serialized arguments read from a file) and submits it with
`sbatch --parsable`. The run is tagged with the Slurm job id. What a run may put into
its job (the `slurm/` tags the operator allows, each checked against Slurm's grammar) is
decided in `sbatch.py`; a run whose tags fail is failed at launch and nothing is
submitted. Run monitoring asks
`check_run_worker_health`, which reads the job's state from `squeue`, then
`scontrol show job`, then `sacct`; failures of those commands are retried and never
reported as a dead worker.

The run is also tagged `slurm/log` with the job's log file (stdout and stderr of the whole
job), so the run page shows where to look. Jobs are submitted `--no-requeue`: Slurm must not
start a second worker for a run Dagster already counts as started after a node failure or
a preemption; the job ends (NODE_FAIL, PREEMPTED), run monitoring fails the run, and
Dagster's run retries (`run_retries` in dagster.yaml) start a new run. A retry inherits its
parent's tags; the launcher's own (`slurm/job_id`, `slurm/log`) are dropped from it when they
are the parent's and replaced at submission. A run that can never be submitted as it is (its
tags are refused, or Slurm refuses the job, e.g. an unknown partition) is failed with
`dagster/max_retries` 0, so it is not retried; a controller that cannot be reached is a
transient loss, and retried.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import Field, MetadataValue, Noneable, StringSource
from dagster import _check as check
from dagster._core.events import EngineEventData
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._core.storage.tags import MAX_RETRIES_TAG, PARENT_RUN_ID_TAG
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value

from scone_assets.launchers.sbatch import (
    DEFAULT_ALLOWED_TAGS,
    JOB_ID_TAG,
    TAG_OPTIONS,
    JobSpec,
    SbatchValueError,
    check_operator_value,
    job_script,
    read_header,
    sbatch_options,
)

RUNNING_STATES = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "RESIZING",
                  "SIGNALING", "STAGE_OUT", "REQUEUE_HOLD", "REQUEUE_FED"}
FAILED_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
                 "PREEMPTED", "REVOKED"}
LOG_TAG = "slurm/log"
LAUNCHER_TAGS = (JOB_ID_TAG, LOG_TAG)  # set by the launcher after submission, never by a run
NO_REQUEUE = "#SBATCH --no-requeue"
REFUSED_AGAIN = "it would be refused again"
# sbatch errors that say the controller could not be reached (worth a retry), as opposed to
# the controller refusing the job (an unknown partition, account or QOS: it would be refused again)
TRANSIENT_SBATCH_ERRORS = ("unable to contact slurm controller", "socket timed out", "temporarily unable",
                           "connection refused", "connection timed out", "resource temporarily unavailable",
                           "slurmctld not responding")


class SlurmCommandError(RuntimeError):
    """A Slurm command failed (or could not reach the controller)."""


class SlurmRunLauncher(RunLauncher, ConfigurableClass):
    def __init__(self, inst_data: ConfigurableClassData | None = None, partition: str | None = None,
                 time_limit: str | None = None, mem: str | None = None, cpus_per_task: int | None = None,
                 gpus: str | None = None, account: str | None = None, qos: str | None = None,
                 log_dir: str | None = None, env_setup: Sequence[str] | None = None,
                 extra_sbatch_args: Sequence[str] | None = None, sbatch_header_path: str | None = None,
                 command_retries: int = 3, retry_wait_seconds: float = 2.0,
                 allowed_tag_overrides: Sequence[str] | None = None):
        self._inst_data = inst_data
        self.partition = partition
        self.time_limit = time_limit
        self.mem = mem
        self.cpus_per_task = cpus_per_task
        self.gpus = gpus
        self.account = account
        self.qos = qos
        self.log_dir = log_dir
        self.env_setup = list(env_setup or [])
        self.extra_sbatch_args = list(extra_sbatch_args or [])
        self.sbatch_header_path = sbatch_header_path
        self.command_retries = command_retries
        self.retry_wait_seconds = retry_wait_seconds
        self.allowed_tag_overrides = list(DEFAULT_ALLOWED_TAGS if allowed_tag_overrides is None
                                          else allowed_tag_overrides)
        unknown = sorted(set(self.allowed_tag_overrides) - set(TAG_OPTIONS))
        if unknown:
            raise SbatchValueError(f"run_launcher config allowed_tag_overrides: unknown tag(s) {', '.join(unknown)} "
                                   f"(known: {', '.join(TAG_OPTIONS)})")
        for key in ("partition", "time_limit", "mem", "cpus_per_task", "gpus", "account", "qos", "log_dir",
                    "sbatch_header_path"):
            check_operator_value(key, getattr(self, key))
        for key in ("env_setup", "extra_sbatch_args"):
            for item in getattr(self, key):
                check_operator_value(key, item)
        super().__init__()

    # ------------------------------------------------------------------ configuration

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        def opt(kind=StringSource, description=""):
            return Field(Noneable(kind), is_required=False, default_value=None, description=description)

        return {
            "partition": opt(description="Slurm partition (sbatch --partition)"),
            "time_limit": opt(description="wall-time limit, e.g. 04:00:00 (sbatch --time)"),
            "mem": opt(description="memory per node, e.g. 16G (sbatch --mem)"),
            "cpus_per_task": opt(int, "CPUs for the run (sbatch --cpus-per-task)"),
            "gpus": opt(description="GPUs, e.g. 1 or a100:1 (sbatch --gpus)"),
            "account": opt(description="sbatch --account"),
            "qos": opt(description="sbatch --qos"),
            "log_dir": opt(description="job scripts, argument files and logs (default: $DAGSTER_HOME/slurm)"),
            "env_setup": Field([str], is_required=False, default_value=[],
                               description="shell lines run before the run, e.g. module load, source venv"),
            "extra_sbatch_args": Field([str], is_required=False, default_value=[],
                                       description="more sbatch options, e.g. --constraint=cpu"),
            "sbatch_header_path": opt(description="a file of #SBATCH lines to include (SCONE's sbatch_header_path)"),
            "allowed_tag_overrides": Field([str], is_required=False, default_value=list(DEFAULT_ALLOWED_TAGS),
                                           description="which slurm/ run tags may override the options above "
                                                       "(anyone who can reach the UI can set tags)"),
            "command_retries": Field(int, is_required=False, default_value=3),
            "retry_wait_seconds": Field(float, is_required=False, default_value=2.0),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    # ------------------------------------------------------------------ the job script

    def _log_dir(self) -> Path:
        path = Path(self.log_dir) if self.log_dir else Path(self._instance.root_directory) / "slurm"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def sbatch_options(self, tags: Mapping[str, str]) -> list[str]:
        """The job's `--flag=value` options; raises SbatchValueError for a tag that may not be used."""
        config = {name: getattr(self, name) for name in
                  ("partition", "time_limit", "mem", "cpus_per_task", "gpus", "account", "qos")}
        return sbatch_options(config, tags, self.allowed_tag_overrides, self.extra_sbatch_args)

    def job_script(self, run_id: str, args_file: Path, log_file: Path, entry_point: Sequence[str],
                   tags: Mapping[str, str]) -> str:
        # --no-requeue first: an operator's own --requeue (header file, extra_sbatch_args) comes later and wins
        return job_script(JobSpec(run_id, Path(args_file), Path(log_file), tuple(entry_point),
                                  tuple(self.sbatch_options(tags)),
                                  (NO_REQUEUE, *read_header(self.sbatch_header_path)), tuple(self.env_setup)))

    # ------------------------------------------------------------------ Slurm commands

    def _slurm(self, args: Sequence[str], *, retry: bool = True) -> str:
        attempts = self.command_retries if retry else 1
        last = ""
        for attempt in range(attempts):
            try:
                res = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as exc:
                last = str(exc)
            else:
                if res.returncode == 0:
                    return res.stdout
                last = (res.stderr or res.stdout).strip()
                if "Invalid job id" in last:
                    raise SlurmCommandError(last)
            if attempt < attempts - 1:
                time.sleep(self.retry_wait_seconds * (attempt + 1))
        raise SlurmCommandError(f"{' '.join(args[:2])} failed: {last}")

    def job_state(self, job_id: str) -> str | None:
        """The job's state from squeue, else scontrol, else sacct; None if Slurm has forgotten it.
        Raises SlurmCommandError when the commands keep failing (a transient problem)."""
        errors = []
        try:
            out = self._slurm(["squeue", "-h", "-j", job_id, "-o", "%T"]).strip()
            if out:
                return out.split()[0]
        except SlurmCommandError as exc:
            errors.append(str(exc))
        try:
            out = self._slurm(["scontrol", "show", "job", job_id])
            m = re.search(r"JobState=(\w+)", out)
            if m:
                return m.group(1)
        except SlurmCommandError as exc:
            if "Invalid job id" not in str(exc):
                errors.append(str(exc))
        try:
            out = self._slurm(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"], retry=False).strip()
            if out and "disabled" not in out:
                return out.split()[0].rstrip("+")
        except SlurmCommandError as exc:
            errors.append(str(exc))
        if len(errors) >= 2:
            raise SlurmCommandError("; ".join(errors))
        return None

    # ------------------------------------------------------------------ RunLauncher

    def _submission_tags(self, run) -> dict[str, str]:
        """The run's tags without the launcher's own tags it inherited from its parent run (a
        retry or re-execution copies them); those are blanked on the run until its own job is
        submitted. A launcher tag that is not the parent's stays and is refused by `sbatch.py`."""
        tags = dict(run.tags)
        present = [key for key in LAUNCHER_TAGS if key in tags]
        parent_id = tags.get(PARENT_RUN_ID_TAG)
        if not present or not parent_id:
            return tags
        parent = self._instance.get_run_by_id(parent_id)
        inherited = [key for key in present if parent is not None and parent.tags.get(key) == tags[key]]
        for key in inherited:
            del tags[key]
        if inherited:
            self._instance.add_run_tags(run.run_id, dict.fromkeys(inherited, ""))
        return tags

    def _fail_launch(self, run, message: str, metadata: Mapping[str, Any] | None = None, *,
                     no_retry: str | None) -> None:
        """Fails a run that was not submitted. With a `no_retry` reason (submitting it again would
        fail the same way, or might submit it twice) Dagster's run retries leave it alone."""
        if no_retry:
            self._instance.add_run_tags(run.run_id, {MAX_RETRIES_TAG: "0"})
            message += f" (not retried: {no_retry})"
        self._instance.report_engine_event(message, run, EngineEventData(dict(metadata or {})), cls=self.__class__)
        self._instance.report_run_failed(run, message)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = check.not_none(context.job_code_origin)
        tags = self._submission_tags(run)
        log_dir = self._log_dir()
        args_file = log_dir / f"{run.run_id}.args.json"
        log_file = log_dir / f"{run.run_id}.log"
        script_file = log_dir / f"{run.run_id}.sbatch"
        args = ExecuteRunArgs(job_origin=origin, run_id=run.run_id, instance_ref=self._instance.get_ref(),
                              set_exit_code_on_failure=True)
        entry = [origin.executable_path, "-m", "dagster"]
        try:  # before anything is written or submitted: a refused run leaves no job behind
            script = self.job_script(run.run_id, args_file, log_file, entry, tags)
        except (SbatchValueError, OSError) as exc:  # OSError: the operator's header file
            self._fail_launch(run, f"refused to submit the run to Slurm: {exc}", no_retry=REFUSED_AGAIN)
            return
        args_file.write_text(serialize_value(args))
        script_file.write_text(script)
        where = {"job script": MetadataValue.path(str(script_file))}
        try:
            res = subprocess.run(["sbatch", "--parsable", str(script_file)], capture_output=True, text=True,
                                 timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:  # a timed-out sbatch may still have submitted
            self._fail_launch(run, f"sbatch did not complete: {exc}; check squeue for a job named "
                                   f"dagster-{run.run_id[:8]} before launching the run again", where,
                              no_retry="the job may have been submitted")
            return
        if res.returncode != 0 or not res.stdout.strip():
            error = (res.stderr or res.stdout).strip()
            transient = any(text in error.lower() for text in TRANSIENT_SBATCH_ERRORS)
            self._fail_launch(run, f"sbatch failed: {error}", where, no_retry=None if transient else REFUSED_AGAIN)
            return
        job_id = res.stdout.strip().split(";")[0]
        self._instance.add_run_tags(run.run_id, {JOB_ID_TAG: job_id, LOG_TAG: str(log_file)})
        self._instance.report_engine_event(
            f"Submitted Slurm job {job_id}; its log: {log_file}", run,
            EngineEventData({"Slurm job id": job_id, "log": MetadataValue.path(str(log_file)), **where}),
            cls=self.__class__)

    def _job_id(self, run) -> str | None:
        """The job id this launcher tagged; anything but digits is never handed to scancel or squeue."""
        job_id = run.tags.get(JOB_ID_TAG) if run else None
        return job_id if job_id and job_id.isdigit() else None

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        job_id = self._job_id(run)
        if not job_id:
            return False
        self._instance.report_run_canceling(run)
        try:
            self._slurm(["scancel", job_id])
        except SlurmCommandError as exc:
            self._instance.report_engine_event(f"scancel {job_id} failed: {exc}", run, cls=self.__class__)
            return False
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        job_id = self._job_id(run)
        if not job_id:
            return CheckRunHealthResult(WorkerStatus.NOT_FOUND, "no Slurm job id tag on the run")
        try:
            state = self.job_state(job_id)
        except SlurmCommandError as exc:  # transient: never a dead worker
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, f"Slurm did not answer: {exc}")
        if state is None:
            return CheckRunHealthResult(WorkerStatus.NOT_FOUND, f"Slurm job {job_id} is unknown to Slurm")
        if state in RUNNING_STATES:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"Slurm job {job_id} is {state}")
        if state == "COMPLETED":
            return CheckRunHealthResult(WorkerStatus.SUCCESS, f"Slurm job {job_id} COMPLETED")
        if state in FAILED_STATES:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"Slurm job {job_id} ended in state {state}")
        return CheckRunHealthResult(WorkerStatus.UNKNOWN, f"Slurm job {job_id} is in state {state}")

    def get_run_worker_debug_info(self, run, include_container_logs: bool | None = True) -> str | None:
        job_id = self._job_id(run)
        if not job_id:
            return None
        try:
            state = self.job_state(job_id)
        except SlurmCommandError as exc:
            state = f"unknown ({exc})"
        log = self._log_dir() / f"{run.run_id}.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else "(no log yet)"
        return f"Slurm job {job_id}: {state}\nlog {log}:\n{tail}"

    def dispose(self) -> None:
        return None
