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

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the key."""


class UnknownConfigKeyWarning(UserWarning):
    pass


def expand(path: str) -> str:
    """Expand `$VARS` and `~` as SCONE users expect in every path key."""
    return os.path.expanduser(os.path.expandvars(str(path)))


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
    max_per_type: int | None = Field(None, ge=1)
    with_z: bool = False
    seed: int = 42
    early_stopping_patience: int | None = Field(None, ge=1)  # epochs without val_loss gain; best weights kept
    # one object, one row: an SNID met twice in a role's inputs is refused unless the user
    # says which copy counts ("first": the first unit in input order; "drop": neither)
    duplicate_snids: Literal["error", "first", "drop"] = "error"
    # temperature scaling of the output probabilities, fitted on the validation objects
    calibrate: bool = True
    # with_z models on data without REDSHIFT_FINAL: refuse, or feed SCONE's -9 placeholder
    missing_redshift: Literal["error", "placeholder"] = "error"
    # learning rate per epoch: SCONE's constant 5e-5; cosine decay over num_epochs; or halved
    # (lr_plateau_factor) after lr_plateau_patience epochs without a val_loss gain
    lr_schedule: Literal["constant", "cosine", "plateau"] = "constant"
    lr_plateau_factor: float = Field(0.5, gt=0, lt=1)
    lr_plateau_patience: int = Field(5, ge=1)
    # members trained with seeds seed, seed+1, ... on one split; predictions average them
    ensemble_size: int = Field(1, ge=1)

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

    @field_validator("metadata_paths", "lcdata_paths", "input_data_paths", mode="before")
    @classmethod
    def _path_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        return [expand(p) for p in v] if v is not None else None

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
        for key in extra:
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

    def effective_output_path(self) -> str:
        if self.output_path:
            return self.output_path
        if self.heatmaps_path:
            return self.heatmaps_path
        raise ConfigError("output_path (or heatmaps_path) is required for this step")


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
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a YAML mapping of keys to values "
                          f"(its top level is a {type(data).__name__})")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(data, str(path))
