"""The `survey_like` group: a model made for the survey data, `scone simulate --like` as assets.

survey data (`survey_data` partitions) -> like_simulation -> like_heatmaps -> like_model ->
like_predictions (per `survey_data` partition). The simulation takes from the survey data
what `scone simulate --like` takes (never its types); the heatmaps, the training and the
predictions are the library's, with the train config's settings, so the lineage shows
which survey (and which partitions of it) a model was made for. Each step follows the one
before it by its AutomationCondition (evaluated by `automation_sensor`). like_host_dust,
materialized by hand, fits the survey's SN Ia host dust to its colours (`scone fit-dust`)
and warns when the simulation's differs. Everything is written
under `<output root>/like`; the sizes come from the `scone` resource (`like_n`,
`like_seed`, `like_num_epochs`, and `like_ia_dust_tau` for the survey's SN Ia host dust).
Unless the configs set them, the like model trains with `augment_copies: 2` (and without
redshift) and classifies with `class_prior: data`, the settings measured on real survey
data (BENCHMARKS.md); SCONE's defaults, which the main model keeps, suit test data
simulated as the training set is.
"""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from scone_assets.config import (
    SURVEY_PREDICT_SETTINGS,
    SURVEY_TRAIN_SETTINGS,
    ConfigError,
    SconeConfig,
)
from scone_assets.defs.assets import _md_table
from scone_assets.defs.io_managers import HeatmapSet
from scone_assets.defs.partitions import SURVEY_DATA, survey_partitions
from scone_assets.defs.pictures import picture_metadata
from scone_assets.defs.resources import SconeResource
from scone_assets.snana.lightcurves import SnanaReadError

GROUP = "survey_like"
# new survey data -> a new simulation like it -> its heatmaps -> a model -> predictions
EAGER = dg.AutomationCondition.eager()
SIM_NAME = "LIKE"  # one simulation folder, replaced when the survey data change
SURVEY_FILE = "survey.json"  # what the simulation was made from, for the model and predictions
# keys of the train config that describe its own inputs, not the like simulation's
INPUT_KEYS = ("metadata_paths", "lcdata_paths", "input_data_paths", "labels_path", "survey",
              "band_to_wave", "sn_type_id_to_name")


def like_root(scone: SconeResource) -> Path:
    return scone.local_root() / "like"


def _unset(cfg: SconeConfig, defaults: dict) -> dict:
    """The survey settings for the keys `cfg` does not set (a key it sets keeps its value)."""
    return {k: v for k, v in defaults.items() if k not in cfg.model_fields_set}


def like_config(scone: SconeResource) -> SconeConfig:
    """The train config's training and heatmap settings, with the like simulation as its
    input and `<root>/like` as its output: what `scone train` would be given."""
    root = like_root(scone)
    cfg = scone.config("train")
    update = _unset(cfg, SURVEY_TRAIN_SETTINGS) | dict.fromkeys(INPUT_KEYS) | {
        "input_path": str(root / "sims" / SIM_NAME), "heatmaps_path": str(root / "heatmaps"),
        "output_path": str(root), "mode": "train", "trained_model": None,
        "output_predict_file": None}
    if scone.like_num_epochs:
        update["num_epochs"] = scone.like_num_epochs
    return cfg.model_copy(update=update)


def like_predict_config(scone: SconeResource) -> SconeConfig:
    """The predict config as the like predictions use it: with `class_prior: data` unless it sets one."""
    cfg = scone.config("predict")
    return cfg.model_copy(update=_unset(cfg, SURVEY_PREDICT_SETTINGS))


def survey_keys(instance: dg.DagsterInstance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(SURVEY_DATA))


def _made_for(scone: SconeResource) -> dict:
    path = like_root(scone) / SURVEY_FILE
    if not scone.pull(path):
        raise dg.Failure("like_simulation has not been materialized yet (no survey record in "
                         f"{path.parent})")
    return json.loads(path.read_text())


def _redshift_png(data_z: np.ndarray, sim_z: np.ndarray, target: Path) -> Path | None:
    """Data vs simulated redshifts, the distribution the simulation was asked to follow."""
    data_z, sim_z = data_z[np.isfinite(data_z)], sim_z[np.isfinite(sim_z)]
    if not len(data_z) or not len(sim_z):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = np.linspace(0, max(data_z.max(), np.quantile(sim_z, 0.99)) * 1.05, 30)
    fig, ax = plt.subplots(figsize=(5, 3), constrained_layout=True)
    for z, what in ((data_z, "survey data"), (sim_z, "like simulation")):
        ax.hist(z, bins, density=True, histtype="step", lw=2, label=f"{what} ({len(z)})")
    ax.set_xlabel("REDSHIFT_FINAL")
    ax.legend(fontsize=8)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=80)
    plt.close(fig)
    return target


