"""The trained-model folder: the one module that knows its files and writes it.

Layout::

    <parent>/<name>/                  what `scone train` makes (default output_path/trained_model)
        model.keras                   the network (Keras 3 format); an ensemble's first member
        model_member<k>.keras         an ensemble's member k = 1 .. ensemble_size - 1
        model_meta.json               `ModelMeta`: classes, inputs, grid, band map, ...
        config.yml                    the configuration it was trained with
        history.json                  loss and accuracy per epoch (of the first member)
        history_member<k>.json        the same for member k
        split.csv                     SNID -> train / val / test
        metrics.json                  test-set metrics, and the pictures beside it
    <parent>/.<name>.lock/            held while training into <name>
    <parent>/.<name>.partial-<pid>/   a folder being written (renamed to <name> when whole)
    <parent>/.<name>.retired-<pid>/   the folder it replaces, removed once the new one is in

A one-member folder (the default) has exactly the files it had before ensembles existed,
so older folders load unchanged (their meta lacks the ensemble keys: one member).

A folder is written whole into a hidden sibling and renamed into place, so a
failure (a full disk in `model.save`, a crash) leaves no truncated model under
the real name and the previous model untouched.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from scone_assets.config import ConfigError
from scone_assets.locking import folder_lock

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
META_FILE = "model_meta.json"
CONFIG_FILE = "config.yml"
HISTORY_FILE = "history.json"
SPLIT_FILE = "split.csv"
METRICS_FILE = "metrics.json"
CURVES_PNG = "training_curves.png"
ROC_PNG = "roc.png"
CONFUSION_PNG = "confusion_matrix.png"
CALIBRATION_PNG = "calibration.png"
EXAMPLES_PNG = "example_heatmaps.png"
PICTURES = (CURVES_PNG, ROC_PNG, CONFUSION_PNG, CALIBRATION_PNG, EXAMPLES_PNG)
PARTIAL = ".partial-"
RETIRED = ".retired-"
LOCK_SUFFIX = ".lock"
MEMBER_MODEL = "model_member{k}.keras"
MEMBER_HISTORY = "history_member{k}.json"


def member_model_file(k: int) -> str:
    """Member 0 is `model.keras`, so a one-member folder is laid out as before ensembles."""
    return MODEL_FILE if k == 0 else MEMBER_MODEL.format(k=k)


def member_history_file(k: int) -> str:
    return HISTORY_FILE if k == 0 else MEMBER_HISTORY.format(k=k)


class ModelExistsError(ConfigError):
    """The output already holds a model and replacing it was not asked for."""


@dataclass
class ModelMeta:
    """What predicting needs to know about a model besides its weights."""

    classes: list[str]  # output index -> class name; binary: ["nonIa", "SNIa"]
    categorical: bool
    with_z: bool
    shape: tuple[int, int]  # (wavelength bins, time bins)
    band_to_wave: dict[str, float] = field(default_factory=dict)
    heatmap_sets: list[str] = field(default_factory=list)
    loader: str = ""
    loader_notes: list[str] = field(default_factory=list)
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    train_seconds: float = 0.0
    temperature: float = 1.0  # divides the logits of the (ensemble-mean) output (calibration.py); 1 = as trained
    lr_schedule: str = "constant"  # config lr_schedule it was trained with
    ensemble_size: int = 1  # members whose probabilities are averaged
    member_seeds: list[int] = field(default_factory=list)  # seed of each member; empty in older folders

    def to_json(self) -> str:
        data = asdict(self)
        data["shape"] = list(self.shape)
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = META_FILE) -> ModelMeta:
        """Parse, refusing a meta that lacks what predicting needs (keys unknown here are
        ignored with a note: a newer version may add some)."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{source} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source} must hold a JSON object")
        required = ("classes", "categorical", "with_z", "shape")
        missing = [k for k in required if k not in data]
        if missing:
            raise ConfigError(f"{source} lacks {', '.join(missing)} (is it a scone-assets model folder?)")
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            log.info("%s: ignoring keys this version does not know: %s", source, ", ".join(extra))
        shape = data["shape"]
        if not (isinstance(shape, list | tuple) and len(shape) == 2 and all(isinstance(v, int) for v in shape)):
            raise ConfigError(f"{source}: shape must be [wavelength bins, time bins], not {shape!r}")
        size = data.get("ensemble_size", 1)
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
            raise ConfigError(f"{source}: ensemble_size must be a whole number >= 1, not {size!r}")
        seeds = data.get("member_seeds") or []
        if seeds and len(seeds) != size:
            raise ConfigError(f"{source}: member_seeds lists {len(seeds)} seeds for ensemble_size {size}")
        return cls(**{k: v for k, v in data.items() if k in known} | {"shape": (shape[0], shape[1])})


def read_meta(folder: str | Path) -> ModelMeta:
    """A model folder's meta, without loading the network (cheap checks come first)."""
    folder = Path(folder)
    path = folder / META_FILE
    if not path.is_file():
        if not (folder / MODEL_FILE).is_file():
            raise ConfigError(f"trained_model {folder} has no {MODEL_FILE} (is it a scone-assets model folder?)")
        raise ConfigError(f"trained_model {folder} has no {META_FILE}")
    return ModelMeta.from_json(path.read_text(), str(path))


