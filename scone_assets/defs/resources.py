"""One SCONE YAML drives the CLI and the platform: the resource reads it."""


from pathlib import Path

import dagster as dg
from pydantic import Field

from scone_assets.config import SconeConfig, load_config
from scone_assets.defs.partitions import partition_key, split_key
from scone_assets.snana.read import InputUnit, discover


class SconeResource(dg.ConfigurableResource):
    """The train and predict SCONE configs, plus run-time knobs overridable from the launchpad."""

    train_config_path: str = Field(description="SCONE YAML for the training simulations")
    predict_config_path: str | None = Field(None, description="SCONE YAML for the data to classify")
    output_root: str | None = Field(None, description="overrides output_path/heatmaps_path of both configs")
    jobs: int | None = Field(None, description="heatmap worker processes (default: all cores)")
    gp_backend: str | None = Field(None, description="fast or george")

    def config(self, role: str) -> SconeConfig:
        path = self.train_config_path if role == "train" else self.predict_config_path
        if not path:
            raise dg.Failure(f"no {role} config: set predict_config_path on the scone resource")
        overrides = {}
        if self.output_root:
            overrides = {"output_path": str(Path(self.output_root) / role),
                         "heatmaps_path": str(Path(self.output_root) / "heatmaps")}
        if self.gp_backend:
            overrides["gp_backend"] = self.gp_backend
        cfg = load_config(path, **overrides)
        if not cfg.heatmaps_path and cfg.output_path:
            cfg.heatmaps_path = str(Path(cfg.output_path) / "heatmaps")
        return cfg

    def roles(self) -> list[str]:
        return ["train"] + (["predict"] if self.predict_config_path else [])

    def units(self, role: str) -> list[InputUnit]:
        return discover(self.config(role)).units

    def unit(self, key: str) -> tuple[str, SconeConfig, InputUnit]:
        role, unit_key = split_key(key)
        cfg = self.config(role)
        for unit in discover(cfg).units:
            if unit.key == unit_key:
                return role, cfg, unit
        raise dg.Failure(f"partition {key}: no input unit {unit_key!r} under the {role} config's inputs any more")

    def all_partition_keys(self) -> list[str]:
        return [partition_key(role, u.key) for role in self.roles() for u in self.units(role)]
