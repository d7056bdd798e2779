"""Accuracy on SNANA's SNPCC simulation (../shared/data/snpcc_dev), without and with redshift.

    .venv/bin/python benchmarks/snpcc_accuracy.py [--epochs 150] [--out benchmarks/report/snpcc]
        [--redshift no] [--extra-config 'lr_schedule: cosine']

Protocol: heatmaps (fast back-end, 32 x 180) for all 7,131 light curves; a seeded
(seed 42), stratified, disjoint split by SNID into 80% train, 10% validation, 10% test;
every light curve kept (class weights, no undersampling); SCONE's network and learning
rate; early stopping on validation loss (patience 20, best weights restored); binary
SN Ia vs the rest; metrics on the test set at P(Ia) >= 0.5. `--extra-config` is YAML
added to the heatmap and training configs (a setting under test; `augment_copies` makes
the augmented heatmap set too); `--redshift no` or `yes` trains one
of the two models.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from scone_assets.config import SconeConfig
from scone_assets.heatmaps.run import heatmap_sets, make_heatmaps
from scone_assets.heatmaps.store import load_catalogs
from scone_assets.model.train import train

HERE = Path(__file__).resolve().parent
SNPCC = HERE.parent.parent / "shared" / "data" / "snpcc_dev"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--out", default=str(HERE / "report" / "snpcc"))
    ap.add_argument("--work", default="/tmp/scone_snpcc_bench")
    ap.add_argument("--extra-config", default="", help="YAML mapping added to the training config")
    ap.add_argument("--redshift", choices=("both", "no", "yes"), default="both")
    args = ap.parse_args()
    extra = yaml.safe_load(args.extra_config) or {}
    out = Path(args.out)
    base = dict(input_path=str(SNPCC), heatmaps_path=f"{args.work}/heatmaps", num_epochs=args.epochs,
                batch_size=32, seed=42, train_proportion=0.8, val_proportion=0.1, early_stopping_patience=20)
    t0 = time.time()
    # the heatmap sets the training config asks for (with `augment_copies`, the augmented set too)
    hm_config = SconeConfig(**base, **extra)
    res = make_heatmaps(hm_config, progress=False).results
    n = sum(r.written for r in res)
    skipped = {}
    for r in res:
        for k, v in r.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
    print(f"heatmaps: {n} written, skipped {skipped}, {time.time() - t0:.0f} s")
    catalogs = load_catalogs(base["heatmaps_path"], [name for name, _ in heatmap_sets(hm_config)])
    summary = {}
    for with_z in {"both": (False, True), "no": (False,), "yes": (True,)}[args.redshift]:
        cfg = SconeConfig(**base, **extra, with_z=with_z, output_path=str(out))
        t0 = time.time()
        metrics = train(cfg, dict(catalogs), out / ("with_z" if with_z else "no_z"), progress=False)
        t = metrics["test"]
        hist = json.loads((out / ("with_z" if with_z else "no_z") / "history.json").read_text())
        summary["with_z" if with_z else "no_z"] = {**t, "epochs_run": len(hist["loss"]),
                                                     "augmented_used": metrics.get("augmentation", {}).get("used", 0),
                                                     "minutes": (time.time() - t0) / 60}
        print(f"with_z={with_z}: test n={t['n']} accuracy {t['accuracy']:.4f} AUC {t['auc']:.4f} "
              f"purity {t['purity']:.4f} efficiency {t['efficiency']:.4f} F1 {t['f1']:.4f} "
              f"({len(hist['loss'])} epochs, {(time.time() - t0) / 60:.1f} min)")
    summary["extra_config"] = extra
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
