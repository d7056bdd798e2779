"""Draw objects, schedule their observations, add noise, keep what a survey detects.

Work is per output file, seeded from (seed, file index) alone, so a file's
content does not depend on how many processes share the work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from scone_assets.simulate.classes import SUBTYPES, Subtype
from scone_assets.simulate.physics import distance_modulus, fluxcal, observed_mag, redshift_sampler
from scone_assets.simulate.surveys import Survey

SOURCE_GAIN = 10.0  # FLUXCAL units per photo-electron equivalent: a 20th-mag source has S/N ~ 100
MAX_ATTEMPTS = 200
SPEC_Z_ERR = 5e-4  # a spectroscopic redshift's error as written, and the scatter drawn with it


class Batch(NamedTuple):
    """One batch of simulated objects, (objects,) or (objects, observations) arrays."""

    params: dict[str, np.ndarray]  # per-object draws (z, peak_mjd, ...; `borrowed` with --like)
    mjd: np.ndarray
    band: np.ndarray  # band index
    flux: np.ndarray  # FLUXCAL with noise
    err: np.ndarray  # FLUXCALERR
    mask: np.ndarray  # observations the survey publishes
    detected: np.ndarray  # objects its detection and selection keep
    peak_mag: np.ndarray  # (objects, bands) noiseless magnitude at the peak


@dataclass
class FileResult:
    meta: pd.DataFrame
    obs: pd.DataFrame
    n_generated: dict[str, int]


def _draw_params(sub: Subtype, survey: Survey, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    z_max = survey.z_max.get(sub.cls, survey.z_max.get("SNII", 0.5))
    z = redshift_sampler(survey.z_min, z_max)(rng.uniform(size=n))
    season = rng.integers(0, survey.n_seasons, size=n)
    start = survey.first_season_mjd + 365.25 * season
    peak = rng.uniform(start - 20, start + survey.season_length + 20)
    return _intrinsic(sub, {"z": z, "peak_mjd": peak, "season_start": start}, n, rng,
                      mwebv=lambda: rng.exponential(survey.mwebv_mean, n), deep_fraction=survey.deep_fraction)


def _intrinsic(sub: Subtype, where: dict[str, np.ndarray], n: int, rng: np.random.Generator, *,
               mwebv, deep_fraction: float, ia_av_tau: float | None = None) -> dict[str, np.ndarray]:
    """An object's own parameters, once its redshift and peak time are drawn."""
    p = {**where, "mu": distance_modulus(where["z"]),
         "rise": np.clip(rng.normal(sub.rise, sub.rise_sigma, n), 3.0, None),
         "stretch": np.ones(n),
         "m_peak": rng.normal(sub.m_peak, sub.m_sigma, n)}
    p["mwebv"] = mwebv()
    p["deep"] = rng.uniform(size=n) < deep_fraction
    if sub.sed == "snana-ic":  # one of SNANA's SN Ic templates and its host dust (sed_ic.py)
        from scone_assets.simulate.sed_ic import model as ic_model

        p.update(ic_model().draw(n, rng))
        p["x1"] = np.zeros(n)
    elif sub.sed is not None:  # BayeSN W22 population (sed_ia.py): theta, A_V, grey scatter, epsilon
        from scone_assets.simulate.sed_ia import EXPLOSION, model

        sed = model()
        p.update(sed.draw(n, rng, ia_av_tau))
        p["rise"] = np.full(n, -EXPLOSION)
        p["x1"] = -p["theta"]  # theta grows with Delta m15 (Mandel et al. 2022): about -x1
        p["host_ebv"] = p["host_av"] / 3.1  # the header's SIM_AV = 3.1 host_ebv is then A_V
        p["host_rv"] = np.full(n, sed.r_v)  # the header's SIM_RV
    elif sub.cls == "SNIa":
        x1 = rng.normal(0.0, 1.0, n)
        p["x1"] = x1
        p["stretch"] = np.clip(0.98 + 0.091 * x1, 0.6, 1.4)  # SALT2 x1 -> stretch (Guy et al. 2007)
        p["m_peak"] = p["m_peak"] - 0.14 * x1
        p["host_ebv"] = rng.normal(0.0, 0.1, n)  # SALT colour c, applied as dust (beta ~ R_B)
    else:
        p["x1"] = np.zeros(n)
        p["host_ebv"] = rng.exponential(0.05 if sub.cls == "SLSN-I" else 0.1, n)
    if sub.plateau is not None:
        p["plateau"] = rng.uniform(*sub.plateau, n)
    return p


