"""A survey's SN Ia host-dust scale, fitted to its colours near peak without labels:
`scone fit-dust`.

BayeSN W22's A_V ~ Exponential(0.252) was fitted to the SNe Ia that cosmology samples
keep; searches that target nearby galaxies find more reddened ones, so a survey's dust is
its own. Its colours show it, but colours alone cannot tell redder SNe Ia from more red
core-collapse SNe, so the fit takes the survey's SN Ia fraction F as given: estimated,
without labels, by a first model trained on a `--like` simulation and run on the survey
with `class_prior: data`.

An object's colour near peak is -2.5 log10 of its median flux in bands at 4,000-5,000 A
over that at 5,800-7,000 A, observations within 5 d of PEAKMJD (a B - R or g - r proxy in
the observer frame; the reader places the bands). The simulated SNe Ia (the class SNIa,
whose dust `--ia-dust-tau` sets; 91bg-like and Iax SNe stay with the other classes) are
re-drawn for A_V ~ Exponential(tau) along the simulation's own colour-A_V slope, the mix is
weighed to F SNe Ia (the other classes in their simulated proportions), and the tau whose
colour distribution is nearest the data's by the Kolmogorov-Smirnov distance is the fit.
Differences in that distance under 1.36 / sqrt(data colours) are the data's noise, so a
scale is only ruled out beyond it. Re-drawing keeps the objects the simulation selected, so
the selection that more dust would bring is not redone: a simulation made at the fitted
scale, fitted again, checks it (LOWZ_REAL's gives the same scale, BENCHMARKS.md). The
survey's types are never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scone_assets.config import SconeConfig
from scone_assets.simulate.classes import SimulationError
from scone_assets.snana.fits_read import read_fits_head
from scone_assets.snana.lightcurves import LightCurves
from scone_assets.snana.read import discover, discover_paths, read_unit

BLUE, RED = (4000.0, 5000.0), (5800.0, 7000.0)  # A: a B or g band, an R or r band
NEAR_PEAK_DAYS = 5.0
TAUS = tuple(float(t) for t in np.round(np.arange(0.20, 1.001, 0.05), 2))  # the scales compared
QUANTILES = (0.5, 0.75, 0.9, 0.95)  # reported: the red tail is where the scales differ
MAX_SIM_COLOURS = 8000  # KS noise 1.36 / sqrt(8000) = 0.015, well under any survey sample's
MIN_COLOURS = 20  # of the data, of the simulation's SNe Ia, and of the data's SNe Ia expected at F
KS_95 = 1.36  # the KS distance a sample of n tells from its parent 95% of the time is ~1.36 / sqrt(n)


@dataclass(frozen=True)
class SimColours:
    """Colours near peak of a simulation's objects, with what the fit needs of the truth."""

    colour: np.ndarray
    is_ia: np.ndarray  # the class SNIa
    host_av: np.ndarray  # SIM_AV


@dataclass(frozen=True)
class DustFit:
    tau: float  # the best scale, mag
    ks: tuple[tuple[float, float], ...]  # (tau, KS distance) over TAUS
    slope: float  # colour per mag of A_V among the simulated SNe Ia
    ia_fraction: float
    n_data: int
    n_sim: int
    n_sim_ia: int
    data_quantiles: tuple[float, ...]  # at QUANTILES
    sim_quantiles: tuple[float, ...]  # the simulation as it is, weighed to F
    fit_quantiles: tuple[float, ...]  # the simulation at `tau`, weighed to F
    at_edge: bool  # the best scale is the first or last of TAUS: the data may want one beyond

    def ks_at(self, tau: float) -> float:
        """The KS distance at the compared scale nearest `tau`."""
        return min(self.ks, key=lambda tk: abs(tk[0] - tau))[1]

    @property
    def resolution(self) -> float:
        """Differences in KS distance smaller than this are the data's noise (95%)."""
        return KS_95 / np.sqrt(self.n_data)

    def rules_out(self, tau: float) -> bool:
        """Whether the data's colours are nearer the fit than the simulation at `tau` by more
        than their noise: a reason to simulate again at the fitted scale."""
        return self.ks_at(tau) - self.ks_at(self.tau) > self.resolution

    def describe(self) -> list[str]:
        q = "/".join(f"{x:.0%}" for x in QUANTILES)

        def qs(v: tuple[float, ...]) -> str:
            return " / ".join(f"{x:.2f}" for x in v)

        best_ks = self.ks_at(self.tau)
        lines = [f"colours near peak: {self.n_data} in the data, {self.n_sim} in the simulation "
                 f"({self.n_sim_ia} SNe Ia, colour per mag of A_V {self.slope:.3f}); "
                 f"simulation weighed to {self.ia_fraction:.2f} SNe Ia",
                 f"quantiles {q}: data {qs(self.data_quantiles)}; simulation {qs(self.sim_quantiles)}; "
                 f"at tau {self.tau:.2f} {qs(self.fit_quantiles)}",
                 "KS distance by tau: " + ", ".join(f"{t:.2f} {k:.3f}" for t, k in self.ks),
                 f"best: --ia-dust-tau {self.tau:.2f} (KS {best_ks:.3f}; differences under "
                 f"{self.resolution:.3f} are the data's noise)"]
        if self.at_edge:
            lines.append(f"warning: {self.tau:.2f} is at the edge of the scales compared "
                         f"({TAUS[0]:.2f}-{TAUS[-1]:.2f}); the data may want one beyond it")
        return lines


