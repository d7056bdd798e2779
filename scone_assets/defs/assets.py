"""The pipeline as assets: SNANA -> catalog -> heatmaps -> model versions -> predictions.

Training simulations and survey data each have their own files, catalog and heatmaps
assets, partitioned over their own partition set (`training_*` over `training_sims`,
`survey_*` over `survey_data`). Every `trained_model` materialization is a new model
version; `promoted_model` promotes it only when its blocking checks passed and it is not
worse than the promoted one on the same held-out data; `predictions` of each survey
partition name the version that made them, and are refreshed when a version is promoted.
Each asset calls the library and reports what it did; failures carry the library's own
message (the file, the key, the value).
"""


import os
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from scone_assets.defs import checks
from scone_assets.defs.io_managers import HeatmapSet
from scone_assets.defs.partitions import PARTITIONS, Role, survey_partitions
from scone_assets.defs.pictures import picture_metadata
from scone_assets.defs.resources import SconeResource
from scone_assets.snana.lightcurves import SnanaReadError

STAGE: dict[Role, str] = {"train": "training", "predict": "survey"}  # asset name prefixes
GROUP: dict[Role, str] = {"train": "training_data", "predict": "survey_data"}


def files_asset(role: Role) -> str:
    return f"{STAGE[role]}_files"


def catalog_asset(role: Role) -> str:
    return f"{STAGE[role]}_catalog"


def heatmaps_asset(role: Role) -> str:
    return f"{STAGE[role]}_heatmaps"


def _read(scone: SconeResource, role: Role, key: str):
    """(config, input unit, light curves) of a partition; a bad file is a Failure with its message."""
    from scone_assets.config import ConfigError
    from scone_assets.snana import select
    from scone_assets.snana.read import discover, load_labels, read_unit

    cfg, unit = scone.unit(role, key)
    try:
        labels = load_labels(cfg.labels_path)
        lcs = read_unit(unit, cfg, labels)
        # the training-set selection (snid_select_files, DUMP, prescale), decided over every
        # input as `scone heatmaps` decides it, so the catalog lists what gets heatmaps
        units = discover(cfg).units if cfg.has_inputs else [unit]
        lcs, _ = select.apply(lcs, select.plan(cfg, units, labels).for_unit(unit.key, unit.files))
        return cfg, unit, lcs
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




def _stage(role: Role) -> list[dg.AssetsDefinition]:
    """The files, catalog and heatmaps assets of one partition set."""
    pdef = PARTITIONS[role]
    what = "a training simulation" if role == "train" else "the survey data to classify"

    @dg.asset(name=files_asset(role), partitions_def=pdef, group_name=GROUP[role], kinds={"python"},
              description=f"One SNANA input unit of {what}: a HEAD/PHOT pair or a list of TEXT "
                          "light curves.")
    def files(context: dg.AssetExecutionContext, scone: SconeResource) -> dg.Output[dict]:
        _, _, lcs = _read(scone, role, context.partition_key)
        for w in lcs.warnings:
            context.log.warning(w)
        return dg.Output(
            {"role": role, "unit": context.partition_key, "source": lcs.source},
            metadata={
                "light_curves": len(lcs),
                "types": dg.MetadataValue.md(_md_table(lcs.counts_by_type())),
                "bands": " ".join(lcs.bands),
                "survey": lcs.survey or "unknown",
                "data": "simulated" if lcs.is_sim else "real",
                "skipped": dg.MetadataValue.json(lcs.skipped_by_reason()),
            },
        )

    @dg.asset(name=catalog_asset(role), partitions_def=pdef, group_name=GROUP[role],
              io_manager_key="parquet_io_manager", kinds={"pandas", "parquet"}, deps=[files],
              description="One row per light curve: SNID, type, redshift, PEAKMJD, MWEBV, number "
                          "of observations.")
    def catalog(context: dg.AssetExecutionContext, scone: SconeResource) -> pd.DataFrame:
        _, _, lcs = _read(scone, role, context.partition_key)
        cat = lcs.meta[["SNID", "TYPE", "TYPE_NAME", "REDSHIFT_FINAL", "REDSHIFT_FINAL_ERR", "PEAKMJD",
                        "MWEBV", "NOBS"]].copy()
        cat["SNID"] = cat.SNID.astype(str)
        cat["partition"] = context.partition_key
        return cat

    @dg.asset(name=heatmaps_asset(role), partitions_def=pdef, group_name=GROUP[role],
              io_manager_key="heatmap_io_manager", kinds={"tensorflow"}, deps=[files],
              check_specs=[checks.heatmap_yield_spec(heatmaps_asset(role))],
              description="GP heatmaps of one input unit: TFRecord shard, index and summary.")
    def heatmaps(context: dg.AssetExecutionContext, scone: SconeResource):
        yield from _make_heatmaps(context, scone, role)

    return [files, catalog, heatmaps]


