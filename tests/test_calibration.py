"""Temperature scaling: recovers a known over-confidence, moves no decision, lowers ECE."""

import numpy as np
import pytest

from scone_assets.model.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)


def _overconfident(n=4000, factor=3.0, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)  # labels drawn from sigmoid(z)
    return y, 1 / (1 + np.exp(-factor * z))  # the model says sigmoid(3 z): over-confident


def test_binary_temperature_is_recovered_and_ece_drops():
    y, p = _overconfident()
    t = fit_temperature(p, y, categorical=False)
    assert t == pytest.approx(3.0, rel=0.15)
    calibrated = apply_temperature(p, t, categorical=False)
    assert np.array_equal(calibrated >= 0.5, p >= 0.5)  # no decision moves
    before, after = expected_calibration_error(y, p), expected_calibration_error(y, calibrated)
    assert before > 0.08 and after < 0.03 and after < before / 3


def test_categorical_keeps_the_arg_max_and_too_few_objects_keep_t_1():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (500, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in np.exp(logits / 2) / np.exp(logits / 2).sum(1, keepdims=True)])
    t = fit_temperature(probs, y, categorical=True)
    assert t == pytest.approx(2.0, rel=0.3)
    out = apply_temperature(probs, t, categorical=True)
    assert np.array_equal(out.argmax(1), probs.argmax(1)) and np.allclose(out.sum(1), 1, atol=1e-5)
    assert fit_temperature(probs[:5], y[:5], categorical=True) == 1.0
