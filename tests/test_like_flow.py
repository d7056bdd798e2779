"""The survey_like flow in the code location: real survey data (a subset of yse_dev, no labels)
as a survey_data partition -> a simulation like it -> heatmaps -> model -> predictions, on a
real instance; the lineage, the automation, and too little data failing with the library's message."""

import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from conftest import shared

from scone_assets.definitions import build_defs
from scone_assets.defs.partitions import SURVEY_DATA
from scone_assets.simulate.host_dust import TAUS
from scone_assets.snana.read import discover_paths, read_unit

LIKE_ASSETS = ["like_simulation", "like_heatmaps", "like_model"]
GRID = "num_mjd_bins: 60\n"  # a coarser time grid keeps the test short; the same for both roles


def _platform(root, n_survey: int, **sizes):
    """Configs over a copy of `n_survey` yse_dev light curves (labels.csv left behind)."""
    data = root / "data" / "YSE"
    data.mkdir(parents=True)
    for f in sorted(shared("yse_dev").glob("*.snana.dat"))[:n_survey]:
        shutil.copy(f, data / f.name)
    (root / "train.yml").write_text(f"input_path: {root / 'sims'}\nnum_epochs: 40\nseed: 2\n{GRID}")
    model = root / "out" / "train" / "trained_model"
    (root / "predict.yml").write_text(f"input_path: {data}\nmode: predict\n"
                                      f"trained_model: {model}\n{GRID}")
    defs = build_defs(str(root / "train.yml"), str(root / "predict.yml"), str(root / "out"), jobs=1,
                      **sizes)
    instance = dg.DagsterInstance.ephemeral()
    key = "YSE__text_0000"
    instance.add_dynamic_partitions(SURVEY_DATA, [key])
    return defs, instance, key


def materialize(defs, instance, selection, partition_key=None, raise_on_error=True):
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance,
                                  asset_selection=[dg.AssetKey(s) for s in selection],
                                  partition_key=partition_key, raise_on_error=raise_on_error)


def meta(instance, asset: str, partition: str | None = None) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if partition is not None:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
        event = next(r.event_log_entry for r in records if r.partition_key == partition)
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_the_like_flow_is_in_the_code_location_with_its_lineage():
    from scone_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {*LIKE_ASSETS, "like_predictions"} <= keys and "trained_model" in keys
    model = dg.AssetKey("like_model")
    assert graph.get(model).group_name == "survey_like"
    ancestors: set[str] = set()
    todo = [model]
    while todo:  # every asset upstream of like_model
        for parent in graph.get(todo.pop()).parent_keys:
            if parent.to_user_string() not in ancestors:
                ancestors.add(parent.to_user_string())
                todo.append(parent)
    assert ancestors == {"like_heatmaps", "like_simulation", "survey_files"}
    preds = {k.to_user_string() for k in graph.get(dg.AssetKey("like_predictions")).parent_keys}
    assert preds == {"survey_heatmaps", "like_model"}  # the survey's own heatmaps, by the like model
    dust = {k.to_user_string() for k in graph.get(dg.AssetKey("like_host_dust")).parent_keys}
    assert dust == {"like_simulation", "like_predictions"}  # the survey's colours against its simulation's
    assert defs.resolve_job_def("like_job") and defs.resolve_job_def("like_predict_job")
    for asset in (*LIKE_ASSETS, "like_predictions"):  # each step follows the one before it
        assert graph.get(dg.AssetKey(asset)).automation_condition.get_label() == "eager"


