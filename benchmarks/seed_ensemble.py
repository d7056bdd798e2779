"""Models trained on independent `--like` simulations, averaged: does the mean of their
calibrated P(Ia) classify a real set better than its members do on average?

    .venv/bin/python benchmarks/seed_ensemble.py --set yse_dev \
        /tmp/rd_yse_s4/yse_dev_no_z_predictions /tmp/rd_yse_s5/yse_dev_no_z_predictions ...

Each argument is a `predictions.csv` folder of one model (from `benchmarks/real_data.py
--seed S`, each seed its own simulation and training) on the same real set. Scored as
real_data.py scores: at the model's own prior (P >= 0.5) and re-weighed to the SN Ia
fraction estimated without labels from the probabilities scored (`class_prior: data`'s
estimate, model/prior.py), for each member, their mean, and the ensemble (the mean of the
members' probabilities, its own fraction estimated the same way). Labels are read only to
score.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from real_data import score, truth

from scone_assets.model.prior import estimate

FIGURES = {"yse_dev": ("accuracy", "auc", "purity", "efficiency"), "LOWZ_REAL": ("ia_found",)}


def reweighed(p: np.ndarray) -> tuple[np.ndarray, float]:
    """P(Ia) re-weighed to the SN Ia fraction estimated from `p`, as `class_prior: data` does."""
    again, prior = estimate(p, ["nonIa", "SNIa"], False)
    return again, prior.estimated[1]


def line(label: str, own: dict, again: dict, f: float | None, keys: tuple[str, ...]) -> str:
    def fmt(d: dict) -> str:
        return ", ".join(f"{k} {d[k]:.4f}" for k in keys)

    return f"{label}: {fmt(own)} | re-weighed{'' if f is None else f' (fraction {f:.3f})'}: {fmt(again)}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", required=True, choices=sorted(FIGURES))
    ap.add_argument("folders", nargs="+")
    args = ap.parse_args()
    tables = [pd.read_csv(Path(d) / "predictions.csv", dtype={"SNID": str}).set_index("SNID").PROB_SCONE
              for d in args.folders]
    snids = tables[0].index
    for t in tables[1:]:
        snids = snids.intersection(t.index)  # a light curve one model skipped is left out of all
    y = truth(args.set, pd.Series(snids))
    probs = [t.loc[snids].to_numpy(float) for t in tables]
    keys = FIGURES[args.set]
    print(f"{args.set}: {len(snids)} light curves, {len(probs)} models")
    members = []
    for folder, p in zip(args.folders, probs, strict=True):
        again, f = reweighed(p)
        members.append((score(y, p), score(y, again)))
        print(line(folder, *members[-1], f, keys))
    mean = [{k: float(np.mean([m[i][k] for m in members])) for k in keys} for i in (0, 1)]
    print(line("members' mean", *mean, None, keys))
    ensemble = np.mean(probs, axis=0)
    again, f = reweighed(ensemble)
    print(line("ensemble", score(y, ensemble), score(y, again), f, keys))


if __name__ == "__main__":
    main()
