#!/bin/bash
# Learning-rate schedules on real YSE (BENCHMARKS.md, "Learning-rate schedules"): one
# `scone simulate --like` training set and one set of heatmaps, then one training per
# lr_schedule, each predicting the same real heatmaps, scored as benchmarks/real_data.py
# scores. Usage: bash benchmarks/lr_schedules.sh [work folder, default /tmp/lr]
set -euo pipefail
cd "$(dirname "$0")/.."
S=".venv/bin/python -m scone_assets.cli"
W=${1:-/tmp/lr}
DATA=../shared/data/yse_dev
mkdir -p "$W"
$S simulate --out "$W/yse_dev_LIKE" --like "$DATA" --n 6000 --seed 1 --per-file 1000 --jobs 1
for sched in constant cosine plateau; do
  printf 'input_path: %s\nheatmaps_path: %s\noutput_path: %s\nnum_epochs: 40\nearly_stopping_patience: 8\nseed: 1\nwith_z: false\njobs: 1\nlr_schedule: %s\n' \
    "$W/yse_dev_LIKE" "$W/like_heatmaps" "$W/out_$sched" "$sched" > "$W/train_$sched.yml"
  $S run --config_path "$W/train_$sched.yml" > "$W/log_$sched.txt"
  printf 'input_path: %s\nheatmaps_path: %s\noutput_path: %s\nmode: predict\ntrained_model: %s\njobs: 1\n' \
    "$DATA" "$W/real_heatmaps" "$W/pred_$sched" "$W/out_$sched/trained_model" > "$W/predict_$sched.yml"
  $S run --config_path "$W/predict_$sched.yml" > "$W/plog_$sched.txt"
done
.venv/bin/python - "$W" <<'PY'
import json, sys
from pathlib import Path
import pandas as pd
sys.path.insert(0, "benchmarks")
from real_data import score, truth
W = Path(sys.argv[1])
for sched in ("constant", "cosine", "plateau"):
    t = pd.read_csv(W / f"pred_{sched}" / "predictions.csv", dtype={"SNID": str})
    m = json.loads((W / f"out_{sched}" / "trained_model" / "metrics.json").read_text())
    print(json.dumps({"lr_schedule": sched, **score(truth("yse_dev", t.SNID), t.PROB_SCONE.to_numpy()),
                      "sim_test_accuracy": m["test"]["accuracy"], "sim_test_auc": m["test"]["auc"]}))
PY
