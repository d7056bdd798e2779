"""The classifier: SCONE's network, loading rules, a disjoint seeded split, metrics,
and real training and prediction on a small simulated set."""

import json
import logging

import keras
import numpy as np
import pandas as pd
import pytest

from scone_assets.config import ConfigError, SconeConfig
from scone_assets.heatmaps.run import make_heatmaps
from scone_assets.heatmaps.store import finished_units, load_catalog
from scone_assets.model import metrics
from scone_assets.model.folder import load_trained
from scone_assets.model.loaders import GB, MB, load_arrays, plan_loading
from scone_assets.model.network import build_model
from scone_assets.model.predict import predict
from scone_assets.model.train import split_snids, train
from scone_assets.simulate.run import simulate


def test_network_is_scones():
    model = build_model(32, 180)
    assert model.input_shape == (None, 32, 180, 2) and model.output_shape == (None, 1)
    assert model.count_params() == 22449
    assert [lay.name for lay in model.layers if "transpose" in lay.name] == [
        "block1_transpose", "block2_transpose", "block3_transpose", "block4_transpose"]
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(5e-5)
    cat = build_model(16, 40, n_classes=3, categorical=True, with_z=True)
    assert cat.output_shape == (None, 3) and [i.name for i in cat.inputs] == ["image", "z", "z_err"]
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_model(16, 40, n_classes=1, categorical=True)


def test_saved_model_loads_without_custom_objects(tmp_path):
    model = build_model(8, 12)
    x = np.random.default_rng(0).random((3, 8, 12, 2)).astype("float32")
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), rtol=1e-6)


def test_loading_rules():
    c = SconeConfig()
    plan = plan_loading(c, 74_999, 1 * GB)
    assert plan.kind == "memory" and not plan.micro_batching and plan.chunk_size == 1000
    plan = plan_loading(c, 75_000, 3 * GB)
    assert plan.kind == "streaming" and (plan.micro_batching, plan.micro_batch_size, plan.chunk_size) == (True, 16, 400)
    assert any("auto-configured" in n for n in plan.notes)
    assert plan_loading(c, 35_000, 45 * GB).kind == "streaming"  # > 40 GB: threshold 30,000
    assert plan_loading(c, 15_000, 150 * GB).threshold == 20_000
    assert plan_loading(c, 9_000, 250 * GB).threshold == 10_000
    assert plan_loading(c, 1_000, 1_000 * 20 * MB).threshold == 25_000  # 20 MB records
    assert plan_loading(SconeConfig(force_streaming=True), 10, 1).kind == "streaming"
    assert plan_loading(SconeConfig(debug_flag=-901), 10**6, 1).kind == "legacy"
    assert plan_loading(SconeConfig(enable_balanced_mode=False), 10**6, 1).kind == "memory"
    assert plan_loading(SconeConfig(enable_balanced_mode=False, memory_optimize=True), 10, 1).kind == "streaming"
    user = plan_loading(SconeConfig(micro_batch_size=8), 80_000, 1)
    assert user.micro_batch_size == 8 and user.chunk_size == 400
    # inference batches: the loader's own unless micro-batching is asked for
    assert plan_loading(c, 10, 1).inference_batch == 32  # batch_size, in memory
    assert plan.inference_batch == 128 and any("inference keeps 128" in n for n in plan.notes)
    assert plan_loading(SconeConfig(enable_micro_batching=True, micro_batch_size=8), 10, 1).inference_batch == 8


def test_split_is_disjoint_stratified_and_seeded():
    snids = np.array([str(i) for i in range(1000)])
    y = np.array([1] * 300 + [0] * 700)
    s = split_snids(snids, y, SconeConfig(seed=3))
    assert len(s) == 1000 and s.SNID.is_unique
    counts = s.groupby(["set", "label"]).size()
    assert counts["train", 1] == 240 and counts["train", 0] == 560 and counts["val", 1] == 30
    assert s.equals(split_snids(snids, y, SconeConfig(seed=3)))
    assert not s.equals(split_snids(snids, y, SconeConfig(seed=4)))
    bal = split_snids(snids, y, SconeConfig(seed=3, class_balanced=True))
    assert bal.groupby("label").size().to_dict() == {0: 300, 1: 300}
    capped = split_snids(snids, y, SconeConfig(seed=3, max_per_type=100))
    assert capped.groupby("label").size().to_dict() == {0: 100, 1: 100}


