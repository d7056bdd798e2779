"""Train SCONE's classifier on heatmap shards and save everything needed to use it.

The split is made on SNIDs before any data is loaded: stratified by label,
seeded, and disjoint (SCONE's shuffle-then-take/skip on a re-shuffling
tf.data pipeline can put one object in two sets). `class_balanced`
undersamples every class to the rarest (or `max_per_type`); otherwise all data
are kept and classes are weighted by inverse frequency.

Before the split, SCONE's training-set keys choose the objects (`select_training_set`,
seeded with `seed`; what they did is recorded as `training_set` in model_meta.json and
metrics.json): `Ia_fraction` f draws SN Ia or the non-Ia (whichever is over f's share)
down at random until SN Ia are f of the set; `Ia_fraction: categorical` draws every type
down to the rarest. For categorical sets (that, or `categorical: true`),
`categorical_min_per_type` first drops types with fewer objects and
`categorical_max_per_type` draws larger ones down to it. A set chosen by Ia_fraction
is trained unweighted: weighting by inverse frequency would undo the chosen mix.
All of these, the labels, the split and the test figures see the classes `count_as_ia`
names (say SNIa-91bg) as SN Ia; the heatmaps keep their own names.

Beside history.json, `training_history.csv` (one row per epoch) is written into the
folder and, once the folder is in place, beside it (`<output_path>/training_history.csv`
for the default `<output_path>/trained_model`), with SCONE's filter_mean_wavelength.dat.

`ensemble_size` > 1 trains members with seeds seed, seed+1, ... on the one split (only
the initial weights, dropout and shuffling differ); the first member is exactly the
model a one-member run makes. The ensemble predicts the mean of the members'
probabilities, and calibration fits one temperature to that mean on the validation
objects: that mean is what is reported and predicted, and averaging already softens
each member's confidence, so temperatures fitted per member would be fitted to the
wrong quantity (and a one-member ensemble is calibrated exactly as before).

The heatmap set `augmented` (`augment_copies`, heatmaps/augment.py), when among the
catalogs, only adds training examples: its copies of training-split objects join the
training data, those of validation and test objects are never read (the split is by SNID
and every copy keeps its object's SNID). Early stopping, the learning-rate plateau and
calibration watch the unaugmented validation set, test metrics come from the other sets
as before, and `augmentation` in metrics.json and model_meta.json says how many copies
were used.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from scone_assets.atomic import atomic_write_text
from scone_assets.config import ConfigError, SconeConfig
from scone_assets.heatmaps.augment import AUGMENTED, AugmentSettings
from scone_assets.heatmaps.store import HeatmapCatalog, merge_catalogs, records_of, string_lookup
from scone_assets.model.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)
from scone_assets.model.checks import check_redshift, unique_objects
from scone_assets.model.folder import (
    CONFIG_FILE,
    FILTER_WAVE_FILE,
    META_FILE,
    METRICS_FILE,
    SPLIT_FILE,
    TRAINING_HISTORY_FILE,
    ModelMeta,
    averaged,
    check_replaceable,
    filter_wavelengths_text,
    member_history_file,
    member_model_file,
    training_history_text,
    writing,
)
from scone_assets.model.loaders import load_arrays, plan_loading
from scone_assets.snana.types import IA, merged_names

__all__ = ["EpochProgress", "cosine_learning_rate", "default_model_dir", "merge_catalogs", "select_training_set",
           "train"]  # merge_catalogs: the store's, for old callers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochProgress:
    """One finished epoch: what `train`'s `on_epoch` receives, for a caller's log (the
    Dagster run log) where Keras's console bar is not seen."""

    epoch: int  # 1-based
    epochs: int  # asked for (early stopping may end sooner)
    loss: float
    accuracy: float
    val_loss: float | None  # None without validation objects
    val_accuracy: float | None
    seconds: float
    member: int = 1  # ensemble member, 1-based
    members: int = 1

    def text(self) -> str:
        values = {"loss": self.loss, "accuracy": self.accuracy, "val_loss": self.val_loss,
                  "val_accuracy": self.val_accuracy}
        shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items() if v is not None)
        head = f"member {self.member}/{self.members} " if self.members > 1 else ""
        return f"{head}epoch {self.epoch}/{self.epochs}: {shown}, {self.seconds:.1f} s"

    __str__ = text


