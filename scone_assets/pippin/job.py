"""The Slurm job that run.py submits for Pippin: heatmaps, then train or predict by `mode`,
and `<output_path>/done.txt` in every outcome.

    python -m scone_assets.pippin.job --config_path X [--output_path P] [--heatmaps_subdir S]

done.txt holds `SUCCESS`, or `FAILURE: <reason>`: the library's message for a config or
input error; the exception and where it was raised for a crash (the traceback is in the
log); `cancelled or terminated during <stage>` on SIGTERM (scancel, a node shutdown);
`time limit reached during <stage>` on SIGUSR1, which the job script asks Slurm to send
120 s before the limit. A reason never contains the word Pippin looks for.

Heatmap units that fail (an unreadable file, a unit with no light curve) fail the job
and the model step is not run: Pippin sees only SUCCESS or FAILURE, and a model or
predictions silently missing part of the inputs would pass for complete. Light curves
the GP could not fit are skipped, as in SCONE, and counted in SCONE_SUMMARY.LOG.

In train mode the model goes to `<output_path>/trained_model`, and predictions.csv holds
the trained model's P(Ia) for every training object (train, validation and test; the
model folder's split.csv says which), so that the file Pippin records exists in both
modes. Progress goes to stdout, which the job script sends to output.log.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import yaml

from scone_assets.atomic import atomic_write_text
from scone_assets.outcome import Exit, Terminated
from scone_assets.pippin.submit import DONE_FILE, WARN_SECONDS
from scone_assets.workers import die_with_parent

log = logging.getLogger("scone_assets.pippin")

SUMMARY_FILE = "SCONE_SUMMARY.LOG"
PROGRAM_CLASS = {"train": "scone_train", "predict": "scone_predict"}
MAX_REASON = 2000


class _State:
    """What the signal handlers need: the stage, where done.txt goes, what to summarize."""

    def __init__(self) -> None:
        self.stage = "starting"
        self.output: Path | None = None
        self.summary: dict = {}
        self.config = None
        self.signal_reason: str | None = None  # set by the first SIGTERM / SIGUSR1
        self.unwinding = False  # the outcome is being written: signals change nothing more
        self.handling = False  # in the signal handler (Slurm's SIGTERM and the shell's forwarded one)
        self.finished = False  # SUCCESS is being written
        self.outcome_written = False  # done.txt and the summary hold the outcome
        self.t0 = time.time()


STATE = _State()
GRACE_SECONDS = 20  # after a signal, the job exits by then even if some library swallowed the stop


def clean_reason(text: str) -> str:
    """One line, bounded, and never Pippin's word for success."""
    text = " / ".join(ln.strip() for ln in str(text).splitlines() if ln.strip()) or "no message"
    text = re.sub(r"(?i)success", "s_uccess", text)
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."


def write_done(text: str) -> None:
    if STATE.output is not None:
        atomic_write_text(STATE.output / DONE_FILE, text.rstrip("\n") + "\n")


def _watchdog(state: _State) -> None:
    """A stop raised while library code runs under a catch-all `except` is lost (seen once
    with a signal that came while TensorFlow was being imported): the stage checks raise it
    again, and this ends the process if nothing did. done.txt is already written, and every
    write is atomic."""
    time.sleep(GRACE_SECONDS)
    if state.outcome_written:
        return  # the process is on its way out
    try:
        print(f"the job did not stop within {GRACE_SECONDS} s of the signal: exiting now", flush=True)
        if not state.unwinding:
            _finish_summary(state.summary, state.config, "FAILURE", state.signal_reason)
    finally:
        os._exit(Exit.TERMINATED)


