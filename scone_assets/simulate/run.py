"""Write a whole simulation folder, file by file, across processes.

Memory stays bounded: a worker holds one file's objects at a time and the
parent only counts. A folder that already holds this same simulation is
resumed (finished files are kept, and counted again from their HEAD files);
one that holds anything else is refused unless `force` is given. One run at a
time writes a folder: it holds the folder's lock throughout, so the temporaries
it finds there at start were left by a killed run and are removed.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits
from tqdm.auto import tqdm

from scone_assets.atomic import atomic_write_bytes, atomic_write_text, remove_stale_temps
from scone_assets.locking import folder_lock
from scone_assets.simulate.classes import SUBTYPES, SimulationError, parse_mix
from scone_assets.simulate.generate import class_slots, simulate_file
from scone_assets.simulate.like_report import Comparison, compare, report_lines
from scone_assets.simulate.rates import VOLUMETRIC_RATES, survey_mix
from scone_assets.simulate.surveys import get_survey
from scone_assets.snana.write import write_fits_pair, write_list, write_readme
from scone_assets.workers import WorkerPool

MANIFEST = ".scone_sim.json"
LIKE_MODEL = ".scone_like_model.npz"  # the survey model a --like simulation was made from
log = logging.getLogger(__name__)


@dataclass
class SimulationResult:
    folder: Path
    version: str
    head_files: list[Path]
    n_written: int
    counts: dict[str, int]
    n_generated: dict[str, int]
    seconds: float
    resumed_files: list[Path] = field(default_factory=list)
    compared: Comparison | None = None  # --like: the simulation's light curves against the data's


def _file_names(version: str, i: int, gz: bool) -> tuple[str, str]:
    ext = ".FITS.gz" if gz else ".FITS"
    return f"{version}-{i + 1:04d}_HEAD{ext}", f"{version}-{i + 1:04d}_PHOT{ext}"


def _survey(name: str, folder: Path):
    """(survey, like model or None) of a simulation: a preset, or the model saved beside it."""
    if name != "like":
        return get_survey(name), None
    from scone_assets.simulate.like import SurveyModel, like_survey

    model = SurveyModel.load(folder / LIKE_MODEL)
    return like_survey(model), model


def _work(args: tuple) -> tuple[int, dict[str, int], dict[str, int]]:
    survey_name, quota, seed, i, first_snid, head, phot, gz = args
    survey, like = _survey(survey_name, Path(head).parent)
    res = simulate_file(survey, quota, seed, i, first_snid, like=like)
    write_fits_pair(head, phot, res.meta, res.obs, survey=survey.name, gz=gz)
    return i, dict(Counter(res.meta["SIM_TYPE_NAME"])), res.n_generated


def _check_folder(out: Path, params: dict, force: bool) -> bool:
    """True when `out` already holds this simulation (resume)."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise SimulationError(f"output {out} exists and is not a folder")
    contents = [p for p in out.iterdir() if not p.name.startswith(".") or p.name == MANIFEST]
    if not contents:
        return False
    manifest = out / MANIFEST
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
        except ValueError:
            old = None
        if old == params:
            return True
        if force:
            return False
        changed = sorted(k for k in set(params) | set(old or {}) if (old or {}).get(k) != params.get(k))
        raise SimulationError(
            f"{out} already holds a different simulation (differs in: {', '.join(changed)}); "
            "use --force to replace it, or choose another --out")
    if force:
        return False
    raise SimulationError(f"{out} is not empty and holds no simulation of ours; "
                          "use --force to write into it anyway, or choose another --out")


def _kept_counts(head: Path, quota: dict[str, int]) -> Counter[str] | None:
    """The types of a finished HEAD file, or None when it cannot be read or is not this
    file's share of the simulation (then it is written again)."""
    try:
        with warnings.catch_warnings():  # astropy's "file is corrupted": said below, once
            warnings.simplefilter("ignore")
            with fits.open(head, memmap=False) as hdul:
                found = Counter(str(t).strip() for t in hdul[1].data["SIM_TYPE_NAME"])
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("writing %s again: cannot read it (%s)", head.name, exc)
        return None
    if found != Counter(quota):
        log.warning("writing %s again: its types differ from this simulation's", head.name)
        return None
    return found


def _run(tasks: list[tuple], jobs: int, bar: tqdm) -> tuple[Counter[str], Counter[str]]:
    """Types written and objects generated by `tasks`. On an error or an interruption
    the workers are killed, so none goes on writing."""
    counts: Counter[str] = Counter()
    generated: Counter[str] = Counter()
    with WorkerPool(jobs) as pool:
        for _, c, g in pool.map(_work, tasks):
            counts.update(c)
            generated.update(g)
            bar.update(sum(c.values()))
    return counts, generated


def _remove_temps(out: Path) -> None:
    removed = remove_stale_temps(out)
    if removed:
        log.info("removed %d stale temporary file(s) in %s, left by an interrupted run",
                 len(removed), out)


@dataclass
class _Plan:
    heads: list[Path]
    tasks: list[tuple]
    resumed: list[Path]
    kept: Counter[str]  # the types in the resumed files


