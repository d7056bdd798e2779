"""Sensors where they are the right tool (files appearing), and the automation sensor.

`new_inputs_sensor` lists the input roots of both configs; the cursor keeps a
fingerprint of the last listing, so an unchanged listing costs one comparison. New
input units become partitions of their set (`training_sims` or `survey_data`) and get
their files, catalog and heatmaps materialized through the named heatmaps jobs.
What follows is declarative (each asset's `AutomationCondition`, evaluated by
`automation_sensor`): new training heatmaps -> balanced_catalog and a new model
version (or at every SCONE_RETRAIN_CRON tick) -> promoted_model -> predictions of
every survey partition. `like_sensor` drives the survey_like flow: new survey
heatmaps -> one like_job run (simulate like them, retrain); a new like_model ->
like_predictions for every survey partition that has heatmaps.
All are stopped by default: a deployment starts them in the UI or with
`dagster sensor start`.
"""


import hashlib
import json

import dagster as dg

from scone_assets.defs.jobs import HEATMAPS_JOBS, like_job, like_predict_job
from scone_assets.defs.partitions import PARTITIONS, SURVEY_DATA
from scone_assets.defs.resources import SconeResource

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.STOPPED,
    description="Evaluates every asset's AutomationCondition: retraining on new training heatmaps, "
                "promotion, and predictions refreshed when a version is promoted.")


@dg.sensor(jobs=list(HEATMAPS_JOBS.values()), minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="New SNANA files or folders -> partitions (training_sims or survey_data) + "
                       "heatmaps runs.")
def new_inputs_sensor(context: dg.SensorEvaluationContext, scone: SconeResource):
    keys = scone.partition_keys()
    listing = "\n".join(f"{role}:{k}" for role in sorted(keys) for k in sorted(keys[role]))
    fingerprint = hashlib.sha256(listing.encode()).hexdigest()
    if context.cursor == fingerprint:
        return dg.SkipReason(f"no change in the input roots ({sum(map(len, keys.values()))} units)")
    requests, adds = [], []
    for role, unit_keys in keys.items():
        pdef = PARTITIONS[role]
        existing = set(context.instance.get_dynamic_partitions(pdef.name))
        new = [k for k in sorted(unit_keys) if k not in existing]
        if new:
            adds.append(pdef.build_add_request(new))
            job = HEATMAPS_JOBS[role].name
            requests += [dg.RunRequest(run_key=f"{pdef.name}:{k}", job_name=job, partition_key=k) for k in new]
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("listing changed, but no new input units"),
                               cursor=fingerprint)
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=adds, cursor=fingerprint)


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
    survey = _new(context, "survey_heatmaps", cursor.get("survey"))
    models = _new(context, "like_model", cursor.get("model"))
    requests = []
    if survey:
        cursor["survey"] = max(r.storage_id for r in survey)
        new_keys = sorted({r.partition_key for r in survey if r.partition_key})
        tags = {"scone/new_survey_partitions": json.dumps(new_keys)[:1000]}
        requests.append(dg.RunRequest(job_name=like_job.name, run_key=f"like-{cursor['survey']}",
                                      tags=tags))
    if models:
        cursor["model"] = max(r.storage_id for r in models)
        have = context.instance.get_materialized_partitions(dg.AssetKey("survey_heatmaps"))
        known = set(context.instance.get_dynamic_partitions(SURVEY_DATA))
        requests += [dg.RunRequest(job_name=like_predict_job.name, partition_key=k,
                                   run_key=f"like-predict-{cursor['model']}-{k}")
                     for k in sorted(have) if k in known]
    if not requests:
        skip = dg.SkipReason("no new survey heatmaps and no new like model")
        return dg.SensorResult(skip_reason=skip, cursor=json.dumps(cursor))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))
