"""How a `--like` simulation compares with the data it was made from, without labels.

Lines for the simulation's README, a table and a picture for the UI, so that a user sees
where the simulated light curves differ from the survey's before training on them. Every figure is a distribution over
light curves, the data's from the survey model (the observations it borrows: placed bands,
finite values) and the simulation's from the files written. The simulation is in its own
class mix, the data in theirs, which no label here says: a difference can be the mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
FLUXCAL_ZP = 27.5  # SNANA's FLUXCAL zero point: mag = 27.5 - 2.5 log10(FLUXCAL)
_ROWS = (("observations per light curve", "n_obs", ".0f"),
         ("first observation, days from PEAKMJD", "first", ".0f"),
         ("last observation, days from PEAKMJD", "last", ".0f"),
         ("brightest observation, mag (27.5 - 2.5 log10 FLUXCAL)", "brightest_mag", ".2f"))


@dataclass(frozen=True)
class LightCurveShapes:
    """Per light curve: its observation count, its first and last observation in days from
    PEAKMJD, its brightest observation as a magnitude, and its redshift (NaN: none)."""

    n_obs: np.ndarray
    first: np.ndarray
    last: np.ndarray
    brightest_mag: np.ndarray
    redshift: np.ndarray


@dataclass(frozen=True)
class Comparison:
    """The data's and a simulation's light curves, side by side (read once, used by the
    README, the console and the UI)."""

    data: LightCurveShapes
    sim: LightCurveShapes


def _mag(fluxcal: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return FLUXCAL_ZP - 2.5 * np.log10(np.where(fluxcal > 0, fluxcal, np.nan))


def data_shapes(model) -> LightCurveShapes:
    """The data's, from a `like.SurveyModel`."""
    have = model.band >= 0
    with np.errstate(invalid="ignore"):
        mjd = np.where(have, model.mjd, np.nan)
    z = model.seq_z if len(model.seq_z) == model.n_objects else model.z  # older models: the list alone
    return LightCurveShapes(have.sum(axis=1).astype(float), np.nanmin(mjd, axis=1) - model.peak,
                            np.nanmax(mjd, axis=1) - model.peak, _mag(model.brightest), np.asarray(z, float))


def _phot_of(head: Path) -> Path:
    return head.with_name(head.name.replace("_HEAD.", "_PHOT."))


def simulation_shapes(heads: list[Path]) -> LightCurveShapes:
    """The simulation's, from its HEAD/PHOT files (1-based PTROBS pointers). Every object of
    a simulation whose data carry redshifts has a positive one (generate.spectroscopic_redshift);
    one whose data carry none writes -9."""
    parts: list[tuple[np.ndarray, ...]] = []
    for head in heads:
        h = fits.getdata(head, 1)
        p = fits.getdata(_phot_of(head), 1)
        mjd, flux = np.asarray(p["MJD"], float), np.asarray(p["FLUXCAL"], float)
        lo, hi = np.asarray(h["PTROBS_MIN"], int) - 1, np.asarray(h["PTROBS_MAX"], int)
        peak = np.asarray(h["PEAKMJD"], float)
        z = np.asarray(h["REDSHIFT_FINAL"], float)
        n, first, last, bright = (np.empty(len(lo)) for _ in range(4))
        for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
            n[i] = b - a
            if b <= a:  # no observation (a kept object has at least two; a stranger's file may not)
                first[i] = last[i] = bright[i] = np.nan
                continue
            first[i], last[i] = mjd[a:b].min() - peak[i], mjd[a:b].max() - peak[i]
            bright[i] = flux[a:b].max()
        parts.append((n, first, last, bright, np.where(z > 0, z, np.nan)))
    n, first, last, bright, z = (np.concatenate([p[k] for p in parts]) for k in range(5))
    return LightCurveShapes(n, first, last, _mag(bright), z)


def _quantiles(v: np.ndarray, fmt: str) -> str:
    v = v[np.isfinite(v)]
    return " / ".join(format(float(x), fmt) for x in np.quantile(v, QUANTILES)) if len(v) else "none"


def compare(heads: list[Path], model) -> Comparison:
    """The comparison of a simulation made from `model` (a `like.SurveyModel`)."""
    return Comparison(data_shapes(model), simulation_shapes(heads))


def shape_table(c: Comparison) -> list[tuple[str, str, str]]:
    """(what, data's quantiles, simulation's) per row, for the README, the console and the UI."""
    return [(what, _quantiles(getattr(c.data, key), fmt), _quantiles(getattr(c.sim, key), fmt))
            for what, key, fmt in _ROWS]


def report_lines(c: Comparison) -> list[str]:
    """README lines: the written redshifts against the data's (the selection thins the far
    ones after they are drawn, so the two differ), then the table."""
    def summary(v: np.ndarray) -> str:
        lo, mid, hi = np.quantile(v, [0.1, 0.5, 0.9])
        return f"median {mid:.3f}, 10-90% {lo:.3f}-{hi:.3f}"

    data_z, sim_z = (z[np.isfinite(z)] for z in (c.data.redshift, c.sim.redshift))
    lines = [f"like: written redshifts: {summary(sim_z)}, against the data's {summary(data_z)} (drawn from "
             "the data's, then the selection keeps fewer of the far objects)"] if len(data_z) and len(sim_z) else []
    head = ("like: compared with the data, per light curve, quantiles 10 / 25 / 50 / 75 / 90% (the simulation "
            "in its own class mix; the data's types are not read)")
    return [*lines, head, *(f"like:   {what}: data {d}; simulation {s}" for what, d, s in shape_table(c))]


def plot_shapes(c: Comparison, target: Path) -> Path:
    """Four panels, data against simulation, each normalised to its own count: where the
    simulated light curves are shorter, start later or are brighter than the survey's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(13, 3), constrained_layout=True)
    for ax, (what, key, _) in zip(axes, _ROWS, strict=True):
        d, s = getattr(c.data, key), getattr(c.sim, key)
        d, s = d[np.isfinite(d)], s[np.isfinite(s)]
        ax.set_xlabel(what.split(" (")[0], fontsize=8)
        if not len(d) or not len(s):  # a survey model saved without brightest observations
            continue
        lo, hi = np.quantile(np.concatenate([d, s]), [0.005, 0.995])
        bins = np.linspace(lo, max(hi, lo + 1.0), 30)
        for v, label in ((d, f"survey data ({len(d)})"), (s, f"like simulation ({len(s)})")):
            ax.hist(np.clip(v, bins[0], bins[-1]), bins, density=True, histtype="step", lw=2, label=label)
    axes[0].legend(fontsize=7)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=80)
    plt.close(fig)
    return target
