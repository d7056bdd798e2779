"""What goes into one heatmap: the light curve's points, the grid, the corrections.

Pure NumPy, so the GP workers import nothing heavy. Follows SCONE's
create_heatmaps: observations in known bands, two zero-flux anchors (error 0.1)
100 days before the first and after the last observation at the wavelength of
the survey's third band, a grid of `num_wavelength_bins` wavelengths in
[3000, 10100] A by `num_mjd_bins` times in [PEAKMJD - 30, PEAKMJD + 150].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scone_assets.extinction import ccm89

WAVE_MIN, WAVE_MAX = 3000.0, 10100.0
PEAK_WINDOW = (-30.0, 150.0)
EARLY_BEFORE_TRIGGER = 20.0
EARLY_DEFAULT = (0.0, 5.0, 15.0, 25.0, 50.0)
ANCHOR_OFFSET, ANCHOR_ERR = 100.0, 0.1


class SkipLightCurve(ValueError):
    """This light curve gets no heatmap; the message is the reason, counted as such."""


@dataclass(frozen=True)
class GridSpec:
    num_wavelength_bins: int = 32
    num_mjd_bins: int = 180
    has_peakmjd: bool = True
    mw_correction: str = "flux"  # "flux" (multiply by 10^(0.4 A)), "scone" (add A to flux), "none"

    @property
    def wavelengths(self) -> np.ndarray:
        return np.linspace(WAVE_MIN, WAVE_MAX, self.num_wavelength_bins)


@dataclass
class Prepared:
    t: np.ndarray
    w: np.ndarray
    flux: np.ndarray
    err: np.ndarray
    grid_t: np.ndarray
    n_obs: int  # observations used, anchors excluded


def anchor_wave(band_to_wave: dict[str, float]) -> float:
    """The third band of the survey's list, ordered by wavelength (SCONE's band lists are)."""
    waves = sorted(band_to_wave.values())
    return waves[min(2, len(waves) - 1)]


def clean_points(mjd, band, flux, err, band_to_wave) -> tuple[np.ndarray, ...]:
    known = np.array([b in band_to_wave for b in band], dtype=bool)
    mjd, flux, err = mjd[known], flux[known], err[known]
    w = np.array([band_to_wave[b] for b in band[known]], dtype=float)
    if len(mjd) < 2:
        raise SkipLightCurve("fewer than 2 observations in known bands")
    finite = np.isfinite(mjd) & np.isfinite(flux) & np.isfinite(err)
    if finite.sum() < 2:
        raise SkipLightCurve("non-finite values")
    mjd, w, flux, err = mjd[finite], w[finite], flux[finite], err[finite]
    if np.any(err <= 0):
        raise SkipLightCurve("zero or negative flux errors")
    return mjd, w, flux, err


def trigger_mjd(mjd: np.ndarray, flux: np.ndarray, err: np.ndarray) -> float | None:
    """First S/N > 5 detection more than 1 day after the first S/N > 5 detection."""
    order = np.argsort(mjd, kind="stable")
    det = mjd[order][(flux[order] / err[order]) > 5]
    if len(det) < 2:
        return None
    later = det[det > det[0] + 1.0]
    return float(later[0]) if len(later) else None


def prepare(mjd, band, flux, err, band_to_wave, peakmjd: float, spec: GridSpec,
            early_days: float | None = None) -> Prepared:
    """Points to fit (with anchors) and the time grid; raises SkipLightCurve."""
    mjd, w, flux, err = clean_points(np.asarray(mjd, float), np.asarray(band), np.asarray(flux, float),
                                     np.asarray(err, float), band_to_wave)
    if early_days is not None:
        trig = trigger_mjd(mjd, flux, err)
        if trig is None:
            raise SkipLightCurve("no trigger (two S/N > 5 detections a day apart)")
        lo, hi = trig - EARLY_BEFORE_TRIGGER, trig + early_days
        keep = (mjd >= lo) & (mjd <= hi)
        if keep.sum() < 2:
            raise SkipLightCurve("fewer than 2 observations in the early window")
        mjd, w, flux, err = mjd[keep], w[keep], flux[keep], err[keep]
    elif spec.has_peakmjd and np.isfinite(peakmjd):
        lo, hi = peakmjd + PEAK_WINDOW[0], peakmjd + PEAK_WINDOW[1]
        if hi < mjd.min() or lo > mjd.max():
            raise SkipLightCurve("peak outside the data")
    else:
        lo, hi = float(mjd.min()), float(mjd.max())
    a_w = anchor_wave(band_to_wave)
    t = np.concatenate([mjd, [mjd.min() - ANCHOR_OFFSET, mjd.max() + ANCHOR_OFFSET]])
    return Prepared(
        t=t,
        w=np.concatenate([w, [a_w, a_w]]),
        flux=np.concatenate([flux, [0.0, 0.0]]),
        err=np.concatenate([err, [ANCHOR_ERR, ANCHOR_ERR]]),
        grid_t=np.linspace(lo, hi, spec.num_mjd_bins),
        n_obs=len(mjd),
    )


def correct_milky_way(mean: np.ndarray, std: np.ndarray, mwebv: float, waves: np.ndarray,
                      mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Undo Milky Way dust (CCM89, R_V = 3.1) on (wavelength, time) images.

    "flux": flux x 10^(0.4 A_lambda), applied to the mean and, since it is the
    same linear rescaling, to the standard deviation. "scone": SCONE's
    reference behaviour, A_lambda (magnitudes) added to the mean flux, kept
    only so results can be compared. "none": no correction."""
    if mode == "none" or not np.isfinite(mwebv) or mwebv == 0:
        return mean, std
    a_lambda = ccm89(waves, mwebv)[:, None]
    if mode == "scone":
        return mean + a_lambda, std
    if mode == "flux":
        factor = 10 ** (0.4 * a_lambda)
        return mean * factor, std * factor
    raise ValueError(f"unknown Milky Way correction {mode!r} (flux, scone or none)")
