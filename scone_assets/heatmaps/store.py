"""The heatmap store: the one module that knows how heatmaps sit on disk.

Layout::

    <heatmaps_path>/store.json            the grid every unit of this store has
    <heatmaps_path>/.scone.lock           exclusive for `scone heatmaps`, shared by Dagster runs
    <heatmaps_path>/<set>/<unit>/         set: full, early_<N>d, early_mixed or augmented
        heatmaps.tfrecord                 TFRecord records (SCONE's features plus snid, type_name)
        index.parquet                     one row per light curve: status, record position, source
        heatmaps.summary                  SCONE-style summary (types, skips, rate)
        heatmaps.json                     the unit record: fingerprint, band map, counts

A unit is written whole into a hidden sibling folder and renamed into place, so a
unit folder is always complete. Its record carries the fingerprint of what made it
(input files by size, mtime and SHA-256; the labels file; the heatmap settings; the
format version): a unit is reused only when the fingerprint matches, else remade
and the reason said. The grid is fixed per store by `store.json`: another grid is
refused, since training cannot mix image shapes.

Records carry SCONE's feature names (`id` int64, `label` int64, `z`, `z_err`
float, `image_raw` bytes) plus `snid` and `type_name` (bytes): real data has
string SNIDs such as `2019lbi`, so `id` is the SNID when it is an integer and
a stable 63-bit hash of it otherwise. `image_raw` is float32 (wavelength, time,
2); readers here also accept SCONE's float64 images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import fsspec
import numpy as np
import pandas as pd

from scone_assets.atomic import atomic_path, atomic_write_text
from scone_assets.config import ConfigError
from scone_assets.heatmaps import HeatmapError, tfrecord

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
MANIFEST = "store.json"
SHARD = "heatmaps.tfrecord"
INDEX = "index.parquet"
SUMMARY = "heatmaps.summary"
UNIT_RECORD = "heatmaps.json"
EXAMPLE_PNG = "example.png"
PARTIAL = ".partial-"  # a unit being written: `.<unit>.partial-<pid>`
RETIRED = ".retired-"  # the unit it replaces, removed once the new one is in place
NO_Z = -9.0  # z and z_err of a record without a redshift (SCONE's value), written or missing

UnitState = Literal["missing", "current", "stale"]


# ------------------------------------------------------------------ layout and grid

@dataclass(frozen=True)
class Grid:
    num_wavelength_bins: int
    num_mjd_bins: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.num_wavelength_bins, self.num_mjd_bins)

    def __str__(self) -> str:
        return f"{self.num_wavelength_bins}x{self.num_mjd_bins}"


def unit_folder(root: str | Path, heatmap_set: str, unit_key: str) -> Path:
    return Path(root) / heatmap_set / unit_key


def store_lock_path(root: str | Path) -> Path:
    from scone_assets.locking import LOCK_FILE

    return Path(root) / LOCK_FILE


def unit_lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


def read_manifest(root: str | Path) -> Grid | None:
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Grid(int(data["num_wavelength_bins"]), int(data["num_mjd_bins"]))


def claim_grid(root: str | Path, grid: Grid) -> None:
    """Fix the store's grid on first use; refuse another one later."""
    root = Path(root)
    have = read_manifest(root)
    if have is None:
        root.mkdir(parents=True, exist_ok=True)
        legacy = sorted(_legacy_grids(root) - {grid.shape})
        if legacy:
            raise HeatmapError(f"{root} holds heatmaps of another grid ({legacy[0][0]}x{legacy[0][1]}) "
                               f"made before {MANIFEST} existed; this config asks for {grid}. Use "
                               "another heatmaps_path, or --force to remake them all on the new grid")
        try:  # O_EXCL: two runs starting together agree on whichever wrote first
            fd = os.open(root / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return claim_grid(root, grid)
        with os.fdopen(fd, "w") as fh:
            json.dump({"format": FORMAT_VERSION, **asdict(grid)}, fh)
        return
    if have != grid:
        raise HeatmapError(f"{root} holds {have} heatmaps ({MANIFEST}); this config asks for {grid} "
                           "(num_wavelength_bins x num_mjd_bins). One store holds one grid: use another heatmaps_path, or --force to remove "
                           "its heatmaps and start again on the new grid")


def _legacy_grids(root: Path) -> set[tuple[int, int]]:
    """Grids of units written before the manifest (format 1 kept them per unit)."""
    grids = set()
    for rec in root.glob(f"*/*/{UNIT_RECORD}"):
        try:
            data = json.loads(rec.read_text())
            grids.add((int(data["num_wavelength_bins"]), int(data["num_mjd_bins"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return grids


SET_NAME = re.compile(r"full|early_mixed|early_[0-9.]+d|augmented")


def reset_grid(root: str | Path, grid: Grid) -> None:
    """--force on a store of another grid: every heatmap set goes (nothing else: a model
    folder or predictions kept in the same folder stay), then the new grid is claimed."""
    root = Path(root)
    for child in root.iterdir() if root.is_dir() else []:
        if child.is_dir() and SET_NAME.fullmatch(child.name):
            shutil.rmtree(child)
    (root / MANIFEST).unlink(missing_ok=True)
    claim_grid(root, grid)


def remove_stale(folder_parent: Path, unit_key: str | None = None) -> list[Path]:
    """Half-written units and temporaries a killed run left behind (the caller holds the
    lock that rules out a live writer)."""
    gone = []
    if not folder_parent.is_dir():
        return gone
    prefix = f".{unit_key}." if unit_key else "."
    for p in folder_parent.iterdir():
        name = p.name
        if not name.startswith(prefix):
            continue
        if PARTIAL in name or RETIRED in name:
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
    for p in folder_parent.glob(f"{unit_key or '*'}/.*.tmp"):
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


# ------------------------------------------------------------------ fingerprints

def file_fingerprint(path: str) -> dict:
    """Size, mtime and SHA-256 of one input file (local or any fsspec URL)."""
    fs, p = fsspec.core.url_to_fs(path)
    info = fs.info(p)
    digest = hashlib.sha256()
    with fs.open(p, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    mtime = info.get("mtime")
    if mtime is None and "://" not in path:
        mtime = os.stat(path).st_mtime
    return {"path": str(path), "size": int(info.get("size") or 0),
            "mtime": float(mtime) if mtime is not None else None, "sha256": digest.hexdigest()}


def input_fingerprints(files: list[str], readme: str | None) -> tuple[list[dict], dict | None]:
    """The fingerprints of a unit's input files and README, taken once per unit."""
    return [file_fingerprint(f) for f in files], file_fingerprint(readme) if readme else None


def unit_fingerprint(inputs: tuple[list[dict], dict | None], labels: dict | None, settings: dict) -> dict:
    """Everything a unit's heatmaps depend on: `inputs` from `input_fingerprints`, the
    labels file's fingerprint, the settings."""
    files, readme = inputs
    return {"format": FORMAT_VERSION, "files": files, "readme": readme, "labels": labels,
            "settings": settings}


def _why_stale(old: dict, new: dict) -> list[str]:
    if old.get("format") != new["format"]:
        return [f"made by format {old.get('format', 1)}, now {new['format']}"]
    reasons = []
    old_files = {f["path"]: f for f in old.get("files", [])}
    for f in new["files"]:
        was = old_files.pop(f["path"], None)
        if was is None:
            reasons.append(f"new input file {f['path']}")
        elif was["sha256"] != f["sha256"]:
            reasons.append(f"input file {Path(f['path']).name} changed")
    reasons += [f"input file {Path(p).name} no longer in the unit" for p in old_files]
    if (old.get("readme") or {}).get("sha256") != (new.get("readme") or {}).get("sha256"):
        reasons.append("simulation README changed")
    if (old.get("labels") or {}).get("sha256") != (new.get("labels") or {}).get("sha256"):
        reasons.append("labels_path changed" if new.get("labels") or old.get("labels")
                       else "labels changed")
    for key in sorted(set(old.get("settings", {})) | set(new["settings"])):
        a, b = old.get("settings", {}).get(key), new["settings"].get(key)
        if a != b:
            reasons.append(f"{key} {a!r} -> {b!r}")
    return reasons


# ------------------------------------------------------------------ units

@dataclass
class UnitRecord:
    """`heatmaps.json`: what made a unit and what it holds."""

    fingerprint: dict
    grid: tuple[int, int]
    band_to_wave: dict[str, float]
    written: int
    skipped: dict[str, int] = field(default_factory=dict)
    dropped_bands: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    bad_files: list[str] = field(default_factory=list)
    seconds: float = 0.0
    made_at: float = 0.0
    format: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=float)

    @classmethod
    def from_json(cls, text: str) -> UnitRecord:
        data = json.loads(text)
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unit record format {data.get('format', 1)}, expected {FORMAT_VERSION}")
        data["grid"] = tuple(data["grid"])
        return cls(**data)


def read_unit_record(folder: Path) -> UnitRecord | None:
    """The record of a finished unit of this format, else None."""
    if not (folder / INDEX).is_file() or not (folder / UNIT_RECORD).is_file():
        return None
    try:
        return UnitRecord.from_json((folder / UNIT_RECORD).read_text())
    except (ValueError, KeyError, TypeError):
        return None


def unit_state(folder: Path, fingerprint: dict) -> tuple[UnitState, list[str]]:
    """("current", []), ("missing", []) or ("stale", reasons)."""
    if not folder.exists():
        return "missing", []
    if not (folder / UNIT_RECORD).is_file() or not (folder / INDEX).is_file():
        return "stale", ["unit is incomplete"]
    try:
        old = json.loads((folder / UNIT_RECORD).read_text())
    except ValueError:
        return "stale", ["unit record unreadable"]
    reasons = _why_stale(old.get("fingerprint", old), fingerprint)
    return ("stale", reasons) if reasons else ("current", [])


def write_unit(folder: Path, records: Iterable[bytes],
               finish: Callable[[], tuple[pd.DataFrame, str, UnitRecord]]) -> int:
    """Write a whole unit beside its final place and swap it in; returns records written.
    `finish`, called once the records are written, gives the index, summary and record.
    The old unit (if any) stays whole until the new one is complete."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.parent / f".{folder.name}{PARTIAL}{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    try:
        n = write_shard(partial / SHARD, records)
        index, summary, record = finish()
        atomic_write_text(partial / SUMMARY, summary)
        atomic_write_text(partial / UNIT_RECORD, record.to_json())
        with atomic_path(partial / INDEX) as tmp:
            index.to_parquet(tmp, index=False)
        retired = folder.parent / f".{folder.name}{RETIRED}{os.getpid()}"
        if folder.exists():
            os.replace(folder, retired)
        os.replace(partial, folder)
        shutil.rmtree(retired, ignore_errors=True)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return n


def finished_units(root: str | Path, heatmap_set: str = "full") -> list[Path]:
    """Unit folders of one set that are complete and of this format."""
    base = Path(root) / heatmap_set
    return sorted(p for p in base.glob("*") if p.is_dir() and not p.name.startswith(".")
                  and read_unit_record(p) is not None)


def outdated_units(root: str | Path, heatmap_set: str = "full") -> list[Path]:
    base = Path(root) / heatmap_set
    return sorted(p for p in base.glob("*") if p.is_dir() and not p.name.startswith(".")
                  and (p / INDEX).is_file() and read_unit_record(p) is None)


# ------------------------------------------------------------------ catalogs

@dataclass
class HeatmapCatalog:
    """Every heatmap of some finished units, from their indexes. Only the records of
    `index` are read from the shards (a record dropped from it is never loaded)."""

    index: pd.DataFrame  # status == ok rows, with `shard` (path) and `record` (position)
    skipped: pd.DataFrame  # every other row: SNID, status, shard
    shape: tuple[int, int]
    total_bytes: int
    band_to_wave: dict[str, float] = field(default_factory=dict)
    complete: bool = True  # every record of every shard is in `index`

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shards(self) -> list[str]:
        return sorted(self.index["shard"].unique()) if len(self.index) else []


def load_catalog(folders: list[Path]) -> HeatmapCatalog:
    ok, bad, shapes, total, bands = [], [], {}, 0, {}
    for folder in folders:
        rec = read_unit_record(folder)
        if rec is None:
            raise HeatmapError(f"{folder} is not a finished heatmap unit of this version "
                               "(run `scone heatmaps` to remake it)")
        shapes.setdefault(tuple(rec.grid), folder)
        bands.update(rec.band_to_wave)
        idx = pd.read_parquet(folder / INDEX)
        idx["SNID"] = idx["SNID"].astype(str)
        idx["shard"] = str(folder / SHARD)
        idx["unit"] = folder.name
        ok.append(idx[idx.status == "ok"])
        bad.append(idx[idx.status != "ok"])
        total += (folder / SHARD).stat().st_size
    if len(shapes) > 1:
        raise HeatmapError("heatmaps of different grids cannot be mixed: " + "; ".join(
            f"{a}x{b} in {f}" for (a, b), f in shapes.items()))
    if not shapes:
        raise HeatmapError("no finished heatmap units found (run `scone heatmaps` first)")
    cat = pd.concat(ok, ignore_index=True)
    skipped = pd.concat(bad, ignore_index=True)
    return HeatmapCatalog(cat, skipped, next(iter(shapes)), total, bands)


def load_catalogs(root: str | Path | None, heatmap_sets: list[str]) -> dict[str, HeatmapCatalog]:
    """One catalog per heatmap set of a store, with errors that say what to run."""
    if not root:
        raise ConfigError("heatmaps_path is required (where `scone heatmaps` wrote the heatmaps)")
    out = {}
    for name in heatmap_sets:
        folders = finished_units(root, name)
        old = outdated_units(root, name)
        if old:
            log.warning("%d unit(s) under %s/%s were made by an older version and are left out "
                        "(run `scone heatmaps` to remake them): %s", len(old), root, name,
                        ", ".join(p.name for p in old[:5]))
        if not folders:
            raise ConfigError(f"no finished heatmaps under {Path(root) / name}: run `scone heatmaps` first")
        out[name] = load_catalog(folders)
    return out


def merge_catalogs(catalogs: list[HeatmapCatalog]) -> HeatmapCatalog:
    shapes = {c.shape for c in catalogs}
    if len(shapes) != 1:
        raise HeatmapError(f"heatmap sets of different grids cannot be used together: {sorted(shapes)}")
    bands: dict[str, float] = {}
    for c in catalogs:
        bands.update(c.band_to_wave)
    return HeatmapCatalog(pd.concat([c.index for c in catalogs], ignore_index=True),
                          pd.concat([c.skipped for c in catalogs], ignore_index=True),
                          shapes.pop(), sum(c.total_bytes for c in catalogs), bands,
                          all(c.complete for c in catalogs))


def duplicate_snids(catalog: HeatmapCatalog) -> pd.DataFrame:
    """SNIDs with more than one heatmap in one catalog: SNID, n, sources (files)."""
    idx = catalog.index
    if not len(idx):
        return pd.DataFrame(columns=["SNID", "n", "sources"])
    dup = idx[idx.SNID.duplicated(keep=False)]
    src = dup["SOURCE_FILE"] if "SOURCE_FILE" in dup else dup["unit"]
    grouped = dup.assign(src=src.astype(str)).groupby("SNID", sort=True)["src"]
    return pd.DataFrame({"SNID": grouped.size().index, "n": grouped.size().to_numpy(),
                         "sources": [list(v) for v in grouped.agg(list)]})


def describe_duplicates(dups: pd.DataFrame, limit: int = 5) -> str:
    lines = [f"SNID {r.SNID} in {' and '.join(r.sources)}" for r in dups.head(limit).itertuples()]
    more = f"; and {len(dups) - limit} more" if len(dups) > limit else ""
    return "; ".join(lines) + more


def resolve_duplicates(catalog: HeatmapCatalog, policy: str, what: str) -> HeatmapCatalog:
    """Apply `duplicate_snids` to one catalog: refuse ("error"), keep the first copy in
    input order ("first") or none ("drop"). Every choice is logged with the SNIDs."""
    dups = duplicate_snids(catalog)
    if not len(dups):
        return catalog
    text = describe_duplicates(dups)
    if policy == "error":
        raise ConfigError(f"{what}: {len(dups)} SNID(s) appear more than once ({text}). One object "
                          "must be one row: remove the duplicate files, or set duplicate_snids: "
                          "first (keep the first copy) or drop (leave them all out)")
    idx = catalog.index
    keep = ~idx.SNID.duplicated(keep="first") if policy == "first" else ~idx.SNID.duplicated(keep=False)
    log.warning("%s: %d duplicated SNID(s), duplicate_snids: %s keeps %s (%s)", what, len(dups), policy,
                "the first copy" if policy == "first" else "none of them", text)
    return HeatmapCatalog(idx[keep].reset_index(drop=True), catalog.skipped, catalog.shape,
                          catalog.total_bytes, catalog.band_to_wave, complete=False)


# ------------------------------------------------------------------ records

def record_id(snid: object) -> int:
    text = str(snid).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def encode_example(image: np.ndarray, label: int, snid: object, type_name: str, z: float, z_err: float) -> bytes:
    return tfrecord.encode_example({
        "id": record_id(snid),
        "label": int(label),
        "z": float(z),
        "z_err": float(z_err),
        "image_raw": np.ascontiguousarray(image, np.float32).tobytes(),
        "snid": str(snid).encode(),
        "type_name": str(type_name).encode(),
    })


def write_shard(path: Path, records: Iterable[bytes]) -> int:
    """Write records through a temporary file; a failure leaves nothing under `path`.
    A write error (a full disk) names the shard, which Python's own error does not."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            return tfrecord.write_records(f, records)
    except OSError as exc:
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


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
    """Every record of a shard as a dict (tests, inspection, pictures; training uses
    tf.data). Needs no TensorFlow, so neither do the processes that make heatmaps."""
    for raw in tfrecord.read_records(path):
        f = tfrecord.decode_example(raw)
        missing = [k for k in ("id", "label", "image_raw") if not f.get(k)]
        if missing:
            raise tfrecord.RecordError(f"{path}: a record without {', '.join(missing)}")
        yield {
            "id": f["id"][0],
            "label": f["label"][0],
            "z": f["z"][0] if f.get("z") else NO_Z,  # as parse_fn reads it
            "z_err": f["z_err"][0] if f.get("z_err") else NO_Z,
            "image": decode_image(f["image_raw"][0], shape),
            "snid": f["snid"][0].decode() if f.get("snid") else str(f["id"][0]),
            "type_name": f["type_name"][0].decode() if f.get("type_name") else "",
        }


def summary_text(*, survey: str | None, source: str, backend: str, minutes: float,
                 done_by_type: dict[str, int], skipped: dict[str, int],
                 dropped_bands: dict[str, int] | None = None, bad_files: list[str] | None = None) -> str:
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
    if dropped_bands:
        lines.append("N_OBS_DROPPED:   # observations in bands nothing places in wavelength")
        lines += [f"  {band}:  {n:6d}" for band, n in sorted(dropped_bands.items())]
    if bad_files:
        lines.append("BAD_FILES:")
        lines += [f"  {text}" for text in bad_files]
    return "\n".join(lines) + "\n"


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def parse_fn(shape: tuple[int, int]):
    """A tf function: serialized record -> (image normalised, snid, type_name, z, z_err).
    Each image is divided by the maximum of its flux channel (1 when that is not
    positive). Accepts float32 (ours) and float64 (SCONE's) `image_raw`."""
    tf = _tf()
    features = {
        "image_raw": tf.io.FixedLenFeature([], tf.string),
        "z": tf.io.FixedLenFeature([], tf.float32, default_value=NO_Z),
        "z_err": tf.io.FixedLenFeature([], tf.float32, default_value=NO_Z),
        "id": tf.io.FixedLenFeature([], tf.int64),
        "snid": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "type_name": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    n = shape[0] * shape[1] * 2

    def parse(raw):
        ex = tf.io.parse_single_example(raw, features)
        raw_img = ex["image_raw"]
        img = tf.cond(
            tf.equal(tf.strings.length(raw_img), 4 * n),
            lambda: tf.io.decode_raw(raw_img, tf.float32),
            lambda: tf.cast(tf.io.decode_raw(raw_img, tf.float64), tf.float32),
        )
        img = tf.reshape(img, (shape[0], shape[1], 2))
        peak = tf.reduce_max(img[..., 0])
        img = img / tf.where(peak > 0, peak, tf.ones_like(peak))
        snid = tf.where(tf.strings.length(ex["snid"]) > 0, ex["snid"], tf.strings.as_string(ex["id"]))
        return img, snid, ex["type_name"], ex["z"], ex["z_err"]

    return parse


def all_records(shards: list[str], shape: tuple[int, int]):
    """Every record of `shards`, parsed, shards read in parallel."""
    tf = _tf()
    ds = tf.data.TFRecordDataset(shards, num_parallel_reads=tf.data.AUTOTUNE)
    return ds.map(parse_fn(shape), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def string_lookup(keys: list[str], values, default: int) -> Callable:
    """`lookup(strings)` -> int64 values of `keys` (`default` for others), for tf.data functions.
    Stateless (sorted 64-bit fingerprints searched, the key itself compared), unlike a tf.lookup
    table, whose lookup is a stateful op: under enable_op_determinism, tf.data's make_deterministic
    rewrite then turns every parallel map of the pipeline into a plain map and, in TF 2.18-2.21,
    leaves ParallelMapDatasetV2's `use_unbounded_threadpool` on it, which TF logs as an error."""
    tf = _tf()
    keys = [str(k) for k in keys]
    values = np.asarray(values, np.int64)
    top = 2**63 - 1
    hashes = tf.strings.to_hash_bucket_fast(tf.constant(keys, tf.string), top).numpy() if keys \
        else np.zeros(0, np.int64)
    if len(np.unique(hashes)) < len(hashes):  # two keys share a fingerprint: exact, if stateful
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, tf.string), tf.constant(values)), default)
        return table.lookup
    order = np.argsort(hashes)
    sorted_h = tf.constant(hashes[order])
    sorted_k = tf.constant([keys[i] for i in order], tf.string)
    sorted_v = tf.constant(values[order])

    def lookup(s):
        if not keys:
            return tf.fill(tf.shape(s), tf.constant(default, tf.int64))
        h = tf.strings.to_hash_bucket_fast(s, top)
        i = tf.reshape(tf.minimum(tf.searchsorted(sorted_h, tf.reshape(h, [-1])), len(keys) - 1), tf.shape(h))
        hit = (tf.gather(sorted_h, i) == h) & (tf.gather(sorted_k, i) == s)
        return tf.where(hit, tf.gather(sorted_v, i), tf.constant(default, tf.int64))

    return lookup


def records_of(catalog: HeatmapCatalog):
    """A tf.data.Dataset of the catalog's records, parsed: (image, snid, type_name, z,
    z_err). Records not in `catalog.index` (a duplicate left out) are never yielded."""
    if catalog.complete:
        return all_records(catalog.shards, catalog.shape)
    tf = _tf()
    idx = catalog.index
    keys = (idx["shard"] + "#" + idx["record"].astype(np.int64).astype(str)).tolist()
    wanted = string_lookup(keys, np.ones(len(keys)), 0)

    def one_shard(path):
        return tf.data.TFRecordDataset(path).enumerate().map(
            lambda i, raw: (tf.strings.join([path, "#", tf.strings.as_string(i)]), raw))

    ds = tf.data.Dataset.from_tensor_slices(tf.constant(catalog.shards, tf.string))
    ds = ds.interleave(one_shard, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda key, raw: wanted(key) > 0).map(lambda key, raw: raw)
    return ds.map(parse_fn(catalog.shape), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
