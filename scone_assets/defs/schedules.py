"""Nightly retraining, stopped by default; the cron comes from SCONE_RETRAIN_CRON."""

import os

import dagster as dg

from scone_assets.defs.jobs import train_job

nightly_retrain = dg.ScheduleDefinition(
    name="nightly_retrain", job=train_job, cron_schedule=os.environ.get("SCONE_RETRAIN_CRON", "0 3 * * *"),
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain on everything materialized so far (start it in the UI or with `dagster schedule start`).")
