"""Heatmaps for every input unit: one shard, index and summary per unit and heatmap set.

Layout: `<heatmaps_path>/<set>/<unit>/{heatmaps.tfrecord, index.parquet,
heatmaps.summary, heatmaps.json}`, where the set is `full`, `early_<N>d` per
`early_lightcurves` truncation, or `early_mixed`. The index is written last,
so a unit whose index exists with the same parameters is finished and is
skipped on a re-run unless forced. Light curves are spread over a process
pool (all cores by default); a bad light curve is skipped and counted, a bad
file is reported and the others continue.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from scone_assets.atomic import atomic_write_text
from scone_assets.config import SconeConfig
from scone_assets.heatmaps import HeatmapError
from scone_assets.heatmaps.grid import EARLY_DEFAULT, GridSpec
from scone_assets.heatmaps.make import (
    HeatmapResult,
    LightCurveInput,
    _limit_threads,
    compute_chunk,
    start_worker,
)
from scone_assets.heatmaps.shards import (
    INDEX,
    PARAMS,
    SHARD,
    SUMMARY,
    encode_example,
    summary_text,
    write_index,
    write_shard,
)
from scone_assets.snana.model import LightCurves, SnanaReadError
from scone_assets.snana.read import InputUnit, iter_inputs
from scone_assets.snana.types import IA

log = logging.getLogger(__name__)


@dataclass
class UnitResult:
    unit: str
    heatmap_set: str
    folder: Path | None
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    status: str = "done"  # done | already done | failed
    error: str | None = None

    @property
    def per_minute(self) -> float:
        return 60.0 * self.written / self.seconds if self.seconds > 0 else 0.0


def heatmap_sets(config: SconeConfig) -> list[tuple[str, float | None | str]]:
    """(set name, truncation): None = full light curve, "mixed" = per-object draw."""
    if config.early_lightcurves_mixed:
        return [("early_mixed", "mixed")]
    truncations = config.early_truncations or ([] if not config.early_lightcurves else list(EARLY_DEFAULT))
    if truncations:
        return [(f"early_{d:g}d", float(d)) for d in truncations]
    return [("full", None)]


def _mixed_days(snid: object, seed: int) -> float:
    """SCONE draws 0-50 days per object; seeded by the SNID so re-runs agree."""
    from scone_assets.heatmaps.shards import record_id

    rng = np.random.default_rng([seed, record_id(snid) & 0xFFFFFFFF])
    return float(rng.integers(0, 51))


def _inputs(lcs: LightCurves, truncation, seed: int) -> list[LightCurveInput]:
    out = []
    for row, obs in lcs.iter_lightcurves():
        days = _mixed_days(row.SNID, seed) if truncation == "mixed" else truncation
        out.append(LightCurveInput(
            row.SNID, obs.MJD.to_numpy(), obs.BAND.to_numpy(), obs.FLUXCAL.to_numpy(),
            obs.FLUXCALERR.to_numpy(), float(row.PEAKMJD), float(row.MWEBV), days))
    return out


class WorkerPool:
    """A spawn-context pool (safe even when TensorFlow is loaded in the parent)."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.ex = None
        if jobs > 1:
            self.ex = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=start_worker)
            # start the workers now: they import and load the compiled back-end
            # while this process reads its first file
            self.ex.submit(int)

    def map(self, tasks: list[tuple]) -> Iterator[list[HeatmapResult]]:
        if self.ex is None:
            _limit_threads()
            return map(compute_chunk, tasks)
        return self.ex.map(compute_chunk, tasks)

    def close(self) -> None:
        if self.ex is not None:
            self.ex.shutdown()


def _params(config: SconeConfig, spec: GridSpec, backend: str, unit: InputUnit, heatmap_set: str) -> dict:
    return {"unit": unit.key, "files": unit.files, "set": heatmap_set, "backend": backend,
            "num_wavelength_bins": spec.num_wavelength_bins, "num_mjd_bins": spec.num_mjd_bins,
            "has_peakmjd": spec.has_peakmjd, "mw_correction": spec.mw_correction, "seed": config.seed,
            "version": 1}


def unit_folder(heatmaps_path: str | Path, heatmap_set: str, unit_key: str) -> Path:
    return Path(heatmaps_path) / heatmap_set / unit_key


