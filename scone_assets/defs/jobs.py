"""Jobs: heatmaps per partition, training, predictions per partition."""

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
