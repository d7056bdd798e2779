"""The Slurm job a Dagster run becomes: its sbatch options and its script.

Split from the launcher (as dagster-k8s splits the launcher from the job it builds)
because this is where untrusted text meets a shell. Dagster's open-source UI has no
log-in, so a run's tags are anyone's input: a tag value that reaches an `#SBATCH` line
must match Slurm's own grammar for that option, be printable ASCII and short, and a tag
may override an option only when the operator's allow-list says so. Values from the
instance configuration are the operator's and stay free-form, except that nothing may
carry a line break into the script. Paths in the script are quoted; the run's serialized
arguments are read from a file inside double quotes, so their text is never evaluated.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

JOB_ID_TAG = "slurm/job_id"
TAG_PREFIX = "slurm/"
TAG_OPTIONS = {"slurm/partition": "partition", "slurm/time": "time_limit", "slurm/mem": "mem",
               "slurm/cpus_per_task": "cpus_per_task", "slurm/gpus": "gpus"}
DEFAULT_ALLOWED_TAGS = tuple(TAG_OPTIONS)
FLAGS = {"partition": "--partition", "time_limit": "--time", "mem": "--mem", "cpus_per_task": "--cpus-per-task",
         "gpus": "--gpus", "account": "--account", "qos": "--qos"}
MAX_LENGTH = 128

_NAME = r"[A-Za-z0-9_.-]{1,64}"
_MINUTES = r"\d{1,7}"
_CLOCK = r"\d{1,2}"
# sbatch(1): each option's documented forms
RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "partition": (re.compile(rf"{_NAME}(,{_NAME})*"),
                  "partition names of letters, digits, '_', '.', '-', separated by commas"),
    "time_limit": (re.compile(
        rf"{_MINUTES}(:{_CLOCK}(:{_CLOCK})?)?|\d{{1,4}}-{_CLOCK}(:{_CLOCK}(:{_CLOCK})?)?|UNLIMITED|INFINITE"),
        "minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes, "
        "days-hours:minutes:seconds, UNLIMITED or INFINITE"),
    "mem": (re.compile(r"\d{1,9}[KMGTkmgt]?"), "a size in megabytes, or with a K, M, G or T suffix"),
    "cpus_per_task": (re.compile(r"[1-9]\d{0,4}"), "a positive whole number"),
    "gpus": (re.compile(rf"({_NAME}:)?\d{{1,3}}"), "a count, or type:count (e.g. 1 or a100:2)"),
    "account": (re.compile(_NAME), "an account name of letters, digits, '_', '.', '-'"),
    "qos": (re.compile(rf"{_NAME}(,{_NAME})*"), "QOS names of letters, digits, '_', '.', '-'"),
}
_RUN_ID = re.compile(r"[0-9a-fA-F-]{8,64}")


class SbatchValueError(ValueError):
    """A value that may not reach the job script; the message names where it came from
    and the rule it broke."""


def printable(value: str) -> bool:
    return all(" " <= ch <= "~" for ch in value)


def check_tag_value(tag: str, option: str, value: str) -> str:
    """A run tag's value for `option`, or SbatchValueError naming the tag and the rule."""
    value = str(value)
    if len(value) > MAX_LENGTH:
        raise SbatchValueError(f"run tag {tag}: value is {len(value)} characters long; at most {MAX_LENGTH}")
    if not printable(value):
        raise SbatchValueError(f"run tag {tag}: value {value!r} has a control or non-ASCII character")
    pattern, rule = RULES[option]
    if not pattern.fullmatch(value):
        raise SbatchValueError(f"run tag {tag}: value {value!r} is not valid for sbatch {FLAGS[option]} "
                               f"(expected {rule})")
    return value


def check_operator_value(key: str, value: object) -> None:
    """The instance configuration's values may be free-form, but one line each."""
    if value is not None and any(ch in str(value) for ch in "\r\n\0"):
        raise SbatchValueError(f"run_launcher config {key}: {value!r} contains a line break; each value "
                               "must be one line of the job script")


