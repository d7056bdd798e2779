"""Cardelli, Clayton & Mathis (1989, ApJ 345, 245) dust extinction, vectorised.

Used by the simulator (host and Milky Way dust) and by the heatmaps (Milky
Way correction). Valid from 0.3 to 10 inverse microns (1000 A to 3.3 um);
outside that range A_lambda is 0, as in SCONE's implementation.
"""

from __future__ import annotations

import numpy as np


def ccm89_a_b(wave_angstrom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = 1e4 / np.asarray(wave_angstrom, dtype=np.float64)
    a = np.zeros_like(x)
    b = np.zeros_like(x)

    ir = (x >= 0.3) & (x < 1.1)
    a[ir] = 0.574 * x[ir] ** 1.61
    b[ir] = -0.527 * x[ir] ** 1.61

    opt = (x >= 1.1) & (x < 3.3)
    y = x[opt] - 1.82
    a[opt] = np.polyval([0.32999, -0.77530, 0.01979, 0.72085, -0.02427, -0.50447, 0.17699, 1.0], y)
    b[opt] = np.polyval([-2.09002, 5.30260, -0.62251, -5.38434, 1.07233, 2.28305, 1.41338, 0.0], y)

    uv = (x >= 3.3) & (x < 8.0)
    xu = x[uv]
    fa = np.where(xu >= 5.9, -0.04473 * (xu - 5.9) ** 2 - 0.009779 * (xu - 5.9) ** 3, 0.0)
    fb = np.where(xu >= 5.9, 0.2130 * (xu - 5.9) ** 2 + 0.1207 * (xu - 5.9) ** 3, 0.0)
    a[uv] = 1.752 - 0.316 * xu - 0.104 / ((xu - 4.67) ** 2 + 0.341) + fa
    b[uv] = -3.090 + 1.825 * xu + 1.206 / ((xu - 4.62) ** 2 + 0.263) + fb

    fuv = (x >= 8.0) & (x <= 10.0)
    xf = x[fuv] - 8.0
    a[fuv] = -1.073 - 0.628 * xf + 0.137 * xf**2 - 0.070 * xf**3
    b[fuv] = 13.670 + 4.257 * xf - 0.420 * xf**2 + 0.374 * xf**3
    return a, b


def ccm89(wave_angstrom: np.ndarray, ebv: np.ndarray | float, r_v: float = 3.1) -> np.ndarray:
    """A_lambda in magnitudes; `ebv` broadcasts against `wave_angstrom`."""
    a, b = ccm89_a_b(wave_angstrom)
    return np.asarray(ebv) * r_v * (a + b / r_v)
