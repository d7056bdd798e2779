"""Probabilities that mean what they say: temperature scaling (Guo et al. 2017).

A network trained with class weights on a simulation is often over- or under-confident
on new data. One temperature T, fitted on the validation objects by minimising the
negative log-likelihood, divides the logits; it moves no decision at P = 0.5 (binary)
and no arg-max (categorical), so accuracy and AUC are unchanged, only the probabilities
are. The expected calibration error (ECE) says how far predicted P(Ia) is from the
observed fraction of SNe Ia, averaged over ten probability bins weighted by count.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def _logits(probs: np.ndarray, categorical: bool) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=float), EPS, 1 - EPS)
    if categorical:
        return np.log(p)
    p = p.reshape(-1)
    return np.log(p) - np.log1p(-p)


def apply_temperature(probs: np.ndarray, temperature: float, categorical: bool) -> np.ndarray:
    if temperature == 1.0:
        return np.asarray(probs)
    z = _logits(probs, categorical) / temperature
    if categorical:
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return (1.0 / (1.0 + np.exp(-z))).reshape(np.shape(probs)).astype(np.float32)


def _nll(probs: np.ndarray, y: np.ndarray, temperature: float, categorical: bool) -> float:
    p = np.clip(apply_temperature(probs, temperature, categorical).astype(float), EPS, 1 - EPS)
    if categorical:
        return float(-np.mean(np.log(p[np.arange(len(y)), y])))
    p = p.reshape(-1)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_temperature(probs: np.ndarray, y: np.ndarray, categorical: bool) -> float:
    """The temperature (0.05-20) that minimises the validation objects' NLL; 1 when
    there are too few of them (fewer than 10) to fit one."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, dtype=int)
    if len(y) < 10 or len(np.unique(y)) < 2:
        return 1.0
    res = minimize_scalar(lambda lt: _nll(probs, y, float(np.exp(lt)), categorical), bounds=(-3.0, 3.0),
                          method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def expected_calibration_error(is_ia: np.ndarray, p_ia: np.ndarray, bins: int = 10) -> float:
    from scone_assets.model.metrics import calibration

    mean_p, frac, count = calibration(np.asarray(is_ia, dtype=float), np.asarray(p_ia, dtype=float), bins)
    used = count > 0
    return float(np.sum(count[used] * np.abs(frac[used] - mean_p[used])) / max(1, count.sum()))