def _schedule(survey: Survey, p: dict[str, np.ndarray], rng: np.random.Generator):
    """(mjd, band index, limiting mag, visit index, mask), each (objects, observations)."""
    n = len(p["z"])
    nb = len(survey.bands)
    if survey.all_bands_per_visit and survey.window[0] < -1e8:
        lo, hi = p["season_start"], p["season_start"] + survey.season_length  # the peak's season
    else:
        lo, hi = p["peak_mjd"] + survey.window[0], p["peak_mjd"] + survey.window[1]
    n_visits = int(math.ceil(float(np.max(hi - lo)) / survey.cadence)) + 1
    k = np.arange(n_visits)
    t = lo[:, None] + rng.uniform(0, survey.cadence, (n, 1)) + survey.cadence * k + rng.normal(0, 0.3, (n, n_visits))
    phase = np.mod(t - survey.first_season_mjd, 365.25)
    in_season = (phase < survey.season_length) & (t >= survey.first_season_mjd) & (
        t < survey.first_season_mjd + 365.25 * survey.n_seasons)
    ok = (t < hi[:, None]) & in_season & (rng.uniform(size=(n, n_visits)) > survey.weather_loss)
    if survey.all_bands_per_visit:
        weights = np.array([b.weight for b in survey.bands])
        mjd = (t[:, :, None] + 0.008 * np.arange(nb)).reshape(n, -1)
        band = np.broadcast_to(np.arange(nb), (n, n_visits, nb)).reshape(n, -1)
        taken = (rng.uniform(size=(n, n_visits, nb)) < weights).reshape(n, -1)
        mask = np.repeat(ok, nb, axis=1) & taken
        visit = np.repeat(np.broadcast_to(k, (n, n_visits)), nb, axis=1)
    else:
        w = np.array([b.weight for b in survey.bands])
        band = rng.choice(nb, size=(n, n_visits), p=w / w.sum())
        mjd, mask, visit = t, ok, np.broadcast_to(k, (n, n_visits))
    depth = np.array([b.depth for b in survey.bands])[band]
    depth = depth + np.where(p["deep"], survey.deep_gain, 0.0)[:, None] + rng.normal(0, 0.3, band.shape)
    return mjd, band, depth, visit, mask


def _observe(sub: Subtype, p: dict[str, np.ndarray], mjd, band, wave, width, sky, gain, mask, visit,
             rng: np.random.Generator, band_scatter: float = 0.0, ab_minus_own: np.ndarray | None = None):
    """Fluxes with sky and source noise, and which objects are detected: S/N > 5 on at
    least two different visits (nights). `band_scatter`: each object's flux in each band
    is off by that many magnitudes (rms), the same at every epoch. `ab_minus_own` (per
    band, mag): fluxes on each band's own system (Vega-based bands, bands.py), not AB."""
    own = np.zeros(len(wave)) if ab_minus_own is None else np.asarray(ab_minus_own, float)
    true_flux = np.nan_to_num(fluxcal(observed_mag(sub, mjd, wave[band], width[band], p) - own[band]))
    if band_scatter > 0:
        offset = rng.normal(0.0, band_scatter, (true_flux.shape[0], len(wave)))
        true_flux = true_flux * 10 ** (-0.4 * np.take_along_axis(offset, band, axis=1))
    err = np.sqrt(sky**2 + np.maximum(true_flux, 0) / gain)  # sky floor plus source (Poisson) noise
    flux = true_flux + rng.normal(size=true_flux.shape) * err
    snr5 = (flux / err > 5) & mask
    nights = np.where(snr5, visit, -1)
    first = np.max(nights, axis=1)
    second = np.max(np.where(nights == first[:, None], -1, nights), axis=1)
    detected = (first >= 0) & (second >= 0)
    n = len(p["z"])
    peak_wave = np.broadcast_to(wave, (n, len(wave)))
    peak_mag = observed_mag(sub, np.broadcast_to(p["peak_mjd"][:, None], peak_wave.shape), peak_wave,
                            np.broadcast_to(width, peak_wave.shape), p) - own
    return flux, err, detected, peak_mag


