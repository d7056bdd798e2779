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
        filter_mean_wavelength.dat    SCONE's band -> mean wavelength file (`band:  wave` lines)
        training_history.csv          history.json as one row per epoch (epoch from 1, loss, accuracy,
                                      val_loss, val_accuracy, lr when recorded); copied beside the folder
    <parent>/.<name>.lock/            held while training into <name>
    <parent>/.<name>.partial-<pid>/   a folder being written (renamed to <name> when whole)
    <parent>/.<name>.retired-<pid>/   the folder it replaces, removed once the new one is in

A one-member folder (the default) has no member files, as before ensembles existed,
so older folders load unchanged (their meta lacks the ensemble keys: one member).

A folder SCONE itself wrote (`model.keras` with SCONE's custom layer `Reshape`, an older
`model.h5`, or a TF SavedModel `saved_model.pb`, and no `model_meta.json`) loads too: its
meta is read off the network (image input (wavelength bins, time bins, 2), inputs `z` and
`z_err` for with_z, one sigmoid output or a softmax over the config's `sn_type_id_to_name`
classes in SCONE's sorted order) and its `filter_mean_wavelength.dat`.

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

from scone_assets.config import ConfigError, SconeConfig
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
FILTER_WAVE_FILE = "filter_mean_wavelength.dat"  # SCONE's name, read by SCONE users' tools
TRAINING_HISTORY_FILE = "training_history.csv"  # what SCONE / Pippin users look for
SCONE_H5 = "model.h5"  # older SCONE model files
SCONE_SAVED_MODEL = "saved_model.pb"  # SCONE's TF SavedModel folders (before model.keras)
MADE_BY_US = "scone_assets"
MADE_BY_SCONE = "scone"  # a SCONE model.keras / model.h5
MADE_BY_SCONE_SAVED_MODEL = "scone SavedModel"
MEMBER_MODEL = "model_member{k}.keras"
MEMBER_HISTORY = "history_member{k}.json"


def member_model_file(k: int) -> str:
    """Member 0 is `model.keras`, so a one-member folder is laid out as before ensembles."""
    return MODEL_FILE if k == 0 else MEMBER_MODEL.format(k=k)


def member_history_file(k: int) -> str:
    return HISTORY_FILE if k == 0 else MEMBER_HISTORY.format(k=k)


def filter_wavelengths_text(band_to_wave: dict[str, float]) -> str:
    """SCONE's `filter_mean_wavelength.dat`: a comment, then `band:  wave` in training order."""
    lines = ["# central wavelength vs band used to create heatmaps for training."]
    lines += [f"{band}:  {float(wave)}" for band, wave in band_to_wave.items()]  # exact, as SCONE writes
    return "\n".join(lines) + "\n"


def read_filter_wavelengths(folder: str | Path) -> dict[str, float] | None:
    """The band map a model folder records in SCONE's file (None when it has none), so
    predict mode places bands the data does not as training did."""
    path = Path(folder) / FILTER_WAVE_FILE
    if not path.is_file():
        return None
    out: dict[str, float] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        band, sep, wave = line.partition(":")
        try:
            if not sep or not band.strip():
                raise ValueError
            out[band.strip()] = float(wave)
        except ValueError:
            raise ConfigError(f"{path} line {n}: expected 'band:  wavelength', got {line!r}") from None
    return out


_HISTORY_FIRST = ("loss", "accuracy", "val_loss", "val_accuracy")
_HISTORY_RENAME = {"learning_rate": "lr"}  # Keras 3's name for what SCONE users call lr


def training_history_text(history: dict[str, list[float]]) -> str:
    """`training_history.csv`: one row per epoch (counted from 1, as Keras' progress log),
    columns epoch, loss, accuracy, val_loss, val_accuracy, then lr and any other metric."""
    import csv
    import io

    keys = [k for k in _HISTORY_FIRST if k in history] + sorted(k for k in history if k not in _HISTORY_FIRST)
    n = max((len(history[k]) for k in keys), default=0)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", *(_HISTORY_RENAME.get(k, k) for k in keys)])
    for epoch in range(n):
        writer.writerow([epoch + 1, *(repr(float(history[k][epoch])) if epoch < len(history[k]) else ""
                                      for k in keys)])
    return buf.getvalue()


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
    # what Ia_fraction / categorical_min_per_type / categorical_max_per_type did (train.py); empty: nothing
    training_set: dict = field(default_factory=dict)
    augmentation: dict = field(default_factory=dict)  # augmented copies used (heatmaps/augment.py)
    # class fractions the outputs assume (model/prior.py): equal with class weights or a balanced
    # set, else the training set's; empty in older folders, which trained with class weights
    output_prior: list[float] = field(default_factory=list)
    count_as_ia: list[str] = field(default_factory=list)  # heatmap classes it learnt as SN Ia (config key)
    made_by: str = MADE_BY_US  # or MADE_BY_SCONE*: a folder SCONE wrote, its meta read off the network

    def assumed_ia_fraction(self) -> float:
        """The SN Ia share its outputs assume (output_prior; equal classes in older folders)."""
        prior = self.output_prior or [1.0 / len(self.classes)] * len(self.classes)
        return float(sum(p for c, p in zip(self.classes, prior, strict=True) if c == "SNIa"))

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


def _kind(folder: Path) -> str:
    """MADE_BY_US, MADE_BY_SCONE or MADE_BY_SCONE_SAVED_MODEL, or an error naming what was
    looked for."""
    if folder.is_file() and folder.suffix in (".keras", ".h5"):
        return MADE_BY_SCONE  # SCONE also takes trained_model as the model file itself
    if (folder / META_FILE).is_file():
        return MADE_BY_US
    if (folder / MODEL_FILE).is_file() or (folder / SCONE_H5).is_file():
        return MADE_BY_SCONE
    if (folder / SCONE_SAVED_MODEL).is_file():
        return MADE_BY_SCONE_SAVED_MODEL
    if not folder.exists():
        raise ConfigError(f"trained_model {folder} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"trained_model {folder} is not a folder (a model folder from `scone train`, or "
                          "SCONE's trained_model folder or model file, is expected)")
    raise ConfigError(f"trained_model {folder} has no {MODEL_FILE}: it is neither a scone-assets model folder "
                      f"({META_FILE} + {MODEL_FILE}) nor one SCONE wrote ({MODEL_FILE}, {SCONE_H5} or a "
                      f"SavedModel's {SCONE_SAVED_MODEL})")


def _resolve(folder: str | Path) -> Path:
    """trained_model as given: a folder, or (as SCONE accepts) a model file; our own
    model.keras given as a file stands for its folder."""
    folder = Path(folder)
    if folder.is_file() and folder.name == MODEL_FILE and (folder.parent / META_FILE).is_file():
        return folder.parent
    return folder


def _scone_model_file(folder: Path) -> Path:
    if folder.is_file():
        return folder
    return folder / MODEL_FILE if (folder / MODEL_FILE).is_file() else folder / SCONE_H5


def read_meta(folder: str | Path, config: SconeConfig | None = None) -> ModelMeta:
    """A model folder's meta, without loading the network (cheap checks come first). A folder
    SCONE wrote has none: it is read off the network's layout (SCONE's `model.keras` config
    is read from the file without building the network; a SavedModel is loaded), and the
    categorical class names come from `config.sn_type_id_to_name`."""
    folder = _resolve(folder)
    kind = _kind(folder)
    if kind == MADE_BY_US:
        path = folder / META_FILE
        return ModelMeta.from_json(path.read_text(), str(path))
    if kind == MADE_BY_SCONE_SAVED_MODEL:
        return _load_saved_model(folder, config)[1]
    path = _scone_model_file(folder)
    inputs, width = _keras_file_layout(path)
    if inputs is None:  # not Keras 3's zip (an .h5, an older format): build the network to see
        model = _load_scone_keras(folder, path)
        inputs, width = _network_layout(model)
    return _scone_meta(folder, path.name, inputs, width, config, MADE_BY_SCONE)


def _keras_file_layout(path: Path) -> tuple[dict[str, tuple] | None, int]:
    """(input name -> shape, output width) from a `.keras` file's config.json; (None, 0)
    when the file is not laid out as expected (the caller then loads the network)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("config.json"))
        cfg = data["config"]
        layers = {lay.get("name") or lay["config"]["name"]: lay for lay in cfg["layers"]}
        inputs = {}
        for name, *_ in cfg["input_layers"] if isinstance(cfg["input_layers"][0], list) else [cfg["input_layers"]]:
            lc = layers[name]["config"]
            shape = lc.get("batch_shape") or lc.get("batch_input_shape")
            inputs[name] = tuple(shape)
        out_layers = cfg["output_layers"]
        out_name = out_layers[0][0] if isinstance(out_layers[0], list) else out_layers[0]
        if len(out_layers) != 1 and isinstance(out_layers[0], list):
            return None, 0
        width = int(layers[out_name]["config"]["units"])
    except (zipfile.BadZipFile, KeyError, IndexError, TypeError, ValueError, OSError):
        return None, 0
    return inputs, width


def _network_layout(model) -> tuple[dict[str, tuple], int]:
    inputs = {t.name.split(":")[0]: tuple(t.shape) for t in model.inputs}
    return inputs, int(model.output_shape[-1])


def _scone_meta(folder: Path, what: str, inputs: dict[str, tuple], width: int, config: SconeConfig | None,
                made_by: str) -> ModelMeta:
    """The meta of a network SCONE built (model_utils.py, `_define_and_compile_model`)."""
    from scone_assets.snana.types import IA, class_name

    where = f"trained_model {folder} (written by SCONE: {what}, no {META_FILE})"
    if "image" in inputs:
        image = inputs["image"]
    elif len(inputs) == 1:
        image = next(iter(inputs.values()))
    else:
        raise ConfigError(f"{where} takes inputs {sorted(inputs)}; SCONE's network takes image (and z, z_err)")
    extra = sorted(set(inputs) - {"image", "z", "z_err"}) if len(inputs) > 1 else []
    if extra or (len(inputs) > 1 and not {"z", "z_err"} <= set(inputs)):
        raise ConfigError(f"{where} takes inputs {sorted(inputs)}; SCONE's network takes image, or image, z "
                          "and z_err (with_z)")
    if len(image) != 4 or image[-1] != 2 or not all(isinstance(v, int) for v in image[1:3]):
        raise ConfigError(f"{where}: its image input is {tuple(image[1:])}, not SCONE's (wavelength bins, "
                          "time bins, 2)")
    if width == 1:
        classes, categorical = ["nonIa", IA], False
    else:
        mapping = config.sn_type_id_to_name if config is not None else None
        if not mapping:
            raise ConfigError(f"{where} is categorical ({width} outputs): set sn_type_id_to_name in the config "
                              "(the map it was trained with) to name its classes")
        raw = sorted(set(mapping.values()))  # SCONE's label i is the i-th name in sorted order
        if len(raw) != width:
            raise ConfigError(f"{where} has {width} outputs but sn_type_id_to_name names {len(raw)} classes "
                              f"({', '.join(raw)}): use the map it was trained with")
        named = [class_name(n) for n in raw]
        classes, categorical = (named if len(set(named)) == len(named) else raw), True
    band_to_wave = read_filter_wavelengths(folder if folder.is_dir() else folder.parent) or {}
    if not band_to_wave:
        log.info("%s has no %s: bands are placed from the data alone", where, FILTER_WAVE_FILE)
    return ModelMeta(classes=classes, categorical=categorical, with_z=len(inputs) > 1,
                     shape=(int(image[1]), int(image[2])), band_to_wave=band_to_wave, made_by=made_by)


def _scone_custom_objects() -> dict:
    """SCONE's `Reshape` layer (a transpose to (batch, channels, width, height)) is our
    SconeTranspose: the same operation, and SCONE saves it with an empty config."""
    from scone_assets.model.network import SconeTranspose

    return {"Reshape": SconeTranspose}


def _load_scone_keras(folder: Path, path: Path):
    import keras

    try:
        return keras.models.load_model(path, custom_objects=_scone_custom_objects(), compile=False)
    except Exception as exc:  # keras raises ValueError, OSError, zipfile errors...
        raise ConfigError(f"trained_model {folder} has no {META_FILE}, so it is read as a model folder written "
                          f"by SCONE, but its {path.name} cannot be loaded as SCONE's network ({exc})") from None


class SavedModelNet:
    """A SCONE SavedModel's serving signature, called like a Keras model with our input dict
    (`model(inputs, training=False)` -> probabilities). Keras 3 cannot load a SavedModel
    as a model; `keras.layers.TFSMLayer` holds it and its variables."""

    def __init__(self, layer, specs: dict, output_key: str):
        self.layer, self.specs, self.output_key = layer, specs, output_key

    def __call__(self, inputs: dict, training: bool = False):
        import numpy as np
        import tensorflow as tf

        if len(self.specs) == 1:
            (name, spec), = self.specs.items()
            feed = {name: tf.convert_to_tensor(inputs["image"], dtype=spec.dtype)}
        else:
            feed = {name: tf.convert_to_tensor(inputs[name], dtype=spec.dtype) for name, spec in self.specs.items()}
        return np.asarray(self.layer.call_endpoint_fn(**feed)[self.output_key])


def _load_saved_model(folder: Path, config: SconeConfig | None) -> tuple[SavedModelNet, ModelMeta]:
    try:
        import keras

        layer = keras.layers.TFSMLayer(str(folder), call_endpoint="serving_default")
        fn = layer.call_endpoint_fn
        specs = dict(fn.structured_input_signature[1])
        outputs = dict(fn.structured_outputs)
    except Exception as exc:
        raise ConfigError(f"trained_model {folder} is a TF SavedModel ({SCONE_SAVED_MODEL}, as older SCONE "
                          f"saved) that keras.layers.TFSMLayer cannot load here ({exc}); load it with the "
                          "TensorFlow/Keras 2 it was made with and save it as model.keras") from None
    if not specs:
        raise ConfigError(f"trained_model {folder}: its SavedModel's serving_default signature takes no named "
                          "inputs, so it cannot be fed heatmaps")
    key = "label" if "label" in outputs else next(iter(outputs), None)
    if key is None or (len(outputs) > 1 and "label" not in outputs):
        raise ConfigError(f"trained_model {folder}: its SavedModel gives outputs {sorted(outputs)}; "
                          "SCONE's gives one (label)")
    inputs = {name: tuple(spec.shape) for name, spec in specs.items()}
    meta = _scone_meta(folder, SCONE_SAVED_MODEL, inputs, int(outputs[key].shape[-1]), config,
                       MADE_BY_SCONE_SAVED_MODEL)
    return SavedModelNet(layer, specs, key), meta


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


def load_members(folder: str | Path, config: SconeConfig | None = None) -> tuple[list, ModelMeta]:
    """([keras model per member], ModelMeta), refusing a member that is missing, unreadable,
    or does not take the inputs / give the outputs of the first. A folder SCONE wrote is
    one member: its network (loaded with SCONE's custom `Reshape`), or its SavedModel held
    by `SavedModelNet`; `config` names a categorical one's classes (`read_meta`)."""
    import keras

    import scone_assets.model.network  # noqa: F401 - registers SconeTranspose

    folder = _resolve(folder)
    kind = _kind(folder)
    if kind == MADE_BY_SCONE_SAVED_MODEL:
        net, meta = _load_saved_model(folder, config)
        log.info("trained_model %s: a SavedModel written by SCONE, run through keras.layers.TFSMLayer", folder)
        return [net], meta
    if kind == MADE_BY_SCONE:
        path = _scone_model_file(folder)
        model = _load_scone_keras(folder, path)
        meta = _scone_meta(folder, path.name, *_network_layout(model), config, MADE_BY_SCONE)
        log.info("trained_model %s: written by SCONE (%s, no %s); %s, %dx%d heatmaps%s", folder, path.name,
                 META_FILE, "classes " + ", ".join(meta.classes) if meta.categorical else "binary (SN Ia or not)",
                 *meta.shape, ", with redshift" if meta.with_z else "")
        return [model], meta
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


def load_trained(folder: str | Path, config: SconeConfig | None = None):
    """(model, ModelMeta) from a model folder, with errors that say what is missing. The
    model is the Keras model of a one-member folder, or the members' average (`averaged`).
    A folder SCONE wrote loads too (`load_members`)."""
    models, meta = load_members(folder, config)
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
