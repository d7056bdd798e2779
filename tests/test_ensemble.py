"""Ensembles and learning-rate schedules: real (small) CPU training, numbers checked."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from scone_assets.config import ConfigError, SconeConfig
from scone_assets.heatmaps.run import make_heatmaps
from scone_assets.heatmaps.store import load_catalogs
from scone_assets.model import folder as mf
from scone_assets.model.predict import predict
from scone_assets.model.train import cosine_learning_rate, train
from scone_assets.simulate.run import simulate

GRID = {"num_wavelength_bins": 16, "num_mjd_bins": 40}
OLD_FILES = {"model.keras", "model_meta.json", "config.yml", "history.json", "split.csv", "metrics.json",
             *mf.PICTURES, mf.FILTER_WAVE_FILE, mf.TRAINING_HISTORY_FILE}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    sim = simulate(root / "SIM", 80, survey="des", seed=3, per_file=80, mix="SNIa=0.5,SNII=0.5", jobs=1,
                   progress=False)
    cfg = SconeConfig(input_path=str(sim.folder), heatmaps_path=str(root / "h"), num_epochs=2, seed=4, **GRID)
    make_heatmaps(cfg, jobs=1, progress=False)
    return root, cfg, load_catalogs(cfg.heatmaps_path, ["full"])["full"]


@pytest.fixture(scope="module")
def pair(data):
    root, cfg, cat = data
    target = root / "pair"
    result = train(cfg.model_copy(update={"ensemble_size": 2}), {"full": cat}, target, progress=False)
    return target, result


def test_two_members_differ_and_predictions_are_their_mean(data, pair, tmp_path):
    root, cfg, cat = data
    target, result = pair
    assert OLD_FILES | {"model_member1.keras", "history_member1.json"} == {p.name for p in target.iterdir()}
    meta = mf.read_meta(target)
    assert (meta.ensemble_size, meta.member_seeds, meta.lr_schedule) == (2, [4, 5], "constant")
    models, _ = mf.load_members(target)
    w0, w1 = models[0].get_weights(), models[1].get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(w0, w1, strict=True))
    table = predict(SconeConfig(mode="predict", trained_model=str(target)), cat, target, tmp_path / "p.csv")
    from scone_assets.model.calibration import apply_temperature
    from scone_assets.model.inference import predict_members

    snids, _, per_member = predict_members(models, cat, None, False, 32)
    assert per_member.shape == (2, 80, 1) and not np.allclose(per_member[0], per_member[1])
    expected = apply_temperature(per_member.mean(axis=0), meta.temperature, False).reshape(-1)
    got = table.set_index("SNID").loc[list(snids), "PROB_SCONE"].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # metrics describe the ensemble, with each member alone beside it
    ens = result["ensemble"]
    assert ens["size"] == 2 and [m["seed"] for m in ens["members"]] == [4, 5]
    assert json.loads((target / mf.METRICS_FILE).read_text())["ensemble"]["seeds"] == [4, 5]
    assert result["test"]["n"] == ens["members"][0]["test"]["n"] == 8


def test_first_member_is_the_one_member_model_and_old_folders_load(data, pair, tmp_path):
    """Member 0 of an ensemble is exactly what ensemble_size 1 trains; a one-member folder has
    the files it always had, and one whose meta lacks the new keys (an older folder) loads."""
    root, cfg, cat = data
    pair_dir, _ = pair
    single = tmp_path / "one"
    train(cfg, {"full": cat}, single, progress=False)
    assert {p.name for p in single.iterdir()} == OLD_FILES
    a = mf.load_members(single)[0][0].get_weights()
    b = mf.load_members(pair_dir)[0][0].get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    before = predict(SconeConfig(mode="predict", trained_model=str(single)), cat, single, tmp_path / "a.csv")
    meta = json.loads((single / mf.META_FILE).read_text())
    for key in ("lr_schedule", "ensemble_size", "member_seeds"):
        del meta[key]
    (single / mf.META_FILE).write_text(json.dumps(meta))
    model, old = mf.load_trained(single)
    assert old.ensemble_size == 1 and hasattr(model, "get_weights")  # the Keras model itself
    after = predict(SconeConfig(mode="predict", trained_model=str(single)), cat, single, tmp_path / "b.csv")
    np.testing.assert_array_equal(before.PROB_SCONE.to_numpy(), after.PROB_SCONE.to_numpy())


def test_cosine_schedule_follows_the_formula(data, tmp_path):
    root, cfg, cat = data
    target = tmp_path / "cos"
    train(cfg.model_copy(update={"lr_schedule": "cosine", "num_epochs": 4}), {"full": cat}, target, progress=False)
    lrs = json.loads((target / mf.HISTORY_FILE).read_text())["learning_rate"]
    expected = [5e-5 * 0.5 * (1 + np.cos(np.pi * e / 4)) for e in range(4)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-5)
    assert cosine_learning_rate(0, 4, 5e-5) == pytest.approx(5e-5)
    assert mf.read_meta(target).lr_schedule == "cosine"


def test_broken_ensemble_folder_is_named(pair, tmp_path):
    target, _ = pair
    broken = tmp_path / "broken"
    shutil.copytree(target, broken)
    (broken / "model_member1.keras").unlink()
    with pytest.raises(ConfigError, match=f"trained_model {broken} is an ensemble of 2 .* no model_member1.keras"):
        mf.load_trained(broken)
    shutil.copy(target / "model_member1.keras", broken / "model_member1.keras")
    shutil.copy(target / "model_member1.keras", broken / "model_member2.keras")
    with pytest.raises(ConfigError, match=f"{broken} holds model_member2.keras but .* ensemble_size 2"):
        mf.load_trained(broken)
    (broken / "model_member2.keras").unlink()
    (broken / "model_member1.keras").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=f"trained_model {broken}: model_member1.keras cannot be loaded"):
        mf.load_trained(broken)
    meta = json.loads((broken / mf.META_FILE).read_text()) | {"member_seeds": [4]}
    (broken / mf.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="member_seeds lists 1 seeds for ensemble_size 2"):
        mf.read_meta(broken)


def test_plateau_schedule_is_recorded_and_needs_validation_objects(data, tmp_path):
    root, cfg, cat = data
    plateau = cfg.model_copy(update={"lr_schedule": "plateau", "lr_plateau_patience": 1, "num_epochs": 3})
    train(plateau, {"full": cat}, tmp_path / "p", progress=False)
    lrs = json.loads((tmp_path / "p" / mf.HISTORY_FILE).read_text())["learning_rate"]
    assert len(lrs) == 3 and lrs[0] == pytest.approx(5e-5) and all(lr in (pytest.approx(5e-5 * 0.5 ** i)
                                                                        for i in range(3)) for lr in lrs)
    assert mf.read_meta(tmp_path / "p").lr_schedule == "plateau"
    with pytest.raises(ConfigError, match="lr_schedule: plateau watches the validation loss"):
        train(plateau.model_copy(update={"train_proportion": 1.0, "val_proportion": 0.0}), {"full": cat}, tmp_path / "q", progress=False)
    assert not (tmp_path / "q").exists()
