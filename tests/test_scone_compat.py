"""SCONE drop-in, model side: SCONE's training-set keys, the files SCONE users look for
(filter_mean_wavelength.dat, training_history.csv), collision-free per-class columns, Roman
bands, and model folders SCONE itself wrote (model.keras with its `Reshape` layer, or a TF
SavedModel) predicting real heatmaps."""

from __future__ import annotations

import csv
import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
from conftest import shared

from scone_assets.bands import resolve_band_to_wave, survey_table
from scone_assets.config import ConfigError, SconeConfig
from scone_assets.heatmaps.run import make_heatmaps
from scone_assets.heatmaps.store import load_catalogs, read_shard
from scone_assets.model import folder as mf
from scone_assets.model.predict import predict
from scone_assets.model.train import select_training_set, train
from scone_assets.simulate.run import simulate

GRID = {"num_wavelength_bins": 16, "num_mjd_bins": 40}


# ------------------------------------------------------------------ 1. training-set keys

def _names(**counts: int) -> np.ndarray:
    return np.array([t for t, n in counts.items() for _ in range(n)], dtype=object)


def _kept(names, keep) -> dict[str, int]:
    kinds, n = np.unique(names[keep], return_counts=True)
    return dict(zip(kinds.tolist(), n.tolist(), strict=True))


def test_ia_fraction_draws_down_the_over_represented_side():
    names = _names(SNIa=300, SNII=500, SNIbc=200)
    keep, rec = select_training_set(names, SconeConfig(Ia_fraction=0.5, seed=1))
    assert int((names[keep] == "SNIa").sum()) == 300 and int((names[keep] != "SNIa").sum()) == 300
    assert rec["before"] == {"SNII": 500, "SNIa": 300, "SNIbc": 200} and rec["Ia_share"] == 0.5
    assert rec["class_weights"] is False and sum(rec["after"].values()) == 600
    # f = 0.2 < 0.3: SN Ia drawn down to floor(0.2 / 0.8 * 700) = 175, others untouched
    keep, rec = select_training_set(names, SconeConfig(Ia_fraction=0.2, seed=1))
    assert _kept(names, keep) == {"SNII": 500, "SNIa": 175, "SNIbc": 200}
    assert rec["Ia_share"] == pytest.approx(175 / 875)
    # f = 0.6 > 0.3: non-Ia drawn down to floor(0.4 / 0.6 * 300) = 200, across their types
    keep, _ = select_training_set(names, SconeConfig(Ia_fraction=0.6, seed=1))
    assert int((names[keep] == "SNIa").sum()) == 300 and int((names[keep] != "SNIa").sum()) == 200
    # seeded: the same seed the same objects, another seed others
    again, _ = select_training_set(names, SconeConfig(Ia_fraction=0.6, seed=1))
    other, _ = select_training_set(names, SconeConfig(Ia_fraction=0.6, seed=2))
    assert np.array_equal(keep, again) and not np.array_equal(keep, other)
    # no key, nothing chosen and nothing recorded
    keep, rec = select_training_set(names, SconeConfig())
    assert keep.all() and rec == {}


def test_ia_fraction_counts_what_count_as_ia_merges():
    """With count_as_ia, 91bg-like SNe are on the SN Ia side of Ia_fraction: 300 + 100 SN Ia
    against 600 others at f = 0.5 draws the others down to 400, and none of the 91bg."""
    names = _names(SNIa=300, **{"SNIa-91bg": 100}, SNII=600)
    keep, rec = select_training_set(names, SconeConfig(Ia_fraction=0.5, seed=1, count_as_ia=["SNIa-91bg"]))
    assert _kept(names, keep) == {"SNII": 400, "SNIa": 300, "SNIa-91bg": 100}
    assert rec["before"] == {"SNII": 600, "SNIa": 400} and rec["Ia_share"] == 0.5
    keep, rec = select_training_set(names, SconeConfig(Ia_fraction=0.5, seed=1))  # 91bg on the other side
    assert int((names[keep] == "SNIa").sum()) == 300 and int((names[keep] != "SNIa").sum()) == 300


