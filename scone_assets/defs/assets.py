"""The pipeline as assets, one group per stage: SNANA -> catalog -> heatmaps -> model -> predictions.

Each asset calls the library and reports what it did; failures carry the
library's own message (the file, the key, the value).
"""


import base64
import os
from pathlib import Path

import dagster as dg
import pandas as pd

from scone_assets.defs import checks
from scone_assets.defs.io_managers import HeatmapSet
from scone_assets.defs.partitions import snana_partitions, split_key
from scone_assets.defs.resources import SconeResource
from scone_assets.snana.lightcurves import SnanaReadError


def _read(scone: SconeResource, key: str):
    """(role, config, input unit, light curves) of a partition; a bad file is a Failure with its message."""
    from scone_assets.config import ConfigError
    from scone_assets.snana import select
    from scone_assets.snana.read import discover, load_labels, read_unit

    role, cfg, unit = scone.unit(key)
    try:
        labels = load_labels(cfg.labels_path)
        lcs = read_unit(unit, cfg, labels)
        # the training-set selection (snid_select_files, DUMP, prescale), decided over every
        # input as `scone heatmaps` decides it, so the catalog lists what gets heatmaps
        units = discover(cfg).units if cfg.has_inputs else [unit]
        lcs, _ = select.apply(lcs, select.plan(cfg, units, labels).for_unit(unit.key, unit.files))
        return role, cfg, unit, lcs
    except (SnanaReadError, ConfigError) as exc:
        raise dg.Failure(description=str(exc)) from None


def _one_row_per_object(frame: pd.DataFrame, policy: str, what: str) -> pd.DataFrame:
    """SNIDs met in more than one partition: refused (naming both) unless `duplicate_snids`
    says which copy counts, as the library does for heatmaps."""
    dup = frame[frame.SNID.duplicated(keep=False)]
    if not len(dup):
        return frame
    where = dup.groupby("SNID")["partition"].agg(lambda p: " and ".join(map(str, p)))
    text = "; ".join(f"SNID {snid} in {parts}" for snid, parts in where.head(5).items())
    if policy == "error":
        raise dg.Failure(description=f"{what}: {len(where)} SNID(s) appear more than once ({text}). Remove the "
                         "duplicate files, or set duplicate_snids: first or drop in the config")
    keep = ~frame.SNID.duplicated(keep="first" if policy == "first" else False)
    return frame[keep].reset_index(drop=True)


def _md_table(counts: dict[str, int], header: str = "count") -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(counts.items()))
    return f"| class | {header} |\n|---|---|\n{rows}"


def _png_md(path: Path, alt: str) -> dg.MetadataValue:
    data = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


@dg.asset(partitions_def=snana_partitions, group_name="snana", kinds={"python"},
          description="One SNANA input unit: a HEAD/PHOT pair or a list of TEXT light curves.")
def snana_files(context: dg.AssetExecutionContext, scone: SconeResource) -> dg.Output[dict]:
    role, _, _, lcs = _read(scone, context.partition_key)
    for w in lcs.warnings:
        context.log.warning(w)
    return dg.Output(
        {"role": role, "unit": split_key(context.partition_key)[1], "source": lcs.source},
        metadata={
            "light_curves": len(lcs),
            "types": dg.MetadataValue.md(_md_table(lcs.counts_by_type())),
            "bands": " ".join(lcs.bands),
            "survey": lcs.survey or "unknown",
            "data": "simulated" if lcs.is_sim else "real",
            "skipped": dg.MetadataValue.json(lcs.skipped_by_reason()),
            "role": role,
        },
    )


@dg.asset(partitions_def=snana_partitions, group_name="catalog", io_manager_key="parquet_io_manager",
          kinds={"pandas", "parquet"}, deps=[snana_files],
          description="One row per light curve: SNID, type, redshift, PEAKMJD, MWEBV, number of observations.")
def lightcurve_catalog(context: dg.AssetExecutionContext, scone: SconeResource) -> pd.DataFrame:
    _, _, _, lcs = _read(scone, context.partition_key)
    cat = lcs.meta[["SNID", "TYPE", "TYPE_NAME", "REDSHIFT_FINAL", "REDSHIFT_FINAL_ERR", "PEAKMJD", "MWEBV",
                    "NOBS"]].copy()
    cat["SNID"] = cat.SNID.astype(str)
    cat["partition"] = context.partition_key
    return cat