def _colour(row, obs, band_to_wave: dict[str, float]) -> float | None:
    t, f = obs.MJD.to_numpy(), obs.FLUXCAL.to_numpy()
    w = np.array([band_to_wave[b] for b in obs.BAND])
    near = np.abs(t - row.PEAKMJD) < NEAR_PEAK_DAYS
    b = f[near & (w > BLUE[0]) & (w < BLUE[1])]
    r = f[near & (w > RED[0]) & (w < RED[1])]
    if len(b) and len(r) and np.median(b) > 0 and np.median(r) > 0:
        return float(-2.5 * np.log10(np.median(b) / np.median(r)))
    return None


def _no_colours(where: str) -> SimulationError:
    return SimulationError(
        f"{where}: fewer than {MIN_COLOURS} objects have observations at {BLUE[0]:,.0f}-{BLUE[1]:,.0f} A "
        f"and {RED[0]:,.0f}-{RED[1]:,.0f} A within {NEAR_PEAK_DAYS:g} d of PEAKMJD, too few colours near "
        "peak to fit")


def colours_of(lightcurves: Iterable[LightCurves], where: str) -> np.ndarray:
    """Colours near peak of read survey data, where one can be measured; `where` names the
    data in the error when too few can. Nothing of the objects' types is read."""
    out = []
    for lcs in lightcurves:
        out += [c for row, obs in lcs.iter_lightcurves() if (c := _colour(row, obs, lcs.band_to_wave)) is not None]
    if len(out) < MIN_COLOURS:
        raise _no_colours(where)
    return np.array(out)


def survey_colours(paths: Sequence[str] | None = None, config: SconeConfig | None = None) -> np.ndarray:
    """`colours_of` the survey data in `paths` (folders or files, as `--like` takes them), or
    in a SCONE config's inputs, read with its `band_to_wave` (as `--like-config`)."""
    found = discover(config) if config is not None else discover_paths(list(paths or []))
    if found.errors:
        raise found.errors[0]
    where = ", ".join(paths or []) or "the config's inputs"
    if not found.units:
        raise SimulationError(f"no SNANA light curves in {where}")
    return colours_of((read_unit(u, config) for u in found.units), where)


def simulated_colours(folder: str | Path, max_colours: int = MAX_SIM_COLOURS) -> SimColours:
    """Colours near peak of a simulation's objects (its files in order, until `max_colours`),
    with their class and host A_V; SimulationError when `folder` is not a simulation that
    wrote SIM_AV (survey data, or a SNANA simulation without it)."""
    found = discover_paths([str(folder)])
    if found.errors:
        raise found.errors[0]
    colour, is_ia, av = [], [], []
    for unit in found.units:
        head = read_fits_head(unit.files[0]) if unit.kind == "fits" else {}
        if "SIM_AV" not in head:
            raise SimulationError(f"{unit.files[0]}: no SIM_AV column; --sim must be a simulation that "
                                  "writes each object's host A_V (`scone simulate --like`)")
        av_of = {str(s).strip(): float(a) for s, a in zip(head["SNID"], head["SIM_AV"], strict=True)}
        lcs = read_unit(unit)
        for row, obs in lcs.iter_lightcurves():
            c = _colour(row, obs, lcs.band_to_wave)
            if c is not None:
                colour.append(c)
                is_ia.append(str(row.TYPE_NAME).strip() == "SNIa")
                av.append(av_of[str(row.SNID).strip()])
        if len(colour) >= max_colours:
            break
    if len(colour) < MIN_COLOURS:
        raise _no_colours(str(folder))
    sim = SimColours(np.array(colour), np.array(is_ia, dtype=bool), np.array(av))
    if sim.is_ia.sum() < MIN_COLOURS:
        raise SimulationError(f"{folder}: {int(sim.is_ia.sum())} simulated SNe Ia with a colour near peak; "
                              f"the fit needs at least {MIN_COLOURS}")
    return sim


def made_like(sim: str | Path, data_paths: Sequence[str] | None = None,
              config: SconeConfig | None = None) -> str | None:
    """SimulationError when `sim` is a `scone simulate --like` simulation of other data than
    `data_paths` (or the config's inputs); a warning to show when it is not a `--like`
    simulation at all (a SNANA one made for the survey can serve, but nothing here can tell);
    None when it is of these data."""
    from scone_assets.simulate.like import SurveyModel, model_from_inputs
    from scone_assets.simulate.run import LIKE_MODEL

    saved = Path(sim) / LIKE_MODEL
    if not saved.exists():
        return (f"{sim} is not a `scone simulate --like` simulation: the fit takes it to observe as the "
                "survey does (its bands, cadence, depth and redshifts)")
    if not SurveyModel.load(saved).same_data(model_from_inputs(list(data_paths or []), config)):
        raise SimulationError(f"{sim} was simulated like other data than "
                              f"{', '.join(data_paths or []) or 'the config inputs'}; simulate --like these data first")
    return None


