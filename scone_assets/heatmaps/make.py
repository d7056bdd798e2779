"""One light curve in, one heatmap (or a skip reason) out. Runs in worker processes,
so it imports only NumPy/SciPy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scone_assets.heatmaps.gp import BACKENDS, GPFitError, warm_up
from scone_assets.heatmaps.grid import GridSpec, SkipLightCurve, correct_milky_way, prepare

# an image with a value beyond this many times its flux peak is not made (see `lacks_flux_peak`)
PEAK_RATIO_LIMIT = 10.0
NO_FLUX_PEAK = "no flux peak"


@dataclass
class LightCurveInput:
    snid: object
    mjd: np.ndarray
    band: np.ndarray
    flux: np.ndarray
    err: np.ndarray
    peakmjd: float
    mwebv: float
    early_days: float | None = None


@dataclass
class HeatmapResult:
    snid: object
    image: np.ndarray | None  # float32 (wavelength, time, 2): mean flux, standard deviation
    status: str  # "ok" or the skip reason
    params: tuple[float, float, float] = (np.nan, np.nan, np.nan)
    n_eval: int = 0
    n_obs: int = 0
    early_days: float | None = None


def make_heatmap(lc: LightCurveInput, band_to_wave: dict[str, float], spec: GridSpec,
                 backend: str = "fast") -> HeatmapResult:
    fit_fn, predict_fn = BACKENDS[backend]
    try:
        pts = prepare(lc.mjd, lc.band, lc.flux, lc.err, band_to_wave, lc.peakmjd, spec, lc.early_days)
        fit = fit_fn(pts.t, pts.w, pts.flux, pts.err)
        mean, std = predict_fn(pts.t, pts.w, pts.flux, pts.err, fit.params, pts.grid_t, spec.wavelengths,
                               factor=fit.factor)
    except SkipLightCurve as exc:
        return HeatmapResult(lc.snid, None, str(exc), early_days=lc.early_days)
    except GPFitError as exc:
        reason = "non-positive-definite matrix" if "positive definite" in str(exc) else "optimiser failure"
        return HeatmapResult(lc.snid, None, reason, early_days=lc.early_days)
    mean, std = correct_milky_way(mean, std, lc.mwebv, spec.wavelengths, spec.mw_correction)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        return HeatmapResult(lc.snid, None, "non-finite GP prediction", early_days=lc.early_days)
    image = np.stack([mean, std], axis=-1).astype(np.float32)
    params = tuple(float(p) for p in fit.params)
    image, status = (None, NO_FLUX_PEAK) if lacks_flux_peak(image) else (image, "ok")
    return HeatmapResult(lc.snid, image, status, params, fit.n_eval, pts.n_obs, lc.early_days)


def lacks_flux_peak(image: np.ndarray) -> bool:
    """True when dividing `image` by its flux peak, as training and prediction do
    (store.parse_fn), would not give values of order 1: a value is not finite, the mean
    channel's maximum is not positive (no positive flux: parse_fn would divide by 1 and pass
    raw FLUXCAL on), or some value exceeds PEAK_RATIO_LIMIT times it (a peak so small that
    normalising blows values up). Augmented copies showed it: 6 of 12,000 from a YSE-like
    simulation had a collapsed GP mean while its std was not, up to 1e13 x their peak, which
    wrecked batch normalisation's statistics (every prediction became one constant); the
    6,000 unaugmented heatmaps stayed below 2x their peak."""
    if not np.all(np.isfinite(image)):
        return True
    peak = float(np.max(image[..., 0]))
    return not peak > 0 or float(np.max(np.abs(image))) > PEAK_RATIO_LIMIT * peak


def _limit_threads() -> None:
    """Each worker is one core's worth: BLAS threads would fight the other workers."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def start_worker() -> None:
    """A pool worker's start: one core's worth of BLAS, and the compiled back-end
    loaded (or compiled, the first time on a machine) before the first task."""
    _limit_threads()
    warm_up()


def compute_chunk(args: tuple) -> list[HeatmapResult]:
    lcs, band_to_wave, spec, backend = args
    return [make_heatmap(lc, band_to_wave, spec, backend) for lc in lcs]
