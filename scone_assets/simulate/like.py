"""A survey model taken from unlabelled survey data: `scone simulate --like DATA`.

SNANA users make a SIMLIB from a survey's observing log and fit its redshift
distribution; here both come from the light curves to classify. From the data,
as the reader places it, this takes:

- the bands and their wavelengths (the simulation observes in the survey's bands). In a
  mix of surveys a letter at two wavelengths (DES r 6435 A, LSST r 6223 A) is two bands,
  and the later input's gets a free one-letter id, written `LSST-r/a` as DES-SN5YR LOWZ
  writes `CSP-r/c`: the reader keys a band by that last letter;
- one observing sequence per real object: its observation times and bands, the time of
  its peak (PEAKMJD, else the time of its brightest point) and, per observation, the
  sky-noise floor (the measured error with the fitted source term removed);
- per band, the error-vs-flux relation FLUXCALERR^2 = a^2 + b * max(FLUXCAL, 0) (a sky
  floor plus a Poisson term; see `fit_error_model`);
- the redshifts of the objects (REDSHIFT_FINAL, else the host's HOSTGAL_SPECZ, else its
  HOSTGAL_PHOTOZ) and their Milky Way E(B-V) (MWEBV);
- the selection: each object's brightest observation. A simulated object is kept only
  when, besides S/N > 5 on two nights, its brightest observation reaches the 2nd
  percentile of its survey's (SELECTION_QUANTILE): a spectroscopic sample holds only
  what was bright enough for a spectrum;
- how the data's PEAKMJD was made: when it is the time of the object's brightest
  observation for most objects (YSE's SEARCH_PEAKMJD is, for 99% of yse_dev), the
  simulation writes its PEAKMJD the same way, so that the heatmap window
  ([PEAKMJD - 30, PEAKMJD + 150] d) falls where it falls on the data, a red band's late
  maximum included; otherwise (a fitted peak, as LOWZ's) the true peak within a day;
- the photometry's own floor: many surveys publish only detections (YSE DR1 keeps
  S/N >= 4; follow-up photometry such as LOWZ's holds almost nothing under S/N 2). When
  nearly all of a survey's observations (all but PHOTOMETRY_QUANTILE) are above a positive
  S/N, simulated observations under it are dropped as the survey dropped them; a survey
  that publishes non-detections (a floor at or below 0) keeps them all;
- each band's magnitude system, from its full name (bands.ab_minus_own): LOWZ's
  Johnson-Cousins and NIR bands are Vega-based, and their simulated FLUXCAL is too.

Not from the data: each simulated object's flux in each band is off by BAND_SCATTER mag,
for what one Gaussian per band does not model; and the classes are written as often as
they explode times what the survey keeps (rates.py), unless --mix says otherwise.

A simulated object borrows a random real sequence: it is observed at that object's times
and in its bands (so in a mix, in one survey's bands), peaks where that object peaked
(within 2 days), has the sky floor that object had, and the source noise of the fitted
relation. Its redshift is that object's own, smoothed by a kernel in ln(1 + z) of
Silverman's width (a random object's when it has none), so that a sequence keeps the
brightness that made it as long as it is. Types, spectroscopic
classes and other classifiers' outputs in the files are never read: the reader's type
columns are not used here at all.
"""

from __future__ import annotations

import hashlib
import io
import logging
import string
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from scone_assets.bands import ab_minus_own
from scone_assets.simulate.classes import SimulationError
from scone_assets.snana.read import Z_COLUMNS, best_redshift

log = logging.getLogger(__name__)

