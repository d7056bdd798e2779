"""Write a whole simulation folder, file by file, across processes.

Memory stays bounded: a worker holds one file's objects at a time and the
parent only counts. A folder that already holds this same simulation is
resumed (finished files are kept); one that holds anything else is refused
unless `force` is given.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from scone_assets.atomic import atomic_write_text
from scone_assets.simulate.classes import SUBTYPES, SimulationError, parse_mix
from scone_assets.simulate.generate import class_slots, simulate_file
from scone_assets.simulate.surveys import get_survey
from scone_assets.snana.write import write_fits_pair, write_list, write_readme

MANIFEST = ".scone_sim.json"


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


def _file_names(version: str, i: int, gz: bool) -> tuple[str, str]:
    ext = ".FITS.gz" if gz else ".FITS"
    return f"{version}-{i + 1:04d}_HEAD{ext}", f"{version}-{i + 1:04d}_PHOT{ext}"


def _work(args: tuple) -> tuple[int, dict[str, int], dict[str, int]]:
    survey_name, quota, seed, i, first_snid, head, phot, gz = args
    survey = get_survey(survey_name)
    res = simulate_file(survey, quota, seed, i, first_snid)
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
) -> SimulationResult:
    """Write `n` detected light curves as an SNANA FITS simulation folder."""
    if int(n) <= 0:
        raise SimulationError(f"number of light curves must be positive (got n = {n})")
    if int(per_file) <= 0:
        raise SimulationError(f"--per-file must be positive (got {per_file})")
    srv = get_survey(survey)
    fractions = parse_mix(mix)
    out = Path(out)
    version = version or out.name
    params = {"version": version, "survey": survey.lower(), "n": int(n), "per_file": int(per_file),
              "seed": int(seed), "mix": fractions, "gzip": bool(gzip), "model": 1}
    resume = _check_folder(out, params, force)
    out.mkdir(parents=True, exist_ok=True)
    if force and not resume:
        for p in out.glob(f"{version}-*_*.FITS*"):
            p.unlink()
    atomic_write_text(out / MANIFEST, json.dumps(params, indent=1, sort_keys=True))

    n_files = math.ceil(n / per_file)
    slots = class_slots(fractions, int(n), int(seed))
    tasks, resumed, heads = [], [], []
    for i in range(n_files):
        quota = dict(Counter(slots[i * per_file : (i + 1) * per_file]))
        head, phot = (out / f for f in _file_names(version, i, gzip))
        heads.append(head)
        if resume and head.exists() and phot.exists():
            resumed.append(head)
            continue
        tasks.append((survey.lower(), quota, int(seed), i, 1 + i * per_file, head, phot, gzip))

    t0 = time.time()
    counts: Counter[str] = Counter()
    generated: Counter[str] = Counter()
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks) or 1))
    bar = tqdm(total=sum(sum(t[1].values()) for t in tasks), unit="LC", desc=f"simulate {version}", disable=not progress)
    try:
        if jobs == 1:
            results = map(_work, tasks)
            for _, c, g in results:
                counts.update(c)
                generated.update(g)
                bar.update(sum(c.values()))
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(_work, t) for t in tasks]
                for fut in as_completed(futures):
                    _, c, g = fut.result()
                    counts.update(c)
                    generated.update(g)
                    bar.update(sum(c.values()))
    finally:
        bar.close()
    seconds = time.time() - t0

    stat = {"NLC_WRITE": n, "NLC_GEN_THIS_RUN": sum(generated.values()),
            "CPU_SECONDS_THIS_RUN": round(seconds, 1)}
    stat.update({f"NLC_WRITE_{k}": v for k, v in sorted(counts.items())})
    write_readme(
        out, version,
        gentype_to_name={SUBTYPES[k].gentype: ("Ia" if SUBTYPES[k].cls == "SNIa" else "nonIa", k)
                         for k in fractions},
        filters={b.letter: b.wave for b in srv.bands},
        stat_summary=stat,
        notes=[f"made by scone simulate: survey {srv.name}, seed {seed}, per_file {per_file}",
               "mix: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(fractions.items()))],
    )
    write_list(out, version, [h.name for h in heads])
    return SimulationResult(out, version, heads, n, dict(counts), dict(generated), seconds, resumed)
