"""Heatmaps for input units: the one per-unit driver that `scone heatmaps` and the
Dagster heatmaps asset share, with one error policy.

Per unit and heatmap set: the fingerprint of what would make it is compared with
the one the store holds; a current unit is reused, a stale one is remade and the
reason said, a missing one is made. A unit that cannot be read, or holds no light
curve, fails with its message and the others proceed. Light curves are spread over
a process pool (all cores by default) whose workers end with their parent.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from scone_assets.config import ConfigError, SconeConfig
from scone_assets.heatmaps import HeatmapError, store
from scone_assets.heatmaps.augment import AUGMENTED, NO_SIGNAL, AugmentSettings, augment
from scone_assets.heatmaps.grid import EARLY_DEFAULT, GridSpec
from scone_assets.heatmaps.make import (
    NO_FLUX_PEAK,
    HeatmapResult,
    LightCurveInput,
    compute_chunk,
    start_worker,
)
from scone_assets.locking import lock_file
from scone_assets.snana import select
from scone_assets.snana.lightcurves import LightCurves, SnanaReadError
from scone_assets.snana.read import (
    Z_COLUMNS,
    Z_ERR_COLUMNS,
    InputUnit,
    best_redshift,
    discover,
    load_labels,
    read_unit,
)
from scone_assets.snana.types import IA
from scone_assets.workers import WorkerPool

log = logging.getLogger(__name__)

UnitStatus = Literal["done", "remade", "already done", "failed"]
# skip reasons that are failures of the GP, not properties of the data; a heatmap without a
# flux peak (NO_FLUX_PEAK, NO_SIGNAL) is a loss of the data's own, neither a GP failure nor asked for
GP_FAILURES = frozenset({"non-positive-definite matrix", "optimiser failure", "non-finite GP prediction"})
# skip reasons of the training-set selection (snid_select_files, SIMGEN DUMP, prescale)
SELECTION_REASONS = frozenset({select.NOT_SELECTED, select.NOT_IN_DUMP, select.REJECTED, select.PRESCALED})
PROGRESS_EVERY = 200  # light curves between `on_progress` calls (and one at the end)


@dataclass(frozen=True)
class HeatmapProgress:
    """How far one unit's heatmap set is: what `on_progress` receives, for a caller's log
    (the Dagster run log) where the console bar is not seen."""

    unit: str
    heatmap_set: str
    done: int  # light curves written or skipped so far (the reader's skips included)
    total: int
    rate: float  # light curves made per second so far
    eta_seconds: float

    def text(self) -> str:
        return (f"{self.unit} [{self.heatmap_set}]: {self.done}/{self.total} light curves, "
                f"{self.rate:.1f}/s, ETA {self.eta_seconds:.0f} s")

    __str__ = text


OnProgress = Callable[[HeatmapProgress], None]


@dataclass
class UnitResult:
    unit: str
    heatmap_set: str
    folder: Path | None
    status: UnitStatus = "done"
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    dropped_bands: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    bad_files: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why a unit was remade
    seconds: float = 0.0
    error: str | None = None

    @property
    def per_minute(self) -> float:
        return 60.0 * self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def selected_out(self) -> int:
        """Objects the training-set selection left out (not a loss: asked for)."""
        return sum(n for reason, n in self.skipped.items() if reason in SELECTION_REASONS)

    @property
    def gp_failures(self) -> int:
        return sum(n for reason, n in self.skipped.items() if reason in GP_FAILURES)

    @property
    def ok(self) -> bool:
        """Everything asked of this unit was done (its data's own skips aside)."""
        return self.status != "failed" and not self.bad_files and not self.gp_failures


@dataclass
class HeatmapRun:
    """What `make_heatmaps` did: per unit and set, and the duplicates across units."""

    root: Path
    results: list[UnitResult]
    duplicates: dict[str, pd.DataFrame] = field(default_factory=dict)  # set -> duplicate_snids
    removed: list[Path] = field(default_factory=list)  # stale temporaries of killed runs

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def heatmap_sets(config: SconeConfig) -> list[tuple[str, float | None | str | list]]:
    """(set name, truncation): None = full light curve, "mixed" = per-object draw. In train
    mode with `augment_copies`, last comes `augmented` (heatmaps/augment.py), whose
    "truncation" is the list of the other sets' truncations its copies are drawn from."""
    sets = _base_sets(config)
    if config.mode == "train" and config.augment_copies > 0:
        sets.append((AUGMENTED, [t for _, t in sets]))
    return sets


def _base_sets(config: SconeConfig) -> list[tuple[str, float | None | str]]:
    if config.early_lightcurves_mixed:
        return [("early_mixed", "mixed")]
    truncations = config.early_truncations or ([] if not config.early_lightcurves else list(EARLY_DEFAULT))
    if truncations:
        return [(f"early_{d:g}d", float(d)) for d in truncations]
    return [("full", None)]


def grid_spec(config: SconeConfig) -> GridSpec:
    return GridSpec(config.num_wavelength_bins, config.num_mjd_bins, config.has_peakmjd, config.mw_correction)


def store_grid(config: SconeConfig) -> store.Grid:
    return store.Grid(config.num_wavelength_bins, config.num_mjd_bins)


def _mixed_days(snid: object, seed: int) -> float:
    """SCONE draws 0-50 days per object; seeded by the SNID so re-runs agree."""
    rng = np.random.default_rng([seed, store.record_id(snid) & 0xFFFFFFFF])
    return float(rng.integers(0, 51))


def _augmented_inputs(lcs: LightCurves, truncations: list, config: SconeConfig
                      ) -> tuple[list[LightCurveInput], list[int]]:
    """`augment_copies` copies of every light curve, object by object; and each one's copy index."""
    aug = AugmentSettings.from_config(config)
    out, copies = [], []
    for lc in _inputs(lcs, None, config.seed):
        for k in range(aug.copies):
            out.append(augment(lc, aug, k, truncations))
            copies.append(k)
    return out, copies


def _inputs(lcs: LightCurves, truncation, seed: int) -> list[LightCurveInput]:
    out = []
    for row, obs in lcs.iter_lightcurves():
        days = _mixed_days(row.SNID, seed) if truncation == "mixed" else truncation
        out.append(LightCurveInput(
            row.SNID, obs.MJD.to_numpy(), obs.BAND.to_numpy(), obs.FLUXCAL.to_numpy(),
            obs.FLUXCALERR.to_numpy(), float(row.PEAKMJD), float(row.MWEBV), days))
    return out


def settings(config: SconeConfig, backend: str, heatmap_set: str, truncation,
             fallback: Mapping[str, float] | None, selection: select.UnitSelection | None = None) -> dict:
    """The config that shapes a unit's heatmaps (its type names, band map and selection;
    for `augmented`, the augmentation and seed). Entries that are None match a record made
    before they existed."""
    extra = AugmentSettings.from_config(config).fingerprint() if heatmap_set == AUGMENTED else {}
    return {**(selection.settings() if selection else {}), **extra,
            "num_wavelength_bins": config.num_wavelength_bins, "num_mjd_bins": config.num_mjd_bins,
            "has_peakmjd": config.has_peakmjd, "mw_correction": config.mw_correction,
            "backend": backend, "set": heatmap_set, "truncation": truncation,
            "seed": config.seed if truncation == "mixed" else None,
            "survey": config.survey, "band_to_wave": config.band_to_wave,
            "sn_type_id_to_name": {str(k): v for k, v in (config.sn_type_id_to_name or {}).items()},
            "trained_band_to_wave": dict(fallback) if fallback else None,
            "redshift_from": list(Z_COLUMNS)}


@dataclass
class _Context:
    """What every unit of one run shares: read once."""

    config: SconeConfig
    pool: WorkerPool
    backend: str
    force: bool
    progress: bool
    labels: dict | None
    labels_fp: dict | None
    fallback: dict[str, float] | None
    selection: select.Selection = field(default_factory=select.Selection)
    on_progress: OnProgress | None = None


def _context(config: SconeConfig, pool: WorkerPool, backend: str | None, force: bool,
             progress: bool, units: list[InputUnit], on_progress: OnProgress | None = None) -> _Context:
    """`units`: every unit the selection is decided over (all of the config's inputs)."""
    labels = load_labels(config.labels_path)
    labels_fp = store.file_fingerprint(config.labels_path) if config.labels_path else None
    return _Context(config, pool, backend or config.gp_backend, force, progress, labels, labels_fp,
                    training_band_map(config), select.plan(config, units, labels), on_progress)


def make_unit_sets(unit: InputUnit, ctx: _Context) -> list[UnitResult]:
    """Every heatmap set of one unit: reused, remade or made. Never raises for a bad
    unit: the result says `failed` with the message."""
    cfg, root = ctx.config, Path(ctx.config.heatmaps_path)
    todo, results = [], []
    chosen = ctx.selection.for_unit(unit.key, unit.files)
    try:
        inputs = store.input_fingerprints(unit.files, unit.readme)
    except OSError as exc:
        return [UnitResult(unit.key, name, None, "failed", error=f"cannot read input: {exc}")
                for name, _ in heatmap_sets(cfg)]
    for name, truncation in heatmap_sets(cfg):
        folder = store.unit_folder(root, name, unit.key)
        fp = store.unit_fingerprint(inputs, ctx.labels_fp,
                                    settings(cfg, ctx.backend, name, truncation, ctx.fallback, chosen))
        state, reasons = store.unit_state(folder, fp)
        if state == "current" and not ctx.force:
            rec = store.read_unit_record(folder)
            results.append(UnitResult(unit.key, name, folder, "already done", rec.written, rec.skipped,
                                      rec.dropped_bands, rec.by_type, rec.bad_files))
            continue
        todo.append((name, truncation, folder, fp, "done" if state == "missing" else "remade",
                     reasons if state == "stale" else (["--force"] if ctx.force and state == "current" else [])))
    if not todo:
        return results
    try:
        lcs = read_unit(unit, cfg, ctx.labels, ctx.fallback)
    except SnanaReadError as exc:
        return results + [UnitResult(unit.key, t[0], None, "failed", error=str(exc)) for t in todo]
    for w in lcs.warnings:
        log.warning("%s", w)
    lcs, left_out = _select(lcs, unit, chosen)
    for name, truncation, folder, fp, status, reasons in todo:
        if left_out and not len(lcs):
            log.warning("%s [%s]: the selection leaves out every object (%s); an empty unit is written",
                        unit.key, name, ", ".join(f"{r} {n}" for r, n in sorted(left_out.items())))
        if status == "remade":
            log.info("remaking %s [%s]: %s", unit.key, name, "; ".join(reasons))
        try:
            with lock_file(store.unit_lock_path(folder), what=f"heatmap unit {folder}"):
                store.remove_stale(folder.parent, unit.key)
                res = _make_unit(lcs, unit, ctx, folder, name, truncation, fp)
        except (HeatmapError, ValueError) as exc:
            log.error("heatmaps for %s [%s] failed: %s", unit.key, name, exc)
            res = UnitResult(unit.key, name, None, "failed", error=str(exc))
        if res.status != "failed":
            res.status, res.reasons = status, reasons
        results.append(res)
    return results


def _make_unit(lcs: LightCurves, unit: InputUnit, ctx: _Context, folder: Path, heatmap_set: str,
               truncation, fingerprint: dict) -> UnitResult:
    cfg = ctx.config
    bad_files = [str(e) for e in lcs.file_errors]
    dropped = dict(getattr(lcs, "dropped_bands", {}) or {})
    if not len(lcs) and not any(r in SELECTION_REASONS for _, r in lcs.skipped):
        why = "; ".join(lcs.warnings) or "no light curve could be read"
        return UnitResult(unit.key, heatmap_set, None, "failed", bad_files=bad_files,
                          skipped=lcs.skipped_by_reason(), error=f"no light curves in {lcs.source} ({why})")
    spec = grid_spec(cfg)
    t0 = time.perf_counter()
    copies: list[int] | None = None
    if heatmap_set == AUGMENTED:
        inputs, copies = _augmented_inputs(lcs, truncation, cfg)
    else:
        inputs = _inputs(lcs, truncation, cfg.seed)
    pool = ctx.pool
    chunk = max(4, min(64, len(inputs) // (4 * pool.jobs) or 4))
    tasks = [(inputs[i:i + chunk], lcs.band_to_wave, spec, ctx.backend) for i in range(0, len(inputs), chunk)]
    # plain rows by SNID: a pandas row lookup and its attribute reads cost ~0.45 ms per
    # light curve, a third of this process's work while the workers make heatmaps
    columns = ["TYPE", "TYPE_NAME", "PEAKMJD", "MWEBV", "SOURCE_FILE",
               *[c for c in (*Z_COLUMNS, *Z_ERR_COLUMNS.values()) if c in lcs.meta]]
    meta = dict(zip(lcs.meta["SNID"], lcs.meta[columns].itertuples(index=False), strict=True))
    rows: list[dict] = []
    skipped: Counter[str] = Counter()
    for snid, reason in lcs.skipped:  # the reader's skips (one observation, duplicates) count too
        skipped[reason] += 1
        rows.append({"SNID": str(snid), "TYPE_NAME": "", "status": reason, "SOURCE_FILE": lcs.source})
    done: Counter[str] = Counter()
    bar = tqdm(total=len(inputs), unit="LC", desc=f"heatmaps {unit.key}", disable=not ctx.progress)
    report = _progress_reporter(ctx.on_progress, unit.key, heatmap_set, len(lcs.skipped),
                                len(lcs.skipped) + len(inputs), t0)

    def records() -> Iterator[bytes]:
        position = 0
        n = 0  # results come back in input order: the n-th is inputs[n]
        for results in pool.map(compute_chunk, tasks):
            for res in results:
                if copies is not None and res.status == NO_FLUX_PEAK:
                    res = replace(res, status=NO_SIGNAL)
                row = _index_row(res, meta[res.snid])
                if copies is not None:
                    row["augment_copy"] = copies[n]
                n += 1
                if res.image is not None:
                    row["record"] = position
                    position += 1
                    done[row["TYPE_NAME"]] += 1
                    z = row["z"] if np.isfinite(row["z"]) else store.NO_Z
                    z_err = row["z_err"] if np.isfinite(row["z_err"]) else store.NO_Z
                    yield store.encode_example(res.image, row["label"], res.snid, row["TYPE_NAME"], z, z_err)
                else:
                    skipped[res.status] += 1
                rows.append(row)
            bar.update(len(results))
            report(len(lcs.skipped) + n)

    def finish() -> tuple[pd.DataFrame, str, store.UnitRecord]:
        seconds = time.perf_counter() - t0
        summary = store.summary_text(survey=lcs.survey, source=lcs.source, backend=ctx.backend,
                                     minutes=seconds / 60, done_by_type=dict(done), skipped=dict(skipped),
                                     dropped_bands=dropped, bad_files=bad_files)
        record = store.UnitRecord(fingerprint, (cfg.num_wavelength_bins, cfg.num_mjd_bins), lcs.band_to_wave,
                                  sum(done.values()), dict(skipped), dropped, dict(done), bad_files, seconds,
                                  time.time())
        return pd.DataFrame(rows), summary, record

    try:
        written = store.write_unit(folder, records(), finish)
    finally:
        bar.close()
    report(len(lcs.skipped) + len(inputs), last=True)
    return UnitResult(unit.key, heatmap_set, folder, "done", written, dict(skipped), dropped, dict(done),
                      bad_files, seconds=time.perf_counter() - t0)


def _progress_reporter(on_progress: OnProgress | None, unit: str, heatmap_set: str, start: int,
                       total: int, t0: float) -> Callable[..., None]:
    """`report(done)` calls `on_progress` each time `done` (counted per chunk of results)
    passes a multiple of PROGRESS_EVERY, and with `last=True` at the end unless that count was
    just reported. `start`: light curves skipped before any GP work."""
    passed, reported = start // PROGRESS_EVERY, -1

    def report(done: int, last: bool = False) -> None:
        nonlocal passed, reported
        due = done != reported if last else done // PROGRESS_EVERY > passed
        if on_progress is None or not due:
            return
        passed, reported = done // PROGRESS_EVERY, done
        seconds = time.perf_counter() - t0
        rate = (done - start) / seconds if seconds > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        on_progress(HeatmapProgress(unit, heatmap_set, done, total, rate, eta))

    return report


def _select(lcs: LightCurves, unit: InputUnit, chosen: select.UnitSelection
            ) -> tuple[LightCurves, Counter[str]]:
    """The objects the run's selection keeps; the others are counted by reason."""
    before = Counter(lcs.meta["TYPE_NAME"] == IA) if chosen.active else Counter()
    lcs, left_out = select.apply(lcs, chosen)
    if chosen.prescale and not lcs.is_sim:
        log.info("%s: real data, so prescale_heatmaps is not applied", unit.key)
    if left_out:
        after = Counter(lcs.meta["TYPE_NAME"] == IA)
        log.info("%s: selection keeps SNIa %d of %d, nonIa %d of %d (left out: %s)", unit.key,
                 after[True], before[True], after[False], before[False],
                 ", ".join(f"{r} {n}" for r, n in sorted(left_out.items())))
    return lcs, left_out


def _index_row(res: HeatmapResult, m) -> dict:
    z, z_err, z_from = best_redshift(m)  # REDSHIFT_FINAL, else the host galaxy's
    return {"SNID": str(res.snid), "TYPE": int(m.TYPE), "TYPE_NAME": m.TYPE_NAME,
            "label": int(m.TYPE_NAME == IA), "z": z, "z_err": z_err, "z_source": z_from or "",
            "PEAKMJD": float(m.PEAKMJD),
            "MWEBV": float(m.MWEBV), "SOURCE_FILE": str(m.SOURCE_FILE), "n_obs": res.n_obs,
            "log_amp": res.params[0], "log_lt2": res.params[1], "log_lw2": res.params[2],
            "n_eval": res.n_eval, "early_days": np.nan if res.early_days is None else res.early_days,
            "status": res.status, "record": -1}


def make_heatmaps(config: SconeConfig, *, backend: str | None = None, jobs: int | None = None,
                  force: bool = False, progress: bool = True, units: list[InputUnit] | None = None,
                  on_progress: OnProgress | None = None) -> HeatmapRun:
    """Heatmaps for every unit the config names (or `units`), holding the store's lock
    so no other run writes into it meanwhile. Never stops at a bad file. `on_progress`
    receives a HeatmapProgress every PROGRESS_EVERY light curves of a unit and at its end."""
    if not config.heatmaps_path:
        raise ConfigError("heatmaps_path is required to make heatmaps")
    root = Path(config.heatmaps_path)
    found_errors: list[SnanaReadError] = []
    planned = None
    if units is None:
        found = discover(config)
        units, found_errors = found.units, found.errors
        planned = units
    if not units:
        why = "; ".join(str(e) for e in found_errors) or f"no SNANA input units in {_inputs_named(config)}"
        raise ConfigError(f"nothing to do: {why}")
    jobs = max(1, jobs or config.jobs or os.cpu_count() or 1)
    results = [UnitResult(Path(e.path).name, "-", None, "failed", error=str(e)) for e in found_errors]
    for e in found_errors:
        log.error("%s", e)
    with lock_file(store.store_lock_path(root), what=f"heatmaps folder {root}"):
        grid = store_grid(config)
        if force and store.read_manifest(root) not in (None, grid):
            log.warning("--force: removing every unit of %s made on another grid", root)
            store.reset_grid(root, grid)
        store.claim_grid(root, grid)
        removed = []
        for name, _ in heatmap_sets(config):
            removed += store.remove_stale(root / name)
        if removed:
            log.info("removed %d temporary file(s) a stopped run had left in %s", len(removed), root)
        with WorkerPool(jobs, start_worker) as pool:
            ctx = _context(config, pool, backend, force, progress, planned or _planned_units(config, units),
                           on_progress)
            for unit in units:
                results += make_unit_sets(unit, ctx)
        run = HeatmapRun(root, results, removed=removed)
        for name, _ in heatmap_sets(config):
            if name == AUGMENTED:  # several copies per SNID by design
                continue
            keys = {u.key for u in units}
            folders = [f for f in store.finished_units(root, name) if f.name in keys]
            if folders:
                dups = store.duplicate_snids(store.load_catalog(folders))
                if len(dups):
                    run.duplicates[name] = dups
    return run


def heatmaps_for_unit(unit: InputUnit, config: SconeConfig, pool: WorkerPool, *,
                      backend: str | None = None, force: bool = False,
                      on_progress: OnProgress | None = None) -> list[UnitResult]:
    """One unit, as a Dagster partition makes it: a shared hold on the store (other
    partitions may write their own units meanwhile; `scone heatmaps` may not). `on_progress`
    as in `make_heatmaps` (no console bar here: a run log has no terminal)."""
    if not config.heatmaps_path:
        raise ConfigError("heatmaps_path is required to make heatmaps")
    root = Path(config.heatmaps_path)
    with lock_file(store.store_lock_path(root), what=f"heatmaps folder {root}", shared=True, wait=600):
        store.claim_grid(root, store_grid(config))
        # the selection is decided over every input, as `scone heatmaps` decides it
        ctx = _context(config, pool, backend, force, False, _planned_units(config, [unit]), on_progress)
        return make_unit_sets(unit, ctx)


def _planned_units(config: SconeConfig, units: list[InputUnit]) -> list[InputUnit]:
    """The units a selection is decided over: all of the config's inputs (so a run over some
    units computes the same nevt prescales as one over all), else the units given."""
    return discover(config).units if config.has_inputs else units


def _inputs_named(config: SconeConfig) -> str:
    named = [config.input_path, *(config.input_data_paths or []), *(config.metadata_paths or [])]
    return ", ".join(str(p) for p in named if p) or "(no input key: set input_path, input_data_paths " \
        "or metadata_paths + lcdata_paths)"


def training_band_map(config: SconeConfig) -> dict[str, float] | None:
    """In predict mode, the band map the model was trained with: used only for bands
    the data itself does not place (SCONE's filter-set independence). From the folder's
    meta, else SCONE's `filter_mean_wavelength.dat` (a SCONE-trained folder has only
    that); the meta wins where both place a band. The config's band_to_wave wins over both."""
    if config.mode != "predict" or not config.trained_model:
        return None
    from scone_assets.model.folder import META_FILE, read_filter_wavelengths, read_meta

    folder = Path(config.trained_model)
    if folder.is_file():  # SCONE also takes the model file itself: its folder holds the map
        folder = folder.parent
    if not folder.is_dir():
        return None  # predict itself says what is missing
    merged = dict(read_filter_wavelengths(folder) or {})
    if (folder / META_FILE).is_file():
        merged.update(read_meta(folder).band_to_wave or {})
    return merged or None