@dg.asset(group_name=GROUP, kinds={"python"}, deps=[dg.AssetKey("survey_files")],
          automation_condition=EAGER,
          description="A labelled SNANA simulation observed like the survey data of the "
                      "survey_data partitions (scone simulate --like): bands, cadences, noise, "
                      "redshifts, MWEBV.")
def like_simulation(context: dg.AssetExecutionContext,
                    scone: SconeResource) -> dg.MaterializeResult:
    from scone_assets.atomic import atomic_write_text
    from scone_assets.locking import FolderBusy
    from scone_assets.simulate.classes import SimulationError
    from scone_assets.simulate.like import survey_model
    from scone_assets.simulate.like_report import plot_shapes, shape_table
    from scone_assets.simulate.run import simulate
    from scone_assets.snana.read import read_unit

    keys = survey_keys(context.instance)
    if not keys:
        raise dg.Failure("no survey_data partitions yet: register them "
                         "(new_simulations_sensor or `scone register`) before simulating like them")
    cfg = scone.config("predict")
    units = {u.key: u for u in scone.units("predict")}  # one listing, however many partitions
    read = []
    for key in keys:
        unit = units.get(name := key)
        if unit is None:
            raise dg.Failure(f"partition {key}: no input unit {name!r} under the predict config's "
                             "inputs any more")
        try:
            lcs = read_unit(unit, cfg)  # no labels: the like simulation never looks at types
        except SnanaReadError as exc:
            raise dg.Failure(description=str(exc)) from None
        for w in lcs.warnings:
            context.log.warning(w)
        read.append(lcs)
    root = like_root(scone)
    try:
        model = survey_model(read, keys).with_ia_dust(scone.like_ia_dust_tau)
        # force: the survey data may have changed since the last simulation
        res = simulate(root / "sims" / SIM_NAME, scone.like_n, seed=scone.like_seed,
                       jobs=scone.jobs, force=True, progress=False, like=model)
    except (SimulationError, FolderBusy) as exc:
        raise dg.Failure(description=str(exc)) from None
    record = {"survey": model.survey, "partitions": keys, "objects": model.n_objects,
              "survey_model": model.digest()[:16], "simulation": str(res.folder),
              "n": res.n_written, "run_id": context.run.run_id}
    atomic_write_text(root / SURVEY_FILE, json.dumps(record, indent=1))
    scone.push(res.folder)
    scone.push(root / SURVEY_FILE)
    metadata = {
        "survey": model.survey, "survey_partitions": dg.MetadataValue.json(keys),
        "survey_objects": model.n_objects, "survey_model": record["survey_model"],
        "bands": " ".join(f"{b}={w:.0f}A" for b, w in zip(model.names, model.waves, strict=True)),
        "taken_from_the_data": dg.MetadataValue.md("\n".join(f"- {x}" for x in model.provenance)),
        "simulated": res.n_written, "types": dg.MetadataValue.md(_md_table(res.counts)),
        "resumed_files": len(res.resumed_files), "seed": scone.like_seed,
        "folder": dg.MetadataValue.path(str(res.folder)),
    }
    compared = res.compared  # a --like simulation always has it
    png = _redshift_png(compared.data.redshift, compared.sim.redshift, root / "redshifts.png")
    if png is not None:
        metadata |= picture_metadata(png, "redshifts: survey data vs like simulation", "redshifts")
    metadata["compared_with_the_data"] = dg.MetadataValue.md(
        "Per light curve, quantiles 10 / 25 / 50 / 75 / 90% (the simulation in its own class mix)\n\n"
        "| | survey data | like simulation |\n|---|---|---|\n"
        + "\n".join(f"| {what} | {d} | {s} |" for what, d, s in shape_table(compared)))
    metadata |= picture_metadata(plot_shapes(compared, root / "light_curves.png"),
                                 "light curves: survey data vs like simulation", "light_curves")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name=GROUP, kinds={"tensorflow"}, deps=[like_simulation],
          automation_condition=EAGER,
          description="GP heatmaps of the like simulation, on the train config's grid.")