def check_tags(tags: Mapping[str, str], allowed: Sequence[str]) -> dict[str, str]:
    """{option: value} from a run's `slurm/` tags. Refuses the launcher's own job-id tag,
    unknown `slurm/` tags and tags the allow-list does not permit."""
    out: dict[str, str] = {}
    for tag, value in tags.items():
        if not tag.startswith(TAG_PREFIX):
            continue
        if tag == JOB_ID_TAG:
            raise SbatchValueError(f"run tag {JOB_ID_TAG} is set by the launcher after submission; "
                                   "a run may not bring its own")
        if tag not in TAG_OPTIONS:
            raise SbatchValueError(f"run tag {tag} is not a Slurm option this launcher knows "
                                   f"({', '.join(TAG_OPTIONS)})")
        if tag not in allowed:
            raise SbatchValueError(f"run tag {tag} may not override the Slurm configuration here "
                                   f"(allowed_tag_overrides: {', '.join(allowed) or 'none'})")
        if value in (None, ""):
            continue
        out[TAG_OPTIONS[tag]] = check_tag_value(tag, TAG_OPTIONS[tag], value)
    return out


@dataclass(frozen=True)
class JobSpec:
    """What one run's job is made of; every field already checked."""

    run_id: str
    args_file: Path
    log_file: Path
    entry_point: tuple[str, ...]
    options: tuple[str, ...]  # "--flag=value", in order
    header: tuple[str, ...] = ()  # the operator's `#SBATCH` lines
    env_setup: tuple[str, ...] = ()  # the operator's shell lines


def sbatch_options(config: Mapping[str, object], tags: Mapping[str, str], allowed: Sequence[str],
                   extra: Sequence[str]) -> list[str]:
    """`--flag=value` options: the configuration's, overridden by the permitted tags."""
    values = {name: config.get(name) for name in FLAGS}
    values.update(check_tags(tags, allowed))
    return [f"{FLAGS[k]}={v}" for k, v in values.items() if v not in (None, "")] + list(extra)


def _sbatch_path(path: Path) -> str:
    """A path on an `#SBATCH` line: sbatch splits those lines on blanks and reads no
    quotes, so a path there must be one printable word."""
    text = str(path)
    if not text or not printable(text) or any(ch in text for ch in " \"'\\"):
        raise SbatchValueError(f"log path {text!r} cannot be written on an #SBATCH line (blanks, quotes "
                               "or control characters): choose a log_dir without them")
    return text


def job_script(spec: JobSpec) -> str:
    if not _RUN_ID.fullmatch(spec.run_id):
        raise SbatchValueError(f"run id {spec.run_id!r} is not a Dagster run id")
    log = _sbatch_path(spec.log_file)
    lines = ["#!/bin/bash", f"#SBATCH --job-name=dagster-{spec.run_id[:8]}", f"#SBATCH --output={log}",
             f"#SBATCH --error={log}"]
    lines += [ln for ln in spec.header if ln.startswith("#SBATCH")]
    lines += [f"#SBATCH {opt}" for opt in spec.options]
    lines += ["", "set -e", f"# Dagster run {spec.run_id}", *spec.env_setup]
    # the serialized arguments are read from a file, not put on the sbatch command line;
    # inside double quotes the substitution's output is one word and is never evaluated
    lines += [f'exec {shlex.join(spec.entry_point)} api execute_run "$(cat {shlex.quote(str(spec.args_file))})"', ""]
    return "\n".join(lines)


def read_header(path: str | None) -> tuple[str, ...]:
    """The operator's header file: only its `#SBATCH` lines are used."""
    if not path:
        return ()
    return tuple(ln.rstrip("\r") for ln in Path(path).read_text().splitlines() if ln.startswith("#SBATCH"))
