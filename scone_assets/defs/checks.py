"""Asset checks: class balance, heatmap yield, and a blocking model accuracy floor.

Each is declared as a check spec on its asset and evaluated from what the asset
just produced, so the accuracy floor blocks `predictions` in the same run.
Thresholds come from the environment so a deployment can tune them.
"""


import os

import dagster as dg
import pandas as pd

CLASS_FLOOR = float(os.environ.get("SCONE_CHECK_CLASS_FLOOR", "0.05"))  # min fraction of the training set per class
YIELD_CEILING = float(os.environ.get("SCONE_CHECK_SKIP_CEILING", "0.2"))  # max skipped fraction per file
ACCURACY_FLOOR = float(os.environ.get("SCONE_CHECK_ACCURACY_FLOOR", "0.6"))  # test accuracy

class_balance_spec = dg.AssetCheckSpec("class_balance", asset="balanced_catalog",
                                       description=f"every class is at least {CLASS_FLOOR:.0%} of the training set")


def heatmap_yield_spec(asset: str) -> dg.AssetCheckSpec:
    """One per heatmaps asset (training simulations, survey data)."""
    return dg.AssetCheckSpec("heatmap_yield", asset=asset,
                             description=f"at most {YIELD_CEILING:.0%} of light curves skipped")


accuracy_floor_spec = dg.AssetCheckSpec("accuracy_floor", asset="trained_model", blocking=True,
                                        description=f"test accuracy at least {ACCURACY_FLOOR:.0%}")


def class_balance(split: pd.DataFrame) -> dg.AssetCheckResult:
    """Over the classes the model learns (SN Ia / non-Ia when binary, the types when categorical)."""
    train = split[split.set == "train"]
    fractions = train.label_name.value_counts(normalize=True)
    worst = fractions.idxmin() if len(fractions) else None
    ok = len(fractions) >= 2 and fractions.min() >= CLASS_FLOOR
    return dg.AssetCheckResult(
        check_name="class_balance", passed=bool(ok),
        metadata={"fractions": dg.MetadataValue.json({k: round(float(v), 4) for k, v in fractions.items()}),
                  "smallest_class": str(worst), "floor": CLASS_FLOOR})


def heatmap_yield(written: int, skipped: dict[str, int]) -> dg.AssetCheckResult:
    """Light curves lost on the way to heatmaps; those the training-set selection left
    out (snid_select_files, DUMP, prescale) were asked for and are shown apart."""
    from scone_assets.heatmaps.run import SELECTION_REASONS

    lost = {k: v for k, v in skipped.items() if k not in SELECTION_REASONS}
    selected_out = sum(v for k, v in skipped.items() if k in SELECTION_REASONS)
    total = written + sum(lost.values())
    frac = sum(lost.values()) / total if total else 0.0 if selected_out else 1.0
    return dg.AssetCheckResult(
        check_name="heatmap_yield", passed=bool((total or selected_out) and frac <= YIELD_CEILING),
        metadata={"skipped_fraction": round(frac, 4), "ceiling": YIELD_CEILING,
                  "skipped_by_reason": dg.MetadataValue.json(lost),
                  "left_out_by_selection": selected_out})


def accuracy_floor(test: dict) -> dg.AssetCheckResult:
    acc = float(test.get("accuracy", 0.0))
    return dg.AssetCheckResult(
        check_name="accuracy_floor", passed=bool(acc >= ACCURACY_FLOOR),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"accuracy": round(acc, 3), "floor": ACCURACY_FLOOR, "n_test": int(test.get("n", 0))})
