"""Partitions from the command line, and the headless main job on a real local instance.

`register_partitions` adds the input units of the train and predict configs as
partitions, so a CLI backfill can run without the sensor. `run_pipeline`
materializes every asset, partition by partition, on the instance in
DAGSTER_HOME, so `make ui` afterwards shows the runs, partitions and metadata.
"""

import os
from pathlib import Path

import dagster as dg

from scone_assets.defs.partitions import PARTITIONS_NAME, split_key


def register_partitions(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    existing = set(instance.get_dynamic_partitions(PARTITIONS_NAME))
    new = [k for k in keys if k not in existing]
    if new:
        instance.add_dynamic_partitions(PARTITIONS_NAME, new)
    return new


def run_pipeline(defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[str], log=print) -> dict:
    """Heatmaps for every partition, then the model, then predictions for `predict:` partitions."""
    job = defs.resolve_implicit_global_asset_job_def()

    def run(selection, partition_key=None):
        res = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(s) for s in selection],
                                     partition_key=partition_key, raise_on_error=False,
                                     run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
        if not res.success:
            errors = [str(e.event_specific_data.error.message).strip() for e in res.all_events
                      if e.event_type_value == "STEP_FAILURE"]
            raise RuntimeError(f"run {res.run_id} failed: {'; '.join(errors)}")
        return res

    for key in keys:
        log(f"heatmaps for {key}")
        run(["snana_files", "lightcurve_catalog", "heatmaps"], key)
    log("training")
    res = run(["balanced_catalog", "trained_model"])
    checks = {c.check_name: c.passed for c in res.get_asset_check_evaluations()}
    for key in keys:
        if split_key(key)[0] == "predict":
            log(f"predictions for {key}")
            run(["predictions"], key)
    meta = instance.get_latest_materialization_event(dg.AssetKey("trained_model")).asset_materialization.metadata
    return {"metrics": {k: meta[k].value for k in ("accuracy", "auc", "purity", "efficiency", "n_test")},
            "checks": checks, "model_dir": meta["model_dir"].value if "model_dir" in meta else None}


def instance_for(home: str | Path) -> dg.DagsterInstance:
    """The instance in `home`, set up with the project's dagster.yaml when it has none."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        src = Path(__file__).resolve().parents[2] / "dagster.yaml"
        if src.exists():
            (home / "dagster.yaml").write_text(src.read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()