def _make_heatmaps(context: dg.AssetExecutionContext, scone: SconeResource, role: Role):
    from scone_assets.heatmaps.make import start_worker
    from scone_assets.heatmaps.run import heatmaps_for_unit
    from scone_assets.heatmaps.store import SHARD, read_shard
    from scone_assets.model.evaluate import plot_examples
    from scone_assets.workers import WorkerPool

    cfg, unit = scone.unit(role, context.partition_key)
    with WorkerPool(max(1, scone.jobs or cfg.jobs or os.cpu_count() or 1), start_worker) as pool:
        try:
            results = heatmaps_for_unit(unit, cfg, pool, backend=scone.gp_backend or cfg.gp_backend,
                                        on_progress=lambda p: context.log.info(p.text()))
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
        metadata |= picture_metadata(png, "example heatmap", "example_heatmap")
    yield dg.Output({"folders": [str(r.folder) for r in results]}, metadata=metadata)
    yield checks.heatmap_yield(written, skipped)


training_files, training_catalog, training_heatmaps = _stage("train")
survey_files, survey_catalog, survey_heatmaps = _stage("predict")


@dg.asset(group_name="model", io_manager_key="parquet_io_manager", kinds={"pandas", "parquet"},
          check_specs=[checks.class_balance_spec], automation_condition=dg.AutomationCondition.eager(),
          description="Training light curves with class balancing and the seeded train/validation/test split.")
def balanced_catalog(context: dg.AssetExecutionContext, scone: SconeResource,
                     training_catalog: dict[str, pd.DataFrame]):
    from scone_assets.config import ConfigError
    from scone_assets.model.train import make_labels, select_training_set, split_snids

    cfg = scone.config("train")
    frames = list(training_catalog.values())
    if not frames:
        raise dg.Failure("no training_sims partitions have a training_catalog yet")
    cat = _one_row_per_object(pd.concat(frames, ignore_index=True), cfg.duplicate_snids, "training partitions")
    try:  # Ia_fraction, categorical_min/max_per_type: chosen here as `scone train` chooses them
        keep, chosen = select_training_set(cat.TYPE_NAME, cfg)
    except ConfigError as exc:
        raise dg.Failure(description=str(exc)) from None
    if chosen:
        context.log.info(f"training-set keys kept {int(keep.sum())} of {len(cat)} light curves: {chosen}")
        cat = cat[keep].reset_index(drop=True)
    labels = make_labels(cat.TYPE_NAME, cfg.categorical, cfg.count_as_ia)
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


def models_root(scone: SconeResource) -> Path:
    return scone.local_root() / "models"


def _rounded(test: dict) -> dict[str, float]:
    """Test figures to the precision they carry (a few hundred objects: three decimals)."""
    return {k: round(float(test[k]), 3) for k in ("accuracy", "auc", "purity", "efficiency")} | {
        "n_test": int(test["n"])}


def _model_pictures(folder: Path) -> dict:
    from scone_assets.model.folder import CONFUSION_PNG, ROC_PNG

    out: dict = {}
    for name, alt, key in ((ROC_PNG, "ROC curve", "roc"), (CONFUSION_PNG, "confusion matrix", "confusion_matrix")):
        if (folder / name).is_file():
            out |= picture_metadata(folder / name, alt, key)
    return out


def _retrain_condition() -> dg.AutomationCondition:
    """New training heatmaps (once none is missing or in progress) retrain, as the old retrain
    sensor did; SCONE_RETRAIN_CRON adds a retraining at every tick, as the old schedule did."""
    cond = dg.AutomationCondition.eager()
    if cron := os.environ.get("SCONE_RETRAIN_CRON"):
        cond = cond | (dg.AutomationCondition.cron_tick_passed(cron).since_last_handled()
                       & ~dg.AutomationCondition.in_progress())
    return cond


