"""The light curves' shape around their brightest observation, data against their `--like`
simulation's SNe Ia, without labels and without training.

    .venv/bin/python benchmarks/rise_shape.py [--data ../shared/data/snana_fits/LOWZ_REAL]
        [--n 3000] [--seed 4] [--edges -15,-10,-5,-2,2,5,10,20]

At each observation: the flux over its band's brightest flux, in days from the light
curve's brightest observation (the same definition on both sides), medians per band group
(the band's wavelength as the reader places it). The simulation is `--n` SNe Ia drawn and
observed as the data were (their sequences, peaks, floors and selection; BayeSN's dust);
the objects the selection keeps are measured. Also printed: where the brightest
observation falls from PEAKMJD, data and simulation. For a set of SNe Ia only (LOWZ_REAL)
this compares the SNe Ia' own shape; for a mixed set the data hold every class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from scone_assets.simulate.classes import SUBTYPES
from scone_assets.simulate.generate import simulate_batch_like
from scone_assets.simulate.like import model_from_inputs
from scone_assets.snana.read import discover_paths, read_unit

HERE = Path(__file__).resolve().parent
EDGES = (-15, -10, -5, -2, 2, 5, 10, 20)
GROUPS = ((4000, "U"), (5000, "B, g"), (6500, "V, r"), (8000, "R, i"), (np.inf, "I, z and redder"))


def group(wave: float) -> str:
    return next(name for top, name in GROUPS if wave < top)


def add_ratios(days: np.ndarray, flux: np.ndarray, groups: np.ndarray, bands: np.ndarray, out: dict) -> None:
    """Each observation's flux over its band's brightest, under its band's group."""
    for band in np.unique(bands):
        own = bands == band
        if own.sum() < 3:
            continue
        out.setdefault(groups[own][0], []).append(np.column_stack([days[own], flux[own] / flux[own].max()]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "snana_fits" / "LOWZ_REAL"))
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--edges", default=",".join(str(e) for e in EDGES),
                    help="bin edges, days from the brightest observation")
    args = ap.parse_args()
    edges = [float(e) for e in args.edges.split(",")]
    model = model_from_inputs([args.data])
    wave_of = dict(zip(model.letters, model.waves, strict=True))
    data: dict[str, list] = {}
    data_offset = []
    for unit in discover_paths([args.data]).units:
        for row, obs in read_unit(unit).iter_lightcurves():
            mjd, flux = obs.MJD.to_numpy(float), obs.FLUXCAL.to_numpy(float)
            bands = obs.BAND.to_numpy().astype(str)
            known = np.isin(bands, list(wave_of))
            if known.sum() < 2:
                continue
            mjd, flux, bands = mjd[known], flux[known], bands[known]
            brightest = mjd[np.argmax(flux)]
            data_offset.append(brightest - row.PEAKMJD)
            add_ratios(mjd - brightest, flux, np.array([group(wave_of[b]) for b in bands]), bands, data)
    rng = np.random.default_rng(args.seed)
    p, mjd, band, flux, _, mask, detected, _ = simulate_batch_like(SUBTYPES["SNIa"], model, args.n, rng)
    sim: dict[str, list] = {}
    sim_offset = []
    for i in np.flatnonzero(detected):
        t, f, b = mjd[i][mask[i]], flux[i][mask[i]], band[i][mask[i]]
        brightest = t[np.argmax(f)]
        sim_offset.append(brightest - p["peak_mjd"][i])
        add_ratios(t - brightest, f, np.array([group(model.waves[k]) for k in b]), b, sim)
    print(f"{args.data}: {len(data_offset)} light curves; simulation: {int(detected.sum())} of {args.n} SNe Ia kept")
    print("brightest observation minus PEAKMJD, d, quantiles 10 / 50 / 90%: data "
          + " / ".join(f"{x:.1f}" for x in np.quantile(data_offset, [0.1, 0.5, 0.9])) + "; simulation "
          + " / ".join(f"{x:.1f}" for x in np.quantile(sim_offset, [0.1, 0.5, 0.9])))
    print("median flux over its band's brightest, data / simulation, by days from the brightest observation:")
    print("group | " + " | ".join(f"{a:g} to {b:g}" for a, b in zip(edges[:-1], edges[1:], strict=True)))
    for _, name in GROUPS:
        if name not in data:
            continue
        d, s = np.concatenate(data[name]), np.concatenate(sim.get(name, [np.zeros((0, 2))]))
        cells = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            dd, ss = (x[(x[:, 0] >= a) & (x[:, 0] < b), 1] for x in (d, s))
            cells.append(" / ".join(f"{np.median(x):.2f}" if len(x) > 20 else "-" for x in (dd, ss)))
        print(f"{name} ({len(d)} observations) | " + " | ".join(cells))


if __name__ == "__main__":
    main()