def _simulate_batch(sub: Subtype, survey: Survey, n: int, rng: np.random.Generator) -> Batch:
    p = _draw_params(sub, survey, n, rng)
    mjd, band, depth, visit, mask = _schedule(survey, p, rng)
    wave = np.array([b.wave for b in survey.bands])
    width = np.array([b.width for b in survey.bands])
    sky = 10 ** (-0.4 * (depth - 27.5)) / 5.0
    flux, err, detected, peak_mag = _observe(sub, p, mjd, band, wave, width, sky, SOURCE_GAIN, mask, visit, rng)
    return Batch(p, mjd, band, flux, err, mask, detected, peak_mag)


def simulate_batch_like(sub: Subtype, model, n: int, rng: np.random.Generator) -> Batch:
    """Objects observed as real ones were: each borrows a real sequence (times, bands,
    sky floors) and peaks where that object peaked."""
    from scone_assets.simulate.like import (
        BAND_SCATTER,
        BAND_WIDTH_FRACTION,
        PEAK_JITTER_DAYS,
        draw_redshifts,
    )

    pick = rng.integers(0, model.n_objects, n)
    z = draw_redshifts(model, n, rng, pick)
    peak = model.peak[pick] + rng.normal(0, PEAK_JITTER_DAYS, n)
    p = _intrinsic(sub, {"z": z, "peak_mjd": peak, "season_start": peak}, n, rng,
                   mwebv=lambda: rng.choice(model.mwebv, n), deep_fraction=0.0, ia_av_tau=model.ia_av_tau)
    p["borrowed"] = pick
    mask = model.band[pick] >= 0
    band = np.where(mask, model.band[pick], 0)
    mjd = np.where(mask, model.mjd[pick], model.peak[pick][:, None])
    sky = np.where(mask, model.sky[pick], 1.0)
    wave = np.asarray(model.waves, float)
    visit = np.floor(mjd).astype(np.int64)
    with np.errstate(divide="ignore"):
        gain = 1.0 / model.poisson_b[band]  # b = 0 (no source term measured): infinite gain
    flux, err, detected, peak_mag = _observe(sub, p, mjd, band, wave, BAND_WIDTH_FRACTION * wave, sky, gain,
                                             mask, visit, rng, BAND_SCATTER, model.ab_minus_own())
    mask = mask & (flux / err >= model.snr_floors()[pick][:, None])  # what the survey publishes (like.py)
    brightest = np.max(np.where(mask, flux, -np.inf), axis=1)
    detected = detected & (brightest >= model.flux_limits()[pick])  # the survey's own selection (like.py)
    return Batch(p, mjd, band, flux, err, mask, detected, peak_mag)


def spectroscopic_redshift(z: float, noise: float) -> float:
    """The written redshift: the true one plus its measurement noise, unless that would put
    it at or below zero, which SNANA readers take for "no redshift" (a `--like` simulation
    of a survey as near as YSE draws some objects at z ~ 0.001)."""
    return z + noise if z + noise > 0 else z


def class_slots(mix: dict[str, float], n: int, seed: int) -> np.ndarray:
    """The subtype of every object of the whole simulation: exact largest-remainder
    quotas over all `n`, shuffled by the seed, so each file takes its share."""
    names = sorted(mix)
    exact = np.array([mix[k] * n for k in names])
    quota = np.floor(exact).astype(int)
    extra = np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]
    quota[extra] += 1
    slots = np.repeat(np.array(names, dtype=object), quota)
    return slots[np.random.default_rng(np.random.SeedSequence([seed, 999])).permutation(n)]