@dg.asset(group_name="model", io_manager_key="model_io_manager", kinds={"tensorflow", "keras"},
          ins={"training_heatmaps": dg.AssetIn(), "balanced_catalog": dg.AssetIn()},
          check_specs=[checks.accuracy_floor_spec], automation_condition=_retrain_condition(),
          description="A new model version (models/versions/vNNNN): SCONE's CNN trained on the "
                      "training simulations' heatmaps, with what it was trained on recorded.")
def trained_model(context: dg.AssetExecutionContext, scone: SconeResource, training_heatmaps: HeatmapSet,
                  balanced_catalog: pd.DataFrame):
    from scone_assets.config import ConfigError
    from scone_assets.model import versions
    from scone_assets.model.train import train

    cfg = scone.config("train")
    catalogs = training_heatmaps.catalogs()
    plan = training_heatmaps.plan()
    context.log.info(f"training with the {plan.kind} loader")
    band_to_wave: dict = {}
    for cat in catalogs.values():
        band_to_wave.update(cat.band_to_wave)
    root = models_root(scone)
    name = versions.next_version(root, taken=scone.remote_names(versions.versions_root(root)))
    out = versions.version_dir(root, name)
    context.log.info(f"training model version {name} on {len(balanced_catalog)} light curves")
    split = balanced_catalog[["SNID", "label", "set"]]
    try:
        metrics = train(cfg, catalogs, out, band_to_wave=band_to_wave, progress=False, split=split,
                        on_epoch=lambda e: context.log.info(f"{name} {e.text()}"))
    except ConfigError as exc:
        raise dg.Failure(description=str(exc)) from None
    t = metrics["test"]
    check = checks.accuracy_floor(t)
    figures = _rounded(t)
    record = versions.VersionRecord(
        name=name, created=versions.now_iso(), run_id=context.run.run_id,
        training=training_heatmaps.fingerprints(), config_digest=_digest(cfg.model_dump_json()),
        metrics=figures, checks={check.check_name: bool(check.passed)})
    versions.write_record(out, record)
    yield dg.Output(str(out), data_version=dg.DataVersion(name), metadata={
        "version": name, **figures, "loader": plan.kind,
        "training_partitions": dg.MetadataValue.json(record.training),
        "config_digest": record.config_digest, **_model_pictures(out)})
    yield check


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PromotionConfig(dg.Config):
    always: bool = Field(False, description="promote the newest version even when it is worse or cannot "
                                            "be compared (its blocking checks must still pass)")
    tolerance: float = Field(0.0, ge=0.0, le=0.1, description="how much AUC or accuracy the challenger "
                                                               "may lose and still count as not worse")


@dg.asset(group_name="model", io_manager_key="model_io_manager", kinds={"keras"}, output_required=False,
          ins={"trained_model": dg.AssetIn()}, automation_condition=dg.AutomationCondition.eager(),
          description="The model version predictions use. The newest version replaces it only when "
                      "its blocking checks passed and it is not worse on held-out data both have "
                      "never seen (champion/challenger, figures side by side).")
