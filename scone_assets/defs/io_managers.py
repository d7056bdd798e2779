"""Where assets live, and how they come back.

- Catalogs: Parquet, one file per partition.
- Heatmaps: the library writes each partition's shard, index and summary under the
  heatmaps root; loading returns a `HeatmapSet` whose loader is in memory or
  streaming by SCONE's rules (`plan_loading`): the IO manager makes that choice.
  Nothing is read until a consumer asks for arrays or a dataset.
- Models: `trained_model` is the newest model version's folder, `promoted_model` the
  promoted one's (model/versions.py keeps both records); loading returns the path.
"""


import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import fsspec
import pandas as pd

from scone_assets.atomic import atomic_path, atomic_write_text
from scone_assets.config import SconeConfig
from scone_assets.defs.partitions import role_of
from scone_assets.defs.resources import SconeResource
from scone_assets.heatmaps import store
from scone_assets.heatmaps.store import HeatmapCatalog
from scone_assets.model.loaders import LoaderPlan, load_arrays, plan_loading


def _safe(key: str) -> str:
    return key.replace(":", "__").replace("/", "_")


class ParquetIOManager(dg.ConfigurableIOManager):
    """Parquet per partition under `base_dir`: a local folder or any fsspec URL."""

    base_dir: str

    def _path(self, context, key: str | None) -> str:
        return "/".join([self.base_dir.rstrip("/"), *context.asset_key.path, f"{_safe(key) if key else 'all'}.parquet"])

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        key = context.partition_key if context.has_partition_key else None
        path = self._path(context, key)
        if "://" in path:
            with fsspec.open(path, "wb") as fh:
                obj.to_parquet(fh, index=False)
        else:
            with atomic_path(path) as tmp:
                obj.to_parquet(tmp, index=False)
        context.add_output_metadata({"path": dg.MetadataValue.path(path), "rows": len(obj)})

    def _read(self, path: str) -> pd.DataFrame | None:
        fs, p = fsspec.core.url_to_fs(path)
        if not fs.exists(p):
            return None
        with fsspec.open(path, "rb") as fh:
            return pd.read_parquet(fh)

    def load_input(self, context: dg.InputContext):
        """One partition's frame for a same-partition consumer; {partition: frame} for a consumer
        of many partitions (e.g. the unpartitioned balanced catalog)."""
        up = context.upstream_output
        if not context.has_asset_partitions:
            return self._read(self._path(up, None))
        frames = {k: df for k in context.asset_partition_keys if (df := self._read(self._path(up, k))) is not None}
        if context.has_partition_key and len(context.asset_partition_keys) == 1:
            return next(iter(frames.values()))
        return frames


@dataclass
class HeatmapSet:
    """Heatmap shards of some partitions (and heatmap sets), with the loading choice for them."""

    folders: list[tuple[str, str, Path]]  # (partition key, heatmap set, unit folder)
    config: SconeConfig

    def fingerprints(self) -> dict[str, str]:
        """Partition -> digest of what made its heatmaps (inputs, labels, settings): a model
        version records these, so its training data can be told apart from any other."""
        out = {}
        for key, _, folder in self.present():
            rec = store.read_unit_record(folder)
            text = json.dumps(rec.fingerprint, sort_keys=True, default=str)
            out[key] = hashlib.sha256(out.get(key, "").encode() + text.encode()).hexdigest()[:16]
        return out

    def present(self) -> list[tuple[str, str, Path]]:
        return [f for f in self.folders if store.read_unit_record(f[2]) is not None]

    def catalogs(self) -> dict[str, HeatmapCatalog]:
        """One catalog per heatmap set (`full`, or one per early truncation)."""
        by_set: dict[str, list[Path]] = {}
        for _, name, folder in self.present():
            by_set.setdefault(name, []).append(folder)
        if not by_set:
            raise dg.Failure("no materialized heatmap partitions to load")
        return {name: store.load_catalog(folders) for name, folders in by_set.items()}

    def catalog(self) -> HeatmapCatalog:
        return store.merge_catalogs(list(self.catalogs().values()))

    def plan(self) -> LoaderPlan:
        cat = self.catalog()
        return plan_loading(self.config, len(cat), cat.total_bytes)

    def arrays(self, chunk: int = 512) -> dict:
        """In-memory loader: every heatmap in NumPy arrays, parsed `chunk` at a time."""
        return load_arrays(self.catalog(), batch=chunk)

    def dataset(self, batch: int | None = None):
        """Streaming loader: a batched, prefetched tf.data pipeline over the shards."""
        import tensorflow as tf

        return store.records_of(self.catalog()).batch(batch or self.config.batch_size).prefetch(tf.data.AUTOTUNE)

    def loader(self):
        """What the rules pick: `arrays()` below the threshold, `dataset()` at or above it,
        with the plan's chunk and batch sizes."""
        plan = self.plan()
        if plan.kind == "streaming":
            return self.dataset(plan.inference_batch), plan
        return self.arrays(plan.chunk_size), plan


