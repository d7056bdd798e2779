"""The SCONE YAML config, validated.

Accepts every key SCONE users already write, with SCONE's documented defaults,
so an existing config runs unchanged. A wrong type is an error naming the key;
an unknown key is a warning naming it, never silently dropped.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scone_assets.snana.types import IA, UNKNOWN, class_name
from scone_assets.yaml_file import read_mapping

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the key."""


class UnknownConfigKeyWarning(UserWarning):
    pass


def expand(path: str) -> str:
    """Expand `$VARS` and `~` as SCONE users expect in every path key."""
    return os.path.expanduser(os.path.expandvars(str(path)))


# SCONE keys that make no sense here, accepted with a one-line note saying why
NOT_APPLICABLE: dict[str, str] = {
    "ids_path": "training and test SNIDs are chosen from the heatmaps and written to the model's split.csv",
    "has_ids": "heatmaps always carry their SNIDs",
    "save_to_json": "there is no data_cuts step whose results would need saving",
    "from_json": "there is no data_cuts step to resume",
    "enable_dynamic_batch_size": "batch sizes are fixed by batch_size; loading streams when it must",
    "enable_model_quantization": "the network is small; predictions use it unquantized",
    "quantization_method": "the network is small; predictions use it unquantized",
    "enable_disk_caching": "heatmaps are stored once in the heatmap store and reused from there",
    "disk_cache_dir": "heatmaps are stored once in the heatmap store and reused from there",
    "ultra_low_memory_mode": "memory is bounded by streaming (force_streaming, streaming_threshold)",
    "memory_target_gb": "memory is bounded by streaming (force_streaming, streaming_threshold)",
    "dry_run_mode": "use `scone inspect` to see what a config would read",
    "debug_pause_mode": "a memory-inspection pause for SCONE's loaders, which this project does not have",
    "pause_duration": "a memory-inspection pause for SCONE's loaders, which this project does not have",
    "scone_dir": "the code is the installed package; run.py finds the project beside itself",
    "SCONE_DIR": "the code is the installed package; run.py finds the project beside itself",
    "sim_fraction": "Pippin's obsolete key; use prescale_heatmaps or nevt_select_heatmaps",
    "types": "the classes are the types found in the heatmaps, named by sn_type_id_to_name",
    "external_test_sets": "SCONE's legacy out-of-distribution tests; run predict mode on each test set instead",
    "heatmaps_logfile": "heatmap progress goes to the job's log (output.log under Slurm)",
    "heatmaps_donefile": "one job makes heatmaps and the model: its done.txt in output_path says how both went",
}
# SCONE keys refused: honouring them would change what is trained on, and ignoring them would too
REFUSED: dict[str, str] = {
    "heatmaps_paths": "training on several heatmap folders is not supported: list every input in "
                      "input_data_paths and let one heatmaps_path hold their heatmaps",
}


def _bad_pair(v: Any) -> Any:
    raise ValueError("expected one positive number, or two as 'Ia,nonIa'")