@dg.asset(group_name="catalog", io_manager_key="parquet_io_manager", kinds={"pandas", "parquet"},
          check_specs=[checks.class_balance_spec],
          description="Training light curves with class balancing and the seeded train/validation/test split.")
def balanced_catalog(context: dg.AssetExecutionContext, scone: SconeResource,
                     lightcurve_catalog: dict[str, pd.DataFrame]):
    from scone_assets.config import ConfigError
    from scone_assets.model.train import make_labels, select_training_set, split_snids

    cfg = scone.config("train")
    frames = [df for key, df in lightcurve_catalog.items() if split_key(key)[0] == "train"]
    if not frames:
        raise dg.Failure("no training partitions have a lightcurve_catalog yet")
    cat = _one_row_per_object(pd.concat(frames, ignore_index=True), cfg.duplicate_snids, "training partitions")
    try:  # Ia_fraction, categorical_min/max_per_type: chosen here as `scone train` chooses them
        keep, chosen = select_training_set(cat.TYPE_NAME, cfg)
    except ConfigError as exc:
        raise dg.Failure(description=str(exc)) from None
    if chosen:
        context.log.info(f"training-set keys kept {int(keep.sum())} of {len(cat)} light curves: {chosen}")
        cat = cat[keep].reset_index(drop=True)
    labels = make_labels(cat.TYPE_NAME, cfg.categorical)
    split = split_snids(cat.SNID.to_numpy(), labels.encode(cat.TYPE_NAME), cfg)
    out = split.merge(cat[["SNID", "TYPE_NAME", "REDSHIFT_FINAL", "partition"]], on="SNID")
    out["label_name"] = [labels.classes[i] for i in out.label]
    before = cat.TYPE_NAME.value_counts().to_dict()
    after = out.TYPE_NAME.value_counts().to_dict()
    table = "| class | before | after |\n|---|---|---|\n" + "\n".join(
        f"| {k} | {before.get(k, 0)} | {after.get(k, 0)} |" for k in sorted(before))
    yield dg.Output(out, metadata={"class_counts": dg.MetadataValue.md(table), "rows": len(out),
                                   "sets": dg.MetadataValue.json(out.set.value_counts().to_dict())})
    yield checks.class_balance(out)


@dg.asset(partitions_def=snana_partitions, group_name="heatmaps", io_manager_key="heatmap_io_manager",
          kinds={"tensorflow"}, deps=[snana_files], check_specs=[checks.heatmap_yield_spec],
          description="GP heatmaps of one input unit: TFRecord shard, index and summary.")
def heatmaps(context: dg.AssetExecutionContext, scone: SconeResource):
    from scone_assets.heatmaps.make import start_worker
    from scone_assets.heatmaps.run import heatmaps_for_unit
    from scone_assets.heatmaps.store import SHARD, read_shard
    from scone_assets.model.evaluate import plot_examples
    from scone_assets.workers import WorkerPool

    _, cfg, unit = scone.unit(context.partition_key)
    with WorkerPool(max(1, scone.jobs or cfg.jobs or os.cpu_count() or 1), start_worker) as pool:
        try:
            results = heatmaps_for_unit(unit, cfg, pool, backend=scone.gp_backend or cfg.gp_backend)
        except Exception as exc:  # the library's message, in the run's log and the failure
            raise dg.Failure(description=f"heatmaps for {context.partition_key}: {exc}") from exc
    for r in results:
        context.log.info(f"{r.status} {r.unit} [{r.heatmap_set}]: {r.written} heatmaps, skipped {r.skipped}"
                         + (f", remade: {'; '.join(r.reasons)}" if r.reasons else ""))
        for bad in r.bad_files:
            context.log.warning(f"bad file skipped: {bad}")
        if r.dropped_bands:
            context.log.warning(f"observations dropped in unplaceable bands: {r.dropped_bands}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise dg.Failure(description="; ".join(f"heatmaps for {context.partition_key} [{r.heatmap_set}]: "
                                               f"{r.error}" for r in failed))
    written = sum(r.written for r in results)
    skipped: dict[str, int] = {}
    for r in results:
        for k, v in r.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
    minutes = sum(r.seconds for r in results) / 60
    metadata = {"written": written, "skipped": dg.MetadataValue.json(skipped),
                "heatmaps_per_minute": round(written / minutes, 1) if minutes else 0.0,
                "sets": ", ".join(r.heatmap_set for r in results),
                "status": ", ".join(sorted({r.status for r in results})),
                "bad_files": dg.MetadataValue.json(sorted({b for r in results for b in r.bad_files})),
                "dropped_observations": dg.MetadataValue.json(
                    {b: n for r in results for b, n in r.dropped_bands.items()})}
    if written:
        first = next(r for r in results if r.written)
        rec = next(read_shard(first.folder / SHARD, (cfg.num_wavelength_bins, cfg.num_mjd_bins)))
        target = Path(cfg.effective_output_path()) / "examples" / f"{first.unit}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        png = plot_examples(rec["image"][None], [f"{rec['type_name']} {rec['snid']}"], target,
                            waves=(3000.0, 10100.0))
        metadata["example_heatmap"] = _png_md(png, "example heatmap")
    yield dg.Output({"folders": [str(r.folder) for r in results]}, metadata=metadata)
    yield checks.heatmap_yield(written, skipped)