def _on_signal(signum, frame):
    if STATE.finished or STATE.unwinding or STATE.handling:
        return  # a second signal while the first is handled (scancel reaches the job twice) waits
    if STATE.signal_reason is None:
        STATE.handling = True
        try:
            if signum == signal.SIGUSR1:
                reason = (f"time limit reached during {STATE.stage} (Slurm's warning, {WARN_SECONDS} s "
                          "before the limit)")
            else:
                reason = f"cancelled or terminated during {STATE.stage} ({signal.Signals(signum).name})"
            STATE.signal_reason = clean_reason(reason)
            # at once: Slurm kills the job (SIGKILL) KillWait seconds after SIGTERM
            with contextlib.suppress(OSError):
                write_done(f"FAILURE: {STATE.signal_reason}")
            print(f"FAILURE: {STATE.signal_reason}", flush=True)
            threading.Thread(target=_watchdog, args=(STATE,), daemon=True, name="stop-watchdog").start()
        finally:
            STATE.handling = False
    raise Terminated(STATE.signal_reason)


def check_stop() -> None:
    """Between stages: a signal whose exception some library swallowed stops the job here."""
    if STATE.signal_reason is not None and not STATE.unwinding:
        raise Terminated(STATE.signal_reason)


class JobFailure(Exception):
    """A stage that ended without its result; the message is the reason."""


# ---------------------------------------------------------------- the stages


def _jobs(config) -> int:
    for value in (config.jobs, os.environ.get("SCONE_JOBS"), os.environ.get("SLURM_CPUS_PER_TASK"),
                  config.sbatch_ncore_heatmaps):
        try:
            if value and int(value) >= 1:
                return int(value)
        except ValueError:
            continue
    return 1


