"""Sensors where they are the right tool (files appearing), and the automation sensor.

`new_inputs_sensor` lists the input roots of both configs; the cursor keeps a
fingerprint of the last listing, so an unchanged listing costs one comparison. New
input units become partitions of their set (`training_sims` or `survey_data`) and get
their files, catalog and heatmaps materialized through the named heatmaps jobs.
What follows is declarative (each asset's `AutomationCondition`, evaluated by
`automation_sensor`): new training heatmaps -> balanced_catalog and a new model
version (or at every SCONE_RETRAIN_CRON tick) -> promoted_model -> predictions of
every survey partition; and the survey_like flow: new survey files -> a simulation
like them -> its heatmaps -> a model for that survey -> like_predictions of every
survey partition. Both are stopped by default: a deployment starts them in the UI or with
`dagster sensor start`.
"""


import hashlib

import dagster as dg

from scone_assets.defs.jobs import HEATMAPS_JOBS
from scone_assets.defs.partitions import PARTITIONS
from scone_assets.defs.resources import SconeResource

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.STOPPED,
    description="Evaluates every asset's AutomationCondition: retraining on new training heatmaps, "
                "promotion, predictions refreshed when a version is promoted, and the survey_like "
                "flow following new survey data.")


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
