"""Classify heatmaps with a trained model folder: the Pippin-ready predictions CSV.

Written to `config.predictions_file()` (`output_predict_file`, under output_path when it
names no folder) unless a path is given. First column SNID, then P(Ia) under
`prob_column_name` (PROB_SCONE), and for categorical models one
`<prob_column_name>_<TYPE>` column per class (PROB_SCONE_SNII, PROB_SCONE_SNIa, ...), so
two classifiers' columns do not collide when merged into one FITRES file: one row per
object. Light curves without a heatmap are listed, with the reason, in
`<predictions>.skipped.csv`. With `class_prior: data` the probabilities are re-weighed to
the class fractions estimated from the light curves classified (model/prior.py), and the
estimate is written beside them as `<predictions>.class_prior.json`.

The model folder may be one SCONE itself wrote (`folder.load_trained`): its network
takes the same image layout, (wavelength bins, time bins, [GP mean, GP std]) divided by
the peak of the mean, so the heatmaps are fed to it as they are.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scone_assets.atomic import atomic_path, atomic_write_text
from scone_assets.config import ConfigError, SconeConfig
from scone_assets.model.calibration import apply_temperature
from scone_assets.model.checks import assert_unique_snids, check_redshift, unique_objects
from scone_assets.model.evaluate import p_ia
from scone_assets.model.folder import ModelMeta, load_trained, read_meta
from scone_assets.model.loaders import load_arrays, plan_loading
from scone_assets.model.prior import estimate as estimate_prior

if TYPE_CHECKING:
    from scone_assets.heatmaps.store import HeatmapCatalog

__all__ = ["class_column", "load_trained", "predict", "score"]  # load_trained: the model folder's, for old callers

log = logging.getLogger(__name__)
MODEL_VERSION_COLUMN = "MODEL_VERSION"  # which model version made a row (platform runs only)
CLASS_PRIOR_SUFFIX = ".class_prior.json"  # beside the predictions with class_prior: data (model/prior.py)
CLASS_PRIOR_ATTR = "class_prior"


def _check_inputs(config: SconeConfig, catalog: HeatmapCatalog, meta: ModelMeta, model_dir) -> HeatmapCatalog:
    """Everything that would make the predictions wrong, refused before the model loads."""
    if tuple(meta.shape) != tuple(catalog.shape):
        raise ConfigError(f"heatmaps are {catalog.shape[0]}x{catalog.shape[1]} but the model in {model_dir} "
                          f"was trained on {meta.shape[0]}x{meta.shape[1]}: remake them with "
                          "num_wavelength_bins/num_mjd_bins matching the model")
    catalog = unique_objects(catalog, config, "heatmaps to classify")
    if meta.with_z:
        check_redshift(catalog, config, "this model was trained with with_z: true")
    return catalog


def _predict_memory(model, catalog: HeatmapCatalog, meta: ModelMeta, batch: int, chunk: int):
    arrays = load_arrays(catalog, batch=chunk)
    # batch by batch: model.predict on the whole array would copy it into a dataset first
    chunks = []
    for i in range(0, len(arrays["image"]), batch):
        part = slice(i, i + batch)
        inputs = {"image": arrays["image"][part]} if not meta.with_z else {
            "image": arrays["image"][part], "z": arrays["z"][part, None], "z_err": arrays["z_err"][part, None]}
        chunks.append(np.asarray(model(inputs, training=False)))
    probs = np.concatenate(chunks) if chunks else np.zeros((0, len(meta.classes)))
    return arrays["snid"], probs


def class_column(prob_column_name: str, class_name: str) -> str:
    """A categorical model's column for one class: `<prob_column_name>_<TYPE>`."""
    return f"{prob_column_name}_{class_name}"


def score(config: SconeConfig, catalog: HeatmapCatalog, model_dir: str | Path) -> pd.DataFrame:
    """The predictions table (SNID, P(Ia), per-class columns) of `catalog`, nothing written."""
    from scone_assets.model.inference import predict_stream

    catalog = _check_inputs(config, catalog, read_meta(model_dir, config), model_dir)
    model, meta = load_trained(model_dir, config)  # an ensemble: the mean of its members' probabilities
    if meta.ensemble_size > 1:
        log.info("ensemble of %d members: their probabilities are averaged, then calibrated", meta.ensemble_size)
    plan = plan_loading(config, len(catalog), catalog.total_bytes)
    batch = plan.inference_batch
    log.info("predicting %d heatmaps %s, %d at a time", len(catalog),
             "streamed from the shards" if plan.kind == "streaming" else "in memory", batch)
    if plan.kind == "streaming":
        snids, _, probs = predict_stream(model, catalog, None, meta.with_z, batch,
                                         verbose=config.verbose_data_loading)
    else:
        snids, probs = _predict_memory(model, catalog, meta, batch, plan.chunk_size)
    probs = apply_temperature(probs, meta.temperature, meta.categorical)  # as calibrated in training
    prior = None
    if config.class_prior == "data":
        probs, prior = estimate_prior(probs, meta.classes, meta.categorical, meta.output_prior or None)
        log.info("%s", prior.describe())
    table = pd.DataFrame({"SNID": snids, config.prob_column_name: p_ia(probs, meta.classes, meta.categorical)})
    if meta.categorical:
        for i, c in enumerate(meta.classes):
            table[class_column(config.prob_column_name, c)] = np.asarray(probs)[:, i]
    if prior is not None:
        table.attrs[CLASS_PRIOR_ATTR] = prior.to_dict()  # plain JSON, which Parquet can store
    return table


def predict(config: SconeConfig, catalog: HeatmapCatalog, model_dir: str | Path,
            out_csv: str | Path | None = None, *, model_version: str | None = None) -> pd.DataFrame:
    """Score `catalog` and write the predictions CSV and its `.skipped.csv` atomically;
    `model_version` (the platform's versions) becomes a last column, MODEL_VERSION."""
    table = score(config, catalog, model_dir)
    if model_version is not None:
        table[MODEL_VERSION_COLUMN] = model_version
    path = Path(out_csv) if out_csv else config.predictions_file()
    assert_unique_snids(table.SNID, f"predictions {path}")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    skipped = catalog.skipped[["SNID", "status"]].rename(columns={"status": "reason"}) if len(catalog.skipped) \
        else pd.DataFrame(columns=["SNID", "reason"])
    with atomic_path(path.with_suffix(".skipped.csv")) as tmp:
        skipped.to_csv(tmp, index=False)
    prior_file = path.with_suffix(CLASS_PRIOR_SUFFIX)
    if CLASS_PRIOR_ATTR in table.attrs:
        atomic_write_text(prior_file, json.dumps(table.attrs[CLASS_PRIOR_ATTR], indent=1))
    elif prior_file.exists():  # an earlier run's, with class_prior: data: it does not describe these
        prior_file.unlink()
    log.info("predictions for %d light curves in %s (%d skipped)", len(table), path, len(skipped))
    return table