MIN_OBJECTS = 20  # fewer real objects than this cannot stand for a survey's cadence
PEAK_JITTER_DAYS = 2.0
# The data are what the survey kept, and a spectroscopic sample keeps only what was bright
# enough for a spectrum: a simulated object whose brightest observation is fainter than
# nearly every real object's is one the survey would not have, and training on such
# objects teaches that faint means not-Ia. The faintest 2% of the data set the limit.
SELECTION_QUANTILE = 0.02
# A survey that publishes only detections shows a floor in its observations' S/N. Left in
# the simulation, faint and negative points that such data never hold would teach the
# network shapes it never meets: the 0.1% quantile of the data's S/N, when positive, is cut.
PHOTOMETRY_QUANTILE = 0.001
# PEAKMJD equal (to 0.01 d) to the brightest observation's time for at least this share of
# a survey's objects: the survey's PEAKMJD is its brightest observation, not a fit.
PEAK_AT_BRIGHTEST_SHARE = 0.5
DEFAULT_Z = (0.01, 0.5)  # used, with a warning, when the data carry no redshift
BAND_WIDTH_FRACTION = 0.085  # Gaussian throughput sigma / wavelength (DES and PS1 bands are 0.07-0.11)
# Each band here is one Gaussian at the wavelength the reader gives it. Real filters (ZTF g
# and PS1 g are 120 A apart and not the same shape), their calibration between surveys, and
# spectral diversity that the class models lack put an offset on each object's flux in
# each band. Without it the 2D GP fits simulated light curves with a longer wavelength
# scale than real ones (median 7,600 A against 4,600 A on yse_dev), a difference the
# network can learn in place of the class. 0.05 mag rms per object and band brings the
# simulation's median to 6,300 A (BENCHMARKS.md); SN Ia models carry per-band scatter of
# 0.02-0.1 mag themselves (Chotard et al. 2011; Kessler et al. 2013).
BAND_SCATTER = 0.05
SAME_BAND_A = 1.0  # one letter this close in two inputs is one band


