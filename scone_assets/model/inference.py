"""Running a trained network over heatmap shards, shared by training (its test set)
and prediction; kept apart so that neither imports the other."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from scone_assets.heatmaps.store import records_of, string_lookup

if TYPE_CHECKING:
    from scone_assets.heatmaps.store import HeatmapCatalog


def predict_stream(model, catalog: HeatmapCatalog, snids: set[str] | None, with_z: bool, batch: int,
                   verbose: bool = False):
    """Batches from the shards through the model; memory stays flat. `verbose` shows
    progress with rate, ETA and resident memory. An ensemble comes as one callable
    (`folder.averaged`)."""
    out_snid, out_type, probs = predict_members([model], catalog, snids, with_z, batch, verbose)
    return out_snid, out_type, probs[0]


def predict_members(models: list, catalog: HeatmapCatalog, snids: set[str] | None, with_z: bool, batch: int,
                    verbose: bool = False):
    """(SNIDs, types, probabilities per member: members x objects x outputs), reading the
    shards once for all members."""
    import psutil
    import tensorflow as tf
    from tqdm.auto import tqdm

    ds = records_of(catalog)  # index rows only: a duplicate left out is never read
    if snids is not None:  # stateless: see string_lookup
        wanted = string_lookup(sorted(snids), np.ones(len(snids)), 0)
        ds = ds.filter(lambda img, snid, *_: wanted(snid) > 0)
    ds = ds.batch(batch).prefetch(tf.data.AUTOTUNE)
    out_snid, out_type = [], []
    out_prob: list[list[np.ndarray]] = [[] for _ in models]
    total = len(snids) if snids is not None else len(catalog)
    bar = tqdm(total=total, unit="heatmap", desc="predict (streaming)", disable=not verbose)
    proc = psutil.Process()
    for img, snid, tname, z, ze in ds:
        inputs = {"image": img, "z": z[:, None], "z_err": ze[:, None]} if with_z else {"image": img}
        for k, model in enumerate(models):
            out_prob[k].append(np.asarray(model(inputs, training=False)))
        out_snid += [s.decode() for s in snid.numpy()]
        out_type += [t.decode() for t in tname.numpy()]
        bar.update(len(out_snid) - bar.n)
        if verbose:
            bar.set_postfix(rss=f"{proc.memory_info().rss / 2**20:.0f}MB", refresh=False)
    bar.close()
    probs = np.stack([np.concatenate(p) if p else np.zeros((0, 1)) for p in out_prob])
    return np.array(out_snid, dtype=object), np.array(out_type, dtype=object), probs