def _plan(out: Path, params: dict, fractions: dict[str, float], resume: bool) -> _Plan:
    """Every file's share of the classes; the finished ones (when resuming) are kept."""
    version, n, per_file, seed, gz = (params[k] for k in ("version", "n", "per_file", "seed", "gzip"))
    slots = class_slots(fractions, n, seed)
    plan = _Plan([], [], [], Counter())
    for i in range(math.ceil(n / per_file)):
        quota = dict(Counter(slots[i * per_file : (i + 1) * per_file]))
        head, phot = (out / f for f in _file_names(version, i, gz))
        plan.heads.append(head)
        found = _kept_counts(head, quota) if resume and head.exists() and phot.exists() else None
        if found is not None:
            plan.resumed.append(head)
            plan.kept.update(found)
        else:
            plan.tasks.append((params["survey"], quota, seed, i, 1 + i * per_file, head, phot, gz))
    return plan


def _write_docs(out: Path, params: dict, fractions: dict[str, float], heads: list[Path],
                counts: Counter[str], generated: Counter[str], seconds: float) -> Comparison | None:
    """The README and LIST; with --like, the comparison with the data the README gives."""
    srv, like = _survey(params["survey"], out)
    compared = compare(heads, like) if like is not None else None
    stat = {"NLC_WRITE": params["n"], "NLC_GEN_THIS_RUN": sum(generated.values()),
            "CPU_SECONDS_THIS_RUN": round(seconds, 1)}
    stat.update({f"NLC_WRITE_{k}": v for k, v in sorted(counts.items())})
    write_readme(
        out, params["version"],
        gentype_to_name={SUBTYPES[k].gentype: ("Ia" if SUBTYPES[k].cls == "SNIa" else "nonIa", k)
                         for k in fractions},
        filters={b.letter: b.wave for b in srv.bands},
        stat_summary=stat,
        notes=[f"made by scone simulate: survey {srv.name}, seed {params['seed']}, "
               f"per_file {params['per_file']}",
               "mix: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(fractions.items()))]
        + (["mix from volumetric rates x the share of a pilot batch the survey's detection and selection "
            "keep (simulate/rates.py): " + ", ".join(f"{k} {VOLUMETRIC_RATES[k]:.4f} x {v:.3f}"
                                                     for k, v in sorted(params["kept"].items()))]
           if "kept" in params else [])
        + ([f"like: {line}" for line in like.provenance] if like is not None else [])
        + (report_lines(compared) if compared is not None else []),
    )
    write_list(out, params["version"], [h.name for h in heads])
    return compared


def simulate(
    out: str | os.PathLike[str],
    n: int,
    survey: str = "des",
    seed: int = 1,
    per_file: int = 1000,
    mix: str | dict[str, float] | None = None,
    gzip: bool = False,
    jobs: int | None = None,
    force: bool = False,
    version: str | None = None,
    progress: bool = True,
    like=None,
) -> SimulationResult:
    """Write `n` detected light curves as an SNANA FITS simulation folder. With `like` (a
    `SurveyModel` from `like.model_from_inputs`), objects are observed as that survey's
    data were. Raises `FolderBusy` while another run writes the same folder."""
    if int(n) <= 0:
        raise SimulationError(f"number of light curves must be positive (got n = {n})")
    if int(per_file) <= 0:
        raise SimulationError(f"--per-file must be positive (got {per_file})")
    if like is None:
        get_survey(survey)
    kept = None
    if like is not None and mix is None:  # the survey's own mix: rates x what its selection keeps
        fractions, kept = survey_mix(like, int(seed))
    else:
        fractions = parse_mix(mix)
    out = Path(out)
    params = {"version": version or out.name, "survey": "like" if like is not None else survey.lower(),
              "n": int(n), "per_file": int(per_file), "seed": int(seed), "mix": fractions, "gzip": bool(gzip),
              "model": 1}
    if kept is not None:
        params["kept"] = kept
    if like is not None:
        params["like"] = like.digest()  # resumed only for the same survey model
    _check_folder(out, params, force)  # refuse before making a lock file in a stranger's folder
    with folder_lock(out, what="simulation folder"):
        if like is not None:
            atomic_write_bytes(out / LIKE_MODEL, like.to_bytes())
        return _simulate_locked(out, params, fractions, jobs, force, progress)


def _simulate_locked(out: Path, params: dict, fractions: dict[str, float], jobs: int | None,
                     force: bool, progress: bool) -> SimulationResult:
    """`simulate` once it holds the folder: any temporary found here is a dead run's."""
    version = params["version"]
    resume = _check_folder(out, params, force)  # again: another run may have ended meanwhile
    _remove_temps(out)
    if force and not resume:
        for p in out.glob(f"{glob.escape(version)}-*_*.FITS*"):
            p.unlink()
    atomic_write_text(out / MANIFEST, json.dumps(params, indent=1, sort_keys=True))
    plan = _plan(out, params, fractions, resume)

    t0 = time.time()
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(plan.tasks) or 1))
    # no bar when stderr is not a terminal (disable=None): logs and scripts get one line
    bar = tqdm(total=sum(sum(t[1].values()) for t in plan.tasks), unit="LC",
               desc=f"simulate {version}", disable=None if progress else True)
    try:
        counts, generated = _run(plan.tasks, jobs, bar)
    except BaseException:
        # the killed workers' half-written files (no one else writes here); quietly, as
        # the command's one line says so
        log.debug("removed %d temporary file(s) of killed workers", len(remove_stale_temps(out)))
        raise
    finally:
        bar.close()
    seconds = time.time() - t0
    counts += plan.kept
    compared = _write_docs(out, params, fractions, plan.heads, counts, generated, seconds)
    return SimulationResult(out, version, plan.heads, params["n"], dict(counts), dict(generated),
                            seconds, plan.resumed, compared)
