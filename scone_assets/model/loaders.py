"""Getting heatmaps to the network: all in memory, or streamed from the shards.

The choice follows the rules SCONE documents for its users (see `plan_loading`).
Either way each image is divided by the maximum of its flux channel (1 when
that maximum is not positive), and labels come from the record's `type_name`,
so one set of shards serves binary and categorical models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from scone_assets.config import SconeConfig
from scone_assets.heatmaps.store import HeatmapCatalog, load_catalog, records_of

__all__ = ["HeatmapCatalog", "LoaderPlan", "load_arrays", "load_catalog", "plan_loading", "records"]

log = logging.getLogger(__name__)

MB, GB = 1 << 20, 1 << 30


@dataclass
class LoaderPlan:
    """How heatmaps reach the network. `chunk_size` records are parsed at a time by the
    in-memory loader; inference runs `inference_batch` images at a time. Training keeps
    `batch_size`: its batches are what the optimiser and batch normalisation see, and this
    network's activations are small (about 1 MB per 32 images at 32 x 180), so splitting
    them would change the model without saving memory."""

    kind: str  # "memory", "streaming" or "legacy"
    threshold: int
    micro_batching: bool
    micro_batch_size: int
    chunk_size: int
    inference_batch: int
    notes: list[str] = field(default_factory=list)


def plan_loading(config: SconeConfig, n_heatmaps: int, total_bytes: int) -> LoaderPlan:
    """SCONE's documented rules.

    - `enable_balanced_mode` (default): in memory below `streaming_threshold`
      (75,000), streaming at or above it. The threshold adapts downward: average
      record > 10 MB -> 5,000-50,000; total > 200 GB -> 10,000; > 100 GB -> 20,000;
      > 40 GB -> 30,000.
    - `enable_balanced_mode: false`: in memory, unless `enable_micro_batching` or an
      explicit `memory_optimize: true` asks for minimum memory.
    - `force_streaming`: streaming. `debug_flag: -901`: the legacy in-memory loader.
    - Large data sets (at or above the threshold, forced streaming, or > 40 GB) get
      `enable_micro_batching`, `micro_batch_size` 16 and `chunk_size` 400 unless set.
    """
    notes: list[str] = []
    threshold = config.streaming_threshold
    avg = total_bytes / n_heatmaps if n_heatmaps else 0
    if avg > 10 * MB:
        adapted = int(np.clip(50_000 * (10 * MB) / avg, 5_000, 50_000))
        if adapted < threshold:
            threshold = adapted
            notes.append(f"average record {avg / MB:.1f} MB > 10 MB: streaming threshold {threshold}")
    for limit, value in ((200 * GB, 10_000), (100 * GB, 20_000), (40 * GB, 30_000)):
        if total_bytes > limit:
            if value < threshold:
                threshold = value
                notes.append(f"total {total_bytes / GB:.0f} GB > {limit // GB} GB: streaming threshold {value}")
            break
    explicit = config.model_fields_set
    if config.debug_flag == -901:
        kind = "legacy"
        notes.append("debug_flag -901: legacy in-memory loader")
    elif config.force_streaming:
        kind = "streaming"
        notes.append("force_streaming: streaming")
    elif config.enable_balanced_mode:
        kind = "streaming" if n_heatmaps >= threshold else "memory"
        notes.append(f"{n_heatmaps} heatmaps {'>=' if kind == 'streaming' else '<'} threshold {threshold}: {kind}")
    elif config.enable_micro_batching or ("memory_optimize" in explicit and config.memory_optimize):
        kind = "streaming"
        notes.append("enable_balanced_mode false with a minimum-memory request: streaming")
    else:
        kind = "memory"
        notes.append("enable_balanced_mode false: in memory (fast path)")
    micro, micro_size, chunk = config.enable_micro_batching, config.micro_batch_size, config.chunk_size
    large = n_heatmaps >= threshold or config.force_streaming or total_bytes > 40 * GB
    if large:
        auto = []
        if "enable_micro_batching" not in explicit:
            micro = True
            auto.append("enable_micro_batching=true")
        if "micro_batch_size" not in explicit:
            micro_size = 16
            auto.append("micro_batch_size=16")
        if "chunk_size" not in explicit:
            chunk = 400
            auto.append("chunk_size=400")
        if auto:
            notes.append("large data set: auto-configured " + ", ".join(auto))
    # micro-batching exists to bound memory; the streaming pipeline already holds it flat,
    # and inference 16 at a time measured 2.3x slower (530 against 1,223 heatmaps/s at
    # 10,000), so only a user's explicit request shrinks the inference batch
    asked = "enable_micro_batching" in explicit and config.enable_micro_batching
    if asked:
        inference = micro_size
    else:
        inference = config.balanced_batch_size if kind == "streaming" else config.batch_size
        if micro:
            notes.append(f"micro-batching: inference keeps {inference} per batch, as the loader already bounds "
                         f"memory (set enable_micro_batching: true to run {micro_size} at a time)")
    for n in notes:
        log.info("loading: %s", n)
    return LoaderPlan(kind, threshold, micro, micro_size, chunk, inference, notes)


def records(shards, shape):
    """Old form, kept while callers move to `store.records(catalog)`: every record of
    the shards, none filtered."""
    from scone_assets.heatmaps.store import all_records

    return all_records(list(shards), shape)


def load_arrays(catalog: HeatmapCatalog, snids: set[str] | None = None, batch: int = 512) -> dict:
    """Every (selected) heatmap in NumPy arrays: the in-memory loader. The image array is
    allocated once for the catalog's count and filled `batch` (the plan's `chunk_size`)
    records at a time, so the peak is the data plus one chunk, not twice the data."""
    y, x = catalog.shape
    n_max = len(catalog) if snids is None else int(catalog.index.SNID.astype(str).isin(snids).sum())
    images = np.empty((n_max, y, x, 2), np.float32)
    ids, names, z, z_err = [], [], [], []
    n = 0
    for img, snid, tname, zz, ze in records_of(catalog).batch(batch).as_numpy_iterator():
        keep = np.ones(len(snid), bool) if snids is None else np.array([s.decode() in snids for s in snid])
        k = int(keep.sum())
        if n + k > len(images):  # more records than the index says: grow rather than fail
            images = np.concatenate([images, np.empty((n + k - len(images), y, x, 2), np.float32)])
        images[n:n + k] = img[keep]
        n += k
        ids += [s.decode() for s in snid[keep]]
        names += [t.decode() for t in tname[keep]]
        z.append(zz[keep])
        z_err.append(ze[keep])
    return {
        "image": images[:n],
        "snid": np.array(ids, dtype=object),
        "type_name": np.array(names, dtype=object),
        "z": np.concatenate(z) if z else np.zeros(0, np.float32),
        "z_err": np.concatenate(z_err) if z_err else np.zeros(0, np.float32),
    }