def like_heatmaps(context: dg.AssetExecutionContext, scone: SconeResource) -> dg.MaterializeResult:
    from scone_assets.heatmaps.run import make_heatmaps

    cfg = like_config(scone)
    try:
        run = make_heatmaps(cfg, backend=scone.gp_backend, jobs=scone.jobs, progress=False,
                            on_progress=lambda p: context.log.info(p.text()))
    except Exception as exc:  # the library's message, in the run's log and the failure
        raise dg.Failure(description=f"like_heatmaps: {exc}") from exc
    for r in run.results:
        context.log.info(f"{r.status} {r.unit} [{r.heatmap_set}]: {r.written} heatmaps, "
                         f"skipped {r.skipped}")
    if not run.ok:
        raise dg.Failure(description="; ".join(f"like_heatmaps {r.unit} [{r.heatmap_set}]: "
                                               f"{r.error or r.bad_files or r.skipped}"
                                               for r in run.results if not r.ok))
    skipped: dict[str, int] = {}
    by_set: dict[str, int] = {}  # `augmented` holds augment_copies heatmaps per light curve
    for r in run.results:
        for k, v in r.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
        by_set[r.heatmap_set] = by_set.get(r.heatmap_set, 0) + r.written
        scone.push(r.folder)
    return dg.MaterializeResult(metadata={
        "written": sum(r.written for r in run.results), "skipped": dg.MetadataValue.json(skipped),
        "written_by_set": dg.MetadataValue.json(by_set),
        "sets": ", ".join(sorted({r.heatmap_set for r in run.results})),
        "units": dg.MetadataValue.json(sorted({r.unit for r in run.results})),
        "folder": dg.MetadataValue.path(cfg.heatmaps_path)})


def _like_catalogs(cfg: SconeConfig) -> dict:
    """One catalog per heatmap set, of the current simulation's units only (a store may
    still hold units of an earlier, larger one)."""
    from scone_assets.heatmaps import store
    from scone_assets.heatmaps.run import heatmap_sets
    from scone_assets.snana.read import discover

    units = discover(cfg).units
    out = {}
    for name, _ in heatmap_sets(cfg):
        folders = [store.unit_folder(cfg.heatmaps_path, name, u.key) for u in units]
        missing = [f for f in folders if store.read_unit_record(f) is None]
        if missing or not folders:
            where = ", ".join(map(str, missing)) or "any unit"
            raise dg.Failure(f"like_heatmaps are not materialized for {where}")
        out[name] = store.load_catalog(folders)
    return out


@dg.asset(group_name=GROUP, kinds={"tensorflow", "keras"}, deps=[like_heatmaps],
          automation_condition=EAGER,
          description="SCONE's CNN trained on the like simulation only, as `scone train` trains: "
                      "the model made for the survey data.")
def like_model(context: dg.AssetExecutionContext, scone: SconeResource) -> dg.MaterializeResult:
    from scone_assets.model.train import default_model_dir, train

    cfg = like_config(scone)
    made_for = _made_for(scone)
    catalogs = _like_catalogs(cfg)
    band_to_wave: dict = {}
    for cat in catalogs.values():
        band_to_wave.update(cat.band_to_wave)
    out = default_model_dir(cfg)
    try:
        metrics = train(cfg, catalogs, out, band_to_wave=band_to_wave, progress=False, force=True,
                        on_epoch=lambda e: context.log.info(e.text()))
    except ConfigError as exc:
        raise dg.Failure(description=str(exc)) from None
    scone.push(out)
    t = metrics["test"]
    return dg.MaterializeResult(metadata={
        "survey": made_for["survey"],
        "survey_partitions": dg.MetadataValue.json(made_for["partitions"]),
        "survey_model": made_for["survey_model"],
        "trained_on": f"{made_for['n']} like-simulated light curves",
        "model_dir": dg.MetadataValue.path(str(out)), "epochs": cfg.num_epochs,
        "augment_copies": cfg.augment_copies,
        "augmented_heatmaps_used": int(metrics.get("augmentation", {}).get("used", 0)),
        "accuracy": round(float(t["accuracy"]), 3), "auc": round(float(t["auc"]), 3),
        "n_test": int(t["n"]), **picture_metadata(out / "roc.png", "ROC (like simulation test set)", "roc")})


@dg.asset(partitions_def=survey_partitions, group_name=GROUP,
          io_manager_key="parquet_io_manager", kinds={"pandas", "csv"},
          ins={"survey_heatmaps": dg.AssetIn()}, deps=[like_model],
          automation_condition=EAGER,
          description="Predictions of one survey-data partition by the model made for that survey.")