@dataclass
class SurveyModel:
    """Everything a `--like` simulation takes from the data, as arrays (saved beside it)."""

    letters: np.ndarray  # (bands,) one-letter band ids, distinct
    names: np.ndarray  # (bands,) full names written in FLT (`DES-g`, `LSST-r/a`)
    waves: np.ndarray  # (bands,) effective wavelengths, A
    sky_a: np.ndarray  # (bands,) fitted sky floor, FLUXCAL
    poisson_b: np.ndarray  # (bands,) fitted source term, FLUXCAL per FLUXCAL
    mjd: np.ndarray  # (objects, L) observation times, NaN-padded
    band: np.ndarray  # (objects, L) band index, -1 padded
    sky: np.ndarray  # (objects, L) per-observation sky floor
    peak: np.ndarray  # (objects,) reference peak time
    z: np.ndarray  # redshifts of the data (may be empty)
    mwebv: np.ndarray  # (objects,)
    origin: np.ndarray  # (objects,) the survey each sequence was borrowed from
    survey: str = "LIKE"
    provenance: list[str] = field(default_factory=list)
    brightest: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (objects,) largest FLUXCAL; empty: none
    snr_floor: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (objects,) survey's S/N floor; empty: none
    # (objects,) the survey's PEAKMJD is its brightest observation's time; empty: a fitted peak
    peak_at_brightest: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    vega_offset: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (bands,) AB - band's own; empty: AB
    # SN Ia host dust A_V ~ Exponential(ia_av_tau), mag; None: BayeSN W22's population (sed_ia.py)
    ia_av_tau: float | None = None
    # (objects,) each sequence's own redshift, NaN where it has none; empty: not recorded (older
    # models), and a simulated object's redshift is then drawn apart from the sequence it borrows
    seq_z: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def flux_limits(self) -> np.ndarray:
        """(objects,) the selection limit each borrowed sequence carries: the SELECTION_QUANTILE
        of its own survey's brightest observations (0, no limit, for a model saved without them)."""
        out = np.zeros(self.n_objects)
        if len(self.brightest) != self.n_objects:
            return out
        for o in np.unique(self.origin):
            rows = self.origin == o
            out[rows] = np.quantile(self.brightest[rows], SELECTION_QUANTILE)
        return out

    def snr_floors(self) -> np.ndarray:
        """(objects,) the S/N under which each borrowed sequence's survey publishes nothing
        (-inf: it publishes non-detections, or the model was saved without floors)."""
        if len(self.snr_floor) != self.n_objects:
            return np.full(self.n_objects, -np.inf)
        return np.where(self.snr_floor > 0, self.snr_floor, -np.inf)

    def ab_minus_own(self) -> np.ndarray:
        """(bands,) AB minus each band's own magnitude system (bands.ab_minus_own); zeros
        for a model saved without it."""
        return self.vega_offset if len(self.vega_offset) == len(self.waves) else np.zeros(len(self.waves))

    def peaks_at_brightest(self) -> np.ndarray:
        """(objects,) whether each borrowed sequence's survey gives PEAKMJD as its brightest
        observation's time (all False for a model saved without it)."""
        if len(self.peak_at_brightest) != self.n_objects:
            return np.zeros(self.n_objects, dtype=bool)
        return self.peak_at_brightest.astype(bool)

    @property
    def n_objects(self) -> int:
        return len(self.peak)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        # written only when set, so a model without it keeps the digest it always had
        extra = {} if self.ia_av_tau is None else {"ia_av_tau": np.array(float(self.ia_av_tau))}
        np.savez_compressed(buf, **extra, letters=self.letters, names=self.names, waves=self.waves, sky_a=self.sky_a,
                            poisson_b=self.poisson_b, mjd=self.mjd, band=self.band, sky=self.sky,
                            peak=self.peak, z=self.z, mwebv=self.mwebv, origin=self.origin,
                            survey=np.array(self.survey), provenance=np.array(self.provenance, dtype=str),
                            brightest=self.brightest, snr_floor=self.snr_floor,
                            peak_at_brightest=self.peak_at_brightest, vega_offset=self.vega_offset,
                            seq_z=self.seq_z)
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> SurveyModel:
        with np.load(path, allow_pickle=False) as d:
            old = "names" not in d  # saved before bands had names: one survey, named by letter
            return cls(d["letters"], d["letters" if old else "names"], d["waves"], d["sky_a"], d["poisson_b"],
                       d["mjd"], d["band"], d["sky"], d["peak"], d["z"], d["mwebv"],
                       np.full(len(d["peak"]), str(d["survey"])) if old else d["origin"], str(d["survey"]),
                       list(d["provenance"]), d["brightest"] if "brightest" in d else np.zeros(0),
                       d["snr_floor"] if "snr_floor" in d else np.zeros(0),
                       d["peak_at_brightest"] if "peak_at_brightest" in d else np.zeros(0, dtype=bool),
                       d["vega_offset"] if "vega_offset" in d else np.zeros(0),
                       float(d["ia_av_tau"]) if "ia_av_tau" in d else None,
                       d["seq_z"] if "seq_z" in d else np.zeros(0))

    def with_ia_dust(self, tau: float | None) -> SurveyModel:
        """This model with SN Ia host dust A_V ~ Exponential(tau) (None: BayeSN's), recorded
        in its provenance. Surveys differ in dust: BayeSN's tau_A = 0.252 was fitted to SNe Ia
        that cosmology samples keep, while targeted nearby searches find more reddened ones."""
        if tau is None:
            return self
        if not (np.isfinite(tau) and 0 < tau <= 5):
            raise SimulationError(f"--ia-dust-tau must be a host A_V scale in mag, above 0 and at most 5 "
                                  f"(got {tau})")
        note = (f"SN Ia host dust: A_V ~ Exponential({tau:g}) mag (--ia-dust-tau), instead of BayeSN W22's "
                "0.252")
        return replace(self, ia_av_tau=float(tau), provenance=[*self.provenance, note])

    def digest(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def same_data(self, other: SurveyModel) -> bool:
        """Whether both were taken from the same light curves: what the data gave, not how
        their paths were spelt or which options the simulation had."""
        return all(np.array_equal(np.asarray(getattr(self, k)), np.asarray(getattr(other, k)),
                                  equal_nan=np.asarray(getattr(self, k)).dtype.kind == "f")
                   for k in ("letters", "waves", "mjd", "band", "peak", "z", "mwebv", "brightest"))


def fit_error_model(flux: np.ndarray, err: np.ndarray) -> tuple[float, float]:
    """(a, b) of err^2 = a^2 + b * max(flux, 0): a from the faintest fifth of the
    observations (where the sky dominates), b the median source term of those well above
    it. Medians, so the few observations with odd errors do not steer the fit."""
    fpos = np.maximum(flux, 0.0)
    var = err**2
    faint = np.abs(flux) <= np.quantile(np.abs(flux), 0.2)
    a2 = float(np.median(var[faint]))
    bright = fpos > 5 * np.sqrt(a2)
    b = float(np.median((var[bright] - a2) / fpos[bright])) if bright.sum() >= 5 else 0.0
    return float(np.sqrt(a2)), max(b, 0.0)


def _peak_time(mjd: np.ndarray, flux: np.ndarray, err: np.ndarray, peakmjd: float) -> tuple[float, bool]:
    if np.isfinite(peakmjd):
        return float(peakmjd), True
    snr = flux / np.where(err > 0, err, np.inf)
    return float(mjd[int(np.argmax(np.where(snr > 3, flux, -np.inf)) if np.any(snr > 3) else np.argmax(flux))]), False


@dataclass
class _Band:
    letter: str  # the data's one-letter id
    wave: float
    full: str  # the data's full name (`CSP-r/c`, or only the letter)
    survey: str  # the survey of the first input that has it


def _label(lcs) -> str:
    return str(lcs.survey or Path(str(lcs.source)).name)


def _collect_bands(lightcurves: list) -> tuple[list[_Band], list[dict[str, int]]]:
    """The distinct bands of all inputs (a letter at two wavelengths is two bands, within
    SAME_BAND_A one) and, per input, its letter -> band index, so each survey's objects keep
    their own bands."""
    bands: list[_Band] = []
    per_input: list[dict[str, int]] = []
    for lcs in lightcurves:
        if lcs.dropped_bands:
            raise SimulationError(
                f"{lcs.source}: band(s) {', '.join(sorted(lcs.dropped_bands))} cannot be placed in "
                "wavelength; set them in the config's band_to_wave (or survey) and run --like again")
        index = {}
        for b, w in sorted(lcs.band_to_wave.items(), key=lambda bw: (bw[1], bw[0])):  # ids in wavelength order
            k = next((k for k, x in enumerate(bands) if x.letter == b and abs(x.wave - w) <= SAME_BAND_A), None)
            if k is None:
                bands.append(_Band(str(b), float(w), str(lcs.band_names.get(b, b)), _label(lcs)))
                k = len(bands) - 1
            index[b] = k
        per_input.append(index)
    return bands, per_input


def _band_ids(bands: list[_Band]) -> tuple[list[str], list[str]]:
    """(one-letter id, FLT name) per band. The reader keys a band by the last character of
    its name, so a letter's first band keeps it and later ones take free ids; the name keeps
    the system and filter (`LSST-r/a`), which place the band even without the README."""
    used = {b.letter for b in bands}
    free = iter(c for c in string.ascii_letters + string.digits if c not in used)
    taken: set[str] = set()
    ids, names = [], []
    for b in bands:
        bid = b.letter if b.letter not in taken else next(free, None)
        if bid is None:
            raise SimulationError(f"--like: {len(bands)} distinct bands are more than one-letter ids can name")
        taken.add(bid)
        system = b.full.split("/")[0]
        if "-" not in system:
            system = f"{b.survey}-{b.letter}"
        ids.append(bid)
        names.append(system if system.endswith(bid) else f"{system}/{bid}")
    return ids, names


def _redshift(row) -> tuple[float, str | None]:
    """The object's redshift and the column it came from (`best_redshift`)."""
    z, _, col = best_redshift(row)
    return z, col


def survey_model(lightcurves: list, sources: list[str]) -> SurveyModel:
    """The survey model of some read units (`LightCurves`), or SimulationError saying why not."""
    found, per_input = _collect_bands(lightcurves)
    ids, names = _band_ids(found)
    order = sorted(range(len(found)), key=lambda k: (found[k].wave, ids[k]))
    rank = {k: i for i, k in enumerate(order)}
    seqs, peaks, seq_z, mw, origin, brightest, n_peak = [], [], [], [], [], [], 0
    snr_of: dict[str, list[np.ndarray]] = {}
    at_brightest: dict[str, list[bool]] = {}
    z_from = dict.fromkeys(Z_COLUMNS, 0)
    per_band: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {i: [] for i in range(len(order))}
    for lcs, letter_to_band in zip(lightcurves, per_input, strict=True):
        index = {b: rank[k] for b, k in letter_to_band.items()}
        for row, obs in lcs.iter_lightcurves():
            keep = obs.BAND.isin(index).to_numpy()
            mjd = obs.MJD.to_numpy()[keep]
            if len(mjd) < 2:
                continue
            band = np.array([index[b] for b in obs.BAND.to_numpy()[keep]])
            flux, err = obs.FLUXCAL.to_numpy()[keep], obs.FLUXCALERR.to_numpy()[keep]
            good = np.isfinite(mjd) & np.isfinite(flux) & np.isfinite(err) & (err > 0)
            if good.sum() < 2:
                continue
            mjd, band, flux, err = mjd[good], band[good], flux[good], err[good]
            peak, known = _peak_time(mjd, flux, err, float(row.PEAKMJD))
            n_peak += known
            seqs.append((mjd, band, flux, err))
            brightest.append(float(flux.max()))
            peaks.append(peak)
            origin.append(_label(lcs))
            snr_of.setdefault(origin[-1], []).append(flux / err)
            at_brightest.setdefault(origin[-1], []).append(known and abs(peak - mjd[np.argmax(flux)]) < 0.01)
            mw.append(float(row.MWEBV) if np.isfinite(row.MWEBV) else 0.0)
            z, col = _redshift(row)
            seq_z.append(z if col else np.nan)
            if col:
                z_from[col] += 1
            for k in np.unique(band):
                per_band[int(k)].append((flux[band == k], err[band == k]))
    if len(seqs) < MIN_OBJECTS:
        raise SimulationError(f"--like needs at least {MIN_OBJECTS} light curves to learn a cadence from; "
                              f"{', '.join(sources)} gave {len(seqs)}")
    sky_a, poisson_b, least = np.zeros(len(order)), np.zeros(len(order)), np.zeros(len(order))
    for k, parts in per_band.items():
        flux = np.concatenate([p[0] for p in parts])
        err = np.concatenate([p[1] for p in parts])
        sky_a[k], poisson_b[k] = fit_error_model(flux, err)
        least[k] = max(0.5 * sky_a[k], 0.1 * float(np.median(err)))  # no noiseless epoch
    length = max(len(s[0]) for s in seqs)
    mjd_arr = np.full((len(seqs), length), np.nan)
    band_arr = np.full((len(seqs), length), -1, dtype=np.int64)
    sky_arr = np.full((len(seqs), length), np.nan)
    for i, (mjd, band, flux, err) in enumerate(seqs):
        order_t = np.argsort(mjd, kind="stable")
        mjd, band, flux, err = mjd[order_t], band[order_t], flux[order_t], err[order_t]
        source = poisson_b[band] * np.maximum(flux, 0.0)
        floor = np.sqrt(np.maximum(err**2 - source, least[band] ** 2))
        mjd_arr[i, : len(mjd)], band_arr[i, : len(mjd)], sky_arr[i, : len(mjd)] = mjd, band, floor
    surveys = sorted({str(lcs.survey) for lcs in lightcurves if lcs.survey})
    floors = {o: float(np.quantile(np.concatenate(parts), PHOTOMETRY_QUANTILE)) for o, parts in snr_of.items()}
    peak_share = {o: float(np.mean(v)) for o, v in at_brightest.items()}
    offsets = [ab_minus_own(b.full) for b in found]
    vega = [f"{names[k]} {offsets[k]:+.2f}" for k in order if offsets[k]]
    seq_z = np.asarray(seq_z, float)
    z = seq_z[np.isfinite(seq_z)]  # the data's redshifts, in the sequences' order
    letters = [ids[k] for k in order]
    waves = [found[k].wave for k in order]
    full = [names[k] for k in order]
    per_origin = ", ".join(f"{o} {n}" for o, n in sorted(Counter(origin).items()))
    provenance = [
        f"--like sources: {', '.join(sources)}",
        "bands from the data as the reader places them: "
        + ", ".join(f"{b}={w:.0f}A" + (f" ({f})" if f != b else "") for b, w, f in zip(letters, waves, full,
                                                                                     strict=True)),
        f"observing sequences (times, bands, per-observation sky floor): {len(seqs)} real objects"
        + (f" ({per_origin}), each in its own survey's bands" if len(set(origin)) > 1 else ""),
        "error model per band, FLUXCALERR^2 = a^2 + b max(FLUXCAL, 0): "
        + ", ".join(f"{b} a={sky_a[i]:.2f} b={poisson_b[i]:.3f}" for i, b in enumerate(letters)),
        f"peak times: PEAKMJD of {n_peak} objects, brightest point of {len(seqs) - n_peak}",
        "PEAKMJD written as the data's: the brightest observation's time where it is that for at least "
        f"{PEAK_AT_BRIGHTEST_SHARE:.0%} of a survey's objects, else the true peak within a day; per survey: "
        + ", ".join(f"{o} {share:.0%} at the brightest observation ("
                    + ("brightest observation" if share >= PEAK_AT_BRIGHTEST_SHARE else "true peak") + ")"
                    for o, share in sorted(peak_share.items())),
        (f"redshifts of {len(z)} objects (median {np.median(z):.3f}), smoothed in ln(1+z): "
         + ", ".join(f"{c} {n}" for c, n in z_from.items()) + f", none {len(seqs) - len(z)}"
         if len(z) else f"redshifts: none in the data; volumetric default on {DEFAULT_Z[0]}-{DEFAULT_Z[1]}"),
        *([f"redshifts paired with sequences: a simulated object takes the redshift of the object whose "
           f"sequence it borrows (smoothed), {len(z)} of {len(seqs)} sequences have one; on the others, a "
           "random object's"] if len(z) else []),
        f"Milky Way E(B-V): MWEBV of {len(seqs)} objects (median {np.median(mw):.3f})",
        "selection: an object is kept when its brightest observation reaches the "
        f"{SELECTION_QUANTILE:.0%} quantile of the data's brightest observations, per survey: "
        + ", ".join(f"{o} FLUXCAL {lim:.1f} (mag {27.5 - 2.5 * np.log10(lim):.2f})"
                    for o, lim in _limits(np.array(origin), np.array(brightest))),
        f"photometry floor: observations under the {PHOTOMETRY_QUANTILE:.1%} quantile of the data's S/N are "
        "dropped when it is positive (the survey publishes only detections), per survey: "
        + ", ".join(f"{o} S/N {f:.2f}" + (" (cut)" if f > 0 else " (non-detections kept)")
                    for o, f in sorted(floors.items())),
        ("magnitude systems: all bands AB" if not vega else "magnitude systems: Vega-based bands (their full "
         "names give a Johnson-Cousins or NIR filter) written on their own system, AB minus Vega: " + ", ".join(vega)),
        f"band scatter: each simulated object's flux in each band off by {BAND_SCATTER} mag rms (filters, "
        "calibration and spectral diversity that one Gaussian per band does not model)",
        "types, spectroscopic classes and other classifiers' outputs in the data: not read",
    ]
    if not len(z):
        log.warning("the --like data carry no redshift (%s); redshifts are drawn from a volumetric rate on "
                    "z = %.2f-%.2f instead", ", ".join(Z_COLUMNS), *DEFAULT_Z)
    return SurveyModel(np.array(letters), np.array(full), np.array(waves), sky_a, poisson_b, mjd_arr, band_arr,
                       sky_arr, np.asarray(peaks), z, np.asarray(mw), np.array(origin), "+".join(surveys) or "LIKE",
                       provenance, np.asarray(brightest), np.array([floors[o] for o in origin]),
                       np.array([peak_share[o] >= PEAK_AT_BRIGHTEST_SHARE for o in origin]),
                       np.array([offsets[k] for k in order]), seq_z=seq_z)


def _limits(origin: np.ndarray, brightest: np.ndarray) -> list[tuple[str, float]]:
    return [(str(o), float(np.quantile(brightest[origin == o], SELECTION_QUANTILE))) for o in np.unique(origin)]


def model_from_inputs(paths: list[str] | None = None, config=None) -> SurveyModel:
    """Read the survey data (`paths` as `scone inspect` takes them, or a config's inputs)
    and make its survey model. Bad files are reported by the reader and left out."""
    from scone_assets.snana.read import discover, discover_paths, read_unit

    found = discover(config) if config is not None else discover_paths(list(paths or []))
    for err in found.errors:
        log.error("%s", err)
    if not found.units:
        raise SimulationError("--like: no SNANA light curves in " + (", ".join(paths or []) or "the config's inputs")
                              + (f" ({'; '.join(str(e) for e in found.errors)})" if found.errors else ""))
    read = []
    for unit in found.units:
        lcs = read_unit(unit, config)  # no labels: --like never looks at types
        for w in lcs.warnings:
            log.warning("%s", w)
        read.append(lcs)
    return survey_model(read, list(paths or []) or [str(u.files[0]) for u in found.units][:3])


def draw_redshifts(model: SurveyModel, n: int, rng: np.random.Generator,
                   borrowed: np.ndarray | None = None) -> np.ndarray:
    """Redshifts for `n` simulated objects: the data's, smoothed by a kernel in ln(1 + z).

    With `borrowed` (the sequence each object borrows), an object takes the redshift of that
    sequence's own object where it has one. A survey publishes what it detected, so a near,
    bright object's sequence is long and a far one's short; paired at random, a far simulated
    object on a near object's long sequence loses most of it under the survey's floor, and
    the simulation's light curves come out shorter than the data's. The marginal is the same
    kernel estimate either way."""
    if not len(model.z):
        from scone_assets.simulate.physics import redshift_sampler

        return redshift_sampler(*DEFAULT_Z)(rng.uniform(size=n))
    x = np.log1p(model.z)
    width = 1.06 * np.std(x) * len(x) ** -0.2 if len(x) > 1 else 0.1 * x[0]
    # Reflected at the floor rather than clipped: clipping piles the kernel's low tail onto
    # one redshift (about a tenth of the draws for a small, nearby survey).
    floor = np.log1p(max(1e-3, 0.5 * model.z.min()))
    centre = rng.choice(x, n)  # drawn even when paired, so the noise below is the same draws
    if borrowed is not None and len(model.seq_z) == model.n_objects:
        own = np.log1p(model.seq_z[borrowed])
        centre = np.where(np.isfinite(own), own, centre)
    out = centre + rng.normal(0, width, n)
    return np.expm1(np.where(out < floor, 2 * floor - out, out))


def like_survey(model: SurveyModel):
    """The preset-shaped view of a survey model that file writing needs (bands, the share
    of spectroscopic redshifts); the schedule fields are unused with `like`."""
    from scone_assets.simulate.surveys import Band, Survey

    bands = tuple(Band(str(b), str(f), float(w), BAND_WIDTH_FRACTION * float(w), 0.0)
                  for b, f, w in zip(model.letters, model.names, model.waves, strict=True))
    return Survey(name=model.survey, bands=bands, first_season_mjd=float(np.nanmin(model.mjd)), n_seasons=1,
                  season_length=0.0, cadence=1.0, all_bands_per_visit=False, window=(0.0, 0.0), z_max={},
                  spec_fraction=1.0, mwebv_mean=float(np.mean(model.mwebv)))
