"""Class fractions of the light curves being classified, and probabilities that follow them.

A network's probabilities assume the class fractions it was trained under: equal ones
when it was trained with class weights or on a balanced set (the default), else the
training set's. A survey's sample has fractions of its own: a magnitude-limited
spectroscopic sample is mostly SNe Ia, a cosmology sample nearly all. Without a single
label, the fractions that the re-weighed probabilities average back to are their
maximum-likelihood estimate (EM; Saerens, Latinne & Decaestecker 2002, Neural
Computation 14, 21); each object's probabilities are then re-weighed from the assumed
fractions to the estimated ones. The ranking (ROC AUC) is unchanged; decisions at
P = 0.5 move toward the classes the sample holds more of. The estimate is only as good
as the calibration of the probabilities on this data (calibration.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_ITER, TOL = 1000, 1e-8
FLOOR = 1e-6  # no class's fraction is taken to be exactly 0 or 1


@dataclass(frozen=True)
class ClassPrior:
    classes: tuple[str, ...]
    assumed: tuple[float, ...]  # the fractions the model's probabilities assume
    estimated: tuple[float, ...]  # the fractions of the light curves classified
    n: int  # light curves they were estimated from
    iterations: int
    converged: bool

    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "assumed": [round(x, 6) for x in self.assumed],
                "estimated": [round(x, 6) for x in self.estimated], "light_curves": self.n,
                "iterations": self.iterations, "converged": self.converged,
                "method": "EM (Saerens, Latinne & Decaestecker 2002)"}

    def describe(self) -> str:
        est = ", ".join(f"{c} {x:.3f}" for c, x in zip(self.classes, self.estimated, strict=True))
        was = ", ".join(f"{c} {x:.3f}" for c, x in zip(self.classes, self.assumed, strict=True))
        return (f"class fractions of these {self.n} light curves, estimated from them: {est} (the model "
                f"assumed {was}; EM, {self.iterations} iterations{'' if self.converged else ', not converged'})")


class ClassPriorFileError(ValueError):
    """A class-prior file that cannot be read; the message names it."""


def read_ia_fraction(path: str | Path) -> float:
    """The estimated SN Ia fraction in a `<predictions>.class_prior.json` (`class_prior: data`)."""
    try:
        d = json.loads(Path(path).read_text())
        classes, est = list(d["classes"]), [float(x) for x in d["estimated"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClassPriorFileError(f"{path}: not a class-prior estimate ({exc})") from None
    if "SNIa" not in classes or len(est) != len(classes):
        raise ClassPriorFileError(f"{path}: no estimated fraction of the class SNIa (classes: {classes})")
    return est[classes.index("SNIa")]


def estimate_ia_fraction(p_ia: np.ndarray, assumed_ia: float = 0.5) -> float:
    """The SN Ia fraction of light curves from their P(Ia), which assume `assumed_ia` SNe Ia
    (the estimate `class_prior: data` makes)."""
    _, prior = estimate(np.asarray(p_ia, float), ["nonIa", "SNIa"], False, [1.0 - assumed_ia, assumed_ia])
    return prior.estimated[1]


def _as_matrix(probs: np.ndarray, categorical: bool) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    if categorical:
        return p
    p = p.reshape(-1)
    return np.column_stack([1.0 - p, p])  # binary outputs are P(SN Ia): classes (nonIa, SNIa)


def reweigh(probs: np.ndarray, assumed: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(objects, classes) probabilities under `assumed` fractions, re-weighed to `target`."""
    w = probs * (np.asarray(target, float) / np.asarray(assumed, float))
    return w / w.sum(axis=1, keepdims=True)


def estimate(probs: np.ndarray, classes: list[str], categorical: bool,
             assumed: list[float] | None = None) -> tuple[np.ndarray, ClassPrior]:
    """(probabilities re-weighed to the estimated fractions, in the shape given; the
    estimate). `assumed`: the model's fractions, equal ones when not given."""
    p = np.clip(_as_matrix(probs, categorical), 0.0, 1.0)
    k = p.shape[1]
    prior_in = np.full(k, 1.0 / k) if not assumed else np.asarray(assumed, float) / np.sum(assumed)
    if len(p) == 0:
        return np.asarray(probs), ClassPrior(tuple(classes), tuple(prior_in), tuple(prior_in), 0, 0, True)
    est, converged, it = prior_in.copy(), False, 0
    for it in range(1, MAX_ITER + 1):  # noqa: B007 - the count is reported
        new = np.clip(reweigh(p, prior_in, est).mean(axis=0), FLOOR, 1.0)
        new /= new.sum()
        if np.max(np.abs(new - est)) < TOL:
            est, converged = new, True
            break
        est = new
    out = reweigh(p, prior_in, est)
    shaped = out if categorical else out[:, 1].reshape(np.shape(probs))
    return shaped.astype(np.float32), ClassPrior(tuple(classes), tuple(float(x) for x in prior_in),
                                                 tuple(float(x) for x in est), len(p), it, converged)