def test_the_like_flow_materializes_on_real_survey_data(tmp_path):
    defs, instance, key = _platform(tmp_path, 60, like_n=300, like_num_epochs=2, like_ia_dust_tau=0.55)
    scone = defs.resources["scone"]
    like = {a: dg.AssetKey(a) for a in (*LIKE_ASSETS, "like_predictions")}
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the sensor's first tick
    assert not any(tick.get_num_requested(k) for k in like.values())
    assert materialize(defs, instance, ["survey_files", "survey_heatmaps"], key).success
    survey_heatmaps = meta(instance, "survey_heatmaps", key)["written"]
    assert survey_heatmaps == 60

    # new survey data: automation asks for a simulation like it, once, then nothing until there is news
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_num_requested(like["like_simulation"]) == 1
    assert tick.get_num_requested(like["like_predictions"]) == 0  # no like model yet
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert not any(tick.get_num_requested(k) for k in like.values())

    assert materialize(defs, instance, LIKE_ASSETS).success
    sim = meta(instance, "like_simulation")
    assert sim["simulated"] == 300 and sim["survey"] == "YSE" and sim["survey_objects"] == 60
    assert sim["survey_partitions"] == [key]
    counts = dict(line.strip("| ").split(" | ") for line in sim["types"].splitlines()[2:])
    assert sum(map(int, counts.values())) == 300 and "SNIa" in counts and len(counts) >= 2
    assert f"--like sources: {key}" in sim["taken_from_the_data"]
    assert "SN Ia host dust: A_V ~ Exponential(0.55) mag" in sim["taken_from_the_data"]  # the resource's
    assert "types, spectroscopic classes and other classifiers' outputs in the data: not read" \
        in sim["taken_from_the_data"]
    assert "redshifts" in sim and "light_curves" in sim  # the data vs simulation pictures
    table = [line.strip("| ").split(" | ") for line in sim["compared_with_the_data"].splitlines()[4:]]
    assert [r[0] for r in table] == ["observations per light curve", "first observation, days from PEAKMJD",
                                     "last observation, days from PEAKMJD",
                                     "brightest observation, mag (27.5 - 2.5 log10 FLUXCAL)"]
    # the simulation's column, from its files read here: observations per light curve
    sim_lcs = [read_unit(u) for u in discover_paths([sim["folder"]]).units]
    n_obs = np.concatenate([lcs.obs.groupby("SNID").size().to_numpy() for lcs in sim_lcs])
    assert len(n_obs) == 300
    assert table[0][2] == " / ".join(f"{x:.0f}" for x in np.quantile(n_obs, [0.1, 0.25, 0.5, 0.75, 0.9]))
    heat = meta(instance, "like_heatmaps")
    by_set = heat["written_by_set"]  # the survey settings: augment_copies 2 unless the config sets it
    assert set(by_set) == {"full", "augmented"} and by_set["full"] >= 250
    assert heat["written"] + sum(heat["skipped"].values()) == 3 * 300
    model = meta(instance, "like_model")
    assert model["survey"] == "YSE" and model["survey_partitions"] == [key] and model["epochs"] == 2
    assert model["augment_copies"] == 2 and 0 < model["augmented_heatmaps_used"] < by_set["augmented"]
    assert model["trained_on"] == "300 like-simulated light curves"
    assert model["n_test"] > 0 and 0.0 <= model["accuracy"] <= 1.0

    # a new like model: predictions of every survey partition are requested, and nothing else
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_requested_partitions(like["like_predictions"]) == {key}
    assert not any(tick.get_num_requested(like[a]) for a in LIKE_ASSETS)

    assert materialize(defs, instance, ["like_predictions"], key).success
    pred = meta(instance, "like_predictions", key)
    assert pred["light_curves"] == 60 and pred["model_survey"] == "YSE"
    assert pred["class_prior"] == "data"  # the survey setting, the predict config sets none
    estimated = json.loads(Path(pred["file"]).with_suffix(".class_prior.json").read_text())
    assert pred["estimated_ia_fraction"] == round(estimated["estimated"][estimated["classes"].index("SNIa")], 3)
    assert pred["partition_in_model_survey"]
    model_run = instance.get_latest_materialization_event(dg.AssetKey("like_model")).run_id
    assert pred["model_run_id"] == model_run
    table = pd.read_csv(pred["file"], dtype={"SNID": str})
    assert len(table) == 60 and table.SNID.is_unique and table.PROB_SCONE.between(0, 1).all()
    assert pred["model_dir"] == str(scone.local_root() / "like" / "trained_model")

    # the survey's own SN Ia host dust, fitted to its colours against the simulation's
    res = materialize(defs, instance, ["like_host_dust"])
    assert res.success
    dust = meta(instance, "like_host_dust")
    assert dust["data_colours"] == 50  # of the 60 light curves, those observed in g and r near peak
    assert dust["in_use_tau"] == 0.55 and dust["survey_partitions"] == [key]
    assert dust["fitted_tau"] in TAUS and dust["ia_fraction"] == pytest.approx(pred["estimated_ia_fraction"], abs=6e-4)
    assert dust["ia_fraction_from"] == "class_prior: data estimates of 1 partition(s), weighed by light curves"
    assert "host_dust" in dust and "best: --ia-dust-tau" in dust["fit"]
    check = next(e for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")
    evaluation = check.event_specific_data
    assert evaluation.check_name == "dust_in_use_matches_the_fit"
    # a warning only when the fit is off and the data can tell: 50 colours can tell little
    assert dust["advice"].startswith(("the scale in use fits", "the data cannot tell") if evaluation.passed
                                     else "set the scone resource's like_ia_dust_tau")

    # a predict config that sets class_prior: model keeps it; F is then EM on the P(Ia), the same number
    predict_yml = tmp_path / "predict.yml"
    predict_yml.write_text(predict_yml.read_text() + "class_prior: model\n")
    assert materialize(defs, instance, ["like_predictions"], key).success
    own = meta(instance, "like_predictions", key)
    assert own["class_prior"] == "model" and "estimated_ia_fraction" not in own
    assert materialize(defs, instance, ["like_host_dust"]).success
    again = meta(instance, "like_host_dust")
    assert again["ia_fraction_from"].startswith("EM on the P(Ia) of 60 light curves (the model assumed ")
    assert again["ia_fraction"] == pytest.approx(dust["ia_fraction"], abs=0.002)
    assert again["fitted_tau"] == dust["fitted_tau"]

    # the scale in use is the one the simulation was made with, not the resource's now
    unset = build_defs(str(tmp_path / "train.yml"), str(predict_yml), str(tmp_path / "out"), jobs=1, like_n=300,
                       like_num_epochs=2)
    assert materialize(unset, instance, ["like_host_dust"]).success
    assert meta(instance, "like_host_dust")["in_use_tau"] == 0.55


def test_too_little_survey_data_fails_with_the_library_message(tmp_path):
    defs, instance, key = _platform(tmp_path, 10, like_n=50)
    res = materialize(defs, instance, ["like_simulation"], raise_on_error=False)
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data)
    assert "at least 20 light curves" in message and "gave 10" in message and key in message