def promoted_model(context: dg.AssetExecutionContext, scone: SconeResource, config: PromotionConfig,
                   trained_model: Path):
    from scone_assets.config import ConfigError
    from scone_assets.model import versions

    root = models_root(scone)
    challenger_dir = Path(trained_model)
    record = versions.read_record(challenger_dir)
    name = record.name
    failed = sorted(k for k, ok in record.checks.items() if not ok)
    scone.pull(root / versions.PROMOTED_FILE)  # a remote root: the record other nodes wrote
    champion = versions.promoted(root)
    side_by_side: dict = {"challenger": name, "champion": champion or "none",
                          **{f"challenger_{k}": v for k, v in record.metrics.items()}}
    if failed:
        reason = f"{name} failed its blocking check(s) {', '.join(failed)}: not promoted"
    elif champion == name:
        reason = f"{name} is already the promoted version"
    elif champion is None:
        reason = f"{name} is the first version"
    else:
        scone.pull(versions.version_dir(root, champion))
        try:
            cmp = versions.compare(scone.config("train"), _compare_catalog(scone, record),
                                   versions.version_dir(root, champion), challenger_dir, config.tolerance)
        except ConfigError as exc:
            raise dg.Failure(description=f"comparing {name} with {champion}: {exc}") from None
        side_by_side |= {"comparison": dg.MetadataValue.md(cmp.table()), "held_out_objects": cmp.n}
        reason = cmp.reason + ("; promoted anyway: always is set" if config.always and not cmp.not_worse
                               else "")
        if not (cmp.not_worse or config.always):
            failed = ["not worse"]
    if failed or champion == name:
        context.log.warning(f"{reason}; {champion or 'no version'} stays promoted")
        context.log_event(dg.AssetObservation(asset_key=context.asset_key,
                                              metadata=side_by_side | {"decision": "kept", "reason": reason}))
        return
    versions.promote(root, name, reason, context.run.run_id)
    scone.push(root / versions.PROMOTED_FILE)
    context.log.info(f"promoted {name}: {reason}")
    yield dg.Output(str(challenger_dir), data_version=dg.DataVersion(name), metadata={
        "version": name, "previous": champion or "none", "reason": reason, **side_by_side,
        **_model_pictures(challenger_dir)})


def _compare_catalog(scone: SconeResource, record):
    """The challenger's own heatmaps (one heatmap set: `full`, or the first) for the comparison."""
    from scone_assets.heatmaps import store
    from scone_assets.heatmaps.run import heatmap_sets

    cfg = scone.config("train")
    set_name = next(name for name, _ in heatmap_sets(cfg))
    folders = [store.unit_folder(cfg.heatmaps_path, set_name, unit) for unit in record.training]
    for f in folders:
        scone.pull(f)
    return store.load_catalog(folders)


@dg.asset(partitions_def=survey_partitions, group_name="predictions", io_manager_key="parquet_io_manager",
          kinds={"pandas", "csv"}, ins={"survey_heatmaps": dg.AssetIn(), "promoted_model": dg.AssetIn()},
          automation_condition=dg.AutomationCondition.eager(),
          description="Pippin-ready predictions (SNID, PROB_SCONE, ..., MODEL_VERSION) of one survey-data "
                      "partition by the promoted model version, and the combined predictions file.")
def predictions(context: dg.AssetExecutionContext, scone: SconeResource, survey_heatmaps: HeatmapSet,
                promoted_model: Path) -> dg.Output[pd.DataFrame]:
    from scone_assets.atomic import atomic_path
    from scone_assets.config import ConfigError
    from scone_assets.model.predict import MODEL_VERSION_COLUMN, predict

    unit, version = context.partition_key, Path(promoted_model).name
    cfg = scone.config("predict")
    folder = Path(cfg.effective_output_path()) / "predictions"
    try:
        table = predict(cfg, survey_heatmaps.catalog(), promoted_model, folder / f"{unit}.csv",
                        model_version=version)
    except ConfigError as exc:
        raise dg.Failure(description=str(exc)) from None
    parts = sorted(p for p in folder.glob("*.csv") if not p.name.endswith(".skipped.csv"))
    combined = pd.concat([pd.read_csv(p, dtype={"SNID": str}).assign(partition=p.stem) for p in parts],
                         ignore_index=True)
    combined = _one_row_per_object(combined, cfg.duplicate_snids, "survey_data partitions").drop(columns="partition")
    made_by = combined[MODEL_VERSION_COLUMN].fillna("unknown").value_counts().to_dict() \
        if MODEL_VERSION_COLUMN in combined else {"unknown": len(combined)}
    if len(made_by) > 1:  # partitions not yet refreshed after a promotion: said, not hidden
        context.log.warning(f"the combined predictions mix model versions: {made_by}")
    target = cfg.predictions_file()
    with atomic_path(target) as tmp:
        combined.to_csv(tmp, index=False)
    for staged in (folder, target):
        if staged.is_relative_to(scone.local_root()):
            scone.push(staged)  # a remote output root gets the same files
    return dg.Output(table, metadata={
        "model_version": version, "light_curves": len(table),
        "file": dg.MetadataValue.path(str(folder / f"{unit}.csv")),
        "combined_file": dg.MetadataValue.path(str(target)), "combined_rows": len(combined),
        "combined_by_version": dg.MetadataValue.json(made_by)})
