"""Jobs: heatmaps per partition, training, predictions per partition; the same for the like flow."""

import dagster as dg

heatmaps_job = dg.define_asset_job(
    "heatmaps_job", selection=["snana_files", "lightcurve_catalog", "heatmaps"],
    description="Read one SNANA input unit, catalog it and make its heatmaps.")
train_job = dg.define_asset_job(
    "train_job", selection=["balanced_catalog", "trained_model"],
    description="Balance and split the training catalog, then train the classifier.")
predict_job = dg.define_asset_job(
    "predict_job", selection=["predictions"],
    description="Classify one survey-data ('predict:') partition with the trained model.")
like_job = dg.define_asset_job(
    "like_job", selection=["like_simulation", "like_heatmaps", "like_model"],
    description="Simulate like the survey data, make the simulation's heatmaps, train the model "
                "for that survey.")
like_predict_job = dg.define_asset_job(
    "like_predict_job", selection=["like_predictions"],
    description="Classify one survey-data ('predict:') partition with the model made for that "
                "survey.")