OnEpoch = Callable[[EpochProgress], None]


@dataclass
class Labels:
    classes: list[str]  # index -> class name; binary: ["nonIa", "SNIa"]
    categorical: bool
    as_ia: tuple[str, ...] = ()  # heatmap classes learnt as SN Ia (the config's count_as_ia)

    def names(self, type_names) -> np.ndarray:
        """The heatmaps' class names as this model learns them."""
        return merged_names(type_names, self.as_ia)

    def is_ia(self, type_names) -> np.ndarray:
        return self.names(type_names) == IA

    def encode(self, type_names) -> np.ndarray:
        names = self.names(type_names)
        if not self.categorical:
            return (names == IA).astype(np.int64)
        lookup = {c: i for i, c in enumerate(self.classes)}
        return np.array([lookup[n] for n in names], dtype=np.int64)


def make_labels(type_names, categorical: bool, as_ia=()) -> Labels:
    as_ia = tuple(as_ia)
    if not categorical:
        return Labels(["nonIa", IA], False, as_ia)
    classes = sorted(set(merged_names(type_names, as_ia)))
    if len(classes) < 2:
        raise ConfigError(f"categorical: true needs at least two classes in the heatmaps (found {classes})")
    return Labels(classes, True, as_ia)


def _counts(names: np.ndarray, keep: np.ndarray) -> dict[str, int]:
    kinds, n = np.unique(names[keep], return_counts=True)
    return {str(k): int(c) for k, c in zip(kinds, n, strict=True)}


def _draw_down(keep: np.ndarray, members: np.ndarray, n: int, rng: np.random.Generator) -> None:
    """Keep `n` of the objects flagged in `members` (and kept), chosen at random."""
    idx = np.flatnonzero(keep & members)
    if len(idx) > n:
        keep[rng.permutation(idx)[n:]] = False


def _listing(counts: dict[str, int]) -> str:
    return ", ".join(f"{t} {n}" for t, n in sorted(counts.items())) or "none"


def select_training_set(type_names, config: SconeConfig) -> tuple[np.ndarray, dict]:
    """(which objects to keep, what was done) under SCONE's `Ia_fraction`,
    `categorical_min_per_type` and `categorical_max_per_type` (legacy/data_cuts.py's
    meaning), drawn at random with `config.seed`, on the classes as `count_as_ia` merges
    them. The record is empty when none applies."""
    names = merged_names(type_names, config.count_as_ia).astype(str)
    keep = np.ones(len(names), dtype=bool)
    frac = config.Ia_fraction
    per_type = config.categorical or frac == "categorical"
    lo, hi = config.categorical_min_per_type, config.categorical_max_per_type
    if not per_type and (lo or hi):
        log.info("categorical_min_per_type / categorical_max_per_type apply to categorical training sets "
                 "(categorical: true or Ia_fraction: categorical); this binary one ignores them")
    if frac is None and not (per_type and (lo or hi)):
        return keep, {}
    rng = np.random.default_rng(config.seed)
    before = _counts(names, keep)
    record: dict = {"before": before}
    if per_type and lo:
        few = {t: n for t, n in before.items() if n < lo}
        record["categorical_min_per_type"] = lo
        record["dropped_types"] = few
        if few:
            log.info("categorical_min_per_type %d: dropping %s (too few objects)", lo, _listing(few))
            keep &= ~np.isin(names, list(few))
        left = _counts(names, keep)
        if len(left) < 2:
            raise ConfigError(f"categorical_min_per_type {lo} leaves {len(left)} class(es) ({_listing(left)}) of "
                              f"the training heatmaps' {_listing(before)}: at least two are needed")
    if per_type and hi:
        record["categorical_max_per_type"] = hi
        for t, n in _counts(names, keep).items():
            if n > hi:
                _draw_down(keep, names == t, hi, rng)
    if frac == "categorical":
        left = _counts(names, keep)
        if len(left) < 2:
            raise ConfigError(f"Ia_fraction: categorical balances the types, but the training heatmaps hold "
                              f"only {_listing(left)}")
        floor = min(left.values())
        for t in left:
            _draw_down(keep, names == t, floor, rng)
        record["Ia_fraction"] = "categorical"
    elif frac is not None:
        is_ia = names == IA
        n_ia, n_non = int((keep & is_ia).sum()), int((keep & ~is_ia).sum())
        if n_ia == 0 or n_non == 0:
            raise ConfigError(f"Ia_fraction {frac:g} needs SN Ia ({IA}) and other types in the training heatmaps; "
                              f"they hold {_listing(_counts(names, keep))}")
        # the over-represented side is drawn down: SN Ia to f/(1-f) per non-Ia, or the reverse
        fewer_ia = n_ia / (n_ia + n_non) > frac
        if fewer_ia:
            want = int(math.floor(frac / (1 - frac) * n_non + 1e-9))
        else:
            want = int(math.floor((1 - frac) / frac * n_ia + 1e-9))
        if want == 0:
            raise ConfigError(f"Ia_fraction {frac:g} with {n_ia} SN Ia and {n_non} others leaves no "
                              f"{'SN Ia' if fewer_ia else 'non-Ia'} to train on")
        _draw_down(keep, is_ia if fewer_ia else ~is_ia, want, rng)
        record["Ia_fraction"] = float(frac)
        n_ia = int((keep & is_ia).sum())
        record["Ia_share"] = n_ia / int(keep.sum())
    if frac is not None:
        record["class_weights"] = False
        if config.class_balanced:
            log.warning("class_balanced: true draws every class down to the rarest after Ia_fraction %s chose "
                        "the set, so the split is balanced, not Ia_fraction's mix", frac)
    record["after"] = _counts(names, keep)
    record["seed"] = config.seed
    log.info("training set chosen by %s: %s -> %s",
             ", ".join(k for k in ("Ia_fraction", "categorical_min_per_type", "categorical_max_per_type")
                       if k in record), _listing(before), _listing(record["after"]))
    return keep, record