def test_metrics_on_known_values():
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.4, 0.35, 0.1, 0.8, 0.7])
    assert metrics.roc_auc(y, p) == pytest.approx(8 / 9)
    b = metrics.binary_metrics(y, p)
    assert (b["accuracy"], b["purity"], b["efficiency"]) == (pytest.approx(4 / 6), pytest.approx(2 / 3), pytest.approx(2 / 3))
    cm = metrics.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2], 3)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    simulate(root / "SIM", 400, survey="des", seed=2, per_file=200, mix="SNIa=0.5,SNII=0.5", jobs=1, progress=False)
    cfg = SconeConfig(input_path=str(root / "SIM"), heatmaps_path=str(root / "h"), output_path=str(root / "out"),
                      num_epochs=25, seed=1)
    make_heatmaps(cfg, jobs=2, progress=False)
    catalog = load_catalog(finished_units(cfg.heatmaps_path))
    result = train(cfg, {"full": catalog}, root / "out" / "trained_model", band_to_wave={"g": 4828.0}, progress=False)
    return root, cfg, catalog, result


def test_training_beats_chance_and_saves_everything(trained):
    root, cfg, catalog, result = trained
    folder = root / "out" / "trained_model"
    t = result["test"]
    assert t["n"] == 40 and t["accuracy"] > 0.8 and t["auc"] > 0.9
    for name in ("model.keras", "model_meta.json", "config.yml", "history.json", "split.csv", "metrics.json",
                 "roc.png", "confusion_matrix.png", "calibration.png", "training_curves.png",
                 "example_heatmaps.png"):
        assert (folder / name).is_file(), name
    meta = json.loads((folder / "model_meta.json").read_text())
    assert meta["classes"] == ["nonIa", "SNIa"] and meta["shape"] == [32, 180] and meta["loader"] == "memory"
    assert meta["band_to_wave"] == {"g": 4828.0}
    split = pd.read_csv(folder / "split.csv")
    assert split.SNID.is_unique and split.groupby("set").size().to_dict() == {"test": 40, "train": 320, "val": 40}
    hist = json.loads((folder / "history.json").read_text())
    assert len(hist["loss"]) == 25 and hist["loss"][-1] < hist["loss"][0]


def test_predict_csv_and_streaming_matches_memory(trained, tmp_path):
    root, cfg, catalog, _ = trained
    model_dir = root / "out" / "trained_model"
    mem = predict(SconeConfig(mode="predict", trained_model=str(model_dir), output_path=str(tmp_path)), catalog,
                  model_dir, tmp_path / "mem.csv")
    streamed = predict(SconeConfig(mode="predict", trained_model=str(model_dir), force_streaming=True,
                                   output_path=str(tmp_path)), catalog, model_dir, tmp_path / "stream.csv")
    assert list(pd.read_csv(tmp_path / "mem.csv").columns) == ["SNID", "PROB_SCONE"]
    assert len(mem) == 400
    merged = mem.merge(streamed, on="SNID")
    np.testing.assert_allclose(merged.PROB_SCONE_x, merged.PROB_SCONE_y, atol=1e-5)
    assert (tmp_path / "mem.skipped.csv").is_file()


