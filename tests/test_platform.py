"""The Dagster code location: the whole graph materialized in process on small simulated sets,
sensors, the IO manager's loading choice, and failures that carry the library's messages."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from scone_assets.definitions import build_defs
from scone_assets.defs import checks
from scone_assets.defs.demo import register_partitions
from scone_assets.defs.partitions import SURVEY_DATA, TRAINING_SIMS
from scone_assets.defs.sensors import new_inputs_sensor
from scone_assets.model import versions
from scone_assets.simulate.run import simulate


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    root = tmp_path_factory.mktemp("platform")
    simulate(root / "sims" / "TRAIN", 240, survey="des", seed=4, per_file=120, mix="SNIa=0.5,SNII=0.5",
             jobs=1, progress=False)
    simulate(root / "data" / "SURVEY", 40, survey="des", seed=8, per_file=40, mix="SNIa=0.5,SNII=0.5",
             jobs=1, progress=False, gzip=True)
    (root / "train.yml").write_text(f"input_path: {root / 'sims' / 'TRAIN'}\nnum_epochs: 25\nseed: 2\n")
    (root / "predict.yml").write_text(f"input_path: {root / 'data' / 'SURVEY'}\nmode: predict\n"
                                      f"trained_model: {root / 'out' / 'train' / 'trained_model'}\n")
    defs = build_defs(str(root / "train.yml"), str(root / "predict.yml"), str(root / "out"), jobs=1)
    instance = dg.DagsterInstance.ephemeral()
    return root, defs, instance


def materialize(defs, instance, selection, partition_key=None, raise_on_error=True):
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(s) for s in selection],
                                  partition_key=partition_key, raise_on_error=raise_on_error)


def run_job(defs, instance, name, partition_key=None, run_config=None, raise_on_error=True):
    return defs.resolve_job_def(name).execute_in_process(
        instance=instance, partition_key=partition_key, run_config=run_config, raise_on_error=raise_on_error)


def latest(instance, asset):
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return event.asset_materialization.metadata if event else None


def test_definitions_load_with_every_concern(platform):
    _, defs, _ = platform
    specs = {a.key.to_user_string(): a for a in defs.resolve_all_asset_specs()}
    assert set(specs) == {
        "training_files", "training_catalog", "training_heatmaps", "survey_files", "survey_catalog",
        "survey_heatmaps", "balanced_catalog", "trained_model", "promoted_model", "predictions",
        "like_simulation", "like_heatmaps", "like_model", "like_predictions", "like_host_dust"}
    # each asset is partitioned over the set it applies to, and only that one
    by_set = {a: (s.partitions_def.name if s.partitions_def else None) for a, s in specs.items()}
    assert {a for a, n in by_set.items() if n == TRAINING_SIMS} == {
        "training_files", "training_catalog", "training_heatmaps"}
    assert {a for a, n in by_set.items() if n == SURVEY_DATA} == {
        "survey_files", "survey_catalog", "survey_heatmaps", "predictions", "like_predictions"}
    # declarative automation where it replaces the old retrain sensor and schedule
    automated = {a for a, s in specs.items() if s.automation_condition is not None}
    assert automated == {"balanced_catalog", "trained_model", "promoted_model", "predictions",
                         "like_simulation", "like_heatmaps", "like_model", "like_predictions"}
    assert {j.name for j in defs.jobs} == {"training_heatmaps_job", "survey_heatmaps_job", "train_job",
                                           "predict_job", "like_job", "like_predict_job",
                                           "like_dust_job"}
    assert not list(defs.schedules or [])
    assert {s.name for s in defs.sensors} == {"new_inputs_sensor", "automation_sensor"}
    for name in ("new_inputs_sensor", "automation_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.STOPPED


def test_sensor_partitions_automation_and_model_versions(platform, monkeypatch):
    """Two partition sets, nothing left missing; four trainings: the first version is promoted,
    a worse one and one failing its blocking check are not, one as good is; predictions name
    the version that made them and are requested again when a version is promoted."""
    root, defs, instance = platform
    scone = defs.resources["scone"]
    ctx = dg.build_sensor_context(instance=instance, resources={"scone": scone})
    result = new_inputs_sensor(ctx)
    asked = sorted((r.job_name, r.partition_key) for r in result.run_requests)
    assert asked == [("survey_heatmaps_job", "SURVEY-0001"), ("training_heatmaps_job", "TRAIN-0001"),
                     ("training_heatmaps_job", "TRAIN-0002")]
    adds = {r.partitions_def_name: r.partition_keys for r in result.dynamic_partitions_requests}
    assert adds == {TRAINING_SIMS: ["TRAIN-0001", "TRAIN-0002"], SURVEY_DATA: ["SURVEY-0001"]}
    register_partitions(instance, {"train": ["TRAIN-0001", "TRAIN-0002"], "predict": ["SURVEY-0001"]})
    again = new_inputs_sensor(dg.build_sensor_context(instance=instance, resources={"scone": scone},
                                                      cursor=result.cursor))
    assert isinstance(again, dg.SkipReason) and "no change" in again.skip_message
    # a new simulation file appears: only it is requested, and the cursor moves
    simulate(root / "sims" / "TRAIN", 360, survey="des", seed=4, per_file=120, mix="SNIa=0.5,SNII=0.5",
             jobs=1, progress=False, force=True)
    newer = new_inputs_sensor(dg.build_sensor_context(instance=instance, resources={"scone": scone},
                                                      cursor=result.cursor))
    assert [(r.job_name, r.partition_key) for r in newer.run_requests] == [("training_heatmaps_job", "TRAIN-0003")]
    assert newer.cursor != result.cursor
    register_partitions(instance, {"train": ["TRAIN-0003"]})

    train_keys, survey_keys = ["TRAIN-0001", "TRAIN-0002", "TRAIN-0003"], ["SURVEY-0001"]
    # the automation sensor's first tick, before any heatmaps: nothing can run yet
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert tick.total_requested == 0
    for job, keys in (("training_heatmaps_job", train_keys), ("survey_heatmaps_job", survey_keys)):
        for key in keys:
            res = run_job(defs, instance, job, key)
            assert res.dagster_run.job_name == job
            assert [(c.check_name, c.passed) for c in res.get_asset_check_evaluations()] == [("heatmap_yield", True)]
    mats = instance.fetch_materializations(dg.AssetKey("training_files"), limit=10).records
    assert {r.partition_key: r.asset_materialization.metadata["light_curves"].value for r in mats} == {
        "TRAIN-0001": 120, "TRAIN-0002": 120, "TRAIN-0003": 120}
    assert latest(instance, "survey_files")["data"].value == "simulated"

    # the heatmaps are in: automation asks for the balanced catalog, not yet for predictions
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_num_requested(dg.AssetKey("balanced_catalog")) == 1
    assert tick.get_num_requested(dg.AssetKey("predictions")) == 0  # no promoted model yet

    res = run_job(defs, instance, "train_job")
    assert {c.check_name: c.passed for c in res.get_asset_check_evaluations()} == {
        "class_balance": True, "accuracy_floor": True}
    # a long step moves in the run log: heatmaps with rate and ETA, training epoch by epoch
    heat_run = instance.get_runs(dg.RunsFilter(job_name="training_heatmaps_job"))[0]
    lines = [e.message for e in instance.all_logs(heat_run.run_id) if e.message]
    assert any(m.startswith("TRAIN-0003 [full]: 120/120 light curves,") and "/s, ETA" in m for m in lines)
    lines = [e.message for e in instance.all_logs(res.run_id) if e.message]
    epochs = [m for m in lines if m.startswith("v0001 epoch ")]
    assert epochs[0].startswith("v0001 epoch 1/25: loss ") and "val_accuracy" in epochs[0]
    assert len(epochs) == len(json.loads((root / "out" / "models" / "versions" / "v0001" / "history.json")
                                         .read_text())["loss"])
    first = latest(instance, "trained_model")
    assert first["version"].value == "v0001" and first["n_test"].value == 36
    assert first["accuracy"].value > 0.8 and first["accuracy"].value == round(first["accuracy"].value, 3)
    assert set(first["training_partitions"].value) == set(train_keys)
    assert latest(instance, "promoted_model")["version"].value == "v0001"
    assert latest(instance, "promoted_model")["reason"].value == "v0001 is the first version"
    split = pd.read_parquet(root / "out" / "catalogs" / "balanced_catalog" / "all.parquet")
    assert len(split) == 360 and split.SNID.is_unique

    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_requested_partitions(dg.AssetKey("predictions")) == {"SURVEY-0001"}
    res = run_job(defs, instance, "predict_job", "SURVEY-0001")
    table = pd.read_csv(root / "out" / "predict" / "predictions" / "SURVEY-0001.csv")
    assert len(table) == 40 and list(table.columns) == ["SNID", "PROB_SCONE", "MODEL_VERSION"]
    assert set(table.MODEL_VERSION) == {"v0001"} and latest(instance, "predictions")["model_version"].value == "v0001"
    # the sensor ticks on: predictions are up to date, and a model that is not promoted changes nothing
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_num_requested(dg.AssetKey("predictions")) == 0
    # every asset of each set is materialized over every partition of it: nothing missing
    for asset, keys in (("training_heatmaps", train_keys), ("training_catalog", train_keys),
                        ("survey_heatmaps", survey_keys), ("predictions", survey_keys)):
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(keys), asset

    # a worse version (one epoch) that passes its checks (a deployment's floor of 0 here): trained
    # and recorded, not promoted; figures side by side
    (root / "worse.yml").write_text(f"input_path: {root / 'sims' / 'TRAIN'}\nnum_epochs: 1\nseed: 2\n")
    worse = build_defs(str(root / "worse.yml"), str(root / "predict.yml"), str(root / "out"), jobs=1)
    monkeypatch.setattr(checks, "ACCURACY_FLOOR", 0.0)
    res = run_job(worse, instance, "train_job")
    monkeypatch.undo()
    assert latest(instance, "trained_model")["version"].value == "v0002"
    assert latest(instance, "promoted_model")["version"].value == "v0001"
    assert dg.AssetKey("promoted_model") not in {e.asset_key for e in res.get_asset_materialization_events()}
    seen = instance.fetch_observations(dg.AssetKey("promoted_model"), limit=5).records
    kept = seen[0].event_log_entry.asset_observation.metadata
    assert kept["decision"].value == "kept" and "v0002 is worse than v0001" in kept["reason"].value
    assert kept["held_out_objects"].value == 36 and "| auc |" in kept["comparison"].value
    assert json.loads((root / "out" / "models" / "promoted.json").read_text())["version"] == "v0001"
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_num_requested(dg.AssetKey("predictions")) == 0

    # a version failing its blocking check: promoted_model does not run in that run, and run
    # on its own later it refuses the version by its record
    monkeypatch.setattr(checks, "ACCURACY_FLOOR", 0.999)
    res = run_job(worse, instance, "train_job", raise_on_error=False)
    assert {c.check_name: c.passed for c in res.get_asset_check_evaluations()}["accuracy_floor"] is False
    assert latest(instance, "trained_model")["version"].value == "v0003"
    assert materialize(defs, instance, ["promoted_model"]).success
    blocked = instance.fetch_observations(dg.AssetKey("promoted_model"), limit=1).records[0]
    assert "v0003 failed its blocking check(s) accuracy_floor" in \
        blocked.event_log_entry.asset_observation.metadata["reason"].value
    assert latest(instance, "promoted_model")["version"].value == "v0001"
    monkeypatch.undo()

    # as good as the champion on the same held-out objects: promoted, predictions refreshed
    res = run_job(defs, instance, "train_job",
                  run_config={"ops": {"promoted_model": {"config": {"tolerance": 0.02}}}})
    promoted = latest(instance, "promoted_model")
    assert promoted["version"].value == "v0004" and promoted["previous"].value == "v0001"
    assert promoted["challenger_auc"].value >= promoted_auc(instance, "v0001") - 0.02
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_requested_partitions(dg.AssetKey("predictions")) == {"SURVEY-0001"}
    run_job(defs, instance, "predict_job", "SURVEY-0001")
    table = pd.read_csv(root / "out" / "predict" / "predictions.csv")
    assert len(table) == 40 and set(table.MODEL_VERSION) == {"v0004"}
    assert versions.list_versions(root / "out" / "models") == ["v0001", "v0002", "v0003", "v0004"]
    assert versions.read_record(versions.version_dir(root / "out" / "models", "v0003")).checks == {
        "accuracy_floor": False}


def promoted_auc(instance, version):
    for r in instance.fetch_materializations(dg.AssetKey("trained_model"), limit=10).records:
        meta = r.asset_materialization.metadata
        if meta["version"].value == version:
            return meta["auc"].value
    raise AssertionError(version)


def test_io_manager_picks_streaming_above_the_threshold(platform):
    root, defs, instance = platform
    from scone_assets.config import SconeConfig
    from scone_assets.defs.io_managers import HeatmapSet
    from scone_assets.heatmaps.store import INDEX, unit_folder

    heat = root / "out" / "heatmaps"
    folders = [(f"TRAIN-000{i}", "full", unit_folder(heat, "full", f"TRAIN-000{i}"))
               for i in (1, 2)]
    if not all((f / INDEX).is_file() for _, _, f in folders):  # run alone: make them here
        from scone_assets.heatmaps.run import make_heatmaps

        make_heatmaps(SconeConfig(input_path=str(root / "sims" / "TRAIN"), heatmaps_path=str(heat)), jobs=1,
                      progress=False)
    below = HeatmapSet(folders, SconeConfig())
    data, plan = below.loader()
    assert plan.kind == "memory" and isinstance(data, dict) and data["image"].shape[1:] == (32, 180, 2)
    above = HeatmapSet(folders, SconeConfig(streaming_threshold=100))
    data, plan = above.loader()
    import tensorflow as tf

    assert plan.kind == "streaming" and isinstance(data, tf.data.Dataset)
    sizes = [int(b[0].shape[0]) for b in data]
    assert sum(sizes) == len(above.catalog()) > 200
    # a large set gets SCONE's automatic micro-batching settings, but streaming already holds
    # memory flat, so inference keeps balanced_batch_size ...
    assert plan.micro_batching and plan.micro_batch_size == 16 and max(sizes) == 128
    # ... unless the user asks for micro-batching
    asked = HeatmapSet(folders, SconeConfig(streaming_threshold=100, enable_micro_batching=True))
    data, plan = asked.loader()
    assert plan.inference_batch == 16 and max(int(b[0].shape[0]) for b in data) == 16


def test_a_bad_file_fails_its_partition_with_the_library_message(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "BAD_HEAD.FITS").write_text("not fits")
    (tmp_path / "in" / "BAD_PHOT.FITS").write_text("not fits")
    (tmp_path / "train.yml").write_text(f"input_path: {tmp_path / 'in'}\n")
    defs = build_defs(str(tmp_path / "train.yml"), None, str(tmp_path / "out"), jobs=1)
    instance = dg.DagsterInstance.ephemeral()
    register_partitions(instance, {"train": ["in__BAD"]})
    res = materialize(defs, instance, ["training_files"], "in__BAD", raise_on_error=False)
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "BAD_HEAD.FITS: not a FITS file" in str(failure.event_specific_data.error)
    assert not Path(tmp_path / "out" / "heatmaps").exists()


def test_remote_output_root(tmp_path, monkeypatch):
    """Any fsspec URL as the output root: the library writes to local staging and the IO managers
    mirror catalogs, heatmaps, the model and predictions to it, and fetch them back."""
    import shutil

    import fsspec

    monkeypatch.setenv("SCONE_STAGING", str(tmp_path / "staging"))
    simulate(tmp_path / "sims" / "R", 240, survey="des", seed=4, per_file=120, mix="SNIa=0.5,SNII=0.5", jobs=1,
             progress=False)
    simulate(tmp_path / "data" / "D", 20, survey="des", seed=8, per_file=20, jobs=1, progress=False)
    (tmp_path / "train.yml").write_text(f"input_path: {tmp_path / 'sims' / 'R'}\nnum_epochs: 25\nseed: 2\n")
    (tmp_path / "predict.yml").write_text(f"input_path: {tmp_path / 'data' / 'D'}\nmode: predict\n"
                                          f"trained_model: {tmp_path}/unused\nclass_prior: data\n")
    root = "memory://scone-remote-test/out"
    defs = build_defs(str(tmp_path / "train.yml"), str(tmp_path / "predict.yml"), root, jobs=1, like_n=200,
                      like_num_epochs=2)
    instance = dg.DagsterInstance.ephemeral()
    keys = defs.resources["scone"].partition_keys()
    assert keys == {"train": ["R-0001", "R-0002"], "predict": ["D-0001"]}
    register_partitions(instance, keys)
    for role, job in (("train", "training_heatmaps_job"), ("predict", "survey_heatmaps_job")):
        for key in keys[role]:
            assert run_job(defs, instance, job, key).success
    mem = fsspec.filesystem("memory")
    assert mem.exists("/scone-remote-test/out/heatmaps/full/R-0001/heatmaps.tfrecord")
    assert mem.exists("/scone-remote-test/out/catalogs/training_catalog/R-0001.parquet")
    shutil.rmtree(tmp_path / "staging")  # training must fetch the shards from the remote root
    assert run_job(defs, instance, "train_job").success
    assert any(p.endswith("model.keras") for p in mem.find("/scone-remote-test/out/models/versions/v0001"))
    assert mem.exists("/scone-remote-test/out/models/promoted.json")
    shutil.rmtree(tmp_path / "staging")  # and prediction the model and its partition's shard
    assert run_job(defs, instance, "predict_job", "D-0001").success
    with mem.open("/scone-remote-test/out/predict/predictions.csv", "rb") as fh:
        assert len(pd.read_csv(fh)) == 20

    # the like flow too: its predictions with what predict wrote beside them, fetched back by the dust fit
    assert run_job(defs, instance, "like_job").success
    assert run_job(defs, instance, "like_predict_job", "D-0001").success
    like = "/scone-remote-test/out/like/predictions/D-0001"
    assert all(mem.exists(like + suffix) for suffix in (".csv", ".skipped.csv", ".class_prior.json"))
    shutil.rmtree(tmp_path / "staging")
    assert run_job(defs, instance, "like_dust_job").success
    dust = instance.get_latest_materialization_event(dg.AssetKey("like_host_dust")).asset_materialization.metadata
    assert dust["ia_fraction_from"].value == "class_prior: data estimates of 1 partition(s), weighed by light curves"


def test_input_roots_are_resource_fields(tmp_path):
    from scone_assets.defs.resources import SconeResource

    (tmp_path / "t.yml").write_text("input_data_paths: [/somewhere/else]\n")
    simulate(tmp_path / "X", 10, survey="des", seed=1, per_file=5, jobs=1, progress=False)
    scone = SconeResource(train_config_path=str(tmp_path / "t.yml"), train_input_path=str(tmp_path / "X"),
                          output_root=str(tmp_path / "out"))
    cfg = scone.config("train")
    assert cfg.input_path == str(tmp_path / "X") and cfg.input_data_paths is None
    assert scone.partition_keys() == {"train": ["X-0001", "X-0002"]}