def _check_count_as_ia(type_names, config: SconeConfig) -> None:
    """Say what count_as_ia did, and warn when a class it names is not in the heatmaps."""
    if not config.count_as_ia:
        return
    held = Counter(np.asarray(type_names, dtype=object).astype(str))
    found = {t: held[t] for t in config.count_as_ia if held[t]}
    missing = [t for t in config.count_as_ia if not held[t]]
    if found:
        log.info("count_as_ia: learning %s as %s", _listing(found), IA)
    if missing:
        log.warning("count_as_ia names %s, which the training heatmaps do not hold (they hold %s)",
                    ", ".join(missing), _listing(dict(held)))


def split_snids(snids: np.ndarray, y: np.ndarray, config: SconeConfig) -> pd.DataFrame:
    """SNID -> set ("train", "val", "test"), stratified and seeded; unused objects dropped."""
    rng = np.random.default_rng(config.seed)
    classes, counts = np.unique(y, return_counts=True)
    keep_per_class = {c: n for c, n in zip(classes, counts, strict=True)}
    if config.class_balanced:
        floor = int(counts.min())
        keep_per_class = {c: floor for c in classes}
    if config.max_per_type:
        keep_per_class = {c: min(n, config.max_per_type) for c, n in keep_per_class.items()}
    rows = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        idx = rng.permutation(idx)[: keep_per_class[c]]
        n = len(idx)
        n_train = int(round(config.train_proportion * n))
        n_val = int(round(config.val_proportion * n))
        if config.train_proportion < 1 and n >= 3:
            n_train = min(n_train, n - 2)
            n_val = max(1, min(n_val, n - n_train - 1))
        sets = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val))
        rows.append(pd.DataFrame({"SNID": snids[idx], "label": c, "set": sets}))
    return pd.concat(rows, ignore_index=True)


def _output_prior(y_train: np.ndarray, n_classes: int, as_trained: bool) -> list[float]:
    """The class fractions the network's outputs assume: the training set's when it was
    trained on them as they are, equal ones with class weights or a balanced set."""
    if not as_trained or not len(y_train):
        return [1.0 / n_classes] * n_classes
    counts = np.bincount(np.asarray(y_train, dtype=int), minlength=n_classes)
    return [float(c) / float(counts.sum()) for c in counts]


def class_weights(y_train: np.ndarray, n_classes: int) -> dict[int, float]:
    counts = np.bincount(y_train, minlength=n_classes).astype(float)
    return {i: (len(y_train) / (n_classes * c) if c else 0.0) for i, c in enumerate(counts)}