def like_predictions(context: dg.AssetExecutionContext, scone: SconeResource,
                     survey_heatmaps: HeatmapSet) -> dg.Output[pd.DataFrame]:
    from scone_assets.model.predict import CLASS_PRIOR_SUFFIX, predict
    from scone_assets.model.prior import ClassPriorFileError, read_ia_fraction
    from scone_assets.model.train import default_model_dir

    unit = context.partition_key
    model_dir = default_model_dir(like_config(scone))
    if not scone.pull(model_dir):
        raise dg.Failure(f"like_model has not been materialized yet (no model in {model_dir})")
    made_for = _made_for(scone)
    cfg = like_predict_config(scone)
    target = like_root(scone) / "predictions" / f"{unit}.csv"
    try:
        table = predict(cfg, survey_heatmaps.catalog(), model_dir, target)
    except ConfigError as exc:
        raise dg.Failure(description=str(exc)) from None
    for staged in (target, target.with_suffix(".skipped.csv"), target.with_suffix(CLASS_PRIOR_SUFFIX)):
        if staged.exists():  # what predict wrote beside them goes to a remote output root too
            scone.push(staged)
    in_survey = context.partition_key in made_for["partitions"]
    if not in_survey:  # data that landed after the model: said, not hidden
        context.log.warning(f"{context.partition_key} was not in the survey data the like model "
                            f"was made from ({', '.join(made_for['partitions'])}); the automation "
                            "sensor simulates and retrains for it")
    event = context.instance.get_latest_materialization_event(dg.AssetKey("like_model"))
    prior = {"class_prior": cfg.class_prior}
    if cfg.class_prior == "data":  # the fraction the probabilities were re-weighed to
        try:
            prior["estimated_ia_fraction"] = round(read_ia_fraction(target.with_suffix(CLASS_PRIOR_SUFFIX)), 3)
        except ClassPriorFileError as exc:  # a model without a class named SNIa: said, not fatal
            context.log.warning(str(exc))
    return dg.Output(table, metadata={
        "light_curves": len(table), "file": dg.MetadataValue.path(str(target)), **prior,
        "model_dir": dg.MetadataValue.path(str(model_dir)), "model_survey": made_for["survey"],
        "model_run_id": event.run_id if event else "unknown",
        "partition_in_model_survey": in_survey})


DUST_TOLERANCE = 0.1  # mag of tau_A: a fit this far from the scale in use says to re-simulate
host_dust_spec = dg.AssetCheckSpec(
    "dust_in_use_matches_the_fit", asset="like_host_dust",
    description=f"the like simulation's SN Ia host-dust scale is within {DUST_TOLERANCE} mag of the "
                "one fitted to the survey's colours, or the data cannot tell them apart")


def _survey_ia_fraction(scone: SconeResource, keys: list[str], model_dir: Path) -> tuple[float, str]:
    """(the survey's SN Ia fraction, how it was estimated), without labels, from the like
    predictions of `keys`: their class-prior files with `class_prior: data`, else EM on
    their P(Ia) (model/prior.py), as `class_prior: data` would."""
    from scone_assets.model.folder import read_meta
    from scone_assets.model.predict import CLASS_PRIOR_SUFFIX
    from scone_assets.model.prior import ClassPriorFileError, estimate_ia_fraction, read_ia_fraction

    cfg = like_predict_config(scone)
    files = [like_root(scone) / "predictions" / f"{k}.csv" for k in keys]
    missing = [k for k, f in zip(keys, files, strict=True) if not scone.pull(f)]
    if missing:
        raise dg.Failure(f"like_predictions are not materialized for {', '.join(missing)}")
    tables = [pd.read_csv(f, usecols=[cfg.prob_column_name]) for f in files]
    if cfg.class_prior == "data":  # the probabilities are already re-weighed: take the estimates
        priors = [f.with_suffix(CLASS_PRIOR_SUFFIX) for f in files]
        for p in priors:
            scone.pull(p)
        n = np.array([len(t) for t in tables], float)
        try:
            fraction = float(np.dot(n, [read_ia_fraction(p) for p in priors]) / n.sum())
        except ClassPriorFileError as exc:  # predictions made before class_prior: data was set
            raise dg.Failure(description=f"{exc}; materialize like_predictions again") from None
        return fraction, f"class_prior: data estimates of {len(keys)} partition(s), weighed by light curves"
    assumed = read_meta(model_dir).assumed_ia_fraction()
    p = np.concatenate([t[cfg.prob_column_name].to_numpy(float) for t in tables])
    return estimate_ia_fraction(p, assumed), f"EM on the P(Ia) of {len(p)} light curves (the model assumed {assumed:.2f})"