def make_unit(lcs: LightCurves, unit: InputUnit, config: SconeConfig, pool: WorkerPool, *,
              heatmap_set: str, truncation, backend: str, force: bool, progress: bool) -> UnitResult:
    spec = GridSpec(config.num_wavelength_bins, config.num_mjd_bins, config.has_peakmjd, config.mw_correction)
    folder = unit_folder(config.heatmaps_path, heatmap_set, unit.key)
    params = _params(config, spec, backend, unit, heatmap_set) | {"band_to_wave": lcs.band_to_wave}
    if (folder / INDEX).exists() and (folder / PARAMS).exists() and not force:
        old = json.loads((folder / PARAMS).read_text())
        if old == params:
            return UnitResult(unit.key, heatmap_set, folder, status="already done")
        raise HeatmapError(f"{folder} holds heatmaps made with other settings; use --force to replace them")
    if not lcs.band_to_wave and len(lcs):
        raise HeatmapError(f"{lcs.source}: no band could be placed in wavelength ({'; '.join(lcs.warnings)})")

    t0 = time.perf_counter()
    inputs = _inputs(lcs, truncation, config.seed)
    chunk = max(4, min(64, len(inputs) // (4 * pool.jobs) or 4))
    tasks = [(inputs[i:i + chunk], lcs.band_to_wave, spec, backend) for i in range(0, len(inputs), chunk)]
    # plain rows by SNID: a pandas row lookup and its attribute reads cost ~0.45 ms per
    # light curve, a third of this process's work while the workers make heatmaps
    columns = ["TYPE", "TYPE_NAME", "REDSHIFT_FINAL", "REDSHIFT_FINAL_ERR", "PEAKMJD", "MWEBV"]
    meta = dict(zip(lcs.meta["SNID"], lcs.meta[columns].itertuples(index=False), strict=True))
    rows: list[dict] = []
    skipped: Counter[str] = Counter()
    for snid, reason in lcs.skipped:  # the reader's skips (one observation, duplicates) count too
        skipped[reason] += 1
        rows.append({"SNID": str(snid), "TYPE_NAME": "", "status": reason})
    done: Counter[str] = Counter()
    bar = tqdm(total=len(inputs), unit="LC", desc=f"heatmaps {unit.key}", disable=not progress)

    def records() -> Iterator[bytes]:
        position = 0
        for results in pool.map(tasks):
            for res in results:
                m = meta[res.snid]
                row = {"SNID": str(res.snid), "TYPE": int(m.TYPE), "TYPE_NAME": m.TYPE_NAME,
                       "label": int(m.TYPE_NAME == IA), "z": float(m.REDSHIFT_FINAL),
                       "z_err": float(m.REDSHIFT_FINAL_ERR), "PEAKMJD": float(m.PEAKMJD),
                       "MWEBV": float(m.MWEBV), "n_obs": res.n_obs, "log_amp": res.params[0],
                       "log_lt2": res.params[1], "log_lw2": res.params[2], "n_eval": res.n_eval,
                       "early_days": np.nan if res.early_days is None else res.early_days,
                       "status": res.status, "record": -1}
                if res.image is not None:
                    row["record"] = position
                    position += 1
                    done[m.TYPE_NAME] += 1
                    z = row["z"] if np.isfinite(row["z"]) else -9.0
                    z_err = row["z_err"] if np.isfinite(row["z_err"]) else -9.0
                    yield encode_example(res.image, row["label"], res.snid, m.TYPE_NAME, z, z_err)
                else:
                    skipped[res.status] += 1
                rows.append(row)
            bar.update(len(results))

    try:
        written = write_shard(folder / SHARD, records())
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    atomic_write_text(folder / SUMMARY, summary_text(
        survey=lcs.survey, source=lcs.source, backend=backend, minutes=seconds / 60,
        done_by_type=dict(done), skipped=dict(skipped)))
    atomic_write_text(folder / PARAMS, json.dumps(params, indent=1))
    write_index(folder / INDEX, pd.DataFrame(rows))
    return UnitResult(unit.key, heatmap_set, folder, written, dict(skipped), dict(done), seconds)


def make_heatmaps(config: SconeConfig, *, backend: str | None = None, jobs: int | None = None,
                  force: bool = False, progress: bool = True, units: list[InputUnit] | None = None
                  ) -> list[UnitResult]:
    """Heatmaps for every unit the config names (or `units`). Never stops at a bad file."""
    if not config.heatmaps_path:
        from scone_assets.config import ConfigError

        raise ConfigError("heatmaps_path is required to make heatmaps")
    backend = backend or config.gp_backend
    jobs = max(1, jobs or config.jobs or os.cpu_count() or 1)
    pool = WorkerPool(jobs)
    results: list[UnitResult] = []
    fallback = training_band_map(config)
    try:
        for unit, lcs in iter_inputs(config, units, fallback_band_to_wave=fallback):
            for heatmap_set, truncation in heatmap_sets(config):
                if isinstance(lcs, SnanaReadError):
                    log.error("skipping %s: %s", unit.key, lcs)
                    results.append(UnitResult(unit.key, heatmap_set, None, status="failed", error=str(lcs)))
                    continue
                try:
                    results.append(make_unit(lcs, unit, config, pool, heatmap_set=heatmap_set,
                                             truncation=truncation, backend=backend, force=force,
                                             progress=progress))
                except (HeatmapError, OSError, ValueError) as exc:
                    log.error("heatmaps for %s failed: %s", unit.key, exc)
                    results.append(UnitResult(unit.key, heatmap_set, None, status="failed", error=str(exc)))
    finally:
        pool.close()
    return results


def training_band_map(config: SconeConfig) -> dict[str, float] | None:
    """In predict mode, the band map the model was trained with: used only for bands
    the data itself does not place (SCONE's filter-set independence)."""
    if config.mode != "predict" or not config.trained_model:
        return None
    meta = Path(config.trained_model) / "model_meta.json"
    if not meta.is_file():
        return None
    return json.loads(meta.read_text()).get("band_to_wave") or None