def _inputs(arrays: dict, idx: np.ndarray, with_z: bool):
    img = arrays["image"][idx]
    if not with_z:
        return {"image": img}  # by input name, as the model was built: Keras warns on a bare array
    return {"image": img, "z": arrays["z"][idx, None], "z_err": arrays["z_err"][idx, None]}


def _batches(arrays: dict, idx: np.ndarray, y: np.ndarray, config: SconeConfig, seed: int | None = None):
    """In-memory rows `idx` as batches for `fit`, reshuffled every epoch when `seed` is given.
    Not Keras's own path for arrays: that puts a TensorDataset inside a flat_map's function (for a
    last, partial batch), which tf.data's determinism rewrite counts as nondeterministic, turning
    every parallel map into a plain one with TF's error log (see store.string_lookup)."""
    import tensorflow as tf

    x = {name: tf.constant(v) for name, v in _inputs(arrays, idx, config.with_z).items()}
    labels = tf.constant(y[idx])
    ds = tf.data.Dataset.range(len(idx))
    if seed is not None:
        ds = ds.shuffle(len(idx), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size).map(
        lambda i: ({name: tf.gather(v, i) for name, v in x.items()}, tf.gather(labels, i)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _stream(catalog: HeatmapCatalog, split: pd.DataFrame, which: str, with_z: bool,
            batch: int, shuffle: bool, seed: int):
    """A tf.data pipeline over the shards for one set: objects outside it are filtered by SNID.
    Its length is known from the shard indexes and declared, so Keras knows the epoch's
    steps instead of finding the end of the data and warning that it ran out."""
    import tensorflow as tf

    members = split[split.set == which]
    n_records = int(catalog.index.SNID.astype(str).isin(set(members.SNID.astype(str))).sum())
    label_of = string_lookup(members.SNID.astype(str).tolist(), members.label.to_numpy(), -1)  # stateless
    ds = records_of(catalog)
    ds = ds.map(lambda img, snid, tname, z, ze: (img, label_of(snid), z, ze))
    ds = ds.filter(lambda img, lab, z, ze: lab >= 0).apply(tf.data.experimental.assert_cardinality(n_records))
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    if with_z:
        ds = ds.map(lambda img, lab, z, ze: ({"image": img, "z": z[None], "z_err": ze[None]}, lab))
    else:
        ds = ds.map(lambda img, lab, z, ze: ({"image": img}, lab))
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def train(config: SconeConfig, catalogs: dict[str, HeatmapCatalog], out_dir: str | Path, *,
          band_to_wave: dict[str, float] | None = None, progress: bool = True,
          split: pd.DataFrame | None = None, force: bool = False, on_epoch: OnEpoch | None = None) -> dict:
    """Train on every heatmap set in `catalogs`, evaluate per set on the test objects,
    and save the model folder. Returns the metrics. `split` (SNID, label, set), e.g. the
    platform's balanced catalog, replaces the split made here; objects without a heatmap
    are left out of it. An existing model folder is replaced only with `force`; the new
    one appears whole or not at all (see `folder.writing`). `on_epoch` receives an
    EpochProgress after every epoch of every ensemble member."""
    out = Path(out_dir)
    check_replaceable(out, force)  # before any work; checked again under the lock
    catalogs = dict(catalogs)
    augmented = catalogs.pop(AUGMENTED, None)  # several copies per SNID by design: not checked as a set
    if not catalogs:
        raise ConfigError(f"the heatmap set {AUGMENTED} only adds copies of training objects: it needs "
                          "the set it was made from (full or early_*) beside it")
    # the config and the sets given must agree, or a model would be trained other than it says
    if config.augment_copies > 0 and augmented is None:
        raise ConfigError(f"augment_copies: {config.augment_copies} asks for the heatmap set {AUGMENTED}, "
                          "which was not given: make the heatmaps with this config (`scone heatmaps`)")
    if augmented is not None and config.augment_copies == 0:
        raise ConfigError(f"the heatmap set {AUGMENTED} was given but augment_copies is 0: set augment_copies "
                          "as the heatmaps were made, or leave the set out")
    catalogs = {name: unique_objects(cat, config, f"heatmap set {name}") for name, cat in catalogs.items()}
    catalog = merge_catalogs(list(catalogs.values()))
    if config.with_z:
        check_redshift(catalog, config, "this model is trained with with_z: true")
    with writing(out, force=force) as folder:
        result = _train_into(folder, config, catalogs, catalog, band_to_wave, progress, split, augmented,
                             on_epoch)
    # SCONE / Pippin users look beside the model folder (output_path) for the history
    atomic_write_text(out.absolute().parent / TRAINING_HISTORY_FILE, (out / TRAINING_HISTORY_FILE).read_text())
    return result


def _with_augmented(catalog: HeatmapCatalog, augmented: HeatmapCatalog | None, split: pd.DataFrame,
                    config: SconeConfig) -> tuple[HeatmapCatalog, dict]:
    """The training data: `catalog` plus the augmented copies of training-split objects only
    (validation and test objects' copies are left out of the index, so never read); and the
    record of what was used. Without augmented heatmaps, `catalog` itself."""
    if augmented is None:
        return catalog, {}
    train_ids = set(split.loc[split.set == "train", "SNID"].astype(str))
    idx = augmented.index
    used = idx.SNID.astype(str).isin(train_ids).to_numpy()
    share = used.sum() / len(idx) if len(idx) else 0.0
    kept = HeatmapCatalog(idx[used].reset_index(drop=True), augmented.skipped, augmented.shape,
                          int(augmented.total_bytes * share), augmented.band_to_wave, complete=bool(used.all()))
    info = {"heatmap_set": AUGMENTED, "used": int(used.sum()),
            "objects": int(idx.SNID[used].astype(str).nunique()),
            "left_out": int((~used).sum()),  # copies of validation, test or unselected objects
            "skipped": int(len(augmented.skipped)), **AugmentSettings.from_config(config).fingerprint()}
    log.info("augmentation: %d augmented heatmaps of %d training objects join the %d unaugmented training "
             "objects (%d copies of other objects left out)", info["used"], info["objects"], len(train_ids),
             info["left_out"])
    if not used.any():
        return catalog, info
    return merge_catalogs([catalog, kept]), info


def _train_into(out: Path, config: SconeConfig, catalogs: dict[str, HeatmapCatalog], catalog: HeatmapCatalog,
                band_to_wave: dict[str, float] | None, progress: bool, split: pd.DataFrame | None,
                augmented: HeatmapCatalog | None = None, on_epoch: OnEpoch | None = None) -> dict:
    import keras
    import tensorflow as tf

    from scone_assets.model.evaluate import evaluate_and_report
    from scone_assets.model.inference import predict_members
    from scone_assets.model.network import build_model

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    log.info("training on %s", f"{len(gpus)} GPU(s)" if gpus else "CPU")

    objects = catalog.index.drop_duplicates("SNID")
    selection: dict = {}
    if split is None:
        keep, selection = select_training_set(objects.TYPE_NAME, config)
        objects = objects[keep]
    elif config.Ia_fraction is not None or config.categorical_min_per_type or config.categorical_max_per_type:
        log.info("a split was given: it decides the training set (whoever made it applied Ia_fraction / "
                 "categorical_min_per_type / categorical_max_per_type, as the platform's balanced_catalog does)")
    labels = make_labels(objects.TYPE_NAME, config.categorical, config.count_as_ia)
    _check_count_as_ia(objects.TYPE_NAME, config)
    if split is None:
        split = split_snids(objects.SNID.astype(str).to_numpy(), labels.encode(objects.TYPE_NAME), config)
    else:
        split = split.assign(SNID=split.SNID.astype(str))
        split = split[split.SNID.isin(set(objects.SNID.astype(str)))].reset_index(drop=True)
    training, augmentation = _with_augmented(catalog, augmented, split, config)
    plan = plan_loading(config, len(training), training.total_bytes)
    n_classes = len(labels.classes)
    log.info("split (rows: set, columns: label):\n%s", split.groupby(["set", "label"]).size().unstack(fill_value=0))
    y_train = split.loc[split.set == "train", "label"].to_numpy()
    weights = None if config.class_balanced or selection.get("class_weights") is False \
        else class_weights(y_train, n_classes)
    has_val = bool((split.set == "val").any())
    if config.lr_schedule == "plateau" and not has_val:
        raise ConfigError("lr_schedule: plateau watches the validation loss, but there are no validation objects "
                          "(val_proportion is 0 or the sets are too small)")
    t0 = time.time()
    arrays = None
    models, hists = [], []
    for k in range(config.ensemble_size):
        seed = config.seed + k
        if k:
            keras.utils.set_random_seed(seed)  # member 0 uses the seed set above, as a one-member run
            log.info("ensemble member %d of %d (seed %d)", k + 1, config.ensemble_size, seed)
        model = build_model(*catalog.shape, n_classes=n_classes, categorical=labels.categorical,
                            with_z=config.with_z)
        callbacks = _callbacks(config, keras)
        if on_epoch is not None:
            callbacks.append(_epoch_reporter(keras, on_epoch, config.num_epochs, k + 1, config.ensemble_size))
        if plan.kind in ("memory", "legacy"):
            if arrays is None:  # loaded once, after the first network is built (as before ensembles)
                arrays = load_arrays(training, set(split.SNID), batch=plan.chunk_size)
                which = split.set_index("SNID").set
                row_set = np.array([which[s] for s in arrays["snid"]])
                y = labels.encode(arrays["type_name"])
                tr, va = np.flatnonzero(row_set == "train"), np.flatnonzero(row_set == "val")
            history = model.fit(
                _batches(arrays, tr, y, config, seed), epochs=config.num_epochs, class_weight=weights,
                callbacks=callbacks, shuffle=False,  # the batches are shuffled each epoch
                validation_data=_batches(arrays, va, y, config) if has_val else None,
                verbose=1 if progress else 0)
        else:
            train_ds = _stream(training, split, "train", config.with_z, config.batch_size, True, seed)
            val_ds = _stream(catalog, split, "val", config.with_z, config.batch_size, False, seed)
            history = model.fit(train_ds, validation_data=val_ds if has_val else None, epochs=config.num_epochs,
                                class_weight=weights, callbacks=callbacks, shuffle=False,  # the pipeline shuffles
                                verbose=1 if progress else 0)
        models.append(model)
        hists.append({key: [float(v) for v in vals] for key, vals in history.history.items()})
    del arrays
    seconds = time.time() - t0
    ensemble = averaged(models)
    temperature = _temperature(ensemble, catalog, split, labels, config, plan.inference_batch) if has_val else 1.0

    for k, model in enumerate(models):
        model.save(out / member_model_file(k))
        atomic_write_text(out / member_history_file(k), json.dumps(hists[k], indent=1))
    atomic_write_text(out / TRAINING_HISTORY_FILE, training_history_text(hists[0]))
    atomic_write_text(out / FILTER_WAVE_FILE, filter_wavelengths_text(dict(band_to_wave or {})))
    meta = ModelMeta(
        classes=labels.classes, categorical=labels.categorical, with_z=config.with_z,
        shape=tuple(catalog.shape), band_to_wave=dict(band_to_wave or {}), heatmap_sets=list(catalogs),
        loader=plan.kind, loader_notes=list(plan.notes), n_train=int((split.set == "train").sum()),
        n_val=int((split.set == "val").sum()), n_test=int((split.set == "test").sum()), train_seconds=seconds,
        temperature=temperature, lr_schedule=config.lr_schedule, ensemble_size=config.ensemble_size,
        member_seeds=[config.seed + k for k in range(config.ensemble_size)], training_set=selection,
        augmentation=augmentation or {}, output_prior=_output_prior(y_train, n_classes, weights is None
                                                                    and not config.class_balanced),
        count_as_ia=list(labels.as_ia))
    atomic_write_text(out / META_FILE, meta.to_json())
    atomic_write_text(out / CONFIG_FILE, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=True))
    split.assign(label_name=[labels.classes[i] for i in split.label]).to_csv(out / SPLIT_FILE, index=False)

    test = set(split.loc[split.set == "test", "SNID"])
    per_set = {}
    raw = {}
    members: dict[str, np.ndarray] = {}
    for name, cat in catalogs.items():
        snids, types, member_probs = predict_members(models, cat, test, config.with_z, plan.inference_batch)
        probs = member_probs.mean(axis=0)
        raw[name] = probs
        members[name] = member_probs
        per_set[name] = (snids, types, apply_temperature(probs, temperature, labels.categorical))
    report = _ensemble_report(labels, per_set, members, meta.member_seeds) if len(models) > 1 else None
    result = evaluate_and_report(out, labels, per_set, hists[0], catalog,
                                 calibration=_calibration_report(labels, per_set, raw, temperature),
                                 ensemble=report)
    if selection:
        result["training_set"] = selection
    if augmentation:
        result["augmentation"] = augmentation
    if selection or augmentation:
        atomic_write_text(out / METRICS_FILE, json.dumps(result, indent=1, default=float))
    return result


def cosine_learning_rate(epoch: int, num_epochs: int, initial: float) -> float:
    """Cosine decay from `initial` at epoch 0 towards 0 at epoch `num_epochs` (never reached:
    the last epoch, num_epochs - 1, still learns a little)."""
    return float(initial * 0.5 * (1.0 + math.cos(math.pi * epoch / num_epochs)))


def _callbacks(config: SconeConfig, keras) -> list:
    """Fresh per member (they hold state). `constant` adds none: SCONE's Adam at 5e-5 as
    built; the others log `learning_rate` per epoch into the history."""
    from scone_assets.model.network import LEARNING_RATE

    callbacks = []
    if config.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True))
    if config.lr_schedule == "cosine":
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: cosine_learning_rate(epoch, config.num_epochs, LEARNING_RATE)))
    elif config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.lr_plateau_factor, patience=config.lr_plateau_patience,
            min_lr=LEARNING_RATE / 100))
    return callbacks