class HeatmapIOManager(dg.ConfigurableIOManager):
    scone: dg.ResourceDependency[SconeResource]

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        remote = [self.scone.push(Path(f)) for f in obj["folders"]]
        context.add_output_metadata({"folders": dg.MetadataValue.json([str(f) for f in obj["folders"]]),
                                     "stored_at": dg.MetadataValue.json([r or str(f) for r, f in
                                                                         zip(remote, obj["folders"], strict=True)])})

    def load_input(self, context: dg.InputContext) -> HeatmapSet:
        from scone_assets.heatmaps.run import heatmap_sets

        keys = context.asset_partition_keys if context.has_asset_partitions else []
        cfg = self.scone.config(role_of(context.asset_partitions_def))  # one read, however many keys
        folders = [(key, name, store.unit_folder(cfg.heatmaps_path, name, key))
                   for key in keys for name, _ in heatmap_sets(cfg)]
        for _, _, folder in folders:
            self.scone.pull(folder)  # a remote output root: fetch the shards into local staging
        hs = HeatmapSet(folders, cfg)
        if hs.present():
            plan = hs.plan()
            context.log.info(f"heatmaps of {len(hs.present())} unit(s): {plan.kind} loader ({'; '.join(plan.notes)})")
        return hs


class ModelIOManager(dg.ConfigurableIOManager):
    """Model folders are written by training, one per version. `trained_model` stands for the
    newest version (a pointer file here); `promoted_model` for the one versions.promote
    recorded, read from that record alone so the two can never disagree."""

    scone: dg.ResourceDependency[SconeResource]
    promoted_asset: str = "promoted_model"

    def _root(self) -> Path:
        return self.scone.local_root() / "models"

    def handle_output(self, context: dg.OutputContext, obj: str) -> None:
        asset = context.asset_key.path[-1]
        if asset != self.promoted_asset:
            pointer = self._root() / f"{asset}.json"
            atomic_write_text(pointer, json.dumps({"model_dir": str(obj), "version": Path(obj).name,
                                                   "run_id": context.run_id}))
            self.scone.push(pointer)
        stored = self.scone.push(Path(obj))
        context.add_output_metadata({"model_dir": dg.MetadataValue.path(str(obj)),
                                     "stored_at": dg.MetadataValue.path(stored or str(obj))})

    def load_input(self, context: dg.InputContext) -> Path:
        from scone_assets.model import versions

        asset = context.upstream_output.asset_key.path[-1]
        root = self._root()
        if asset == self.promoted_asset:
            self.scone.pull(root / versions.PROMOTED_FILE)
            name = versions.promoted(root)
            if name is None:
                raise dg.Failure("no model version has been promoted yet (materialize trained_model, "
                                 "then promoted_model)")
            model_dir = versions.version_dir(root, name)
        else:
            pointer = root / f"{asset}.json"
            if not self.scone.pull(pointer):
                raise dg.Failure(f"{asset} has not been materialized yet")
            model_dir = Path(json.loads(pointer.read_text())["model_dir"])
        self.scone.pull(model_dir)
        return model_dir
