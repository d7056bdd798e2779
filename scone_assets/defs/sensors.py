"""React to new simulations, and retrain once when new training heatmaps have landed.

`new_simulations_sensor` lists the input roots of both configs; the cursor keeps a
fingerprint of the last listing, so an unchanged listing costs one comparison. New
input units become partitions and get their catalog and heatmaps materialized.
`retrain_sensor` follows heatmap materializations of `train:` partitions after a
cursor (an event storage id); any number of them coalesce into one training run.
"""


import hashlib
import json

import dagster as dg

from scone_assets.defs.jobs import heatmaps_job, train_job
from scone_assets.defs.partitions import PARTITIONS_NAME, snana_partitions, split_key
from scone_assets.defs.resources import SconeResource


@dg.sensor(job=heatmaps_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="New SNANA files or simulation folders -> partitions + heatmaps runs.")
def new_simulations_sensor(context: dg.SensorEvaluationContext, scone: SconeResource):
    keys = sorted(scone.all_partition_keys())
    fingerprint = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    if context.cursor == fingerprint:
        return dg.SkipReason(f"no change in the input roots ({len(keys)} units)")
    existing = set(context.instance.get_dynamic_partitions(PARTITIONS_NAME))
    new = [k for k in keys if k not in existing]
    if not new:
        return dg.SensorResult(skip_reason=dg.SkipReason("listing changed, but no new input units"),
                               cursor=fingerprint)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=k, partition_key=k) for k in new],
        dynamic_partitions_requests=[snana_partitions.build_add_request(new)],
        cursor=fingerprint,
    )


@dg.sensor(job=train_job, minimum_interval_seconds=120, default_status=dg.DefaultSensorStatus.STOPPED,
           description="New training heatmaps since the last model -> one retraining run.")
def retrain_sensor(context: dg.SensorEvaluationContext):
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("heatmaps"), after_storage_id=after), limit=10_000).records
    if not records:
        return dg.SkipReason("no new heatmaps")
    latest = max(r.storage_id for r in records)
    train_keys = sorted({r.partition_key for r in records if r.partition_key and split_key(r.partition_key)[0] == "train"})
    if not train_keys:
        return dg.SensorResult(skip_reason=dg.SkipReason("new heatmaps, none for training"), cursor=str(latest))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"retrain-{latest}", tags={"scone/new_partitions": json.dumps(train_keys)[:1000]})],
        cursor=str(latest),
    )