def test_the_model_needs_its_simulation_first(tmp_path):
    defs, instance, _ = _platform(tmp_path, 20, like_n=50)
    res = materialize(defs, instance, ["like_model"], raise_on_error=False)
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "like_simulation has not been materialized yet" in str(failure.event_specific_data)


def test_the_like_flow_uses_the_survey_settings_unless_the_configs_set_them(tmp_path):
    from scone_assets.defs.like import like_config, like_predict_config

    defs, _, _ = _platform(tmp_path, 20)
    scone = defs.resources["scone"]
    assert like_config(scone).augment_copies == 2 and like_predict_config(scone).class_prior == "data"
    assert scone.config("train").augment_copies == 0  # the main model keeps SCONE's settings
    assert scone.config("predict").class_prior == "model"
    for name, line in (("train.yml", "augment_copies: 0\n"), ("predict.yml", "class_prior: model\n")):
        (tmp_path / name).write_text((tmp_path / name).read_text() + line)
    assert like_config(scone).augment_copies == 0 and like_predict_config(scone).class_prior == "model"
    (tmp_path / "train.yml").write_text((tmp_path / "train.yml").read_text().replace("copies: 0", "copies: 3"))
    assert like_config(scone).augment_copies == 3 and not like_config(scone).with_z
    (tmp_path / "train.yml").write_text((tmp_path / "train.yml").read_text() + "with_z: true\n")
    assert like_config(scone).with_z  # set in the config: kept