def _epoch_reporter(keras, on_epoch: OnEpoch, epochs: int, member: int, members: int):
    """A Keras callback that hands `on_epoch` each finished epoch's logs as an EpochProgress."""
    started = [0.0]

    def optional(logs: dict, key: str) -> float | None:
        return float(logs[key]) if key in logs else None

    def end(epoch: int, logs: dict | None) -> None:
        logs = logs or {}
        on_epoch(EpochProgress(epoch + 1, epochs, float(logs.get("loss", math.nan)),
                               float(logs.get("accuracy", math.nan)), optional(logs, "val_loss"),
                               optional(logs, "val_accuracy"), time.perf_counter() - started[0],
                               member, members))

    return keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.__setitem__(0, time.perf_counter()), on_epoch_end=end)


def _ensemble_report(labels: Labels, per_set: dict, members: dict[str, np.ndarray], seeds: list[int]) -> dict:
    """Each member alone on the test objects (uncalibrated; accuracy and AUC do not depend on
    the temperature), beside the ensemble's figures in `test`."""
    from scone_assets.model import metrics as m
    from scone_assets.model.evaluate import p_ia

    types = np.concatenate([np.asarray(v[1], dtype=object) for v in per_set.values()])
    rows = []
    for k, seed in enumerate(seeds):
        probs = np.concatenate([members[name][k] for name in per_set])
        rows.append({"seed": seed, "test": m.binary_metrics(labels.is_ia(types), p_ia(probs, labels.classes,
                                                                                labels.categorical))})
    return {"size": len(seeds), "seeds": list(seeds), "members": rows,
            "combine": "mean of the members' probabilities, then one temperature"}