def simulate_file(survey: Survey, quota: dict[str, int], seed: int, file_index: int,
                  first_snid: int, like=None) -> FileResult:
    """Detected light curves, `quota[subtype]` of each, for one output file. With `like`
    (a `SurveyModel`), objects are observed as the survey data were instead of by the
    preset's schedule."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, file_index]))

    obs_parts, n_gen = [], {}
    for name in sorted(quota, key=lambda k: SUBTYPES[k].gentype):
        need, sub = quota[name], SUBTYPES[name]
        n_gen[name] = 0
        for _ in range(MAX_ATTEMPTS):
            if need <= 0:
                break
            batch = max(32, 3 * need)
            if like is None:
                p, mjd, band, flux, err, mask, det, peak_mag = _simulate_batch(sub, survey, batch, rng)
            else:
                p, mjd, band, flux, err, mask, det, peak_mag = simulate_batch_like(sub, like, batch, rng)
            n_gen[name] += batch
            idx = np.flatnonzero(det)[:need]
            need -= len(idx)
            for i in idx:
                m = mask[i]
                order = np.argsort(mjd[i][m], kind="stable")
                obs_parts.append((sub, p, i, mjd[i][m][order], band[i][m][order], flux[i][m][order],
                                  err[i][m][order], peak_mag[i]))
        if need > 0:
            raise RuntimeError(f"{name}: fewer than {quota[name]} detections after {MAX_ATTEMPTS} batches")

    rng_meta = np.random.default_rng(np.random.SeedSequence([seed, file_index, 1]))
    order = rng_meta.permutation(len(obs_parts))  # interleave classes, as SNANA files are
    # --like: `LSST-r/a` where a letter collides in a mix; the reader keys bands by the last letter
    band_names = [b.full_name for b in survey.bands] if like is None else [str(b) for b in like.names]
    letters = [b.letter for b in survey.bands] if like is None else [str(b) for b in like.letters]
    # --like: a survey whose PEAKMJD is its brightest observation gets its simulation's made so too
    at_brightest = like.peaks_at_brightest() if like is not None else None
    rows, obs_rows = [], []
    for j, k in enumerate(order):
        sub, p, i, mjd, band, flux, err, peak_mag = obs_parts[k]
        snid = first_snid + j
        z = float(p["z"][i])
        spec = rng_meta.uniform() < survey.spec_fraction
        if like is not None and not len(like.z):  # the survey has no redshifts: neither has its simulation
            z_obs, z_err = -9.0, -9.0
        elif spec:
            z_obs, z_err = spectroscopic_redshift(z, rng_meta.normal(0, SPEC_Z_ERR)), SPEC_Z_ERR
        elif rng_meta.uniform() < survey.photoz_outliers:
            z_obs, z_err = float(rng_meta.uniform(0.05, 1.5)), survey.photoz_sigma * (1 + z)
        else:
            z_err = survey.photoz_sigma * (1 + z)
            z_obs = max(0.01, z + rng_meta.normal(0, z_err))
        mwebv = float(p["mwebv"][i])
        peakmjd = float(p["peak_mjd"][i] + rng_meta.normal(0, 1.0))
        if at_brightest is not None and at_brightest[p["borrowed"][i]]:
            peakmjd = float(mjd[np.argmax(flux)])
        row = {
            "SNID": snid,
            "FAKE": 2,
            "SNTYPE": sub.gentype if spec else 100 + sub.gentype,
            "SIM_GENTYPE": sub.gentype,
            "SIM_TYPE_INDEX": sub.gentype,
            "SIM_TYPE_NAME": sub.name,
            "SIM_MODEL_NAME": f"SCONESIM.{sub.name}",
            "PEAKMJD": peakmjd,
            "SIM_PEAKMJD": float(p["peak_mjd"][i]),
            "MWEBV": max(0.0, mwebv + rng_meta.normal(0, 0.16 * mwebv)),
            "MWEBV_ERR": 0.16 * mwebv,  # Schlafly & Finkbeiner 2011
            "SIM_MWEBV": mwebv,
            "REDSHIFT_FINAL": z_obs,
            "REDSHIFT_FINAL_ERR": z_err,
            "SIM_REDSHIFT_CMB": z,
            "SIM_DLMU": float(p["mu"][i]),
            "SIM_AV": float(3.1 * p["host_ebv"][i]),
            "SIM_RV": float(p["host_rv"][i]) if "host_rv" in p else 3.1,
            "SIM_SALT2x1": float(p["x1"][i]),
            "SIM_RISETIME": float(p["rise"][i]),
        }
        for letter, mag in zip(letters, peak_mag, strict=True):
            row[f"SIM_PEAKMAG_{letter}"] = float(min(mag, 99.0))
        rows.append(row)
        obs_rows.append(pd.DataFrame({"SNID": snid, "MJD": np.round(mjd, 4),
                                      "FLT": [band_names[b] for b in band],
                                      "FLUXCAL": flux, "FLUXCALERR": err}))
    meta = pd.DataFrame(rows)
    obs = pd.concat(obs_rows, ignore_index=True)
    return FileResult(meta, obs, n_gen)