class SconeConfig(BaseModel):
    model_config = ConfigDict(extra="allow", validate_assignment=True)

    # inputs: three ways SCONE users name them
    input_path: str | None = None
    metadata_paths: list[str] | None = None
    lcdata_paths: list[str] | None = None
    input_data_paths: list[str] | None = None
    labels_path: str | None = None
    survey: str | None = None
    band_to_wave: dict[str, float] | None = None
    sn_type_id_to_name: dict[int, str] | None = None

    # outputs
    heatmaps_path: str | None = None
    output_path: str | None = None
    output_predict_file: str | None = None
    trained_model: str | None = None
    prob_column_name: str = "PROB_SCONE"

    # heatmaps
    num_wavelength_bins: int = Field(32, ge=2)
    num_mjd_bins: int = Field(180, ge=2)
    has_peakmjd: bool = True
    early_lightcurves: bool | list[float] = False
    early_lightcurves_mixed: bool = False
    gp_backend: Literal["fast", "george"] = "fast"
    mw_correction: Literal["flux", "scone", "none"] = "flux"  # see heatmaps/grid.py
    jobs: int | None = Field(None, ge=1)

    # model and training
    mode: Literal["train", "predict"] = "train"
    num_epochs: int = Field(400, ge=1)
    batch_size: int = Field(32, ge=1)
    train_proportion: float = Field(0.8, gt=0, le=1)
    val_proportion: float = Field(0.1, ge=0, lt=1)
    class_balanced: bool = False
    categorical: bool = False
    # heatmap classes learnt as SN Ia, e.g. [SNIa-91bg] when the spectroscopic labels the model
    # will serve count 91bg-like SNe as SNe Ia (as LOWZ's do); the heatmaps keep their names
    count_as_ia: list[str] = []
    max_per_type: int | None = Field(None, ge=1)
    with_z: bool = False
    seed: int = 42
    early_stopping_patience: int | None = Field(None, ge=1)  # epochs without val_loss gain; best weights kept
    # one object, one row: an SNID met twice in a role's inputs is refused unless the user
    # says which copy counts ("first": the first unit in input order; "drop": neither)
    duplicate_snids: Literal["error", "first", "drop"] = "error"
    # temperature scaling of the output probabilities, fitted on the validation objects
    calibrate: bool = True
    # predict mode: "data" re-weighs the probabilities to the class fractions of the light curves
    # being classified, estimated from them without labels (model/prior.py); "model" keeps the
    # fractions the model was trained to assume
    class_prior: Literal["model", "data"] = "model"
    # with_z models on data with no redshift (REDSHIFT_FINAL, else HOSTGAL_SPECZ, else HOSTGAL_PHOTOZ):
    # refuse, or feed SCONE's -9 placeholder
    missing_redshift: Literal["error", "placeholder"] = "error"
    # learning rate per epoch: SCONE's constant 5e-5; cosine decay over num_epochs; or halved
    # (lr_plateau_factor) after lr_plateau_patience epochs without a val_loss gain
    lr_schedule: Literal["constant", "cosine", "plateau"] = "constant"
    lr_plateau_factor: float = Field(0.5, gt=0, lt=1)
    lr_plateau_patience: int = Field(5, ge=1)
    # members trained with seeds seed, seed+1, ... on one split; predictions average them
    ensemble_size: int = Field(1, ge=1)
    # augmentation for what a simulation cannot know exactly about the data it is made for
    # (heatmaps/augment.py): extra heatmaps per training light curve, in the heatmap set
    # `augmented`, used for training-split objects only; 0 = none (no set is made)
    augment_copies: int = Field(0, ge=0)
    # each copy drops a share ~ U(0, this) of the observations (a sparser cadence, lost nights)
    augment_drop_fraction: float = Field(0.3, ge=0, lt=1)
    # each copy scales FLUXCALERR by s ~ U(lo, hi) and adds the matching noise to FLUXCAL
    # (a shallower survey or worse nights than simulated); [1, 1] leaves errors as they are
    augment_error_scale: tuple[float, float] = (1.0, 2.0)
    # each copy shifts the PEAKMJD its window is centred on by U(-d, d) days: real data's PEAKMJD
    # is an estimate (YSE's is its brightest observation), a simulation's the true peak +- 1 day
    augment_peak_shift_days: float = Field(3.0, ge=0)

    # training-set selection, SCONE's meaning (issue: Pippin drop-in)
    snid_select_files: list[str] | None = None  # FITRES (or SIMGEN DUMP) files: keep only the SNIDs they list
    prescale_heatmaps: tuple[int, int] | None = None  # (Ia, nonIa): keep SNID % prescale == 0; train mode only
    nevt_select_heatmaps: tuple[int, int] | None = None  # (Ia, nonIa) wanted: the prescales that give them
    Ia_fraction: float | Literal["categorical"] | None = None  # SN Ia share of the training set
    categorical_min_per_type: int | None = Field(None, ge=1)  # classes with fewer are dropped
    categorical_max_per_type: int | None = Field(None, ge=1)  # classes with more are drawn down to this

    # Slurm, as SCONE's run.py submits (read by the root run.py, not by `scone`)
    sbatch_job_name: str | None = None
    sbatch_template_default: str | None = None
    sbatch_template_train: str | None = None
    sbatch_mem: float | str | None = None  # GB as a number, or a Slurm size ("20G")
    sbatch_ncore_heatmaps: int | None = Field(None, ge=1)
    sbatch_walltime: str | None = None
    init_env_train: str | None = None
    init_env_heatmaps: str | None = None

    # performance and loading (SCONE's documented defaults)
    enable_balanced_mode: bool = True
    balanced_batch_size: int = Field(128, ge=1)
    chunk_size: int = Field(1000, ge=1)
    streaming_threshold: int = Field(75000, ge=1)
    gc_frequency: int = Field(50, ge=1)
    enable_micro_batching: bool = False
    micro_batch_size: int = Field(64, ge=1)
    memory_optimize: bool = True
    force_streaming: bool = False
    debug_flag: Literal[0, -901] = 0
    verbose_data_loading: bool = False

    @field_validator(
        "input_path", "labels_path", "heatmaps_path", "output_path",
        "output_predict_file", "trained_model",
    )
    @classmethod
    def _expand_path(cls, v: str | None) -> str | None:
        return expand(v) if v is not None else None

    @field_validator("sbatch_template_default", "sbatch_template_train")
    @classmethod
    def _expand_template(cls, v: str | None) -> str | None:
        return expand(v) if v is not None else None

    @field_validator("prescale_heatmaps", "nevt_select_heatmaps", mode="before")
    @classmethod
    def _per_class(cls, v: Any) -> Any:
        """SCONE writes `10` (both classes) or `"20,10"` (Ia, nonIa)."""
        if v is None:
            return v
        parts = [str(p).strip() for p in v] if isinstance(v, tuple | list) else \
            [p.strip() for p in str(v).split(",") if p.strip()]
        try:
            nums = [int(float(p)) for p in parts]
        except ValueError:
            return _bad_pair(v)
        if len(nums) == 1:
            nums *= 2
        if len(nums) != 2 or min(nums) < 1:
            return _bad_pair(v)
        return tuple(nums)

    @field_validator("augment_error_scale", mode="before")
    @classmethod
    def _error_scale(cls, v: Any) -> Any:
        """[lo, hi] with 1 <= lo <= hi: errors can only grow (added noise cannot be taken away)."""
        if isinstance(v, int | float) and not isinstance(v, bool):
            v = (v, v)
        try:
            lo, hi = (float(x) for x in v)
        except (TypeError, ValueError):
            raise ValueError("expected two numbers [lo, hi] with 1 <= lo <= hi") from None
        if not 1 <= lo <= hi:
            raise ValueError("expected [lo, hi] with 1 <= lo <= hi (errors can only be scaled up)")
        return (lo, hi)

    @field_validator("Ia_fraction", mode="before")
    @classmethod
    def _ia_fraction(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "categorical":
            return "categorical"
        if v is not None and not (isinstance(v, int | float) and 0 < float(v) < 1):
            raise ValueError("expected a fraction between 0 and 1 (SCONE: 0.5 for a balanced binary split) "
                             "or 'categorical'")
        return v

    @field_validator("metadata_paths", "lcdata_paths", "input_data_paths", "snid_select_files", mode="before")
    @classmethod
    def _path_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        return [expand(p) for p in v] if v is not None else None

    @field_validator("count_as_ia", mode="before")
    @classmethod
    def _count_as_ia(cls, v: Any) -> Any:
        """Any spelling of a class (`Ia-91bg`, `SN Ia-91bg`) -> the name the heatmaps hold."""
        if v is None:
            return []
        items = [p.strip() for p in v.split(",")] if isinstance(v, str) else list(v)
        names = []
        for item in items:
            name = class_name(str(item))
            if name in (IA, UNKNOWN):  # "" and blanks reduce to UNKNOWN
                raise ValueError(f"{item!r} is not a class other than {IA}: name classes the heatmaps hold, "
                                 "e.g. SNIa-91bg")
            if name not in names:
                names.append(name)
        return names

    @field_validator("sn_type_id_to_name", mode="before")
    @classmethod
    def _type_keys(cls, v: Any) -> Any:
        if v is None:
            return v
        try:
            return {int(k): str(name) for k, name in dict(v).items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"expected a map of integer type codes to names ({exc})") from exc

    @model_validator(mode="after")
    def _check(self) -> SconeConfig:
        extra = sorted((self.model_extra or {}).keys())
        refused = [k for k in extra if k in REFUSED]
        if refused:
            raise ValueError("; ".join(f"{k}: {REFUSED[k]}" for k in refused))
        for key in [k for k in extra if k in NOT_APPLICABLE]:
            log.info("config key %s is accepted and has no effect here: %s", key, NOT_APPLICABLE[key])
        for key in [k for k in extra if k not in NOT_APPLICABLE]:
            warnings.warn(
                f"unknown config key {key!r} is ignored (check its spelling)",
                UnknownConfigKeyWarning,
                stacklevel=2,
            )
        if (self.metadata_paths is None) != (self.lcdata_paths is None):
            raise ValueError("metadata_paths and lcdata_paths must be given together")
        if self.metadata_paths is not None and len(self.metadata_paths) != len(self.lcdata_paths or []):
            raise ValueError(
                f"metadata_paths has {len(self.metadata_paths)} entries but lcdata_paths has "
                f"{len(self.lcdata_paths or [])}; they pair 1-1"
            )
        if self.train_proportion + self.val_proportion > 1 + 1e-9:
            raise ValueError(
                f"train_proportion + val_proportion = {self.train_proportion + self.val_proportion:g} > 1"
            )
        if self.heatmaps_path is None and self.output_path:
            # SCONE's default; set without re-validating (validate_assignment would recurse)
            object.__setattr__(self, "heatmaps_path", str(Path(self.output_path) / "heatmaps"))
        if self.mode == "predict" and not self.trained_model:
            raise ValueError("mode: predict needs trained_model (a model folder)")
        return self

    @property
    def has_inputs(self) -> bool:
        return bool(self.input_path or self.metadata_paths or self.input_data_paths)

    @property
    def early_truncations(self) -> list[float]:
        """Days after trigger for early_lightcurves; Qu & Sako 2022's default list."""
        if self.early_lightcurves is True:
            return [0.0, 5.0, 15.0, 25.0, 50.0]
        if isinstance(self.early_lightcurves, list):
            return [float(x) for x in self.early_lightcurves]
        return []

    def predictions_file(self) -> Path:
        """`output_predict_file`, under output_path when it names no folder (SCONE's meaning);
        default output_path/predictions.csv."""
        name = self.output_predict_file or "predictions.csv"
        if os.sep in name or (os.altsep and os.altsep in name):
            return Path(name)
        return Path(self.effective_output_path()) / name

    def effective_output_path(self) -> str:
        if self.output_path:
            return self.output_path
        if self.heatmaps_path:
            return self.heatmaps_path
        raise ConfigError("output_path (or heatmaps_path) is required for this step")


# The settings for real survey data classified by a model trained on a `--like` simulation,
# measured on yse_dev and LOWZ_REAL (BENCHMARKS.md); SCONE's defaults stay for test data
# simulated as the training set is (SNPCC), where augmentation cost a point of accuracy.
SURVEY_TRAIN_SETTINGS: dict[str, Any] = {"augment_copies": 2, "with_z": False}  # with z it fell short
SURVEY_PREDICT_SETTINGS: dict[str, Any] = {"class_prior": "data"}


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = err.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {key}: {err['msg']}{got_s}")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> SconeConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"config {source} must be a YAML mapping of keys to values")
    try:
        return SconeConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_config(path: str | os.PathLike[str], **overrides: Any) -> SconeConfig:
    """Read a SCONE YAML config; `overrides` (CLI flags) win over the file."""
    path = Path(expand(str(path)))
    data = read_mapping(path, ConfigError)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(data, str(path))
