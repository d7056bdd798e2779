"""Classify heatmaps with a trained model folder: the Pippin-ready predictions CSV.

First column SNID, then P(Ia) under `prob_column_name` (PROB_SCONE), and for
categorical models one PROB_<TYPE> column per class. Light curves without a
heatmap are listed, with the reason, in `<predictions>.skipped.csv`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from scone_assets.atomic import atomic_path
from scone_assets.config import ConfigError, SconeConfig
from scone_assets.model.evaluate import p_ia
from scone_assets.model.loaders import HeatmapCatalog, load_arrays, plan_loading, records
from scone_assets.model.train import META_FILE, MODEL_FILE

log = logging.getLogger(__name__)


def load_trained(model_dir: str | Path):
    """(keras model, meta) from a model folder, with errors that say what is missing."""
    import keras

    import scone_assets.model.network  # noqa: F401 - registers SconeTranspose

    folder = Path(model_dir)
    if not (folder / MODEL_FILE).is_file():
        raise ConfigError(f"trained_model {folder} has no {MODEL_FILE} (is it a scone-assets model folder?)")
    if not (folder / META_FILE).is_file():
        raise ConfigError(f"trained_model {folder} has no {META_FILE}")
    meta = json.loads((folder / META_FILE).read_text())
    return keras.models.load_model(folder / MODEL_FILE), meta


def predict_stream(model, catalog: HeatmapCatalog, snids: set[str] | None, with_z: bool, batch: int,
                   verbose: bool = False):
    """Batches from the shards through the model; memory stays flat. `verbose` shows
    progress with rate, ETA and resident memory."""
    import psutil
    import tensorflow as tf
    from tqdm.auto import tqdm

    ds = records(catalog.shards, catalog.shape)
    if snids is not None:
        keys = tf.constant(sorted(snids))
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            keys, tf.ones_like(keys, dtype=tf.int64)), 0)
        ds = ds.filter(lambda img, snid, *_: table.lookup(snid) > 0)
    ds = ds.batch(batch).prefetch(tf.data.AUTOTUNE)
    out_snid, out_type, out_prob = [], [], []
    total = len(snids) if snids is not None else len(catalog)
    bar = tqdm(total=total, unit="heatmap", desc="predict (streaming)", disable=not verbose)
    proc = psutil.Process()
    for img, snid, tname, z, ze in ds:
        inputs = {"image": img, "z": z[:, None], "z_err": ze[:, None]} if with_z else {"image": img}
        out_prob.append(np.asarray(model(inputs, training=False)))
        out_snid += [s.decode() for s in snid.numpy()]
        out_type += [t.decode() for t in tname.numpy()]
        bar.update(len(out_snid) - bar.n)
        if verbose:
            bar.set_postfix(rss=f"{proc.memory_info().rss / 2**20:.0f}MB", refresh=False)
    bar.close()
    probs = np.concatenate(out_prob) if out_prob else np.zeros((0, 1))
    return np.array(out_snid, dtype=object), np.array(out_type, dtype=object), probs


def predict(config: SconeConfig, catalog: HeatmapCatalog, model_dir: str | Path,
            out_csv: str | Path | None = None) -> pd.DataFrame:
    model, meta = load_trained(model_dir)
    if tuple(meta["shape"]) != tuple(catalog.shape):
        raise ConfigError(f"heatmaps are {catalog.shape[0]}x{catalog.shape[1]} but the model in {model_dir} "
                          f"was trained on {meta['shape'][0]}x{meta['shape'][1]}: remake them with "
                          "num_wavelength_bins/num_mjd_bins matching the model")
    plan = plan_loading(config, len(catalog), catalog.total_bytes)
    batch = plan.inference_batch
    log.info("predicting %d heatmaps %s, %d at a time", len(catalog),
             "streamed from the shards" if plan.kind == "streaming" else "in memory", batch)
    if plan.kind == "streaming":
        snids, _, probs = predict_stream(model, catalog, None, meta["with_z"], batch,
                                         verbose=config.verbose_data_loading)
    else:
        arrays = load_arrays(catalog, batch=plan.chunk_size)
        # batch by batch: model.predict on the whole array would copy it into a dataset first
        chunks = []
        for i in range(0, len(arrays["image"]), batch):
            part = slice(i, i + batch)
            inputs = {"image": arrays["image"][part]} if not meta["with_z"] else {
                "image": arrays["image"][part], "z": arrays["z"][part, None], "z_err": arrays["z_err"][part, None]}
            chunks.append(np.asarray(model(inputs, training=False)))
        probs = np.concatenate(chunks) if chunks else np.zeros((0, len(meta["classes"])))
        snids = arrays["snid"]
    classes = meta["classes"]
    table = pd.DataFrame({"SNID": snids, config.prob_column_name: p_ia(probs, classes, meta["categorical"])})
    if meta["categorical"]:
        for i, c in enumerate(classes):
            table[f"PROB_{c}"] = np.asarray(probs)[:, i]
    path = Path(out_csv or config.output_predict_file or Path(config.effective_output_path()) / "predictions.csv")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    skipped = catalog.skipped[["SNID", "status"]].rename(columns={"status": "reason"}) if len(catalog.skipped) \
        else pd.DataFrame(columns=["SNID", "reason"])
    with atomic_path(path.with_suffix(".skipped.csv")) as tmp:
        skipped.to_csv(tmp, index=False)
    log.info("predictions for %d light curves in %s (%d skipped)", len(table), path, len(skipped))
    return table
