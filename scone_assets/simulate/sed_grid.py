"""Spectral templates tabulated on regular (phase, wavelength) grids (sed_ia.py, sed_ic.py)."""

from __future__ import annotations

import numpy as np


def bilinear(phase: np.ndarray, wave: np.ndarray, values: np.ndarray, t: np.ndarray,
             lam: np.ndarray) -> np.ndarray:
    """`values` (phase, wave) at (t, lam): bilinear on the regular grid, held at its edges
    (callers extend beyond them in their own way)."""
    tc = np.clip(t, phase[0], phase[-1])
    i = np.clip(np.floor((tc - phase[0]) / (phase[1] - phase[0])).astype(np.int64), 0, len(phase) - 2)
    u = (tc - phase[i]) / (phase[1] - phase[0])
    lc = np.clip(lam, wave[0], wave[-1])
    j = np.clip(np.floor((lc - wave[0]) / (wave[1] - wave[0])).astype(np.int64), 0, len(wave) - 2)
    v = (lc - wave[j]) / (wave[1] - wave[0])
    f = values
    return (1 - u) * ((1 - v) * f[i, j] + v * f[i, j + 1]) + u * ((1 - v) * f[i + 1, j] + v * f[i + 1, j + 1])
