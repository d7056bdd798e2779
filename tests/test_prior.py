"""`class_prior: data`: the class fractions of the light curves being classified, from
their probabilities alone (model/prior.py), and probabilities re-weighed to them. The
predict-mode test, on a trained model, is in test_model.py."""

import numpy as np
import pytest

from scone_assets.model import metrics
from scone_assets.model.prior import estimate, reweigh


def calibrated_sample(n_ia: int, n_other: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and P(Ia) that are exact posteriors under equal fractions: the log odds of
    an object is its likelihood ratio, drawn as N(+-1.5, 1) by class."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_ia), np.zeros(n_other)].astype(int)
    score = rng.normal(np.where(y == 1, 1.5, -1.5), 1.0)
    return y, 1 / (1 + np.exp(-3.0 * score))  # log LR of N(+-1.5, 1) at x is 3x


def test_em_recovers_the_fractions_and_keeps_the_ranking():
    y, p = calibrated_sample(7000, 3000)
    out, prior = estimate(p, ["nonIa", "SNIa"], categorical=False)
    assert prior.assumed == (0.5, 0.5) and prior.converged and prior.n == 10000
    assert prior.estimated[1] == pytest.approx(0.70, abs=0.015)
    assert metrics.roc_auc(y, out) == pytest.approx(metrics.roc_auc(y, p), abs=1e-9)
    # every probability is re-weighed by the odds 0.70 / 0.30
    mid = (p > 0.01) & (p < 0.99)  # the output is float32, as the network's
    odds_in, odds_out = p[mid] / (1 - p[mid]), out[mid] / (1 - out[mid])
    np.testing.assert_allclose(odds_out / odds_in, prior.estimated[1] / prior.estimated[0], rtol=1e-3)
    # more SNe Ia found than at the model's equal fractions, and more right overall
    assert (out[y == 1] >= 0.5).mean() > (p[y == 1] >= 0.5).mean()
    assert ((out >= 0.5) == y).mean() > ((p >= 0.5) == y).mean()


def test_em_from_training_fractions_and_categorical():
    # a model trained on 25% SNe Ia without weights: its probabilities assume 0.25 / 0.75
    y, p_equal = calibrated_sample(5000, 5000, seed=1)
    p_trained = reweigh(np.column_stack([1 - p_equal, p_equal]), [0.5, 0.5], [0.75, 0.25])
    _, prior = estimate(p_trained[:, 1], ["nonIa", "SNIa"], categorical=False, assumed=[0.75, 0.25])
    assert prior.estimated[1] == pytest.approx(0.5, abs=0.02)
    # three classes, 60/30/10
    rng = np.random.default_rng(2)
    y3 = rng.choice(3, 20000, p=[0.6, 0.3, 0.1])
    loglik = rng.normal(0, 1, (20000, 3))
    loglik[np.arange(20000), y3] += 2.0
    # x ~ N(2 e_y, 1): log p(x | c) = 2 x_c + const, so the posterior under equal fractions is
    post = np.exp(2 * loglik) / np.exp(2 * loglik).sum(axis=1, keepdims=True)
    out, prior = estimate(post, ["SNII", "SNIa", "SNIbc"], categorical=True)
    assert out.shape == (20000, 3) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    assert prior.estimated == pytest.approx((0.6, 0.3, 0.1), abs=0.03)


def test_the_sn_ia_fraction_from_p_ia_and_from_a_written_estimate(tmp_path):
    """What `scone fit-dust` and `like_host_dust` take F from."""
    import json

    from scone_assets.model.folder import ModelMeta
    from scone_assets.model.prior import ClassPriorFileError, estimate_ia_fraction, read_ia_fraction

    _, p = calibrated_sample(7000, 3000)
    assert estimate_ia_fraction(p) == pytest.approx(0.70, abs=0.015)
    # the same light curves, their P(Ia) re-weighed as by a model that assumed 0.8 SNe Ia
    p8 = reweigh(np.column_stack([1 - p, p]), np.array([0.5, 0.5]), np.array([0.2, 0.8]))[:, 1]
    assert estimate_ia_fraction(p8, 0.8) == pytest.approx(estimate_ia_fraction(p), abs=1e-6)
    assert ModelMeta(["nonIa", "SNIa"], False, False, (32, 180), output_prior=[0.2, 0.8]).assumed_ia_fraction() == 0.8
    assert ModelMeta(["SNII", "SNIa", "SNIbc"], True, False, (32, 180)).assumed_ia_fraction() == pytest.approx(1 / 3)

    _, prior = estimate(p, ["nonIa", "SNIa"], categorical=False)
    path = tmp_path / "predictions.class_prior.json"
    path.write_text(json.dumps(prior.to_dict()))
    assert read_ia_fraction(path) == pytest.approx(prior.estimated[1], abs=1e-6)
    path.write_text(json.dumps({"classes": ["SNII", "SNIbc"], "estimated": [0.4, 0.6]}))
    with pytest.raises(ClassPriorFileError, match="no estimated fraction of the class SNIa"):
        read_ia_fraction(path)
    with pytest.raises(ClassPriorFileError, match="not a class-prior estimate"):
        read_ia_fraction(tmp_path / "missing.json")
