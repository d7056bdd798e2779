"""Real data, the way users work: simulate a training set like the survey, train on it,
classify the real light curves, score them against their spectroscopic types; then the
same model again with `class_prior: data` (probabilities re-weighed to the class fractions
estimated, without labels, from the set classified), scored under `class_prior_data`.

    .venv/bin/python benchmarks/real_data.py [--n 20000] [--epochs 60] [--work /tmp/scone_real]
        [--sets yse_dev,LOWZ_REAL] [--extra-config 'ensemble_size: 3'] [--redshift no] [--seed 1]
        [--count-as-ia 'SNIa-91bg, SNIax'] [--ia-dust-tau 0.55 | fit] [--mix SNIa=0.6,SNII=0.3,SNIbc=0.1]

For each real set (yse_dev: typed YSE DR1 light curves; LOWZ_REAL: real SNe Ia) and with
and without redshift, it runs the commands a user would:

    scone simulate --out <work>/<set>_LIKE --like <real set> --n N --seed S
    scone run --config_path train.yml      # heatmaps of the simulation, then training
    scone run --config_path predict.yml    # heatmaps of the real set, then predictions

and scores `predictions.csv` with the set's labels (validation only: nothing is fitted on
them). `--extra-config` is YAML appended to each train config (e.g. `ensemble_size: 3`,
`lr_schedule: cosine`, `augment_copies: 2`); `--redshift no` or `yes` runs one of the two
trainings; `--seed S` (default 1) seeds both the simulation and the training, so runs
with several seeds show how far one figure moves with the draw alone. `--count-as-ia`
('' for none) is the training's `count_as_ia`, by default each set's own definition of
SN Ia (COUNT_AS_IA): yse_dev's three classes leave a 91bg-like SN no place but SN Ia;
LOWZ_REAL, "real SNe Ia", holds 91bg-like SNe (2005bl, 2005ke, 2006mr, 2007ax) and SNe Iax
(2005hk, 2008A, 2008ae, 2008ha, 2009J, 2010ae) alike. `--ia-dust-tau` ('' for BayeSN's
0.252) is the simulation's SN Ia host-dust scale, by default each set's (IA_DUST_TAU), fitted
to the set's colours without labels (`scone fit-dust`); `--ia-dust-tau fit` fits it in the
run, as a user would: a first pass at BayeSN's dust (simulate, train without redshift,
predict with `class_prior: data`) under <work>/dust_first_pass, then `scone fit-dust` with
that estimate (picture: <work>/<set>_dust_fit.png), then the runs at the fitted scale; the
fit and the first pass's scores are in each result's `dust_fit`. `--mix` is the simulations'
class mix (`scone simulate --mix`; default: the survey's own, from rates and its selection).
Prints one JSON line per run and writes them to <work>/real_data.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
SCONE = [sys.executable, "-m", "scone_assets.cli"]
# what each set's labels count as SN Ia beyond the simulation's SNIa (the training's count_as_ia)
COUNT_AS_IA = {"yse_dev": "SNIa-91bg", "LOWZ_REAL": "SNIa-91bg, SNIax"}
# each set's SN Ia host-dust scale (`scone simulate --ia-dust-tau`), fitted without labels by
# `scone fit-dust`; a set not named keeps BayeSN's 0.252 (yse_dev's fit gives 0.25)
IA_DUST_TAU = {"LOWZ_REAL": 0.55}


def run(args: list[str]) -> float:
    t0 = time.time()
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return time.time() - t0


def truth(name: str, snids: pd.Series) -> np.ndarray:
    if name == "yse_dev":
        labels = pd.read_csv(SHARED / "yse_dev" / "labels.csv", dtype={"SNID": str}).set_index("SNID")
        return labels.loc[snids, "IS_IA"].to_numpy().astype(int)
    return np.ones(len(snids), dtype=int)  # LOWZ_REAL: every object is a spectroscopic SN Ia


def score(y: np.ndarray, p: np.ndarray) -> dict:
    from scone_assets.model import metrics

    pred = (p >= 0.5).astype(int)
    from scone_assets.model.calibration import expected_calibration_error

    out = {"n": int(len(y)), "accuracy": float(np.mean(pred == y)),
           "ia_found": float(np.mean(pred[y == 1])) if (y == 1).any() else float("nan"),
           "ece": expected_calibration_error(y, p)}
    if 0 < y.sum() < len(y):
        out["auc"] = float(metrics.roc_auc(y, p))
        out["purity"] = float(np.sum((pred == 1) & (y == 1)) / max(1, np.sum(pred == 1)))
        out["efficiency"] = float(np.sum((pred == 1) & (y == 1)) / max(1, np.sum(y == 1)))
    return out


def one(name: str, data: Path, work: Path, n: int, epochs: int, with_z: bool, extra: str = "",
        seed: int = 1, count_as_ia: str = "", ia_dust_tau: float | None = None, mix: str = "") -> dict:
    sims = work / f"{name}_LIKE"
    t_sim = run([*SCONE, "simulate", "--out", str(sims), "--like", str(data), "--n", str(n), "--seed", str(seed),
                 "--per-file", "1000", *(["--ia-dust-tau", str(ia_dust_tau)] if ia_dust_tau else []),
                 *(["--mix", mix] if mix else [])])
    tag = "with_z" if with_z else "no_z"
    train = work / f"{name}_{tag}_train.yml"
    train.write_text(f"input_path: {sims}\nheatmaps_path: {work / (name + '_LIKE_heatmaps')}\n"
                     f"output_path: {work / (name + '_' + tag)}\nnum_epochs: {epochs}\n"
                     f"early_stopping_patience: 8\nseed: {seed}\nwith_z: {str(with_z).lower()}\n"
                     + (f"count_as_ia: [{count_as_ia}]\n" if count_as_ia else "")
                     + (extra.strip() + "\n" if extra.strip() else ""))
    t_train = run([*SCONE, "run", "--config_path", str(train), "--force"])
    model = work / f"{name}_{tag}" / "trained_model"
    predict = work / f"{name}_{tag}_predict.yml"
    out = work / f"{name}_{tag}_predictions"
    predict.write_text(f"input_path: {data}\nheatmaps_path: {work / (name + '_real_heatmaps')}\n"
                       f"output_path: {out}\nmode: predict\ntrained_model: {model}\n")
    t_pred = run([*SCONE, "run", "--config_path", str(predict)])
    table = pd.read_csv(out / "predictions.csv", dtype={"SNID": str})
    skipped = pd.read_csv(out / "predictions.skipped.csv", dtype={"SNID": str})
    y = truth(name, table.SNID)
    # the same model with `class_prior: data`: re-weighed to the fractions estimated from the set
    adapted_cfg = work / f"{name}_{tag}_predict_class_prior.yml"
    adapted_out = work / f"{name}_{tag}_predictions_class_prior"
    adapted_cfg.write_text(predict.read_text().replace(str(out), str(adapted_out)) + "class_prior: data\n")
    run([*SCONE, "run", "--config_path", str(adapted_cfg)])
    adapted = pd.read_csv(adapted_out / "predictions.csv", dtype={"SNID": str})
    estimated = json.loads((adapted_out / "predictions.class_prior.json").read_text())
    class_prior = {**score(truth(name, adapted.SNID), adapted.PROB_SCONE.to_numpy()),
                   "estimated_ia_fraction": estimated["estimated"][estimated["classes"].index("SNIa")]}
    metrics = json.loads((model / "metrics.json").read_text())
    test = metrics["test"]
    return {"set": name, "with_z": with_z, "n_sim": n, "seed": seed, **score(y, table.PROB_SCONE.to_numpy()),
            "skipped": int(len(skipped)), "sim_test_accuracy": test["accuracy"], "sim_test_auc": test["auc"],
            "temperature": metrics.get("calibration", {}).get("temperature"),
            "extra_config": extra.strip(), "count_as_ia": count_as_ia, "ia_dust_tau": ia_dust_tau, "mix": mix,
            "augmented_used": metrics.get("augmentation", {}).get("used", 0),
            "sim_test_members": [(m["test"]["accuracy"], m["test"]["auc"])
                                 for m in metrics.get("ensemble", {}).get("members", [])],
            "class_prior_data": class_prior,
            "minutes": {"simulate": t_sim / 60, "train": t_train / 60, "predict": t_pred / 60}}


def fitted_dust(name: str, data: Path, work: Path, n: int, epochs: int, extra: str, seed: int,
                count_as_ia: str, mix: str = "") -> dict:
    """The user's first pass for `--ia-dust-tau fit`: a simulation at BayeSN's dust, a model
    trained on it (no redshift), its `class_prior: data` estimate of the set's SN Ia
    fraction, and `scone fit-dust` with it. Labels are read only to score the first pass."""
    first = work / "dust_first_pass"
    first.mkdir(parents=True, exist_ok=True)
    res = one(name, data, first, n, epochs, False, extra, seed, count_as_ia, None, mix)
    prior = first / f"{name}_no_z_predictions_class_prior" / "predictions.class_prior.json"
    out = subprocess.run([*SCONE, "fit-dust", "--data", str(data), "--sim", str(first / f"{name}_LIKE"),
                          "--class-prior", str(prior), "--plot", str(work / f"{name}_dust_fit.png")],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"scone fit-dust exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    tau = float(out.stdout.split("best: --ia-dust-tau ")[1].split()[0])
    return {"tau": tau, "fit": out.stdout.strip().splitlines(), "first_pass": res}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--work", default="/tmp/scone_real")
    ap.add_argument("--sets", default="yse_dev,LOWZ_REAL")
    ap.add_argument("--extra-config", default="", help="YAML lines appended to each train config")
    ap.add_argument("--seed", type=int, default=1, help="seed of the simulation and the training")
    ap.add_argument("--count-as-ia", default=None,
                    help="classes trained as SN Ia (count_as_ia); '' none; default: each set's (COUNT_AS_IA)")
    ap.add_argument("--ia-dust-tau", default=None,
                    help="SN Ia host-dust scale of the simulations; '' BayeSN's; 'fit' fitted by a first pass "
                         "(simulate, train, predict with class_prior: data, scone fit-dust); default: each "
                         "set's (IA_DUST_TAU)")
    ap.add_argument("--mix", default="", help="the simulations' class mix (scone simulate --mix); default: "
                    "the survey's own, from rates and its selection")
    ap.add_argument("--redshift", choices=("both", "no", "yes"), default="both",
                    help="train without redshift, with it, or both (default)")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    paths = {"yse_dev": SHARED / "yse_dev", "LOWZ_REAL": SHARED / "snana_fits" / "LOWZ_REAL"}
    results = []
    for name in args.sets.split(","):
        count_as_ia = COUNT_AS_IA[name] if args.count_as_ia is None else args.count_as_ia
        dust_fit = None
        if args.ia_dust_tau == "fit":
            dust_fit = fitted_dust(name, paths[name], work, args.n, args.epochs, args.extra_config, args.seed,
                                   count_as_ia, args.mix)
            tau = dust_fit["tau"]
        else:
            tau = IA_DUST_TAU.get(name) if args.ia_dust_tau is None else float(args.ia_dust_tau or 0) or None
        for with_z in {"both": (False, True), "no": (False,), "yes": (True,)}[args.redshift]:
            res = one(name, paths[name], work, args.n, args.epochs, with_z, args.extra_config, args.seed,
                      count_as_ia, tau, args.mix)
            if dust_fit is not None:
                res["dust_fit"] = dust_fit
            print(json.dumps(res), flush=True)
            results.append(res)
    (work / "real_data.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