def test_ia_fraction_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"Ia_fraction 0.5 needs SN Ia \(SNIa\) .* hold SNII 40, SNIbc 3"):
        select_training_set(_names(SNII=40, SNIbc=3), SconeConfig(Ia_fraction=0.5))
    with pytest.raises(ConfigError, match="Ia_fraction 0.5 needs SN Ia"):
        select_training_set(_names(SNIa=10), SconeConfig(Ia_fraction=0.5))
    with pytest.raises(ConfigError, match="Ia_fraction 0.01 with 3 SN Ia and 50 others leaves no SN Ia"):
        select_training_set(_names(SNIa=3, SNII=50), SconeConfig(Ia_fraction=0.01))
    with pytest.raises(ConfigError, match="Ia_fraction 0.99 with 1 SN Ia and 50 others leaves no non-Ia"):
        select_training_set(_names(SNIa=1, SNII=50), SconeConfig(Ia_fraction=0.99))
    with pytest.raises(ConfigError, match="Ia_fraction: categorical balances the types, but .* only SNIa 9"):
        select_training_set(_names(SNIa=9), SconeConfig(Ia_fraction="categorical"))


def test_categorical_min_and_max_per_type(caplog):
    names = _names(SNIa=500, SNII=300, SNIbc=120, KN=7, SLSN=30)
    cfg = SconeConfig(categorical=True, categorical_min_per_type=100, categorical_max_per_type=250, seed=3)
    with caplog.at_level(logging.INFO, logger="scone_assets.model.train"):
        keep, rec = select_training_set(names, cfg)
    assert "categorical_min_per_type 100: dropping KN 7, SLSN 30" in caplog.text
    assert _kept(names, keep) == {"SNII": 250, "SNIa": 250, "SNIbc": 120}
    assert rec["dropped_types"] == {"KN": 7, "SLSN": 30} and rec["categorical_max_per_type"] == 250
    # SCONE's "categorical": every kept type drawn down to the rarest kept one
    keep, rec = select_training_set(names, cfg.model_copy(update={"Ia_fraction": "categorical"}))
    assert _kept(names, keep) == {"SNII": 120, "SNIa": 120, "SNIbc": 120} and rec["Ia_fraction"] == "categorical"
    # ... also for a binary model (SCONE's data_cuts balances types, whatever the network)
    keep, _ = select_training_set(names, SconeConfig(Ia_fraction="categorical", categorical_max_per_type=20))
    assert _kept(names, keep) == {"KN": 7, "SLSN": 7, "SNII": 7, "SNIa": 7, "SNIbc": 7}
    with pytest.raises(ConfigError, match=r"categorical_min_per_type 400 leaves 1 class\(es\) \(SNIa 500\)"):
        select_training_set(names, SconeConfig(categorical=True, categorical_min_per_type=400))
    # a binary set without Ia_fraction: the categorical keys do nothing
    keep, rec = select_training_set(names, SconeConfig(categorical_min_per_type=100))
    assert keep.all() and rec == {}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """60 simulated DES light curves (SNIa, SNII, SNIbc) as 16x40 heatmaps."""
    root = tmp_path_factory.mktemp("compat")
    simulate(root / "SIM", 60, survey="des", seed=12, per_file=60, mix="SNIa=0.6,SNII=0.25,SNIbc=0.15", jobs=1,
             progress=False)
    cfg = SconeConfig(input_path=str(root / "SIM"), heatmaps_path=str(root / "h"), **GRID)
    make_heatmaps(cfg, jobs=1, progress=False)
    return root, cfg, load_catalogs(cfg.heatmaps_path, ["full"])["full"]