def test_predict_with_class_prior_data(trained, tmp_path):
    """A trained model (test_model's, 50% SNe Ia, class weights) on a sample of 5 SNe Ia to
    each other light curve: the estimate leans to SNe Ia, the sidecar says so, the ranking
    is the same, and a later run without it removes the stale sidecar."""
    from scone_assets.heatmaps.store import HeatmapCatalog
    from scone_assets.model.predict import CLASS_PRIOR_SUFFIX

    root, cfg, catalog, _ = trained
    model_dir = root / "out" / "trained_model"
    idx = catalog.index
    ia, other = idx[idx.TYPE_NAME == "SNIa"], idx[idx.TYPE_NAME != "SNIa"]
    sample = pd.concat([ia, other.iloc[: len(ia) // 5]]).reset_index(drop=True)
    skewed = HeatmapCatalog(sample, catalog.skipped, catalog.shape, catalog.total_bytes, catalog.band_to_wave,
                            complete=False)
    out = tmp_path / "predictions.csv"
    plain = predict(SconeConfig(mode="predict", trained_model=str(model_dir), output_path=str(tmp_path)), skewed,
                    model_dir, out)
    assert not out.with_suffix(CLASS_PRIOR_SUFFIX).exists()
    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert meta["output_prior"] == [0.5, 0.5]  # trained with class weights
    adapted = predict(SconeConfig(mode="predict", trained_model=str(model_dir), output_path=str(tmp_path),
                                  class_prior="data"), skewed, model_dir, out)
    record = json.loads(out.with_suffix(CLASS_PRIOR_SUFFIX).read_text())
    assert record["classes"] == ["nonIa", "SNIa"] and record["light_curves"] == len(sample) == 240
    # 200 of the 240 are SNe Ia (0.83); this small model's probabilities are not well calibrated
    assert record["assumed"] == [0.5, 0.5] and 0.75 < record["estimated"][1] < 1.0
    merged = plain.merge(adapted, on="SNID")
    order = np.argsort(merged.PROB_SCONE_x.to_numpy(), kind="stable")
    assert (np.diff(merged.PROB_SCONE_y.to_numpy()[order]) >= -1e-6).all()  # the same order (float32 ties)
    assert (merged.PROB_SCONE_y >= merged.PROB_SCONE_x - 1e-6).all()  # every P(Ia) rises
    assert list(pd.read_csv(out).columns) == ["SNID", "PROB_SCONE"]  # Pippin's columns, unchanged
    predict(SconeConfig(mode="predict", trained_model=str(model_dir), output_path=str(tmp_path)), skewed,
            model_dir, out)
    assert not out.with_suffix(CLASS_PRIOR_SUFFIX).exists()


def test_micro_batching_and_chunks_change_batches_not_results(trained, tmp_path, caplog):
    root, cfg, catalog, _ = trained
    model_dir = root / "out" / "trained_model"
    small = load_arrays(catalog, batch=7)  # 400 records parsed 7 at a time
    whole = load_arrays(catalog, batch=512)
    assert len(small["image"]) == 400 and list(small["snid"]) == list(whole["snid"])
    np.testing.assert_array_equal(small["image"], whole["image"])
    base = predict(SconeConfig(mode="predict", trained_model=str(model_dir)), catalog, model_dir,
                   tmp_path / "base.csv")
    with caplog.at_level(logging.INFO, logger="scone_assets.model.predict"):
        micro = predict(SconeConfig(mode="predict", trained_model=str(model_dir), enable_micro_batching=True,
                                    micro_batch_size=4, chunk_size=50), catalog, model_dir, tmp_path / "micro.csv")
    assert "predicting 400 heatmaps in memory, 4 at a time" in caplog.text
    merged = base.merge(micro, on="SNID")
    assert len(merged) == 400
    np.testing.assert_allclose(merged.PROB_SCONE_x, merged.PROB_SCONE_y, atol=1e-5)


def test_bad_model_inputs_are_named(trained, tmp_path):
    root, cfg, catalog, _ = trained
    with pytest.raises(ConfigError, match="has no model.keras"):
        load_trained(tmp_path)
    small = SconeConfig(input_path=cfg.input_path, heatmaps_path=str(tmp_path / "h16"), num_wavelength_bins=16,
                        num_mjd_bins=40)
    make_heatmaps(small, jobs=1, progress=False)
    other = load_catalog(finished_units(small.heatmaps_path))
    with pytest.raises(ConfigError, match="16x40 but the model .* was trained on 32x180"):
        predict(SconeConfig(mode="predict", trained_model=str(root / "out" / "trained_model")), other,
                root / "out" / "trained_model", tmp_path / "p.csv")
    only_ia = catalog.index[catalog.index.TYPE_NAME == "SNIa"]
    from scone_assets.model.train import make_labels

    with pytest.raises(ConfigError, match="at least two classes"):
        make_labels(only_ia.TYPE_NAME, categorical=True)


def test_categorical_with_redshift_trains_streaming(trained, tmp_path):
    """SCONE's train() feeds only the image to its three-input with_z model; here it trains,
    streamed from the shards, with one <prob_column_name>_<TYPE> column per class in predictions."""
    root, cfg, catalog, _ = trained
    c = SconeConfig(input_path=cfg.input_path, heatmaps_path=cfg.heatmaps_path, output_path=str(tmp_path),
                    num_epochs=2, categorical=True, with_z=True, force_streaming=True, seed=5)
    result = train(c, {"full": catalog}, tmp_path / "m", progress=False)
    assert result["categorical"]["classes"] == ["SNII", "SNIa"]
    assert sum(v["n"] for v in result["categorical"]["per_class"].values()) == 40
    meta = json.loads((tmp_path / "m" / "model_meta.json").read_text())
    assert meta["loader"] == "streaming" and meta["with_z"] and meta["categorical"]
    table = predict(SconeConfig(mode="predict", trained_model=str(tmp_path / "m")), catalog, tmp_path / "m",
                    tmp_path / "p.csv")
    assert list(table.columns) == ["SNID", "PROB_SCONE", "PROB_SCONE_SNII", "PROB_SCONE_SNIa"]
    np.testing.assert_allclose(table.PROB_SCONE_SNII + table.PROB_SCONE_SNIa, 1.0, rtol=1e-5)
    np.testing.assert_allclose(table.PROB_SCONE, table.PROB_SCONE_SNIa)
    # another task's column name: its per-class columns cannot collide with PROB_SCONE_*
    other = predict(SconeConfig(mode="predict", trained_model=str(tmp_path / "m"), prob_column_name="PROB_MYTASK"),
                    catalog, tmp_path / "m", tmp_path / "p2.csv")
    assert list(other.columns) == ["SNID", "PROB_MYTASK", "PROB_MYTASK_SNII", "PROB_MYTASK_SNIa"]
    np.testing.assert_allclose(other.PROB_MYTASK_SNIa, table.PROB_SCONE_SNIa, atol=1e-6)


def test_cli_run_then_predict(tmp_path):
    import subprocess
    import sys

    simulate(tmp_path / "S", 60, survey="des", seed=9, per_file=60, mix="SNIa=0.5,SNII=0.5", jobs=1, progress=False)
    train_cfg = tmp_path / "train.yml"
    train_cfg.write_text(f"input_path: {tmp_path / 'S'}\nheatmaps_path: {tmp_path / 'h'}\n"
                         f"output_path: {tmp_path / 'out'}\nnum_epochs: 2\nseed: 3\n")
    run = subprocess.run([sys.executable, "-m", "scone_assets.cli", "run", "--config_path", str(train_cfg),
                          "--jobs", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "trained model:" in run.stdout and "test set: 6 light curves" in run.stdout
    pred_cfg = tmp_path / "predict.yml"
    pred_cfg.write_text(f"input_path: {tmp_path / 'S'}\nheatmaps_path: {tmp_path / 'h'}\nmode: predict\n"
                        f"trained_model: {tmp_path / 'out' / 'trained_model'}\n"
                        f"output_predict_file: {tmp_path / 'p' / 'scone_predictions.csv'}\n")
    res = subprocess.run([sys.executable, "-m", "scone_assets.cli", "predict", "--config_path", str(pred_cfg), "-v"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    table = pd.read_csv(tmp_path / "p" / "scone_predictions.csv")
    assert len(table) == 60 and table.columns[0] == "SNID" and table.PROB_SCONE.between(0, 1).all()
    missing = subprocess.run([sys.executable, "-m", "scone_assets.cli", "predict", "--config_path", str(train_cfg)],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "trained_model" in missing.stderr


def test_same_config_same_model_on_cpu(trained, tmp_path):
    root, cfg, catalog, _ = trained
    c = SconeConfig(input_path=cfg.input_path, heatmaps_path=cfg.heatmaps_path, num_epochs=2, seed=11)
    train(c, {"full": catalog}, tmp_path / "a", progress=False)
    train(c, {"full": catalog}, tmp_path / "b", progress=False)
    assert (tmp_path / "a" / "split.csv").read_text() == (tmp_path / "b" / "split.csv").read_text()
    wa = keras.models.load_model(tmp_path / "a" / "model.keras").get_weights()
    wb = keras.models.load_model(tmp_path / "b" / "model.keras").get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))


def test_predict_mode_places_bands_from_the_data_and_falls_back_to_the_training_map(tmp_path):
    """SCONE's filter-set independence: the data's own bands first, the model's map only for
    bands the data cannot place, and a warning for wavelengths the model never saw."""
    from scone_assets.snana.read import discover_paths, read_unit

    sim = simulate(tmp_path / "S", 20, survey="des", seed=1, per_file=20, jobs=1, progress=False)
    # a survey whose README is missing and whose band `g` has an unplaceable full name
    (sim.folder / "S.README").unlink()
    unit = discover_paths([str(sim.folder)]).units[0]
    lcs = read_unit(unit)
    assert lcs.band_to_wave["g"] == 4828.0  # placed from the data (DES-g)
    fallback = {"g": 4700.0, "Q": 12000.0}
    lcs = read_unit(unit, fallback_band_to_wave=fallback)
    assert lcs.band_to_wave["g"] == 4828.0 and not lcs.warnings  # the data wins; all inside the trained range
    narrow = read_unit(unit, fallback_band_to_wave={"g": 4828.0, "r": 6435.0})
    assert any("outside the wavelengths the model was trained on" in w and "z" in w for w in narrow.warnings)
    from scone_assets.bands import resolve_band_to_wave

    assert resolve_band_to_wave(["Q"], survey="DES", fallback=fallback) == {"Q": 12000.0}


def test_early_light_curves_give_metrics_per_truncation(trained, tmp_path):
    root, cfg, _, _ = trained
    early = SconeConfig(input_path=cfg.input_path, heatmaps_path=str(tmp_path / "h"), early_lightcurves=[5, 50],
                        num_epochs=2, seed=2)
    make_heatmaps(early, jobs=2, progress=False)
    catalogs = {name: load_catalog(finished_units(early.heatmaps_path, name)) for name in ("early_5d", "early_50d")}
    result = train(early, catalogs, tmp_path / "m", progress=False)
    assert set(result["sets"]) == {"early_5d", "early_50d"}
    assert all(0 <= v["binary"]["accuracy"] <= 1 and v["binary"]["n"] > 0 for v in result["sets"].values())
    split = pd.read_csv(tmp_path / "m" / "split.csv")
    assert split.SNID.is_unique  # one object, several truncations: still in exactly one set


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """60 simulated light curves' heatmaps: enough for a few-second training."""
    root = tmp_path_factory.mktemp("small")
    simulate(root / "S", 60, survey="des", seed=4, per_file=60, mix="SNIa=0.5,SNII=0.5", jobs=1, progress=False)
    cfg = SconeConfig(input_path=str(root / "S"), heatmaps_path=str(root / "h"), num_epochs=3, seed=1)
    make_heatmaps(cfg, jobs=1, progress=False)
    return root, cfg


def test_on_epoch_reports_every_epoch(small, tmp_path):
    from scone_assets.model.train import EpochProgress

    root, cfg = small
    seen: list[EpochProgress] = []
    train(cfg, {"full": load_catalog(finished_units(cfg.heatmaps_path))}, tmp_path / "m", progress=False,
          on_epoch=seen.append)
    hist = json.loads((tmp_path / "m" / "history.json").read_text())
    assert [(p.epoch, p.epochs, p.member, p.members) for p in seen] == [(1, 3, 1, 1), (2, 3, 1, 1), (3, 3, 1, 1)]
    assert [p.loss for p in seen] == pytest.approx(hist["loss"]) and all(np.isfinite(p.loss) for p in seen)
    assert [p.val_accuracy for p in seen] == pytest.approx(hist["val_accuracy"])
    assert all(0 <= p.accuracy <= 1 and p.val_loss is not None and p.seconds > 0 for p in seen)
    p = seen[2]
    assert str(p) == p.text() == (f"epoch 3/3: loss {p.loss:.3f}, accuracy {p.accuracy:.3f}, "
                                  f"val_loss {p.val_loss:.3f}, val_accuracy {p.val_accuracy:.3f}, {p.seconds:.1f} s")
    two = EpochProgress(1, 2, 0.41234, 0.5, None, None, 1.25, member=2, members=3)
    assert two.text() == "member 2/3 epoch 1/2: loss 0.412, accuracy 0.500, 1.2 s"


@pytest.mark.parametrize("streaming", [True])
def test_training_logs_no_tensorflow_errors(small, tmp_path, streaming):
    """A real training and prediction in a fresh process (TensorFlow logs from C++, so only
    another process's stderr shows it): no error-level (E0000) line. Streamed here; the
    in-memory loader is checked the same way by test_demo.py, whose training uses it."""
    import subprocess
    import sys

    root, cfg = small
    script = f"""
from scone_assets.config import SconeConfig
from scone_assets.heatmaps.store import finished_units, load_catalog
from scone_assets.model.predict import predict
from scone_assets.model.train import train
cfg = SconeConfig(input_path={cfg.input_path!r}, heatmaps_path={cfg.heatmaps_path!r}, num_epochs=2, seed=1,
                  force_streaming={streaming})
catalog = load_catalog(finished_units(cfg.heatmaps_path))
train(cfg, {{"full": catalog}}, {str(tmp_path / "m")!r}, progress=False)
predict(SconeConfig(mode="predict", trained_model={str(tmp_path / "m")!r}, force_streaming={streaming}), catalog,
        {str(tmp_path / "m")!r}, {str(tmp_path / "p.csv")!r})
print("trained")
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "trained" in res.stdout, res.stderr[-3000:]
    bad = [line for line in res.stderr.splitlines() if "E0000" in line or "use_unbounded_threadpool" in line]
    assert not bad, "\n".join(bad)


def test_string_lookup_is_exact_and_stateless():
    """The lookup tf.data pipelines use instead of a (stateful) tf.lookup table."""
    import tensorflow as tf

    from scone_assets.heatmaps.store import string_lookup

    lookup = string_lookup(["2004ef", "1186139", "b#7"], [5, 6, 7], -1)
    got = lookup(tf.constant(["1186139", "x", "b#7", "2004ef", ""]))
    assert got.numpy().tolist() == [6, -1, 7, 5, -1]
    assert int(lookup(tf.constant("b#7"))) == 7  # a scalar, as in Dataset.map
    assert string_lookup([], [], 0)(tf.constant(["a"])).numpy().tolist() == [0]
    fn = tf.function(lambda s: lookup(s)).get_concrete_function(tf.TensorSpec([None], tf.string))
    assert not [op.type for op in fn.graph.get_operations() if op.op_def.is_stateful]


def test_count_as_ia_trains_91bg_as_sn_ia(tmp_path, caplog):
    """count_as_ia: [SNIa-91bg] puts the simulation's 91bg-like SNe on the SN Ia side of the
    labels, the split and the test figures, and the model folder says so; a named class the
    heatmaps do not hold is a warning naming it."""
    from scone_assets.model.train import make_labels

    simulate(tmp_path / "S", 90, survey="des", seed=6, per_file=90, mix="SNIa=0.4,SNIa-91bg=0.3,SNII=0.3", jobs=1,
             progress=False)
    cfg = SconeConfig(input_path=str(tmp_path / "S"), heatmaps_path=str(tmp_path / "h"), num_epochs=2, seed=1,
                      count_as_ia=["Ia-91bg", "SNIax"])
    make_heatmaps(cfg, jobs=1, progress=False)
    catalog = load_catalog(finished_units(cfg.heatmaps_path))
    held = catalog.index.drop_duplicates("SNID").set_index("SNID").TYPE_NAME
    assert held.value_counts().to_dict() == {"SNIa": 36, "SNIa-91bg": 27, "SNII": 27}
    with caplog.at_level(logging.INFO, logger="scone_assets.model.train"):
        result = train(cfg, {"full": catalog}, tmp_path / "m", progress=False)
    assert "count_as_ia: learning SNIa-91bg 27 as SNIa" in caplog.text
    assert "count_as_ia names SNIax, which the training heatmaps do not hold" in caplog.text
    meta = json.loads((tmp_path / "m" / "model_meta.json").read_text())
    assert meta["count_as_ia"] == ["SNIa-91bg", "SNIax"] and meta["classes"] == ["nonIa", "SNIa"]
    split = pd.read_csv(tmp_path / "m" / "split.csv", dtype={"SNID": str})
    split["held"] = held.loc[split.SNID].to_numpy()
    assert (split.label_name == np.where(split.held == "SNII", "nonIa", "SNIa")).all()
    test = split[split.set == "test"]
    assert result["test"]["n"] == len(test) and result["test"]["n_ia"] == int((test.held != "SNII").sum()) > 0
    # categorical: the merged class, not a class of its own
    assert make_labels(held, True, cfg.count_as_ia).classes == ["SNII", "SNIa"]
    assert make_labels(held, True).classes == ["SNII", "SNIa", "SNIa-91bg"]