@dg.asset(group_name=GROUP, kinds={"python"}, deps=[like_simulation, like_predictions],
          check_specs=[host_dust_spec],
          description="The survey's SN Ia host-dust scale fitted to its colours near peak, without "
                      "labels (scone fit-dust): the like simulation weighed to the SN Ia fraction "
                      "the like model estimates for the survey.")
def like_host_dust(context: dg.AssetExecutionContext, scone: SconeResource) -> dg.MaterializeResult:
    from scone_assets.model.train import default_model_dir
    from scone_assets.simulate import host_dust
    from scone_assets.simulate.classes import SimulationError
    from scone_assets.simulate.like import SurveyModel
    from scone_assets.simulate.run import LIKE_MODEL
    from scone_assets.simulate.sed_ia import model as sn_ia_model
    from scone_assets.snana.read import read_unit

    made_for = _made_for(scone)
    keys = made_for["partitions"]
    fraction, how = _survey_ia_fraction(scone, keys, default_model_dir(like_config(scone)))
    context.log.info(f"SN Ia fraction of the survey data: {fraction:.3f} ({how})")
    cfg = scone.config("predict")
    units = {u.key: u for u in scone.units("predict")}
    gone = [k for k in keys if k not in units]
    if gone:
        raise dg.Failure(f"partition(s) {', '.join(gone)}: no input unit under the predict config's inputs any more")
    sim_folder = Path(made_for["simulation"])
    scone.pull(sim_folder)
    # the scale the simulation was made with (the resource may have changed since)
    made_with = SurveyModel.load(sim_folder / LIKE_MODEL).ia_av_tau
    in_use = made_with if made_with is not None else sn_ia_model().tau_a
    common = {"ia_fraction": round(fraction, 3), "ia_fraction_from": how, "in_use_tau": round(in_use, 3),
              "survey_partitions": dg.MetadataValue.json(keys)}
    try:
        data = host_dust.colours_of((read_unit(units[k], cfg) for k in keys), ", ".join(keys))
        sim = host_dust.simulated_colours(sim_folder)
        fit = host_dust.fit_ia_dust(data, sim, fraction)
    except SnanaReadError as exc:
        raise dg.Failure(description=str(exc)) from None
    except SimulationError as exc:  # nothing to fit with: said in the UI, the flow before it stands
        context.log.warning(f"not fitted: {exc}")
        return dg.MaterializeResult(
            metadata=common | {"not_fitted": str(exc)},
            check_results=[dg.AssetCheckResult(check_name=host_dust_spec.name, passed=False,
                                               severity=dg.AssetCheckSeverity.WARN,
                                               metadata={"not_fitted": str(exc)})])
    for line in fit.describe():
        context.log.info(line)
    png = like_root(scone) / "host_dust.png"
    host_dust.plot_dust_fit(data, sim, fit, png)
    scone.push(png)
    off = abs(fit.tau - in_use) > DUST_TOLERANCE + 1e-9 and fit.rules_out(in_use)
    if off:
        advice = f"set the scone resource's like_ia_dust_tau to {fit.tau:.2f} and materialize like_simulation again"
        context.log.warning(f"the survey's colours want SN Ia host dust tau_A {fit.tau:.2f}, the like "
                            f"simulation used {in_use:.3f}: {advice}")
    elif abs(fit.tau - in_use) > DUST_TOLERANCE + 1e-9:
        advice = (f"the data cannot tell {in_use:.3f} from the fitted {fit.tau:.2f} (KS {fit.ks_at(in_use):.3f} "
                  f"against {fit.ks_at(fit.tau):.3f}, noise {fit.resolution:.3f}): keep it")
    else:
        advice = "the scale in use fits the survey's colours"
    check = dg.AssetCheckResult(
        check_name=host_dust_spec.name, passed=not off, severity=dg.AssetCheckSeverity.WARN,
        metadata={"fitted_tau": fit.tau, "in_use_tau": round(in_use, 3), "tolerance": DUST_TOLERANCE,
                  "advice": advice})
    return dg.MaterializeResult(
        metadata=common | {
            "fitted_tau": fit.tau, "advice": advice, "data_colours": fit.n_data, "sim_colours": fit.n_sim,
            "at_edge_of_grid": fit.at_edge, "fit": dg.MetadataValue.md("\n".join(f"- {x}" for x in fit.describe())),
            **picture_metadata(png, "colours near peak: survey data vs like simulation", "host_dust")},
        check_results=[check])