def _weighted(sim: SimColours, tau: float | None, ia_fraction: float, slope: float,
              seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted colours, cumulative weight at each) of the simulation weighed to `ia_fraction`
    SNe Ia, their dust re-drawn at `tau` (None: as simulated)."""
    ia = sim.colour[sim.is_ia]
    if tau is not None:
        av = sim.host_av[sim.is_ia]
        ia = ia - slope * av + slope * np.random.default_rng(seed).exponential(tau, len(av))
    x = np.concatenate([ia, sim.colour[~sim.is_ia]])
    w = np.concatenate([np.full(len(ia), ia_fraction / len(ia)),
                        np.full(int((~sim.is_ia).sum()), (1 - ia_fraction) / max(1, int((~sim.is_ia).sum())))])
    order = np.argsort(x, kind="stable")
    return x[order], np.cumsum(w[order]) / w.sum()


def fit_ia_dust(data: np.ndarray, sim: SimColours, ia_fraction: float, seed: int = 1) -> DustFit:
    """The SN Ia host-dust scale whose simulated colours, weighed to `ia_fraction` SNe Ia,
    are nearest the data's."""
    if not 0.0 < ia_fraction <= 1.0:
        raise SimulationError(f"the SN Ia fraction must be in (0, 1], not {ia_fraction!r}")
    if ia_fraction * len(data) < MIN_COLOURS:
        raise SimulationError(
            f"at an SN Ia fraction of {ia_fraction:.2f}, about {ia_fraction * len(data):.0f} of the data's "
            f"{len(data)} colours are SNe Ia; the fit needs at least {MIN_COLOURS} (an estimate near 0 "
            "comes from a model that finds no SNe Ia in the data: check it first)")
    if ia_fraction < 1.0 and not (~sim.is_ia).any():
        raise SimulationError("the simulation holds only SNe Ia; weighing it to an SN Ia fraction under 1 "
                              "needs other classes")
    slope = float(np.polyfit(sim.host_av[sim.is_ia], sim.colour[sim.is_ia], 1)[0])
    grid = np.linspace(min(data.min(), sim.colour.min()), max(data.max(), sim.colour.max()) + 1.0, 2001)
    data_cdf = np.searchsorted(np.sort(data), grid, side="right") / len(data)
    ks = []
    for tau in TAUS:
        xs, cdf = _weighted(sim, tau, ia_fraction, slope, seed)
        ks.append((tau, float(np.abs(np.interp(grid, xs, cdf, left=0.0, right=1.0) - data_cdf).max())))
    best = min(ks, key=lambda tk: tk[1])[0]

    def quantiles(tau: float | None) -> tuple[float, ...]:
        xs, cdf = _weighted(sim, tau, ia_fraction, slope, seed)
        return tuple(float(v) for v in np.interp(QUANTILES, cdf, xs))

    return DustFit(tau=best, ks=tuple(ks), slope=slope, ia_fraction=ia_fraction, n_data=len(data),
                   n_sim=len(sim.colour), n_sim_ia=int(sim.is_ia.sum()),
                   data_quantiles=tuple(float(v) for v in np.quantile(data, QUANTILES)),
                   sim_quantiles=quantiles(None), fit_quantiles=quantiles(best),
                   at_edge=best in (TAUS[0], TAUS[-1]))


def plot_dust_fit(data: np.ndarray, sim: SimColours, fit: DustFit, path: str | Path, seed: int = 1) -> None:
    """The colour distributions (cumulative) of the data, of the simulation as it is and at
    the fitted scale, both weighed to F SNe Ia; and the KS distance by scale. PNG, atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scone_assets.atomic import atomic_path

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    xs = np.sort(data)
    ax.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", color="k", label=f"data ({fit.n_data})")
    for tau, style, name in ((None, "--", "simulation as it is"), (fit.tau, "-", f"tau {fit.tau:.2f}")):
        x, cdf = _weighted(sim, tau, fit.ia_fraction, fit.slope, seed)
        ax.step(x, cdf, style, where="post", label=name)
    ax.set_xlim(np.quantile(data, 0.005) - 0.2, np.quantile(data, 0.995) + 0.2)
    ax.set_xlabel(f"colour near peak: {BLUE[0]:,.0f}-{BLUE[1]:,.0f} A minus {RED[0]:,.0f}-{RED[1]:,.0f} A (mag)")
    ax.set_ylabel("cumulative share")
    ax.set_title(f"simulation weighed to {fit.ia_fraction:.2f} SNe Ia")
    ax.legend(loc="lower right")
    taus, ks = zip(*fit.ks, strict=True)
    bx.plot(taus, ks, "o-")
    bx.axvline(fit.tau, color="k", lw=0.8)
    bx.set_xlabel("SN Ia host A_V scale tau (mag)")
    bx.set_ylabel("KS distance to the data")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
