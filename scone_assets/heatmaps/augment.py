"""Light-curve augmentation for training that carries from simulation to data.

A `--like` simulation copies its target survey's bands, cadences, error-vs-flux relation,
redshifts and MWEBV, but cannot know them exactly. Each augmented copy of a training light
curve changes what is least certain, drawn afresh per copy:

- observations dropped, a share ~ U(0, `augment_drop_fraction`): a sparser cadence,
  weather, masked points;
- FLUXCALERR scaled by s ~ U(`augment_error_scale`) with Gaussian noise of sigma sqrt(s^2 - 1)
  added to FLUXCAL, so the scatter matches the new errors: a shallower survey than simulated;
- the PEAKMJD the heatmap window is centred on shifted by U(-d, d), d =
  `augment_peak_shift_days`: real data's PEAKMJD is an estimate (YSE's is its brightest
  observation), a simulation's is the true peak within a day.

Redshift is not re-drawn here: `scone simulate --like` already draws redshifts from the
target's distribution, and moving an object to another redshift needs its spectrum, which
a light curve no longer has (the simulator is where that belongs).

Every copy is seeded from (seed, SNID, copy index) alone, so reruns give the same copies
whatever the number of worker processes or the order units are read in. The copies are
the heatmap set `augmented` (made in train mode when `augment_copies` > 0); training uses
those of training-split objects only (model/train.py). Pure NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from scone_assets.heatmaps.make import LightCurveInput, lacks_flux_peak

if TYPE_CHECKING:
    from scone_assets.config import SconeConfig

AUGMENTED = "augmented"  # the heatmap set of the augmented copies
MIN_OBS = 2  # grid.clean_points skips a light curve with fewer: dropping never goes below it
VERSION = 2  # bump when a transform changes, so stored copies are remade
# a copy's reason where make_heatmap says NO_FLUX_PEAK: in a copy it is the augmentation's doing
NO_SIGNAL = "augmented copy without signal"
_STREAM = 0x5A06  # keeps these draws apart from other per-SNID streams seeded by the same seed


@dataclass(frozen=True)
class AugmentSettings:
    """The config's augment_* keys and seed: what the copies depend on."""

    copies: int = 0
    drop_fraction: float = 0.3
    error_scale: tuple[float, float] = (1.0, 2.0)
    peak_shift_days: float = 3.0
    seed: int = 42

    @classmethod
    def from_config(cls, config: SconeConfig) -> AugmentSettings:
        return cls(config.augment_copies, float(config.augment_drop_fraction),
                   (float(config.augment_error_scale[0]), float(config.augment_error_scale[1])),
                   float(config.augment_peak_shift_days), int(config.seed))

    def fingerprint(self) -> dict:
        """The entries of the `augmented` set's fingerprint: a change of any remakes it."""
        return {"augment_copies": self.copies, "augment_drop_fraction": self.drop_fraction,
                "augment_error_scale": list(self.error_scale), "augment_peak_shift_days": self.peak_shift_days,
                "augment_seed": self.seed, "augment_version": VERSION}


def copy_rngs(seed: int, snid: object, copy: int) -> list[np.random.Generator]:
    """Independent generators of one copy of one object (parameters, drop, noise, truncation),
    a function of (seed, SNID, copy) only: one transform's draws never move another's."""
    from scone_assets.heatmaps.store import record_id

    mask = (1 << 64) - 1
    seq = np.random.SeedSequence([_STREAM, int(seed) & mask, record_id(snid) & mask, int(copy)])
    return [np.random.default_rng(s) for s in seq.spawn(4)]


def _subset(lc: LightCurveInput, keep: np.ndarray) -> LightCurveInput:
    return replace(lc, mjd=lc.mjd[keep], band=lc.band[keep], flux=lc.flux[keep], err=lc.err[keep])


def drop_observations(lc: LightCurveInput, fraction: float, rng: np.random.Generator) -> LightCurveInput:
    """Drop round(fraction * n) observations chosen at random, keeping at least MIN_OBS
    (all of them when there are fewer); the others keep their order."""
    n = len(lc.mjd)
    n_drop = max(0, min(int(round(fraction * n)), n - MIN_OBS))
    keep = np.ones(n, dtype=bool)
    keep[rng.choice(n, size=n_drop, replace=False)] = False
    return _subset(lc, keep)


def scale_errors(lc: LightCurveInput, scale: float, rng: np.random.Generator) -> LightCurveInput:
    """FLUXCALERR x scale, and FLUXCAL + N(0, err sqrt(scale^2 - 1)): the flux then scatters
    about the truth by the new errors (the simulation's own scatter was the old ones)."""
    if scale < 1:
        raise ValueError(f"error scale {scale} < 1: noise cannot be taken away")
    extra = lc.err * np.sqrt(scale * scale - 1.0)
    return replace(lc, flux=lc.flux + rng.normal(size=len(lc.flux)) * extra, err=lc.err * scale)


def shift_peak(lc: LightCurveInput, days: float) -> LightCurveInput:
    """The PEAKMJD the window is centred on, moved by `days` (the data stay where they are)."""
    return replace(lc, peakmjd=lc.peakmjd + days)


def augment(lc: LightCurveInput, settings: AugmentSettings, copy: int,
            truncations: list[float | None | str] | None = None) -> LightCurveInput:
    """Copy `copy` of one light curve: drop, rescale errors, shift the peak. With early
    heatmap sets (`truncations`, as `run.heatmap_sets` gives them) the copy is truncated as
    one of them, chosen at random; "mixed" draws 0-50 days as SCONE's early_mixed does."""
    params, drop, noise, early = copy_rngs(settings.seed, lc.snid, copy)
    fraction = params.uniform(0.0, settings.drop_fraction)
    scale = params.uniform(*settings.error_scale)
    shift = params.uniform(-settings.peak_shift_days, settings.peak_shift_days)
    out = drop_observations(lc, fraction, drop)
    out = scale_errors(out, scale, noise)
    out = shift_peak(out, shift)
    if truncations and truncations != [None]:
        days = truncations[int(early.integers(len(truncations)))]
        out = replace(out, early_days=float(early.integers(0, 51)) if days == "mixed" else days)
    return out


def no_signal(image: np.ndarray) -> str | None:
    """NO_SIGNAL when a copy's heatmap has no usable flux peak (make.lacks_flux_peak, the rule
    every heatmap is held to): the GP found no signal in the noisier, sparser copy (amplitude
    or wavelength scale collapsed), so its mean is ~0 while its std is not."""
    return NO_SIGNAL if lacks_flux_peak(image) else None
