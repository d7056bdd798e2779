"""Named jobs, one per step a user or a sensor launches; the same for the like flow."""

import dagster as dg

training_heatmaps_job = dg.define_asset_job(
    "training_heatmaps_job", selection=["training_files", "training_catalog", "training_heatmaps"],
    description="Read one training-simulation input unit, catalog it and make its heatmaps.")
survey_heatmaps_job = dg.define_asset_job(
    "survey_heatmaps_job", selection=["survey_files", "survey_catalog", "survey_heatmaps"],
    description="Read one survey-data input unit, catalog it and make its heatmaps.")
train_job = dg.define_asset_job(
    "train_job", selection=["balanced_catalog", "trained_model", "promoted_model"],
    description="Balance and split the training catalog, train a new model version, and promote "
                "it if it passes its checks and is not worse than the promoted one.")
predict_job = dg.define_asset_job(
    "predict_job", selection=["predictions"],
    description="Classify one survey-data partition with the promoted model version.")
like_job = dg.define_asset_job(
    "like_job", selection=["like_simulation", "like_heatmaps", "like_model"],
    description="Simulate like the survey data, make the simulation's heatmaps, train the model "
                "for that survey.")
like_predict_job = dg.define_asset_job(
    "like_predict_job", selection=["like_predictions"],
    description="Classify one survey-data partition with the model made for that survey.")
like_dust_job = dg.define_asset_job(
    "like_dust_job", selection=["like_host_dust"],
    description="Fit the survey's SN Ia host dust to its colours against the like simulation "
                "(after like predictions of every survey partition).")

HEATMAPS_JOBS = {"train": training_heatmaps_job, "predict": survey_heatmaps_job}
JOBS = [training_heatmaps_job, survey_heatmaps_job, train_job, predict_job, like_job, like_predict_job,
        like_dust_job]
