"""Fit a survey's SN Ia host-dust scale to its colours, without labels.

    .venv/bin/python benchmarks/dust_fit.py --data DATA --sim SIM --ia-fraction F

DATA: the survey's light curves (as `scone simulate --like` takes them); SIM: a `--like`
simulation of it at BayeSN's dust (no `--ia-dust-tau`); F: the SN Ia fraction of DATA
estimated without labels, e.g. `predictions.class_prior.json` of a model trained on SIM and
run with `class_prior: data`.

Each object's colour near peak is -2.5 log10 of its median flux in bands at 4,000-5,000 A
over that at 5,800-7,000 A, observations within 5 d of PEAKMJD (a B - R or g - r proxy, in
the observer frame). The simulated SNe Ia colours are re-drawn for host dust
A_V ~ Exponential(tau): colour - k A_V + k A_V', with k the least-squares slope of colour
on SIM_AV among them (the simulation's SNIa class, whose dust `--ia-dust-tau` sets; its
91bg-like and Iax SNe stay with the other classes). The simulated mix is weighed to F SNe Ia
(the other classes in their simulated proportions), and the tau whose colour distribution is
nearest the data's (the Kolmogorov-Smirnov distance) is printed. The data's types are never
read.

The fit needs F because the colours alone cannot tell redder SNe Ia from more red
core-collapse SNe; at the simulation's own mix (mostly core collapse) it would say nothing.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np

from scone_assets.snana.read import discover_paths, read_unit

BLUE, RED = (4000.0, 5000.0), (5800.0, 7000.0)
NEAR_PEAK_DAYS = 5.0
TAUS = np.round(np.arange(0.20, 1.001, 0.05), 2)


def colours(path: str, simulated: bool, max_objects: int = 8000) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(colour near peak, is SNIa, SNID) of the objects where the colour can be measured; the
    type only of a simulation (`simulated`), all False for survey data, whose types are not read."""
    col, is_ia, snid = [], [], []
    for unit in discover_paths([path]).units:
        lcs = read_unit(unit)
        for row, obs in lcs.iter_lightcurves():
            t, f = obs.MJD.to_numpy(), obs.FLUXCAL.to_numpy()
            w = np.array([lcs.band_to_wave[b] for b in obs.BAND])
            near = np.abs(t - row.PEAKMJD) < NEAR_PEAK_DAYS
            b = f[near & (w > BLUE[0]) & (w < BLUE[1])]
            r = f[near & (w > RED[0]) & (w < RED[1])]
            if len(b) and len(r) and np.median(b) > 0 and np.median(r) > 0:
                col.append(-2.5 * np.log10(np.median(b) / np.median(r)))
                is_ia.append(simulated and str(row.TYPE_NAME).strip() == "SNIa")
                snid.append(str(row.SNID).strip())
        if len(col) > max_objects:
            break
    if not col:
        raise SystemExit(f"{path}: no object has observations at 4,000-5,000 A and 5,800-7,000 A "
                         f"within {NEAR_PEAK_DAYS:g} d of PEAKMJD, so no colour near peak to fit")
    return np.array(col), np.array(is_ia, dtype=bool), snid


def host_av(sim: str) -> dict[str, float]:
    from astropy.io import fits

    out = {}
    for head in sorted(glob.glob(str(Path(sim) / "*_HEAD.FITS*"))):
        with fits.open(head) as hdul:
            d = hdul[1].data
            out.update({str(s).strip(): float(a) for s, a in zip(d["SNID"], d["SIM_AV"], strict=True)})
    return out


def weighted_cdf(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted values, cumulative weight share at each)."""
    order = np.argsort(x)
    return x[order], np.cumsum(w[order]) / w.sum()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--ia-fraction", type=float, required=True)
    args = ap.parse_args()
    data, _, _ = colours(args.data, simulated=False)
    sim, ia, snid = colours(args.sim, simulated=True)
    if not ia.any():
        raise SystemExit(f"{args.sim}: no simulated SN Ia with a colour near peak")
    av = host_av(args.sim)
    av_ia = np.array([av[s] for s, i in zip(snid, ia, strict=True) if i])
    k = np.polyfit(av_ia, sim[ia], 1)[0]
    q = [0.5, 0.75, 0.9, 0.95]
    print(f"data: {len(data)} colours, quantiles {q}: {np.round(np.quantile(data, q), 2).tolist()}")
    print(f"simulation: {len(sim)} colours ({ia.sum()} SNe Ia), colour per mag of A_V k = {k:.3f}")
    grid = np.linspace(-0.5, 2.0, 501)
    data_cdf = np.searchsorted(np.sort(data), grid, side="right") / len(data)
    best = None
    for tau in TAUS:
        rng = np.random.default_rng(1)
        x = np.concatenate([sim[ia] - k * av_ia + k * rng.exponential(tau, ia.sum()), sim[~ia]])
        w = np.concatenate([np.full(ia.sum(), args.ia_fraction / ia.sum()),
                            np.full((~ia).sum(), (1 - args.ia_fraction) / (~ia).sum())])
        xs, cdf = weighted_cdf(x, w)
        ks = float(np.abs(np.interp(grid, xs, cdf, left=0.0, right=1.0) - data_cdf).max())
        qs = np.interp(q, cdf, xs)
        print(f"tau {tau:.2f}: KS {ks:.3f}, quantiles {np.round(qs, 2).tolist()}")
        if best is None or ks < best[0]:
            best = (ks, tau)
    print(f"best: --ia-dust-tau {best[1]:.2f} (KS {best[0]:.3f})")


if __name__ == "__main__":
    main()