@dg.asset(group_name="model", io_manager_key="model_io_manager", kinds={"tensorflow", "keras"},
          ins={"heatmaps": dg.AssetIn(), "balanced_catalog": dg.AssetIn()},
          check_specs=[checks.accuracy_floor_spec],
          description="SCONE's CNN trained on the training partitions' heatmaps.")
def trained_model(context: dg.AssetExecutionContext, scone: SconeResource, heatmaps: HeatmapSet,
                  balanced_catalog: pd.DataFrame):
    from scone_assets.model.train import default_model_dir, train

    cfg = scone.config("train")
    train_set = heatmaps.for_role("train")
    catalogs = train_set.catalogs()
    plan = train_set.plan()
    context.log.info(f"training with the {plan.kind} loader")
    band_to_wave: dict = {}
    for cat in catalogs.values():
        band_to_wave.update(cat.band_to_wave)
    out = default_model_dir(cfg)
    split = balanced_catalog[["SNID", "label", "set"]]
    if out.exists():
        context.log.info(f"replacing the model in {out}: materializing trained_model asks for a new one")
    metrics = train(cfg, catalogs, out, band_to_wave=band_to_wave, progress=False, split=split, force=True)
    t = metrics["test"]
    yield dg.Output(str(out), metadata={
        "accuracy": float(t["accuracy"]), "auc": float(t["auc"]), "purity": float(t["purity"]),
        "efficiency": float(t["efficiency"]), "n_test": int(t["n"]), "loader": plan.kind,
        "roc": _png_md(out / "roc.png", "ROC"), "confusion_matrix": _png_md(out / "confusion_matrix.png", "confusion"),
    })
    yield checks.accuracy_floor(t)


@dg.asset(partitions_def=snana_partitions, group_name="predictions", io_manager_key="parquet_io_manager",
          kinds={"pandas", "csv"}, ins={"heatmaps": dg.AssetIn(), "trained_model": dg.AssetIn()},
          description="Pippin-ready predictions (SNID, PROB_SCONE, ...) for one survey-data partition, "
                      "and the combined predictions file.")
def predictions(context: dg.AssetExecutionContext, scone: SconeResource, heatmaps: HeatmapSet,
                trained_model: Path) -> dg.Output[pd.DataFrame]:
    from scone_assets.model.predict import predict

    role, unit = split_key(context.partition_key)
    if role != "predict":
        raise dg.Failure(f"{context.partition_key} is a training partition; predictions are made for "
                         "'predict:' partitions (the survey data to classify)")
    cfg = scone.config("predict")
    folder = Path(cfg.effective_output_path()) / "predictions"
    table = predict(cfg, heatmaps.catalog(), trained_model, folder / f"{unit}.csv")
    parts = sorted(p for p in folder.glob("*.csv") if not p.name.endswith(".skipped.csv"))
    combined = pd.concat([pd.read_csv(p, dtype={"SNID": str}).assign(partition=p.stem) for p in parts],
                         ignore_index=True)
    combined = _one_row_per_object(combined, cfg.duplicate_snids, "predict partitions").drop(columns="partition")
    from scone_assets.atomic import atomic_path

    target = cfg.predictions_file()
    with atomic_path(target) as tmp:
        combined.to_csv(tmp, index=False)
    for staged in (folder, target):
        if staged.is_relative_to(scone.local_root()):
            scone.push(staged)  # a remote output root gets the same files
    return dg.Output(table, metadata={"light_curves": len(table), "file": dg.MetadataValue.path(str(folder / f"{unit}.csv")),
                                      "combined_file": dg.MetadataValue.path(str(target)),
                                      "combined_rows": len(combined)})
