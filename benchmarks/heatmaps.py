"""Heatmap speed per core, `fast` against `george`, and their parity, in one run.

    .venv/bin/python benchmarks/heatmaps.py [--n-sim 200] [--max-lc 200]

Both back-ends run in this process with BLAS limited to one thread, on the
same light curves: the shared SNANA files (DES_SIM, LSST_SIM, LOWZ_REAL) and
simulator output (DES about 100 observations, LSST a few hundred). Prints
heatmaps/s per core and the ratio, the parity distribution (hyperparameters
within 5%, image difference as a fraction of peak flux), then the fast
back-end's throughput with 1 and 2 worker processes.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from scone_assets.config import SconeConfig
from scone_assets.heatmaps.gp import BACKENDS, GPFitError
from scone_assets.heatmaps.grid import GridSpec, SkipLightCurve, prepare
from scone_assets.heatmaps.run import make_heatmaps
from scone_assets.simulate.run import simulate
from scone_assets.snana.read import discover_paths, read_unit

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "snana_fits"


def light_curves(folder: Path, limit: int):
    unit = discover_paths([str(folder)]).units[0]
    lcs = read_unit(unit)
    out = []
    for row, obs in lcs.iter_lightcurves():
        try:
            out.append(prepare(obs.MJD.to_numpy(), obs.BAND.to_numpy(), obs.FLUXCAL.to_numpy(),
                               obs.FLUXCALERR.to_numpy(), lcs.band_to_wave, float(row.PEAKMJD), GridSpec()))
        except SkipLightCurve:
            continue
        if len(out) == limit:
            break
    return out


def run_one(name, p, waves):
    fit, predict = BACKENDS[name]
    t0 = time.perf_counter()
    try:
        f = fit(p.t, p.w, p.flux, p.err)
        mean, std = predict(p.t, p.w, p.flux, p.err, f.params, p.grid_t, waves, factor=f.factor)
        out = (f.params, mean, std)
    except GPFitError:
        out = None
    return time.perf_counter() - t0, out


def compare(label: str, pts_list, chunk: int = 20) -> None:
    """The back-ends take turns, `chunk` light curves at a time, so a change in the
    machine's load during the run weighs on both alike, while each still runs
    with warm caches as it would in production."""
    waves = GridSpec().wavelengths
    t_fast = t_geo = 0.0
    fast, geo = [], []
    with threadpool_limits(1):
        for name in ("fast", "george"):  # imports, numba's compiled-code cache: once per process
            run_one(name, pts_list[0], waves)
        for c0 in range(0, len(pts_list), chunk):
            for name, out in (("fast", fast), ("george", geo)):
                for p in pts_list[c0:c0 + chunk]:
                    dt, res = run_one(name, p, waves)
                    out.append(res)
                    if name == "fast":
                        t_fast += dt
                    else:
                        t_geo += dt
    n = len(pts_list)
    pairs = [(a, b, p) for a, b, p in zip(fast, geo, pts_list, strict=True) if a is not None and b is not None]
    dpar = np.array([np.max(np.abs(np.exp(a[0] - b[0]) - 1)) for a, b, _ in pairs])
    peak = np.array([np.max(np.abs(p.flux)) for _, _, p in pairs])
    dmean = np.array([np.median(np.abs(a[1] - b[1])) for a, b, _ in pairs]) / peak
    dstd = np.array([np.median(np.abs(a[2] - b[2])) for a, b, _ in pairs]) / peak
    worst = np.array([max(np.max(np.abs(a[1] - b[1])), np.max(np.abs(a[2] - b[2]))) for a, b, _ in pairs]) / peak
    nobs = np.median([p.n_obs for p in pts_list])
    print(f"\n{label}: {n} light curves, median {nobs:.0f} observations")
    print(f"  fast:   {n / t_fast:7.1f} heatmaps/s per core ({1000 * t_fast / n:.1f} ms each)")
    print(f"  george: {n / t_geo:7.1f} heatmaps/s per core ({1000 * t_geo / n:.1f} ms each)")
    print(f"  ratio fast/george: {t_geo / t_fast:.2f}x")
    print(f"  failures: fast {sum(a is None for a in fast)}, george {sum(b is None for b in geo)}")
    print(f"  hyperparameters within 5%: {100 * np.mean(dpar < 0.05):.1f}% (max relative difference {dpar.max():.2e})")
    print(f"  image difference / peak flux, median over pixels: mean channel p50 {np.median(dmean):.1e} "
          f"max {dmean.max():.1e}; std channel p50 {np.median(dstd):.1e} max {dstd.max():.1e}")
    print(f"  worst single pixel, either channel, / peak flux: {worst.max():.1e}")


def scaling(folder: Path) -> None:
    print(f"\nfast back-end through the process pool ({folder.name}):")
    import tensorflow  # noqa: F401 - the shard writer's import (seconds), once per process, not per heatmap

    for jobs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = SconeConfig(input_path=str(folder), heatmaps_path=tmp)
            t0 = time.perf_counter()
            res = make_heatmaps(cfg, jobs=jobs, progress=False).results
            wall = time.perf_counter() - t0
            n = sum(r.written for r in res)
            print(f"  jobs={jobs}: {n} heatmaps in {wall:.1f} s = {n / wall:.1f} heatmaps/s "
                  f"(includes reading, worker start-up and TFRecord writing)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-sim", type=int, default=200)
    ap.add_argument("--max-lc", type=int, default=200)
    ap.add_argument("--n-scale", type=int, default=2000, help="light curves for the pool-scaling run")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        des = simulate(Path(tmp) / "BDES", args.n_sim, survey="des", seed=5, per_file=args.n_sim, progress=False)
        lsst = simulate(Path(tmp) / "BLSST", args.n_sim, survey="lsst", seed=5, per_file=args.n_sim, progress=False)
        sets = [("simulated DES", des.folder), ("simulated LSST", lsst.folder)]
        if SHARED.is_dir():
            sets = [("SNANA DES_SIM", SHARED / "DES_SIM"), ("SNANA LSST_SIM", SHARED / "LSST_SIM"),
                    ("SNANA LOWZ_REAL", SHARED / "LOWZ_REAL")] + sets
        for label, folder in sets:
            compare(label, light_curves(folder, args.max_lc))
        big = simulate(Path(tmp) / "BSCALE", args.n_scale, survey="des", seed=6, per_file=args.n_scale,
                       progress=False)
        scaling(big.folder)


if __name__ == "__main__":
    main()