def check_members(folder: str | Path, meta: ModelMeta) -> None:
    """Every member the meta promises is there, and no stray one: an ensemble missing a
    member would silently average fewer networks than it was evaluated with."""
    folder = Path(folder)
    for k in range(meta.ensemble_size):
        if not (folder / member_model_file(k)).is_file():
            raise ConfigError(f"trained_model {folder} is an ensemble of {meta.ensemble_size} ({META_FILE}) "
                              f"but has no {member_model_file(k)}")
    stray = sorted(int(p.stem.removeprefix("model_member")) for p in folder.glob(MEMBER_MODEL.format(k="*"))
                   if p.stem.removeprefix("model_member").isdigit())
    stray = [k for k in stray if k >= meta.ensemble_size]
    if stray:
        raise ConfigError(f"trained_model {folder} holds {member_model_file(stray[0])} but {META_FILE} says "
                          f"ensemble_size {meta.ensemble_size}: the folder is inconsistent")


def load_members(folder: str | Path) -> tuple[list, ModelMeta]:
    """([keras model per member], ModelMeta), refusing a member that is missing, unreadable,
    or does not take the inputs / give the outputs of the first."""
    import keras

    import scone_assets.model.network  # noqa: F401 - registers SconeTranspose

    folder = Path(folder)
    if not (folder / MODEL_FILE).is_file():
        raise ConfigError(f"trained_model {folder} has no {MODEL_FILE} (is it a scone-assets model folder?)")
    meta = read_meta(folder)
    check_members(folder, meta)
    models = []
    for k in range(meta.ensemble_size):
        path = folder / member_model_file(k)
        try:
            model = keras.models.load_model(path)
        except Exception as exc:  # keras raises ValueError, OSError, zipfile errors...
            if k == 0:
                raise
            raise ConfigError(f"trained_model {folder}: {path.name} cannot be loaded ({exc})") from None
        if models and (_signature(model) != _signature(models[0])):
            raise ConfigError(f"trained_model {folder}: {path.name} takes {_signature(model)} but {MODEL_FILE} "
                              f"takes {_signature(models[0])}: the members do not belong together")
        models.append(model)
    return models, meta


def _signature(model) -> tuple:
    return tuple((i.name, tuple(i.shape)) for i in model.inputs), tuple(model.output_shape)


def averaged(models: list):
    """One callable, used like a Keras model (`model(inputs, training=False)`), giving the
    mean of the members' probabilities; a lone member is returned as it is."""
    import numpy as np

    if len(models) == 1:
        return models[0]

    def mean_of_members(inputs, training=False):
        return np.mean([np.asarray(m(inputs, training=training)) for m in models], axis=0)

    return mean_of_members


def load_trained(folder: str | Path):
    """(model, ModelMeta) from a model folder, with errors that say what is missing. The
    model is the Keras model of a one-member folder, or the members' average (`averaged`)."""
    models, meta = load_members(folder)
    return averaged(models), meta


def _holds_anything(folder: Path) -> bool:
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise ConfigError(f"model folder {folder} exists and is not a folder")
    return any(folder.iterdir())


def check_replaceable(folder: str | Path, force: bool) -> None:
    """Refuse, before any training, to replace a model nobody asked to replace."""
    folder = Path(folder)
    if _holds_anything(folder) and not force:
        raise ModelExistsError(f"model folder {folder} already holds a model; use --force to replace it "
                               "(or choose another output_path)")


def _remove_stale(folder: Path) -> None:
    """Partial and retired siblings a killed run left behind (the caller holds the lock)."""
    for p in folder.parent.glob(f".{glob.escape(folder.name)}.*"):
        if PARTIAL in p.name or RETIRED in p.name:
            log.warning("removing %s, left by a run that did not finish", p)
            shutil.rmtree(p, ignore_errors=True)


def _swap_in(partial: Path, folder: Path) -> None:
    """Put `partial` at `folder`; an old folder is renamed aside first and restored if the
    second rename fails, so some whole model is always under the real name."""
    retired = folder.parent / f".{folder.name}{RETIRED}{os.getpid()}"
    had_old = folder.exists()
    if had_old:
        os.replace(folder, retired)
    try:
        os.replace(partial, folder)
    except BaseException:
        if had_old:
            os.replace(retired, folder)
        raise
    if had_old:
        shutil.rmtree(retired, ignore_errors=True)


@contextmanager
def writing(folder: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Hold the folder's lock, refuse an existing model unless `force`, and yield a hidden
    sibling to write into; it becomes `folder` only when the block ends without error,
    else it is removed and the previous folder stays as it was."""
    folder = Path(folder).absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = folder.parent / f".{folder.name}{LOCK_SUFFIX}"
    with folder_lock(lock, what=f"model folder {folder}: its lock"):
        check_replaceable(folder, force)
        _remove_stale(folder)
        partial = folder.parent / f".{folder.name}{PARTIAL}{os.getpid()}"
        partial.mkdir()
        try:
            yield partial
            _swap_in(partial, folder)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