def test_training_applies_and_records_the_selection_and_writes_scone_files(sim, tmp_path):
    root, cfg, catalog = sim
    counts = catalog.index.drop_duplicates("SNID").TYPE_NAME.value_counts().to_dict()
    n_ia, n_non = counts["SNIa"], sum(n for t, n in counts.items() if t != "SNIa")
    assert n_ia > n_non > 10  # the simulation's mix: SN Ia are drawn down to the others' number
    bands = {"g": 4828.0, "r": 6435.0, "Y": 10653.88}  # the last has more digits than %g keeps
    c = cfg.model_copy(update={"output_path": str(tmp_path), "num_epochs": 2, "seed": 6, "Ia_fraction": 0.5})
    result = train(c, {"full": catalog}, tmp_path / "trained_model", band_to_wave=bands, progress=False)
    folder = tmp_path / "trained_model"
    split = pd.read_csv(folder / mf.SPLIT_FILE)
    per_label = split.groupby("label_name").size().to_dict()
    assert per_label == {"SNIa": n_non, "nonIa": n_non}
    meta = mf.read_meta(folder)
    assert meta.training_set["after"]["SNIa"] == n_non and meta.training_set["before"] == counts
    assert meta.made_by == mf.MADE_BY_US and meta.n_train + meta.n_val + meta.n_test == 2 * n_non
    on_disk = json.loads((folder / mf.METRICS_FILE).read_text())
    assert on_disk["training_set"] == result["training_set"] == json.loads(json.dumps(meta.training_set))
    # 2. SCONE's band file, exact values in training order
    text = (folder / mf.FILTER_WAVE_FILE).read_text()
    assert text.splitlines()[1:] == ["g:  4828.0", "r:  6435.0", "Y:  10653.88"]
    assert mf.read_filter_wavelengths(folder) == bands
    # 3. training_history.csv in the folder and beside it (output_path), one row per epoch
    hist = json.loads((folder / mf.HISTORY_FILE).read_text())
    for path in (folder / mf.TRAINING_HISTORY_FILE, tmp_path / mf.TRAINING_HISTORY_FILE):
        rows = list(csv.DictReader(path.open()))
        assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
        assert [int(r["epoch"]) for r in rows] == [1, 2]
        assert [float(r["val_loss"]) for r in rows] == hist["val_loss"]
        assert [float(r["loss"]) for r in rows] == hist["loss"]


def test_categorical_min_per_type_in_training(sim, tmp_path):
    root, cfg, catalog = sim
    counts = catalog.index.drop_duplicates("SNID").TYPE_NAME.value_counts().to_dict()
    assert counts["SNIbc"] < counts["SNII"] < counts["SNIa"]
    c = cfg.model_copy(update={"num_epochs": 1, "seed": 2, "categorical": True, "lr_schedule": "cosine",
                               "categorical_min_per_type": counts["SNIbc"] + 1,
                               "categorical_max_per_type": counts["SNII"]})
    result = train(c, {"full": catalog}, tmp_path / "m", progress=False)
    assert result["categorical"]["classes"] == ["SNII", "SNIa"]
    split = pd.read_csv(tmp_path / "m" / mf.SPLIT_FILE)
    assert split.groupby("label_name").size().to_dict() == {"SNII": counts["SNII"], "SNIa": counts["SNII"]}
    assert mf.read_meta(tmp_path / "m").training_set["dropped_types"] == {"SNIbc": counts["SNIbc"]}
    rows = list(csv.DictReader((tmp_path / "m" / mf.TRAINING_HISTORY_FILE).open()))
    assert list(rows[0])[-1] == "lr" and float(rows[0]["lr"]) == pytest.approx(5e-5)
    assert (tmp_path / mf.TRAINING_HISTORY_FILE).read_text() == (tmp_path / "m" / mf.TRAINING_HISTORY_FILE).read_text()
    with pytest.raises(ConfigError, match="categorical_min_per_type"):
        train(c.model_copy(update={"categorical_min_per_type": counts["SNIa"]}), {"full": catalog}, tmp_path / "x",
              progress=False)
    assert not (tmp_path / "x").exists()