def heatmaps_stage(config, summary: dict):
    from scone_assets.cli import report_heatmaps
    from scone_assets.heatmaps.run import heatmap_sets, make_heatmaps

    STATE.stage = "heatmaps"
    jobs = _jobs(config)
    log.info("heatmaps in %s with %d process(es)", config.heatmaps_path, jobs)
    run = make_heatmaps(config, jobs=jobs, progress=False)
    report_heatmaps(run, config)  # one line per unit, to the log
    first = heatmap_sets(config)[0][0]
    firsts = [r for r in run.results if r.heatmap_set in (first, "-")]
    written = sum(r.written for r in firsts)
    skipped: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for r in firsts:
        skipped.update(r.skipped)
        by_type.update(r.by_type)
    made = [r for r in run.results if r.status in ("done", "remade") and r.seconds > 0]
    summary.update({
        "N_UNIT_EXPECT": len({r.unit for r in run.results}),
        "N_UNIT_DONE": len({r.unit for r in run.results if r.status != "failed"} -
                           {r.unit for r in run.results if r.status == "failed"}),
        "N_LC_EXPECT": written + sum(skipped.values()),
        "N_LC_WRITTEN": written,
        "N_LC": dict(sorted(by_type.items())),
        "N_LC_SKIPPED": dict(sorted(skipped.items())),
        "PROCESS_RATE_AVG": round(60 * sum(r.written for r in made) / sum(r.seconds for r in made))
        if made else None,
        "HEATMAPS_PATH": str(config.heatmaps_path),
    })
    failed = [r for r in run.results if r.status == "failed" or r.bad_files]
    if failed:
        names = "; ".join(f"{r.unit}: {r.error or ', '.join(r.bad_files)}" for r in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        raise JobFailure(f"heatmaps: {len(failed)} of {len(run.results)} unit(s) failed, {written} heatmaps "
                         f"made; the {config.mode} step was not run: {names}{more}")
    return run


def _catalogs(config):
    from scone_assets.cli import heatmap_catalogs, merged_band_map

    catalogs = heatmap_catalogs(config)
    return catalogs, merged_band_map(catalogs)


def _predict_all(config, catalogs, model_dir, summary: dict) -> None:
    from scone_assets.model.predict import predict

    path = config.predictions_file()
    n = 0
    for name, catalog in catalogs.items():
        out = path if len(catalogs) == 1 else path.with_name(f"{path.stem}_{name}{path.suffix}")
        table = predict(config, catalog, model_dir, out)
        n += len(table)
        log.info("predictions for %d light curves: %s", len(table), out)
    summary["PREDICTIONS_FILE"] = str(path)
    summary["N_PREDICTED"] = n


def train_stage(config, summary: dict) -> None:
    import json

    from scone_assets.model.folder import member_history_file
    from scone_assets.model.train import default_model_dir, train

    STATE.stage = "training"
    catalogs, band_map = _catalogs(config)
    out = default_model_dir(config)
    if out.exists():
        log.info("replacing the model folder %s (SCONE clobbers output_path)", out)
    metrics = train(config, catalogs, out, band_to_wave=band_map, progress=False, force=True)
    t = metrics["test"]
    log.info("trained model: %s; test set: %d light curves, accuracy %.3f, AUC %.3f", out, t["n"],
             t["accuracy"], t["auc"])
    try:
        history = json.loads((out / member_history_file(0)).read_text())
    except (OSError, ValueError):
        history = {}
    accuracy = {"training": history.get("accuracy", [None])[-1],
                "validation": history.get("val_accuracy", [None])[-1], "test": t.get("accuracy")}
    summary["ACCURACY"] = [{k: (round(v, 4) if isinstance(v, float) else v)} for k, v in accuracy.items()]
    summary["TRAINED_MODEL"] = str(out)
    check_stop()
    STATE.stage = "predictions of the training objects"
    _predict_all(config, catalogs, out, summary)


def predict_stage(config, summary: dict) -> None:
    from scone_assets.config import ConfigError

    STATE.stage = "predict"
    if not config.trained_model:
        raise ConfigError("predict needs trained_model (a model folder from a train task)")
    catalogs, _ = _catalogs(config)
    summary["TRAINED_MODEL"] = str(config.trained_model)
    _predict_all(config, catalogs, config.trained_model, summary)


# ---------------------------------------------------------------- summary and outcome


def summary_text(summary: dict) -> str:
    """SCONE's SCONE_SUMMARY.LOG: YAML, keys in SCONE's order, a few comments."""
    comments = {"CPU_SUM": "# hr (wall time of this job)", "WALL_TIME": "# minutes",
                "PROCESS_RATE_AVG": "# heatmaps per minute", "N_LC_EXPECT": "# light curves read",
                "N_LC_WRITTEN": "# heatmaps made or reused"}
    lines = []
    for key, value in summary.items():
        if key == "PRESCALE_HEATMAPS":  # SCONE writes [Ia, nonIa] on one line
            text = f"{key}: " + yaml.safe_dump(list(value), default_flow_style=True).strip()
        elif isinstance(value, dict | list | tuple):
            text = yaml.safe_dump({key: list(value) if isinstance(value, tuple) else value}, sort_keys=False,
                                  default_flow_style=False, width=10_000).rstrip("\n")
        else:
            text = yaml.safe_dump({key: value}, width=10_000).rstrip("\n").removesuffix("\n...")
        if key in comments and "\n" not in text:
            text += f"    {comments[key]}"
        lines.append(text)
    return "\n".join(lines) + "\n"


def _base_summary(mode: str) -> dict:
    return {"PROGRAM_CLASS": PROGRAM_CLASS.get(mode, "UNKNOWN"), "STATUS": "RUNNING"}


def _finish_summary(summary: dict, config, status: str, reason: str | None) -> None:
    if STATE.output is None:
        return
    hours = (time.time() - STATE.t0) / 3600
    summary["STATUS"] = status
    if reason:
        summary["REASON"] = reason
    summary["CPU_SUM"] = round(hours, 4)
    summary["WALL_TIME"] = round(hours * 60, 2)
    if config is not None:
        dirs = list(config.input_data_paths or []) + ([config.input_path] if config.input_path else [])
        dirs += sorted({str(Path(p).parent) for p in config.metadata_paths or []})
        summary["INPUT_DATA_DIRS"] = dirs
        summary["SNID_SELECT_FILES"] = list(config.snid_select_files or [])
        ps = config.prescale_heatmaps if config.mode == "train" else None
        summary["PRESCALE_HEATMAPS"] = list(ps or (1, 1))
    try:
        atomic_write_text(STATE.output / SUMMARY_FILE, summary_text(summary))
    except (OSError, yaml.YAMLError) as exc:
        log.error("cannot write %s: %s", STATE.output / SUMMARY_FILE, exc)


def _crash_reason(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (in {Path(frames[-1].filename).name}:{frames[-1].lineno} {frames[-1].name})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}; traceback in the log"


def run(config_path: str, output_path: str | None, heatmaps_subdir: str | None) -> int:
    from scone_assets.config import load_config

    STATE.stage = "reading the config"
    if output_path:
        STATE.output = Path(output_path)
    STATE.summary = summary = _base_summary("train")
    try:
        overrides = {"output_path": output_path} if output_path else {}
        config = load_config(config_path, **overrides)
        out = Path(config.effective_output_path())
        if heatmaps_subdir:
            config.heatmaps_path = str(out / heatmaps_subdir)
        STATE.output, STATE.config = out, config
        out.mkdir(parents=True, exist_ok=True)
        summary.update(_base_summary(config.mode))
        log.info("SCONE %s: config %s, output_path %s", config.mode, config_path, out)
        heatmaps_stage(config, summary)
        check_stop()
        if config.mode == "train":
            train_stage(config, summary)
        else:
            predict_stage(config, summary)
        check_stop()
        STATE.stage = "writing the summary"
        _finish_summary(summary, config, "SUCCESS", None)
        check_stop()
        STATE.finished = True
        write_done("SUCCESS")
        STATE.outcome_written = True
        log.info("SUCCESS: %s in %.1f min", config.mode, (time.time() - STATE.t0) / 60)
        return Exit.OK
    except BaseException as exc:  # every outcome writes done.txt; the reason says which
        STATE.unwinding = True
        reason, code = failure_reason(exc)
        _fail(summary, STATE.config, reason)
        if code is None:
            raise
        return code


def failure_reason(exc: BaseException) -> tuple[str, int | None]:
    """(reason, exit code) for an exception that ended the job; code None: re-raise it."""
    from scone_assets.cli import USER_ERRORS, os_error_text

    if STATE.signal_reason is not None:  # whatever the exception, the signal was first
        return STATE.signal_reason, Exit.TERMINATED
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted during {STATE.stage}", Exit.INTERRUPTED
    if isinstance(exc, JobFailure):
        return str(exc), Exit.PARTIAL
    if isinstance(exc, USER_ERRORS):
        return f"{STATE.stage}: {exc}", Exit.USAGE
    if isinstance(exc, OSError):
        traceback.print_exc()
        return f"{STATE.stage}: {os_error_text(exc).removeprefix('error: ')}", Exit.PARTIAL
    if isinstance(exc, Exception):  # a crash: Pippin must still see a result
        traceback.print_exc()
        return f"crash during {STATE.stage}: {_crash_reason(exc)}", Exit.PARTIAL
    if isinstance(exc, SystemExit):
        return f"exit with code {exc.code} during {STATE.stage}", None
    return f"{type(exc).__name__} during {STATE.stage}", None


def _fail(summary: dict, config, reason: str) -> None:
    reason = clean_reason(reason)
    try:  # again after a signal: the handler's write may have been cut short
        write_done(f"FAILURE: {reason}")
    except OSError as exc:
        print(f"cannot write {DONE_FILE}: {exc}", file=sys.stderr)
    if reason != STATE.signal_reason:  # else the signal handler has said it
        print(f"FAILURE: {reason}", file=sys.stderr, flush=True)
    _finish_summary(summary, config, "FAILURE", reason)
    STATE.outcome_written = True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scone_assets.pippin.job",
                                description="heatmaps, then train or predict; done.txt in every outcome")
    p.add_argument("--config_path", required=True)
    p.add_argument("--output_path", default=None, help="output_path as run.py resolved it")
    p.add_argument("--heatmaps_subdir", default=None)
    args = p.parse_args(argv)
    if args.output_path:
        STATE.output = Path(args.output_path)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGUSR1, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    parent = os.getppid()
    die_with_parent()  # the job script's shell gone (killed outright): SIGTERM, so done.txt is written
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("scone_assets").setLevel(logging.INFO)
    warnings.simplefilter("default")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(keras|tensorflow).*")
    log.info("job %s on %s: %s", os.environ.get("SLURM_JOB_ID", "(not in Slurm)"), os.uname().nodename,
             " ".join(sys.argv))
    return int(run(args.config_path, args.output_path, args.heatmaps_subdir))


if __name__ == "__main__":
    sys.exit(main())
