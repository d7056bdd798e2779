"""Partitions from the command line, and the headless main job on a real local instance.

`register_partitions` adds the input units of the train and predict configs to their
partition sets, so a CLI backfill can run without the sensor. `run_pipeline`
materializes every asset through the named jobs, partition by partition, on the
instance in DAGSTER_HOME, so `make ui` afterwards shows the runs, partitions and metadata.
"""

import os
from pathlib import Path

import dagster as dg

from scone_assets.defs.partitions import PARTITIONS, Role


def register_partitions(instance: dg.DagsterInstance, keys: dict[Role, list[str]]) -> dict[Role, list[str]]:
    """Add the units of each role to its partition set; returns the new ones per role."""
    added: dict[Role, list[str]] = {}
    for role, unit_keys in keys.items():
        name = PARTITIONS[role].name
        existing = set(instance.get_dynamic_partitions(name))
        new = [k for k in unit_keys if k not in existing]
        if new:
            instance.add_dynamic_partitions(name, new)
        added[role] = new
    return added


def run_pipeline(defs: dg.Definitions, instance: dg.DagsterInstance, keys: dict[Role, list[str]],
                 log=print) -> dict:
    """Heatmaps of every partition, then a model version (promoted if it is not worse), then
    predictions of every survey partition, then the survey_like flow (its dust fit last), each
    through its named job."""

    def run(job_name: str, partition_key: str | None = None):
        job = defs.resolve_job_def(job_name)
        res = job.execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=False,
                                     run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
        if not res.success:
            errors = [str(e.event_specific_data.error.message).strip() for e in res.all_events
                      if e.event_type_value == "STEP_FAILURE"]
            raise RuntimeError(f"{job_name} run {res.run_id} failed: {'; '.join(errors)}")
        return res

    for role, job_name in (("train", "training_heatmaps_job"), ("predict", "survey_heatmaps_job")):
        for key in keys.get(role, []):
            log(f"heatmaps for {key}")
            run(job_name, key)
    log("training")
    res = run("train_job")
    checks = {c.check_name: c.passed for c in res.get_asset_check_evaluations()}
    promoted = instance.get_latest_materialization_event(dg.AssetKey("promoted_model"))
    for key in keys.get("predict", []):
        log(f"predictions for {key}")
        run("predict_job", key)
    if keys.get("predict"):  # the survey_like group too, so no asset is left missing
        log("a simulation like the survey data, and its model")
        run("like_job")
        for key in keys["predict"]:
            log(f"like predictions for {key}")
            run("like_predict_job", key)
        log("the survey's SN Ia host dust, fitted to its colours")
        run("like_dust_job")
    meta = instance.get_latest_materialization_event(dg.AssetKey("trained_model")).asset_materialization.metadata
    return {"metrics": {k: meta[k].value for k in ("accuracy", "auc", "purity", "efficiency", "n_test")},
            "checks": checks, "version": meta["version"].value,
            "promoted": promoted.asset_materialization.metadata["version"].value if promoted else None,
            "model_dir": meta["model_dir"].value if "model_dir" in meta else None}


def instance_for(home: str | Path) -> dg.DagsterInstance:
    """The instance in `home`, set up with the project's dagster.yaml (dagster_demo.yaml beside
    this module, packaged: not in the repository root, where `dagster dev` warns about it) when
    it has none."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(Path(__file__).with_name("dagster_demo.yaml").read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()
