"""TFRecord shards SCONE users can read, with an index table and a `.summary` beside them.

Records carry SCONE's feature names (`id` int64, `label` int64, `z`, `z_err`
float, `image_raw` bytes) plus `snid` and `type_name` (bytes): real data has
string SNIDs such as `2019lbi`, so `id` is the SNID when it is an integer and
a stable 63-bit hash of it otherwise. `image_raw` is float32 (wavelength, time,
2); readers here also accept SCONE's float64 images.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from scone_assets.atomic import atomic_path

SHARD = "heatmaps.tfrecord"
INDEX = "index.parquet"
SUMMARY = "heatmaps.summary"
PARAMS = "heatmaps.json"


def record_id(snid: object) -> int:
    text = str(snid).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def encode_example(image: np.ndarray, label: int, snid: object, type_name: str, z: float, z_err: float) -> bytes:
    tf = _tf()
    f = tf.train.Feature
    feature = {
        "id": f(int64_list=tf.train.Int64List(value=[record_id(snid)])),
        "label": f(int64_list=tf.train.Int64List(value=[int(label)])),
        "z": f(float_list=tf.train.FloatList(value=[float(z)])),
        "z_err": f(float_list=tf.train.FloatList(value=[float(z_err)])),
        "image_raw": f(bytes_list=tf.train.BytesList(value=[np.ascontiguousarray(image, np.float32).tobytes()])),
        "snid": f(bytes_list=tf.train.BytesList(value=[str(snid).encode()])),
        "type_name": f(bytes_list=tf.train.BytesList(value=[str(type_name).encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shard(path: Path, records: Iterable[bytes]) -> int:
    tf = _tf()
    n = 0
    with atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for rec in records:
            writer.write(rec)
            n += 1
    return n


def decode_image(raw: bytes, shape: tuple[int, int]) -> np.ndarray:
    """float32 (ours) or float64 (SCONE's) image bytes -> float32 (wavelength, time, 2)."""
    n = shape[0] * shape[1] * 2
    if len(raw) == 4 * n:
        arr = np.frombuffer(raw, dtype=np.float32)
    elif len(raw) == 8 * n:
        arr = np.frombuffer(raw, dtype=np.float64).astype(np.float32)
    else:
        raise ValueError(f"image of {len(raw)} bytes does not fit a {shape[0]}x{shape[1]}x2 heatmap")
    return arr.reshape(shape[0], shape[1], 2)


def read_shard(path: Path, shape: tuple[int, int]) -> Iterator[dict]:
    """Every record of a shard as a dict (tests, inspection; training uses tf.data)."""
    tf = _tf()
    for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        ex = tf.train.Example.FromString(raw)
        f = ex.features.feature
        yield {
            "id": f["id"].int64_list.value[0],
            "label": f["label"].int64_list.value[0],
            "z": f["z"].float_list.value[0],
            "z_err": f["z_err"].float_list.value[0],
            "image": decode_image(f["image_raw"].bytes_list.value[0], shape),
            "snid": f["snid"].bytes_list.value[0].decode() if "snid" in f else str(f["id"].int64_list.value[0]),
            "type_name": f["type_name"].bytes_list.value[0].decode() if "type_name" in f else "",
        }


def write_index(path: Path, index: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        index.to_parquet(tmp, index=False)


def summary_text(*, survey: str | None, source: str, backend: str, minutes: float,
                 done_by_type: dict[str, int], skipped: dict[str, int]) -> str:
    n_done = sum(done_by_type.values())
    rate = n_done / minutes if minutes > 0 else 0.0
    lines = [
        "PROGRAM_CLASS:  scone-assets heatmaps",
        f"SURVEY:         {survey}",
        f"HEATMAP_FILE:   {SHARD}",
        f"LCDATA_PATH:    {source}",
        f"GP_BACKEND:     {backend}",
        f"CPU:            {minutes:.2f}            # minutes",
        f"PROCESS_RATE:   {rate:.1f}          # heatmaps per minute",
        "N_LC:",
    ]
    lines += [f"  {t}:  {n:6d}       # TYPE: NLC" for t, n in sorted(done_by_type.items())]
    lines.append("N_SKIPPED:")
    lines += [f"  {reason}:  {n:6d}" for reason, n in sorted(skipped.items())]
    return "\n".join(lines) + "\n"