def test_history_csv_text_pads_and_renames():
    text = mf.training_history_text({"val_loss": [0.5, 0.25], "loss": [1.0, 0.75], "learning_rate": [1e-3, 5e-4]})
    assert text.splitlines() == ["epoch,loss,val_loss,lr", "1,1.0,0.5,0.001", "2,0.75,0.25,0.0005"]


# ------------------------------------------------------------------ 5. folders SCONE wrote

def _scone_network(y: int, x: int, n_out: int = 1, with_z: bool = False):
    """SCONE's `_define_and_compile_model` layer stack (model_utils.py), written here with an
    unregistered `Reshape` as SCONE defines it: Keras saves it as SCONE's model.keras does."""
    import tensorflow as tf
    from tensorflow.keras import layers, models, optimizers

    class Reshape(layers.Layer):
        def call(self, inputs):
            return tf.transpose(inputs, perm=[0, 3, 2, 1])

        def get_config(self):
            return {}

    image = tf.keras.Input(shape=(y, x, 2), name="image")
    z, z_err = tf.keras.Input(shape=(1,), name="z"), tf.keras.Input(shape=(1,), name="z_err")
    h = image
    for filters in (y, y, None, y // 2, y // 2, None):
        if filters is None:
            h = layers.MaxPooling2D((2, 2))(h)
            continue
        h = layers.ZeroPadding2D(padding=(0, 1))(h)
        h = layers.Conv2D(filters, (filters, 3), activation="elu")(h)
        h = Reshape()(h)
        h = layers.BatchNormalization()(h)
    h = layers.Dropout(0.5)(layers.Flatten()(h))
    if with_z:
        h = layers.concatenate([h, z, z_err])
    h = layers.Dropout(0.3)(layers.Dense(32, activation="relu")(h))
    out = layers.Dense(n_out, activation="sigmoid" if n_out == 1 else "softmax", name="label")(h)
    model = models.Model(inputs=[image, z, z_err] if with_z else [image], outputs=[out])
    model.compile(optimizer=optimizers.Adam(learning_rate=5e-5),
                  loss="binary_crossentropy" if n_out == 1 else "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _spread(net, inputs):
    """Untrained weights, but batch-norm statistics and an output layer set from `inputs`
    (mean 0, spread 2 in the logits): a random network otherwise gives nearly one
    probability to every SN Ia heatmap, and a wrong layout or normalisation would not show."""
    import keras

    for lay in net.layers:
        if isinstance(lay, keras.layers.BatchNormalization):
            x = np.asarray(keras.Model(net.inputs, lay.input)(inputs, training=False), dtype=np.float64)
            gamma, beta, _, _ = lay.get_weights()
            lay.set_weights([gamma, beta, x.mean(axis=(0, 1, 2)).astype("float32"),
                             x.var(axis=(0, 1, 2)).astype("float32")])
    label = net.get_layer("label")
    features = np.asarray(keras.Model(net.inputs, label.input)(inputs, training=False), dtype=np.float64)
    kernel = np.random.default_rng(1).normal(size=label.get_weights()[0].shape)
    logits = features @ kernel
    scale = 2 / logits.std(axis=0)
    label.set_weights([(kernel * scale).astype("float32"), (-logits.mean(axis=0) * scale).astype("float32")])
    return net


def _scone_images(catalog):
    """The catalog's heatmaps as SCONE's get_images feeds them: (wavelength, time, [mean,
    std]) divided by the peak of the mean channel (in the heatmaps' float32: SCONE's own
    heatmaps are float64, and it divides in float64)."""
    snids, images, z, z_err = [], [], [], []
    for shard in catalog.shards:
        for rec in read_shard(shard, catalog.shape):
            img = rec["image"]
            assert img.dtype == np.float32 and img.shape == (*catalog.shape, 2)
            snids.append(rec["snid"])
            images.append(img / img[:, :, 0].max())
            z.append(rec["z"])
            z_err.append(rec["z_err"])
    return (np.array(snids), np.array(images, dtype=np.float32),
            np.array(z, np.float32)[:, None], np.array(z_err, np.float32)[:, None])


@pytest.fixture(scope="module")
def des_heatmaps(tmp_path_factory):
    """The real-format SNANA DES simulation (200 SNe Ia) as 16x40 heatmaps."""
    des_sim = shared("snana_fits", "DES_SIM")
    root = tmp_path_factory.mktemp("des")
    cfg = SconeConfig(input_path=str(des_sim), heatmaps_path=str(root / "h"), **GRID)
    make_heatmaps(cfg, jobs=1, progress=False)
    catalog = load_catalogs(cfg.heatmaps_path, ["full"])["full"]
    assert len(catalog) > 150  # most of the 200 real-format SNANA light curves
    return root, catalog, _scone_images(catalog)


def test_scone_keras_folder_predicts_as_the_network_does(des_heatmaps, tmp_path):
    _, catalog, (snids, images, _, _) = des_heatmaps
    net = _spread(_scone_network(*catalog.shape), {"image": images})
    folder = tmp_path / "trained_model"
    folder.mkdir()
    net.save(folder / "model.keras")
    bands = {"g": 4828.0, "r": 6435.0, "i": 7828.0, "z": 9181.0}
    (folder / mf.FILTER_WAVE_FILE).write_text(
        "# central wavelength vs band used to create heatmaps for training.\n"
        + "".join(f"{b}:  {w} \n" for b, w in bands.items()))  # as SCONE writes it
    meta = mf.read_meta(folder)
    assert (meta.shape, meta.categorical, meta.with_z, meta.classes) == (catalog.shape, False, False, ["nonIa", "SNIa"])
    assert meta.band_to_wave == bands and meta.made_by == mf.MADE_BY_SCONE and meta.temperature == 1.0
    cfg = SconeConfig(mode="predict", trained_model=str(folder), output_path=str(tmp_path),
                      output_predict_file="scone_preds.csv")
    table = predict(cfg, catalog, folder)  # to config.predictions_file()
    assert cfg.predictions_file() == tmp_path / "scone_preds.csv"
    written = pd.read_csv(tmp_path / "scone_preds.csv", dtype={"SNID": str})
    assert list(written.columns) == ["SNID", "PROB_SCONE"] and len(written) == len(images) == len(catalog)
    assert sorted(written.SNID) == sorted(snids)
    direct = net.predict({"image": images}, verbose=0)[:, 0]
    got = table.set_index("SNID").loc[list(snids), "PROB_SCONE"].to_numpy()
    np.testing.assert_allclose(got, direct, atol=1e-5)
    assert direct.std() > 0.1  # the check would not see a wrong layout on constant outputs
    # SCONE also takes the model file itself as trained_model; the band file is beside it
    assert mf.read_meta(folder / "model.keras").band_to_wave == bands
    by_file = predict(cfg, catalog, folder / "model.keras", tmp_path / "by_file.csv")
    np.testing.assert_array_equal(by_file.PROB_SCONE.to_numpy(), table.PROB_SCONE.to_numpy())
    # and the layout matters: the wavelength axis reversed gives other probabilities
    assert not np.allclose(direct, net.predict({"image": images[:, ::-1]}, verbose=0)[:, 0], atol=1e-5)


def test_scone_categorical_with_z_folder(des_heatmaps, tmp_path):
    _, catalog, (snids, images, z, z_err) = des_heatmaps
    net = _spread(_scone_network(*catalog.shape, n_out=3, with_z=True), {"image": images, "z": z, "z_err": z_err})
    net.save(tmp_path / "model.keras")
    with pytest.raises(ConfigError, match="categorical .3 outputs.: set sn_type_id_to_name"):
        mf.read_meta(tmp_path)
    with pytest.raises(ConfigError, match="has 3 outputs but sn_type_id_to_name names 2 classes"):
        mf.read_meta(tmp_path, SconeConfig(sn_type_id_to_name={1: "SNIa", 20: "SNII"}))
    # SCONE's label i is the i-th name of sn_type_id_to_name in sorted order
    cfg = SconeConfig(mode="predict", trained_model=str(tmp_path), sn_type_id_to_name={20: "SNII", 1: "Ia", 30: "SNIbc"},
                      prob_column_name="PROB_MYTASK")
    meta = mf.read_meta(tmp_path, cfg)
    assert meta.classes == ["SNIa", "SNII", "SNIbc"] and meta.categorical and meta.with_z
    assert meta.band_to_wave == {}
    table = predict(cfg, catalog, tmp_path, tmp_path / "p.csv")
    assert list(table.columns) == ["SNID", "PROB_MYTASK", "PROB_MYTASK_SNIa", "PROB_MYTASK_SNII", "PROB_MYTASK_SNIbc"]
    direct = net.predict({"image": images, "z": z, "z_err": z_err}, verbose=0)
    got = table.set_index("SNID").loc[list(snids)]
    np.testing.assert_allclose(got[["PROB_MYTASK_SNIa", "PROB_MYTASK_SNII", "PROB_MYTASK_SNIbc"]].to_numpy(),
                               direct, atol=1e-5)
    np.testing.assert_allclose(got.PROB_MYTASK.to_numpy(), direct[:, 0], atol=1e-5)


def test_scone_saved_model_folder(des_heatmaps, tmp_path):
    """An older SCONE folder (a TF SavedModel) runs through keras.layers.TFSMLayer."""
    _, catalog, (snids, images, _, _) = des_heatmaps
    net = _spread(_scone_network(*catalog.shape), {"image": images})
    folder = tmp_path / "trained_model"
    net.export(str(folder), format="tf_saved_model", verbose=False)
    assert (folder / mf.SCONE_SAVED_MODEL).is_file() and not (folder / "model.keras").exists()
    meta = mf.read_meta(folder)
    assert (meta.shape, meta.categorical, meta.made_by) == (catalog.shape, False, mf.MADE_BY_SCONE_SAVED_MODEL)
    table = predict(SconeConfig(mode="predict", trained_model=str(folder)), catalog, folder, tmp_path / "p.csv")
    direct = net.predict({"image": images}, verbose=0)[:, 0]
    np.testing.assert_allclose(table.set_index("SNID").loc[list(snids), "PROB_SCONE"].to_numpy(), direct, atol=1e-5)
    (folder / mf.SCONE_SAVED_MODEL).write_bytes(b"not a saved model")
    with pytest.raises(ConfigError, match="is a TF SavedModel .* keras.layers.TFSMLayer cannot load here"):
        mf.load_trained(folder)


def test_folder_that_is_nobodys_is_named(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match=rf"trained_model {tmp_path} has no model.keras: it is neither a "
                                          r"scone-assets model folder .* nor one SCONE wrote .*saved_model.pb"):
        mf.read_meta(tmp_path)
    with pytest.raises(ConfigError, match=f"trained_model {tmp_path / 'missing'} does not exist"):
        mf.load_trained(tmp_path / "missing")
    with pytest.raises(ConfigError, match="weights.bin is not a folder"):
        mf.read_meta(tmp_path / "weights.bin")
    (tmp_path / "model.keras").write_bytes(b"x")
    with pytest.raises(ConfigError, match="has no model_meta.json, so it is read as a model folder written by SCONE"):
        mf.load_trained(tmp_path)


# ------------------------------------------------------------------ 6. Roman bands

def test_roman_bands_place_by_survey_and_full_name():
    want = {"R": 6296.73, "Z": 8744.77, "Y": 10653.88, "J": 12975.72, "H": 15848.21, "F": 18475.41, "K": 21255.0}
    assert resolve_band_to_wave(list("RZYJHFK"), survey="ROMAN") == want
    assert survey_table("WFIRST") is survey_table("NGRST") is survey_table("roman_hltds")
    assert resolve_band_to_wave(["H"], full_names={"H": "ROMAN-H"}) == {"H": 15848.21}
    assert math.isclose(resolve_band_to_wave(["Y"], survey="NGRST")["Y"], 10653.88)
