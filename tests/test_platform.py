"""The Dagster code location: the whole graph materialized in process on small simulated sets,
sensors, the IO manager's loading choice, and failures that carry the library's messages."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from scone_assets.definitions import build_defs
from scone_assets.defs.partitions import PARTITIONS_NAME
from scone_assets.defs.sensors import new_simulations_sensor, retrain_sensor
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


def test_definitions_load_with_every_concern(platform):
    _, defs, _ = platform
    keys = {a.key.to_user_string() for a in defs.resolve_all_asset_specs()}
    assert keys == {"snana_files", "lightcurve_catalog", "balanced_catalog", "heatmaps", "trained_model", "predictions",
                    "like_simulation", "like_heatmaps", "like_model", "like_predictions"}
    assert {j for j in ("heatmaps_job", "train_job", "predict_job") if defs.resolve_job_def(j)} == {
        "heatmaps_job", "train_job", "predict_job"}
    assert defs.resolve_schedule_def("nightly_retrain").default_status == dg.DefaultScheduleStatus.STOPPED
    assert defs.resolve_sensor_def("new_simulations_sensor") and defs.resolve_sensor_def("retrain_sensor")


def test_sensor_adds_partitions_then_skips_and_the_whole_graph_materializes(platform):
    root, defs, instance = platform
    scone = defs.resources["scone"]
    ctx = dg.build_sensor_context(instance=instance, resources={"scone": scone})
    result = new_simulations_sensor(ctx)
    keys = ["predict:SURVEY__SURVEY-0001", "train:TRAIN__TRAIN-0001", "train:TRAIN__TRAIN-0002"]
    assert sorted(r.partition_key for r in result.run_requests) == keys
    assert result.dynamic_partitions_requests[0].partition_keys == keys
    instance.add_dynamic_partitions(PARTITIONS_NAME, keys)
    again = new_simulations_sensor(dg.build_sensor_context(instance=instance, resources={"scone": scone},
                                                           cursor=result.cursor))
    assert isinstance(again, dg.SkipReason) and "no change" in again.skip_message
    # a new simulation file appears: only it is requested, and the cursor moves
    simulate(root / "sims" / "TRAIN", 360, survey="des", seed=4, per_file=120, mix="SNIa=0.5,SNII=0.5",
             jobs=1, progress=False, force=True)
    newer = new_simulations_sensor(dg.build_sensor_context(instance=instance, resources={"scone": scone},
                                                           cursor=result.cursor))
    assert [r.partition_key for r in newer.run_requests] == ["train:TRAIN__TRAIN-0003"] and newer.cursor != result.cursor
    instance.add_dynamic_partitions(PARTITIONS_NAME, ["train:TRAIN__TRAIN-0003"])

    for key in keys + ["train:TRAIN__TRAIN-0003"]:
        res = materialize(defs, instance, ["snana_files", "lightcurve_catalog", "heatmaps"], key)
        assert res.success
        checks_ = res.get_asset_check_evaluations()
        assert [(c.check_name, c.passed) for c in checks_] == [("heatmap_yield", True)]
    mats = instance.fetch_materializations(dg.AssetKey("snana_files"), limit=10).records
    meta = {r.partition_key: r.asset_materialization.metadata for r in mats}
    assert meta["train:TRAIN__TRAIN-0001"]["light_curves"].value == 120
    assert meta["predict:SURVEY__SURVEY-0001"]["data"].value == "simulated"

    retrain = retrain_sensor(dg.build_sensor_context(instance=instance))
    assert len(retrain.run_requests) == 1  # four new heatmap partitions, one retraining run
    assert json.loads(retrain.run_requests[0].tags["scone/new_partitions"]) == keys[1:] + ["train:TRAIN__TRAIN-0003"]
    assert isinstance(retrain_sensor(dg.build_sensor_context(instance=instance, cursor=retrain.cursor)), dg.SkipReason)

    res = materialize(defs, instance, ["balanced_catalog", "trained_model"])
    assert res.success
    evals = {c.check_name: c.passed for c in res.get_asset_check_evaluations()}
    assert evals == {"class_balance": True, "accuracy_floor": True}
    model_meta = instance.get_latest_materialization_event(dg.AssetKey("trained_model")).asset_materialization.metadata
    assert model_meta["accuracy"].value > 0.8 and model_meta["n_test"].value == 36
    split = pd.read_parquet(root / "out" / "catalogs" / "balanced_catalog" / "all.parquet")
    assert len(split) == 360 and split.SNID.is_unique

    res = materialize(defs, instance, ["predictions"], "predict:SURVEY__SURVEY-0001")
    assert res.success
    table = pd.read_csv(root / "out" / "predict" / "predictions" / "SURVEY__SURVEY-0001.csv")
    assert len(table) == 40 and list(table.columns) == ["SNID", "PROB_SCONE"]
    assert len(pd.read_csv(root / "out" / "predict" / "predictions.csv")) == 40

    bad = materialize(defs, instance, ["predictions"], "train:TRAIN__TRAIN-0001", raise_on_error=False)
    assert not bad.success
    failure = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE")
    assert "is a training partition" in str(failure.event_specific_data.error)


def test_io_manager_picks_streaming_above_the_threshold(platform):
    root, defs, instance = platform
    from scone_assets.config import SconeConfig
    from scone_assets.defs.io_managers import HeatmapSet
    from scone_assets.heatmaps.store import INDEX, unit_folder

    heat = root / "out" / "heatmaps"
    folders = [(f"train:TRAIN__TRAIN-000{i}", "full", unit_folder(heat, "full", f"TRAIN__TRAIN-000{i}"))
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
    instance.add_dynamic_partitions(PARTITIONS_NAME, ["train:in__BAD"])
    res = materialize(defs, instance, ["snana_files"], "train:in__BAD", raise_on_error=False)
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
                                          f"trained_model: {tmp_path}/unused\n")
    root = "memory://scone-remote-test/out"
    defs = build_defs(str(tmp_path / "train.yml"), str(tmp_path / "predict.yml"), root, jobs=1)
    instance = dg.DagsterInstance.ephemeral()
    keys = defs.resources["scone"].all_partition_keys()
    instance.add_dynamic_partitions(PARTITIONS_NAME, keys)
    for key in keys:
        assert materialize(defs, instance, ["snana_files", "lightcurve_catalog", "heatmaps"], key).success
    mem = fsspec.filesystem("memory")
    assert mem.exists("/scone-remote-test/out/heatmaps/full/R__R-0001/heatmaps.tfrecord")
    assert mem.exists("/scone-remote-test/out/catalogs/lightcurve_catalog/train__R__R-0001.parquet")
    shutil.rmtree(tmp_path / "staging")  # training must fetch the shards from the remote root
    assert materialize(defs, instance, ["balanced_catalog", "trained_model"]).success
    assert any(p.endswith("model.keras") for p in mem.find("/scone-remote-test/out/train/trained_model"))
    shutil.rmtree(tmp_path / "staging")  # and prediction the model and its partition's shard
    assert materialize(defs, instance, ["predictions"], "predict:D__D-0001").success
    with mem.open("/scone-remote-test/out/predict/predictions.csv", "rb") as fh:
        assert len(pd.read_csv(fh)) == 20


def test_input_roots_are_resource_fields(tmp_path):
    from scone_assets.defs.resources import SconeResource

    (tmp_path / "t.yml").write_text("input_data_paths: [/somewhere/else]\n")
    simulate(tmp_path / "X", 10, survey="des", seed=1, per_file=5, jobs=1, progress=False)
    scone = SconeResource(train_config_path=str(tmp_path / "t.yml"), train_input_path=str(tmp_path / "X"),
                          output_root=str(tmp_path / "out"))
    cfg = scone.config("train")
    assert cfg.input_path == str(tmp_path / "X") and cfg.input_data_paths is None
    assert scone.all_partition_keys() == ["train:X__X-0001", "train:X__X-0002"]
