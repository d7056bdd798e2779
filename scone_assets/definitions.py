"""The scone-assets Dagster code location (`workspace.yaml` loads `defs`).

The library under `scone_assets/` knows nothing of Dagster; the assets,
partitions, IO managers, resources, sensors, schedules, jobs and checks that
wrap it live under `scone_assets/defs/`. Configuration comes from the
environment: SCONE_TRAIN_CONFIG and SCONE_PREDICT_CONFIG (SCONE YAML files) and
SCONE_OUTPUT_ROOT (where catalogs, heatmaps, models and predictions go);
SCONE_RETRAIN_CRON adds a retraining at every tick of that cron. The survey_like
flow's sizes (`scone` resource fields, also set in the launchpad) may come from SCONE_LIKE_N
and SCONE_LIKE_EPOCHS.
"""

import os

import dagster as dg

from scone_assets.defs import assets, like
from scone_assets.defs.io_managers import HeatmapIOManager, ModelIOManager, ParquetIOManager
from scone_assets.defs.jobs import JOBS
from scone_assets.defs.resources import SconeResource
from scone_assets.defs.sensors import automation_sensor, new_inputs_sensor


def build_defs(train_config: str, predict_config: str | None, output_root: str,
               jobs: int | None = None, like_n: int | None = None,
               like_num_epochs: int | None = None, like_ia_dust_tau: float | None = None) -> dg.Definitions:
    sizes = {k: v for k, v in (("like_n", like_n), ("like_num_epochs", like_num_epochs),
                               ("like_ia_dust_tau", like_ia_dust_tau)) if v is not None}
    scone = SconeResource(train_config_path=train_config, predict_config_path=predict_config,
                          output_root=output_root, jobs=jobs, **sizes)
    return dg.Definitions(
        assets=dg.load_assets_from_modules([assets, like]),
        jobs=JOBS,
        sensors=[new_inputs_sensor, automation_sensor],
        # Every job is a chain (files -> catalog -> heatmaps, catalog -> model -> promotion),
        # so a process per step would run nothing in parallel; it would only add a Python
        # start-up (about 2 s) and its memory to each step. Heatmaps have their own workers.
        executor=dg.in_process_executor,
        resources={
            "scone": scone,
            "parquet_io_manager": ParquetIOManager(base_dir=f"{output_root.rstrip('/')}/catalogs"),
            "heatmap_io_manager": HeatmapIOManager(scone=scone),
            "model_io_manager": ModelIOManager(scone=scone),
        },
    )


defs = build_defs(
    train_config=os.environ.get("SCONE_TRAIN_CONFIG", "scone_train.yml"),
    predict_config=os.environ.get("SCONE_PREDICT_CONFIG") or None,
    output_root=os.environ.get("SCONE_OUTPUT_ROOT", "scone_output"),
    jobs=int(os.environ["SCONE_JOBS"]) if os.environ.get("SCONE_JOBS") else None,
    like_n=int(os.environ["SCONE_LIKE_N"]) if os.environ.get("SCONE_LIKE_N") else None,
    like_num_epochs=(int(os.environ["SCONE_LIKE_EPOCHS"]) if os.environ.get("SCONE_LIKE_EPOCHS")
                     else None),
)