def _temperature(model, catalog: HeatmapCatalog, split: pd.DataFrame, labels: Labels, config: SconeConfig,
                 batch: int) -> float:
    """Temperature scaling fitted on the validation objects (never the test ones)."""
    from scone_assets.model.inference import predict_stream

    if not config.calibrate:
        return 1.0
    val = set(split.loc[split.set == "val", "SNID"])
    _, types, probs = predict_stream(model, catalog, val, config.with_z, batch)
    temperature = fit_temperature(probs, labels.encode(types), labels.categorical)
    log.info("calibration: temperature %.3f fitted on %d validation light curves", temperature, len(types))
    return temperature


def _calibration_report(labels: Labels, per_set: dict, raw: dict, temperature: float) -> dict:
    from scone_assets.model.evaluate import p_ia

    types = np.concatenate([np.asarray(v[1], dtype=object) for v in per_set.values()])
    after = np.concatenate([p_ia(v[2], labels.classes, labels.categorical) for v in per_set.values()])
    before = np.concatenate([p_ia(raw[k], labels.classes, labels.categorical) for k in per_set])
    is_ia = labels.is_ia(types)
    return {"temperature": temperature, "ece_test_uncalibrated": expected_calibration_error(is_ia, before),
            "ece_test": expected_calibration_error(is_ia, after)}


def default_model_dir(config: SconeConfig) -> Path:
    return Path(config.effective_output_path()) / "trained_model"
