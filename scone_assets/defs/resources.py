"""One SCONE YAML drives the CLI and the platform: the resource reads it."""


import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from scone_assets.config import SconeConfig, load_config
from scone_assets.defs.partitions import ROLES, Role
from scone_assets.snana.read import InputUnit, discover


class SconeResource(dg.ConfigurableResource):
    """The train and predict SCONE configs, plus run-time knobs overridable from the launchpad."""

    train_config_path: str = Field(description="SCONE YAML for the training simulations")
    predict_config_path: str | None = Field(None, description="SCONE YAML for the data to classify")
    output_root: str | None = Field(None, description="overrides output_path/heatmaps_path of both configs; "
                                    "a local folder or any fsspec URL (remote roots are staged locally)")
    train_input_path: str | None = Field(None, description="overrides the train config's inputs (any fsspec URL)")
    predict_input_path: str | None = Field(None, description="overrides the predict config's inputs (any fsspec URL)")
    jobs: int | None = Field(None, description="heatmap worker processes (default: all cores)")
    gp_backend: str | None = Field(None, description="fast or george")
    # the survey_like flow (`scone simulate --like` as assets); defaults as the CLI's
    like_n: int = Field(5000, ge=1,
                        description="light curves in the simulation like the survey data")
    like_seed: int = Field(1, description="seed of the simulation like the survey data")
    like_num_epochs: int | None = Field(None, ge=1, description="epochs of the like model "
                                        "(default: the train config's num_epochs)")
    like_ia_dust_tau: float | None = Field(None, gt=0, le=5, description="SN Ia host dust A_V ~ "
                                           "Exponential(this), mag, as `scone simulate --ia-dust-tau` "
                                           "(default: BayeSN's 0.252)")

    def config(self, role: Role) -> SconeConfig:
        path = self.train_config_path if role == "train" else self.predict_config_path
        if not path:
            raise dg.Failure(f"no {role} config: set predict_config_path on the scone resource")
        overrides = {}
        if self.output_root:
            local = self.local_root()
            overrides = {"output_path": str(local / role), "heatmaps_path": str(local / "heatmaps")}
        if self.gp_backend:
            overrides["gp_backend"] = self.gp_backend
        input_path = self.train_input_path if role == "train" else self.predict_input_path
        if input_path:
            overrides["input_path"] = input_path
        cfg = load_config(path, **overrides)
        if input_path:  # the launchpad's input root replaces the config's, however it named them
            cfg = cfg.model_copy(update={"metadata_paths": None, "lcdata_paths": None, "input_data_paths": None})
        if not cfg.heatmaps_path and cfg.output_path:
            cfg.heatmaps_path = str(Path(cfg.output_path) / "heatmaps")
        return cfg

    @property
    def remote(self) -> bool:
        return bool(self.output_root) and "://" in self.output_root and not self.output_root.startswith("file://")

    def local_root(self) -> Path:
        """Where the library writes: the output root itself, or for a remote root a local
        staging folder (SCONE_STAGING, default under the temporary folder) mirrored to it."""
        if not self.output_root:
            return Path(self.config("train").effective_output_path())
        if not self.remote:
            return Path(self.output_root.removeprefix("file://"))
        import hashlib
        import tempfile

        base = Path(os.environ.get("SCONE_STAGING", Path(tempfile.gettempdir()) / "scone_staging"))
        return base / hashlib.sha256(self.output_root.encode()).hexdigest()[:16]

    def _remote(self, local: Path):
        import fsspec

        url = f"{self.output_root.rstrip('/')}/{local.relative_to(self.local_root()).as_posix()}"
        return fsspec.core.url_to_fs(url)

    def push(self, local: Path) -> str | None:
        """Copy a staged file or folder, file by file, to the same place under the remote root."""
        if not self.remote:
            return None
        fs, path = self._remote(local)
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for f in files:
            target = path if f == local else f"{path}/{f.relative_to(local).as_posix()}"
            fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(f), target)
        return f"{self.output_root.rstrip('/')}/{local.relative_to(self.local_root()).as_posix()}"

    def pull(self, local: Path) -> bool:
        """Fetch a file or folder from the remote root into staging unless it is there already."""
        if not self.remote or local.exists():
            return local.exists()
        fs, path = self._remote(local)
        if not fs.exists(path):
            return False
        if fs.isdir(path):
            for remote_file in fs.find(path):
                rel = remote_file[len(path.rstrip("/")) + 1:] if remote_file.startswith(path.rstrip("/")) else \
                    remote_file.rsplit("/", 1)[-1]
                dest = local / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(remote_file, str(dest))
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(path, str(local))
        return True

    def remote_names(self, local: Path) -> list[str]:
        """Names in the remote copy of a staged folder (none for a local root)."""
        if not self.remote:
            return []
        fs, path = self._remote(local)
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)] if fs.exists(path) else []

    def roles(self) -> list[Role]:
        return [r for r in ROLES if r == "train" or self.predict_config_path]

    def units(self, role: Role) -> list[InputUnit]:
        return discover(self.config(role)).units

    def unit(self, role: Role, unit_key: str) -> tuple[SconeConfig, InputUnit]:
        cfg = self.config(role)
        for unit in discover(cfg).units:
            if unit.key == unit_key:
                return cfg, unit
        what = "training simulation" if role == "train" else "survey data"
        raise dg.Failure(f"{what} partition {unit_key}: no such input unit under the {role} "
                         "config's inputs any more")

    def partition_keys(self) -> dict[Role, list[str]]:
        """The input units of each config: the partitions of each partition set."""
        return {role: [u.key for u in self.units(role)] for role in self.roles()}
