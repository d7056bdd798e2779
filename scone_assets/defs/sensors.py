"""React to new simulations, and retrain once when new training heatmaps have landed.

`new_simulations_sensor` lists the input roots of both configs; the cursor keeps a
fingerprint of the last listing, so an unchanged listing costs one comparison. New
input units become partitions and get their catalog and heatmaps materialized.
`retrain_sensor` follows heatmap materializations of `train:` partitions after a
cursor (an event storage id); any number of them coalesce into one training run.
`like_sensor` does the same for the survey_like flow: new survey (`predict:`) heatmaps
-> one like_job run (simulate like them, retrain); a new like_model -> like_predictions
for every survey partition that has heatmaps.
"""


import hashlib
import json

import dagster as dg

from scone_assets.defs.jobs import heatmaps_job, like_job, like_predict_job, train_job
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


def _new(context: dg.SensorEvaluationContext, asset: str, after: int | None) -> list:
    records_filter = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), after_storage_id=after)
    return context.instance.fetch_materializations(records_filter, limit=10_000).records


@dg.sensor(jobs=[like_job, like_predict_job], minimum_interval_seconds=120,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="New survey-data heatmaps -> one like_job run (a simulation like them, a "
                       "model for them); a new like_model -> like_predictions of every survey "
                       "partition.")
def like_sensor(context: dg.SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {}
    survey = _new(context, "heatmaps", cursor.get("survey"))
    models = _new(context, "like_model", cursor.get("model"))
    if survey:
        cursor["survey"] = max(r.storage_id for r in survey)
    requests = []
    new_keys = sorted({r.partition_key for r in survey
                       if r.partition_key and split_key(r.partition_key)[0] == "predict"})
    if new_keys:
        tags = {"scone/new_survey_partitions": json.dumps(new_keys)[:1000]}
        requests.append(dg.RunRequest(job_name=like_job.name, run_key=f"like-{cursor['survey']}",
                                      tags=tags))
    if models:
        cursor["model"] = max(r.storage_id for r in models)
        have = context.instance.get_materialized_partitions(dg.AssetKey("heatmaps"))
        requests += [dg.RunRequest(job_name=like_predict_job.name, partition_key=k,
                                   run_key=f"like-predict-{cursor['model']}-{k}")
                     for k in sorted(have) if split_key(k)[0] == "predict"]
    if not requests:
        skip = dg.SkipReason("no new survey heatmaps and no new like model")
        return dg.SensorResult(skip_reason=skip, cursor=json.dumps(cursor))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))
